"""Reports: tables (CSV, Parquet, Markdown) and plots of a sweep directory, AutoInit vs default.

``build_report(directory)`` reads every trial under ``directory`` (a sweep's
``--out``, a keras-tuner project or a Ray experiment) with
``autoinit_nas.results``, and writes into ``directory/report/``:

```
trials.csv, trials.parquet    one row per trial and arm (trials_table)
comparison.csv                one row per candidate, both arms and their difference (compare_inits)
summary.csv                   wins/ties/losses, mean/median difference with 95% bootstrap CIs, Wilcoxon p;
                              overall, then per depth bucket and per varying hyperparameter (column "group")
report.md                     all of it as Markdown, with the plots
paired_scatter.png            default (x) vs AutoInit (y) per candidate, above the diagonal = AutoInit better
metric_vs_depth.png           the metric against depth, one colour per arm, bucket medians joined
divergence.png                diverged arms per depth bucket, per arm
```

Plots use matplotlib's Agg canvas (no display). Command line: ``autoinit-nas report DIR``.
"""

import dataclasses
import math
import os
import sys

ARM_COLOURS = {"autoinit": "tab:blue", "default": "tab:orange"}
# Hyperparameter columns summarized separately when they vary.
GROUP_COLUMNS = ("depth_bucket", "hp_activation", "hp_normalization", "hp_skip", "space")


@dataclasses.dataclass
class Report:
    """What ``build_report`` wrote and the text it printed."""

    directory: str
    files: dict
    text: str
    table: object
    comparison: object
    summary: object


def build_report(directory, out=None, metric=None, mode=None, value="best", plots=True):
    """Write the tables and plots of the sweep in ``directory``; returns a ``Report``.

    Args:
        directory: a sweep ``--out`` directory (or any directory holding trial records).
        out: where to write (default ``directory/report``).
        metric: the metric to compare (default: the sweep's objective, else val_accuracy).
        mode: "max" or "min" (default: the sweep's direction, else from the name).
        value: "best" (each arm's best epoch) or "final" (last epoch).
        plots: draw the PNGs.

    Raises:
        FileNotFoundError: ``directory`` does not exist.
        ValueError: no trials found, or the metric is not in the table.
    """
    from autoinit_nas import results

    directory = os.fspath(directory)
    spec = _spec(directory)
    if metric is None:
        metric = spec.objective if spec is not None else "val_accuracy"
    if mode is None:
        mode = spec.direction if spec is not None and metric == spec.objective else _direction(metric)
    table = results.trials_table(directory)
    if table.empty:
        raise ValueError(f"No trials under '{directory}': nothing to report. Run a sweep there first.")
    comparison = results.compare_inits(table, metric=metric, mode=mode, value=value)
    summary = summaries(comparison)

    out = os.fspath(out) if out is not None else os.path.join(directory, "report")
    os.makedirs(out, exist_ok=True)
    files = {
        "trials.csv": results.to_csv(table, os.path.join(out, "trials.csv")),
        "comparison.csv": results.to_csv(comparison, os.path.join(out, "comparison.csv")),
        "summary.csv": results.to_csv(summary, os.path.join(out, "summary.csv")),
    }
    try:
        files["trials.parquet"] = results.to_parquet(table, os.path.join(out, "trials.parquet"))
    except ImportError:
        pass
    if plots:
        files.update(draw_plots(table, comparison, out, metric, mode, value))
    text = report_text(table, comparison, summary, metric, mode, value, spec)
    markdown = report_markdown(table, comparison, summary, metric, mode, value, spec, files, out)
    files["report.md"] = os.path.join(out, "report.md")
    with open(files["report.md"], "w", encoding="utf-8") as stream:
        stream.write(markdown)
    return Report(directory=out, files=files, text=text, table=table, comparison=comparison, summary=summary)


