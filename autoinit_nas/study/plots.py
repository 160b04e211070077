"""The study's plots (matplotlib's Agg canvas, no display): rho against budget, regret per search."""

import os

import numpy as np

from autoinit_nas.study.summary import search_label

ALL = "all"


def _save(figure, out, name):
    path = os.path.join(out, name)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def _arms(frame, arms):
    return [arm for arm in arms if arm in set(frame["arm"])]


def _panels(count, width, height):
    from matplotlib.figure import Figure

    columns = min(2, max(count, 1))
    rows = int(np.ceil(max(count, 1) / columns))
    figure = Figure(figsize=(width * columns, height * rows))
    return figure, [figure.add_subplot(rows, columns, i + 1) for i in range(max(count, 1))]


def _error(y, low, high):
    return np.clip(np.nan_to_num(np.vstack([y - low, high - y])), 0, None)


def rho_vs_budget(ranking, ceiling, arms, epochs, out):
    """Pooled rho (95% CI) against budget per arm, a panel per reference (own, neutral, others); each arm's
    ceiling drawn at E and the zero-cost proxies at budget 0 (``neutral`` panel)."""
    pooled = ranking[(ranking["space"] == ALL) & (ranking["stratum"] == ALL)]
    limits = ceiling[(ceiling["space"] == ALL) & (ceiling["stratum"] == ALL)].set_index("arm")
    references = [r for r in ("own", "neutral", "others") if r in set(pooled["reference"])] or ["own"]
    figure, panels = _panels(len(references), 4.8, 3.6)
    for axes, reference in zip(panels, references):
        rows = pooled[pooled["reference"] == reference]
        for index, arm in enumerate(_arms(rows, arms)):
            line = rows[(rows["arm"] == arm) & (rows["budget"] > 0)].sort_values("budget")
            y = line["spearman"].to_numpy(float)
            error = _error(y, line["ci_low"].to_numpy(float), line["ci_high"].to_numpy(float))
            drawn = axes.errorbar(line["budget"].to_numpy(float) + 0.04 * index, y, yerr=error, marker="o",
                                  capsize=3, label=arm)
            if arm in limits.index:
                axes.plot([epochs + 0.04 * index], [limits.loc[arm, "spearman"]], marker="*", markersize=9,
                          color=drawn[0].get_color(), linestyle="none")
        for proxy, row in rows[rows["budget"] == 0].set_index("arm").iterrows():
            axes.axhline(row["spearman"], linestyle=":", linewidth=1, color="grey")
            axes.annotate(proxy, (0.02, row["spearman"]), xycoords=("axes fraction", "data"), fontsize=7)
        axes.set_xlabel(f"budget (epochs); star: noise ceiling at E = {epochs}", fontsize=8)
        axes.set_ylabel(f"Spearman rho vs {reference} reference", fontsize=8)
        axes.set_title(f"pooled over cells, {reference}", fontsize=9)
    panels[0].legend(fontsize=7)
    figure.suptitle("Ranking fidelity per arm (95% stratified bootstrap CI)", fontsize=10)
    return _save(figure, out, "rho_vs_budget.png")


def regret_per_search(search, arms, out):
    """Mean regret (95% CI) per arm, one bar group per replayed search, a panel per cell."""
    rows = search[(search["stratum"] == ALL) & (search["subsets"] > 0)]
    cells = [(f"{space} / {dataset}", frame) for (space, dataset), frame in rows.groupby(["space", "dataset"])]
    figure, panels = _panels(len(cells), 6.0, 3.4)
    for axes, (label, frame) in zip(panels, cells):
        present = _arms(frame, arms)
        labels = list(dict.fromkeys(search_label(r) for _, r in frame.iterrows()))
        width = 0.8 / max(len(present), 1)
        for index, arm in enumerate(present):
            lookup = {search_label(r): r for _, r in frame[frame["arm"] == arm].iterrows()}
            y, low, high = (np.array([lookup[s][field] if s in lookup else np.nan for s in labels], float)
                            for field in ("mean_regret", "ci_low", "ci_high"))
            x = np.arange(len(labels)) + (index - (len(present) - 1) / 2) * width
            axes.bar(x, np.nan_to_num(y), width, yerr=_error(y, low, high), capsize=2, label=arm)
        axes.set_xticks(np.arange(len(labels)), labels, fontsize=6, rotation=30, ha="right")
        axes.set_ylabel("regret (test accuracy lost)", fontsize=8)
        axes.set_title(label, fontsize=9)
    panels[0].legend(fontsize=6, ncol=2)
    figure.suptitle("Replayed searches: mean regret per arm (95% CI)", fontsize=10)
    return _save(figure, out, "regret.png")
