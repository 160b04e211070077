"""The study's plots (matplotlib's Agg canvas, no display): fidelity, regret, paired scatter, accuracy vs depth."""

import os

import numpy as np


def _save(figure, out, name):
    path = os.path.join(out, name)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def _arms(frame, arms):
    return [arm for arm in arms if arm in set(frame["arm"])]


def _cells(frame):
    """(label, rows) per (space, dataset) cell, the cells' mean ("all") left out when real cells exist."""
    cells = [(f"{space} / {dataset}", rows) for (space, dataset), rows in frame.groupby(["space", "dataset"], sort=True)
             if space != "all"]
    return cells or [("all", frame)]


def _panels(count, width, height):
    from matplotlib.figure import Figure

    columns = min(2, count)
    rows = int(np.ceil(count / columns))
    figure = Figure(figsize=(width * columns, height * rows))
    return figure, [figure.add_subplot(rows, columns, i + 1) for i in range(count)]


def rho_vs_budget(ranking, arms, out):
    """Spearman rho (with its bootstrap interval) against the budget, a line per arm, a panel per cell."""
    cells = _cells(ranking)
    figure, panels = _panels(len(cells), 4.6, 3.4)
    for axes, (label, frame) in zip(panels, cells):
        present = _arms(frame, arms)
        for offset, arm in zip(np.linspace(-0.15, 0.15, max(len(present), 1)), present):
            rows = frame[frame["arm"] == arm].sort_values("budget")
            x = rows["budget"].to_numpy(float) * (1 + offset / 4)
            y = rows["spearman"].to_numpy(float)
            error = np.vstack([y - rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float) - y])
            axes.errorbar(x, y, yerr=np.clip(np.nan_to_num(error), 0, None), marker="o", capsize=3, label=arm)
        axes.set_xscale("log", base=2)
        axes.set_xlabel("budget (epochs)", fontsize=8)
        axes.set_ylabel("Spearman rho vs converged", fontsize=8)
        axes.set_title(label, fontsize=9)
    panels[0].legend(fontsize=7)
    figure.suptitle("Evaluation fidelity per arm (95% bootstrap CI)", fontsize=10)
    return _save(figure, out, "rho_vs_budget.png")


def regret_per_arm(regret, arms, out):
    """Mean regret (with its interval) per arm, one bar group per (budget, k), a panel per cell."""
    cells = _cells(regret)
    figure, panels = _panels(len(cells), 5.0, 3.4)
    for axes, (label, frame) in zip(panels, cells):
        present = _arms(frame, arms)
        settings = sorted({(int(b), int(k)) for b, k in zip(frame["budget"], frame["k"])})
        width = 0.8 / max(len(present), 1)
        for index, arm in enumerate(present):
            rows = frame[frame["arm"] == arm]
            lookup = {(int(r["budget"]), int(r["k"])): r for _, r in rows.iterrows()}
            pick = lambda field: np.array([lookup[s][field] if s in lookup else np.nan for s in settings], float)  # noqa: E731
            y, low, high = pick("mean_regret"), pick("ci_low"), pick("ci_high")
            x = np.arange(len(settings)) + (index - (len(present) - 1) / 2) * width
            error = np.clip(np.nan_to_num(np.vstack([y - low, high - y])), 0, None)
            axes.bar(x, np.nan_to_num(y), width, yerr=error, capsize=2, label=arm)
        axes.set_xticks(np.arange(len(settings)), [f"b={b} k={k}" for b, k in settings], fontsize=7)
        axes.set_ylabel("regret (accuracy lost)", fontsize=8)
        axes.set_title(label, fontsize=9)
    panels[0].legend(fontsize=6, ncol=2)
    figure.suptitle("Simulated budget-limited search: mean regret per arm (95% CI)", fontsize=10)
    return _save(figure, out, "regret.png")


def paired_scatter(paired, arms, reference, out):
    """Each arm's final score against ``reference``'s, one panel per arm, the diagonal drawn."""
    from matplotlib.figure import Figure

    others = [arm for arm in _arms(paired, arms) if arm != reference]
    column = f"score_{reference}"
    if not others or column not in paired.columns:
        return None
    columns = min(3, len(others))
    rows = int(np.ceil(len(others) / columns))
    figure = Figure(figsize=(3.2 * columns, 3.0 * rows))
    for index, arm in enumerate(others):
        axes = figure.add_subplot(rows, columns, index + 1)
        runs = paired[paired["arm"] == arm]
        axes.scatter(runs[column], runs["score"], s=14, alpha=0.7)
        axes.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
        axes.set_xlim(0, 1)
        axes.set_ylim(0, 1)
        axes.set_xlabel(f"{reference} final accuracy", fontsize=8)
        axes.set_ylabel(f"{arm}", fontsize=8)
        axes.set_title(f"{arm} vs {reference}", fontsize=9)
    return _save(figure, out, f"paired_vs_{reference}.png")


def accuracy_vs_depth(table, arms, epochs, out):
    """Final score against depth, one colour per arm (points jittered sideways)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0))
    axes = figure.add_subplot()
    final = table[table["epoch"] == epochs]
    arms = _arms(final, arms)
    for offset, arm in zip(np.linspace(-0.3, 0.3, max(len(arms), 1)), arms):
        rows = final[final["arm"] == arm]
        axes.scatter(rows["depth"] + offset, rows["score"], s=12, alpha=0.7, label=arm)
    axes.set_xlabel("depth (weighted layers in the blocks)")
    axes.set_ylabel(f"accuracy after {epochs} epochs")
    axes.set_title("Accuracy against depth per arm")
    axes.legend(fontsize=7, ncol=3)
    return _save(figure, out, "accuracy_vs_depth.png")