def summaries(comparison):
    """The overall summary, then one block per depth bucket and per varying grouping column.

    A ``group`` column names the grouping ("all", "depth_bucket", ...) and a
    ``value`` column its value.
    """
    import pandas as pd

    from autoinit_nas import results

    overall = results.summarize(comparison)
    overall.insert(0, "value", "")
    overall.insert(0, "group", "all")
    parts = [overall]
    for column in GROUP_COLUMNS:
        if column in comparison and comparison[column].nunique(dropna=True) > 1:
            part = results.summarize(comparison, by=column)
            part = part.rename(columns={column: "value"})
            part["value"] = part["value"].map(str)
            part.insert(0, "group", column)
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def summary_line(table, metric="val_accuracy", mode="max", value="best"):
    """One line: wins/ties/losses, mean difference with its interval, Wilcoxon p, divergences."""
    from autoinit_nas import results

    try:
        comparison = results.compare_inits(table, metric=metric, mode=mode, value=value)
    except ValueError as error:
        return f"no comparison: {error}"
    if comparison.empty:
        return "no comparison: no candidate has both arms"
    row = results.summarize(comparison).iloc[0]
    return (
        f"AutoInit vs default on {metric} ({len(comparison)} candidates): {row.wins} better, {row.ties} tied, "
        f"{row.losses} worse; mean difference {_signed(row.mean_difference)} "
        f"[{_signed(row.mean_low)}, {_signed(row.mean_high)}], Wilcoxon p={_p(row.wilcoxon_p)}; "
        f"diverged: AutoInit {row.autoinit_diverged}, default {row.default_diverged}"
    )


# Text.


def comparison_columns(comparison, metric):
    """Columns of the printed comparison table: varying hyperparameters, depth, both arms, difference."""
    hp = [c for c in comparison if c.startswith("hp_") and c != "hp_depth" and comparison[c].nunique(dropna=True) > 1]
    return ["depth"] + hp + [f"default_{metric}", f"autoinit_{metric}", "difference", "diverged"]


def comparison_display(comparison, metric):
    """The comparison as strings, ready to print: one row per candidate."""
    import pandas as pd

    shown = pd.DataFrame(index=comparison.index)
    for column in comparison_columns(comparison, metric):
        if column == "diverged":
            shown["diverged"] = [
                ",".join(arm for arm in ("autoinit", "default") if row[f"{arm}_diverged"]) or "-"
                for _, row in comparison.iterrows()
            ]
        elif column == "difference":
            shown[column] = comparison[column].map(_signed)
        elif column.endswith(metric) and column.startswith(("autoinit_", "default_")):
            shown[column.split("_", 1)[0]] = comparison[column].map(_number)
        else:
            shown[column.removeprefix("hp_")] = comparison[column].map(_cell)
    return shown


def report_text(table, comparison, summary, metric, mode, value, spec=None):
    """What ``autoinit-nas report`` prints: header, comparison table, summaries."""
    lines = [_header(table, metric, mode, value, spec)]
    if comparison.empty:
        lines.append("No candidate has both arms (run the sweep with --init compare to pair them).")
        lines.append(_divergence_text(table))
        return "\n".join(lines)
    lines += ["", format_table(comparison_display(comparison, metric)), ""]
    overall = summary[summary["group"] == "all"].iloc[0]
    lines.append(_overall_text(overall, metric, mode))
    grouped = summary[summary["group"] != "all"]
    if len(grouped):
        lines += ["", "by group (difference = AutoInit - default, positive = AutoInit better):"]
        lines.append(format_table(_summary_display(grouped)))
    notes = [note for note in summary.loc[summary["group"] == "all", "note"] if note]
    if any(note for note in grouped["note"]):
        notes.append("per-group notes (n<2, zero differences) in summary.csv")
    if comparison.attrs.get("unpaired"):
        notes.append(f"{comparison.attrs['unpaired']} candidate(s) have only one arm and are left out")
    if notes:
        lines += ["", "notes: " + " | ".join(notes)]
    return "\n".join(lines)


