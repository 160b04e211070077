"""The sweep report's plots: paired scatter per arm against the baseline, metric vs depth, divergence.

Drawn on matplotlib's Agg canvas (no display) from a ``trials_table`` and its
``compare_inits`` comparison, for whatever arms they hold; ``autoinit_nas.report``
calls ``draw_plots``.

Example:
    >>> import pandas as pd
    >>> arm_colours(pd.DataFrame({"arm": ["he", "lecun", "he", None]}))
    {'he': 'tab:blue', 'lecun': 'tab:orange'}
"""

import math
import os

# Colours in the order arms first appear in the table.
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def arm_colours(table):
    """{arm: colour} for the arms of ``table`` in the order they first appear (see ``COLOURS``)."""
    arms = [arm for arm in dict.fromkeys(table["arm"]) if isinstance(arm, str)]
    return {arm: COLOURS[index % len(COLOURS)] for index, arm in enumerate(arms)}


def draw_plots(table, comparison, out, metric, mode, value="best"):
    """Write paired_scatter.png (when any pair exists), metric_vs_depth.png and divergence.png; {name: path}.

    Example:
        >>> import pandas as pd, tempfile
        >>> table = pd.DataFrame({"arm": ["he"], "depth": [2], "diverged": [False], "best_val_accuracy": [0.5]})
        >>> sorted(draw_plots(table, pd.DataFrame(), tempfile.mkdtemp(), "val_accuracy", "max"))
        ['divergence.png', 'metric_vs_depth.png']
    """
    from matplotlib.figure import Figure

    colours = arm_colours(table)
    files = {}
    if not comparison.empty:
        figure = Figure(figsize=(5.6, 5.2))
        _paired_scatter(figure.add_subplot(), comparison, mode, colours)
        files["paired_scatter.png"] = _save(figure, out, "paired_scatter.png")
    figure = Figure(figsize=(7.0, 4.4))
    _metric_vs_depth(figure.add_subplot(), table, metric, value, colours)
    files["metric_vs_depth.png"] = _save(figure, out, "metric_vs_depth.png")
    figure = Figure(figsize=(6.4, 4.0))
    _divergence(figure.add_subplot(), table, colours)
    files["divergence.png"] = _save(figure, out, "divergence.png")
    return files


def _save(figure, out, name):
    path = os.path.join(out, name)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def _paired_scatter(axes, comparison, mode, colours):
    """Baseline (x) against each arm (y) per candidate; one colour per arm (per activation for one arm)."""
    metric = comparison.attrs.get("metric", "metric")
    x = comparison["baseline_value"].to_numpy(dtype=float)
    y = comparison["arm_value"].to_numpy(dtype=float)
    finite = [v for v in list(x) + list(y) if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    pad = 0.04 * (high - low or 1.0)
    axes.plot([low - pad, high + pad], [low - pad, high + pad], color="0.6", linestyle="--", linewidth=1)
    arms = list(dict.fromkeys(comparison["arm"]))
    baseline = comparison["baseline"].iloc[0]
    by_activation = len(arms) == 1 and "hp_activation" in comparison and comparison["hp_activation"].nunique() > 1
    groups = comparison.groupby("hp_activation" if by_activation else "arm", dropna=False, sort=not by_activation)
    for label, group in groups:
        diverged = group["arm_diverged"].astype(bool) | group["baseline_diverged"].astype(bool)
        colour = None if by_activation else colours.get(label)
        for mask, marker in ((~diverged, "o"), (diverged, "X")):
            part = group[mask]
            if len(part):
                axes.scatter(part["baseline_value"], part["arm_value"], marker=marker, s=36, alpha=0.85, color=colour,
                             label=f"{label}" + (" (an arm diverged)" if marker == "X" else ""))
    better = "above" if mode == "max" else "below"
    named = arms[0] if len(arms) == 1 else "each arm"
    axes.set_xlabel(f"baseline {baseline}: {metric}")
    axes.set_ylabel(f"{', '.join(arms)}: {metric}")
    axes.set_title(f"Paired per candidate ({comparison['architecture_id'].nunique()}); "
                   f"{better} the diagonal = {named} better than {baseline}", fontsize=9)
    axes.set_xlim(low - pad, high + pad)
    axes.set_ylim(low - pad, high + pad)
    axes.legend(fontsize=7, loc="best")


def _missing(value):
    try:
        return value is None or bool(value != value)
    except (TypeError, ValueError):
        return True


def _metric_vs_depth(axes, table, metric, value, colours):
    from autoinit_nas.results import DEPTH_BUCKETS, depth_bucket

    column = f"{value}_{metric}"
    for arm, colour in colours.items():
        rows = table[(table["arm"] == arm)]
        if column not in rows or rows.empty:
            continue
        axes.scatter(rows["depth"].astype(float), rows[column].astype(float), s=18, alpha=0.6, color=colour, label=arm)
        medians = []
        buckets = rows["depth"].map(lambda d: None if _missing(d) else depth_bucket(int(d)))
        for _, label in DEPTH_BUCKETS:
            part = rows[buckets == label]
            if len(part) and part[column].notna().any():
                medians.append((float(part["depth"].astype(float).median()), float(part[column].astype(float).median())))
        if len(medians) > 1:
            axes.plot(*zip(*medians), color=colour, linewidth=1.5, alpha=0.9)
    axes.set_xlabel("depth (kernel-bearing layers on the longest path)")
    axes.set_ylabel(f"{metric} ({value} epoch)")
    axes.set_title("Metric vs depth per init arm (lines: medians per depth bucket)", fontsize=9)
    axes.legend(fontsize=8)


def _divergence(axes, table, colours):
    from autoinit_nas.results import DEPTH_BUCKETS, depth_bucket

    labels = [label for _, label in DEPTH_BUCKETS]
    arms = list(colours)
    width = 0.8 / max(len(arms), 1)
    totals = []
    for index, arm in enumerate(arms):
        rows = table[table["arm"] == arm]
        buckets = rows["depth"].map(lambda d: None if _missing(d) else depth_bucket(int(d)))
        diverged = rows["diverged"].fillna(False).astype(bool)
        counts = [int(diverged[buckets == label].sum()) for label in labels]
        totals.append(f"{arm} {int(diverged.sum())}/{len(rows)}")
        positions = [i + (index - (len(arms) - 1) / 2) * width for i in range(len(labels))]
        axes.bar(positions, counts, width=width, color=colours[arm], label=arm)
    axes.set_xticks(range(len(labels)), labels)
    axes.set_ylim(0, max([1] + [patch.get_height() for patch in axes.patches]) * 1.15)
    if not any(patch.get_height() for patch in axes.patches):
        axes.text(0.5, 0.5, "no arm diverged", transform=axes.transAxes, ha="center", va="center", color="0.4")
    axes.set_xlabel("depth bucket")
    axes.set_ylabel("diverged arms (non-finite loss)")
    axes.set_title("Divergence per init arm: " + ", ".join(totals), fontsize=9)
    axes.yaxis.get_major_locator().set_params(integer=True)
    if arms:
        axes.legend(fontsize=8)