def _header(table, metric, mode, value, spec):
    trials = table[["engine", "trial_id", "trial_dir"]].drop_duplicates() if "trial_dir" in table else table
    statuses = table.drop_duplicates(subset=[c for c in ("engine", "trial_id", "trial_dir") if c in table])["status"]
    counts = ", ".join(f"{count} {status}" for status, count in statuses.value_counts(dropna=False).items())
    what = f"{spec.space} on {spec.data}, {spec.epochs} epochs, {spec.engine}" if spec is not None else "sweep"
    better = "higher" if mode == "max" else "lower"
    return (
        f"{what}: {len(trials)} trials ({counts}); comparing {metric} at each arm's "
        f"{'best' if value == 'best' else 'last'} epoch ({better} is better)"
    )


def _overall_text(row, metric, mode):
    text = (
        f"AutoInit better on {row.wins}, tied on {row.ties}, worse on {row.losses} of {row.n} candidates.\n"
        f"difference in {metric} (AutoInit - default{', sign flipped: lower is better' if mode == 'min' else ''}): "
        f"mean {_signed(row.mean_difference)} (95% bootstrap CI {_signed(row.mean_low)} to {_signed(row.mean_high)}), "
        f"median {_signed(row.median_difference)} (CI {_signed(row.median_low)} to {_signed(row.median_high)})\n"
        f"Wilcoxon signed-rank p = {_p(row.wilcoxon_p)}; diverged arms: AutoInit {row.autoinit_diverged}, "
        f"default {row.default_diverged}"
    )
    return text


def _summary_display(summary):
    import pandas as pd

    shown = pd.DataFrame(index=summary.index)
    shown["group"] = summary["group"].map(lambda g: g.removeprefix("hp_"))
    shown["value"] = summary["value"].map(str)
    shown["n"] = summary["n"].map(str)
    shown["win/tie/loss"] = [f"{w}/{t}/{l}" for w, t, l in zip(summary["wins"], summary["ties"], summary["losses"])]
    shown["mean diff"] = summary["mean_difference"].map(_signed)
    shown["95% CI"] = [
        "" if _missing(lo) else f"[{_signed(lo)}, {_signed(hi)}]"
        for lo, hi in zip(summary["mean_low"], summary["mean_high"])
    ]
    shown["median"] = summary["median_difference"].map(_signed)
    shown["p"] = summary["wilcoxon_p"].map(_p)
    shown["diverged A/D"] = [f"{a}/{d}" for a, d in zip(summary["autoinit_diverged"], summary["default_diverged"])]
    return shown


def _divergence_text(table):
    counts = []
    for arm in ("autoinit", "default"):
        rows = table[table["arm"] == arm]
        if len(rows):
            counts.append(f"{arm} {int(rows['diverged'].fillna(False).astype(bool).sum())}/{len(rows)}")
    return "diverged arms: " + (", ".join(counts) if counts else "none trained")


def format_table(frame):
    """``frame`` (all strings) as aligned plain text: text columns left, numbers right."""
    columns = list(frame.columns)
    cells = [[str(value) for value in frame[column]] for column in columns]
    widths = [max([len(column)] + [len(value) for value in values]) for column, values in zip(columns, cells)]
    numeric = [all(_looks_numeric(value) for value in values) for values in cells]
    lines = []
    header = [c.ljust(w) if not n else c.rjust(w) for c, w, n in zip(columns, widths, numeric)]
    lines.append("  ".join(header).rstrip())
    for row in zip(*cells) if cells else []:
        parts = [v.rjust(w) if n else v.ljust(w) for v, w, n in zip(row, widths, numeric)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def markdown_table(frame):
    """``frame`` (all strings) as a GitHub Markdown table."""
    columns = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def report_markdown(table, comparison, summary, metric, mode, value, spec, files, out):
    """The report as Markdown (``report.md``), plots linked relative to ``out``."""
    lines = ["# Sweep report", "", _header(table, metric, mode, value, spec), ""]
    if spec is not None:
        lines += ["```", f"autoinit-nas sweep {_spec_flags(spec)}", "```", ""]
    if comparison.empty:
        lines += ["No candidate has both arms (run the sweep with `--init compare`).", "", _divergence_text(table), ""]
    else:
        overall = summary[summary["group"] == "all"].iloc[0]
        lines += ["## Summary", "", _overall_text(overall, metric, mode).replace("\n", "  \n"), ""]
        lines += [markdown_table(_summary_display(summary)), ""]
        lines += ["## Candidates", "", markdown_table(comparison_display(comparison, metric)), ""]
    plots = [name for name in ("paired_scatter.png", "metric_vs_depth.png", "divergence.png") if name in files]
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{name[:-4]}]({os.path.relpath(files[name], out)})" for name in plots]
        lines.append("")
    lines += ["## Files", ""] + [f"- `{name}`" for name in sorted(files)] + ["- `report.md`", ""]
    return "\n".join(lines)


def _spec_flags(spec):
    flags = [f"--space {spec.space}", f"--data {spec.data}", f"--engine {spec.engine}", f"--trials {spec.trials}",
             f"--epochs {spec.epochs}", f"--init {spec.init}", f"--seed {spec.seed}", f"--out {spec.out}"]
    if spec.config:
        flags.insert(0, f"--config {spec.config}")
    return " ".join(flags)


# Plots.


def draw_plots(table, comparison, out, metric, mode, value="best"):
    """Write the three PNGs into ``out``; returns {file name: path}."""
    from matplotlib.figure import Figure

    files = {}
    if not comparison.empty:
        figure = Figure(figsize=(5.6, 5.2))
        _paired_scatter(figure.add_subplot(), comparison, metric, mode)
        files["paired_scatter.png"] = _save(figure, out, "paired_scatter.png")
    figure = Figure(figsize=(7.0, 4.4))
    _metric_vs_depth(figure.add_subplot(), table, metric, value)
    files["metric_vs_depth.png"] = _save(figure, out, "metric_vs_depth.png")
    figure = Figure(figsize=(6.4, 4.0))
    _divergence(figure.add_subplot(), table)
    files["divergence.png"] = _save(figure, out, "divergence.png")
    return files


def _save(figure, out, name):
    path = os.path.join(out, name)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def _paired_scatter(axes, comparison, metric, mode):
    x = comparison[f"default_{metric}"].to_numpy(dtype=float)
    y = comparison[f"autoinit_{metric}"].to_numpy(dtype=float)
    finite = [v for v in list(x) + list(y) if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    pad = 0.04 * (high - low or 1.0)
    axes.plot([low - pad, high + pad], [low - pad, high + pad], color="0.6", linestyle="--", linewidth=1)
    colour_by = "hp_activation" if "hp_activation" in comparison and comparison["hp_activation"].nunique() > 1 else None
    groups = comparison.groupby(colour_by, dropna=False) if colour_by else [("candidates", comparison)]
    for label, group in groups:
        diverged = group["default_diverged"].astype(bool) | group["autoinit_diverged"].astype(bool)
        for mask, marker in ((~diverged, "o"), (diverged, "X")):
            part = group[mask]
            if len(part):
                axes.scatter(part[f"default_{metric}"], part[f"autoinit_{metric}"], marker=marker, s=36, alpha=0.85,
                             label=f"{label}" + (" (an arm diverged)" if marker == "X" else ""))
    better = "above" if mode == "max" else "below"
    axes.set_xlabel(f"default init: {metric}")
    axes.set_ylabel(f"AutoInit: {metric}")
    axes.set_title(f"Paired per candidate ({len(comparison)}); {better} the diagonal = AutoInit better", fontsize=9)
    axes.set_xlim(low - pad, high + pad)
    axes.set_ylim(low - pad, high + pad)
    axes.legend(fontsize=7, loc="best")


def _metric_vs_depth(axes, table, metric, value):
    from autoinit_nas.results import DEPTH_BUCKETS, depth_bucket

    column = f"{value}_{metric}"
    for arm in ("default", "autoinit"):
        rows = table[(table["arm"] == arm)]
        if column not in rows or rows.empty:
            continue
        depth = rows["depth"].astype(float)
        values = rows[column].astype(float)
        axes.scatter(depth, values, s=18, alpha=0.6, color=ARM_COLOURS[arm], label=arm)
        medians = []
        buckets = rows["depth"].map(lambda d: None if _missing(d) else depth_bucket(int(d)))
        for _, label in DEPTH_BUCKETS:
            part = rows[buckets == label]
            if len(part) and part[column].notna().any():
                medians.append((float(part["depth"].astype(float).median()), float(part[column].astype(float).median())))
        if len(medians) > 1:
            axes.plot(*zip(*medians), color=ARM_COLOURS[arm], linewidth=1.5, alpha=0.9)
    axes.set_xlabel("depth (kernel-bearing layers on the longest path)")
    axes.set_ylabel(f"{metric} ({value} epoch)")
    axes.set_title("Metric vs depth per init arm (lines: medians per depth bucket)", fontsize=9)
    axes.legend(fontsize=8)


def _divergence(axes, table):
    from autoinit_nas.results import DEPTH_BUCKETS, depth_bucket

    labels = [label for _, label in DEPTH_BUCKETS]
    arms = [arm for arm in ("autoinit", "default") if (table["arm"] == arm).any()]
    width = 0.8 / max(len(arms), 1)
    totals = []
    for index, arm in enumerate(arms):
        rows = table[table["arm"] == arm]
        buckets = rows["depth"].map(lambda d: None if _missing(d) else depth_bucket(int(d)))
        diverged = rows["diverged"].fillna(False).astype(bool)
        counts = [int(diverged[buckets == label].sum()) for label in labels]
        totals.append(f"{arm} {int(diverged.sum())}/{len(rows)}")
        positions = [i + (index - (len(arms) - 1) / 2) * width for i in range(len(labels))]
        axes.bar(positions, counts, width=width, color=ARM_COLOURS[arm], label=arm)
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


# Helpers.


def _spec(directory):
    try:
        from autoinit_nas.sweeps.state import read_spec

        return read_spec(directory)
    except Exception:  # noqa: BLE001 - a plain directory of records has no sweep.json
        return None


def _direction(metric):
    name = metric.lower()
    return "min" if ("loss" in name or "error" in name) else "max"


def _missing(value):
    try:
        return value is None or bool(value != value) or value is getattr(sys.modules.get("pandas"), "NA", object())
    except (TypeError, ValueError):
        return True


def _number(value):
    return "nan" if _missing(value) else f"{value:.3f}"


def _signed(value):
    return "nan" if _missing(value) else f"{value:+.3f}"


def _p(value):
    if _missing(value):
        return "n/a"
    return f"{value:.2g}" if value >= 0.001 else f"{value:.1e}"


def _cell(value):
    if _missing(value):
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _looks_numeric(text):
    try:
        float(text.replace("+", "", 1))
        return True
    except ValueError:
        return text in ("nan", "n/a", "-", "")


# Command line.

# What a bad directory or metric raises: reported as one line.
USAGE_ERRORS = (FileNotFoundError, ValueError)


def add_arguments(parser):
    """The ``report`` arguments."""
    parser.add_argument("directory", metavar="DIR", help="a sweep's --out directory (or any folder of trial records)")
    parser.add_argument("--out", metavar="DIR", help="where to write tables and plots (default DIR/report)")
    parser.add_argument("--metric", help="metric to compare (default: the sweep's objective, else val_accuracy)")
    parser.add_argument("--mode", choices=("max", "min"), help="max if higher is better (default: from the sweep)")
    parser.add_argument("--value", choices=("best", "final"), default="best",
                        help="each arm's best epoch (default) or its last epoch")
    parser.add_argument("--no-plots", action="store_true", help="tables only")


def run(args):
    """``autoinit-nas report DIR``: print the comparison and summary, write tables and plots.

    Raises ``USAGE_ERRORS`` (no such directory, no such metric), which the
    command line prints as one line.
    """
    report = build_report(args.directory, out=args.out, metric=args.metric, mode=args.mode,
                          value=args.value, plots=not args.no_plots)
    print(report.text)
    print()
    for name in sorted(report.files):
        print(f"wrote {report.files[name]}")
    return 0


def main(argv=None):
    """``python -m autoinit_nas.report DIR``: the same as ``autoinit-nas report DIR``."""
    from autoinit_nas.standalone import run_command

    return run_command("python -m autoinit_nas.report", add_arguments, run, USAGE_ERRORS, argv)


if __name__ == "__main__":
    sys.exit(main())
