"""Reports: tables (CSV, Parquet, Markdown) and plots of a sweep directory, every arm against a baseline arm.

``build_report(directory)`` reads every trial under ``directory`` (a sweep's
``--out``, a keras-tuner project or a Ray experiment) with
``autoinit_nas.results``, and writes into ``directory/report/``:

```
trials.csv, trials.parquet    one row per trial and arm (trials_table)
comparison.csv                one row per candidate and arm: arm, baseline, both values, difference (compare_inits)
summary.csv                   per arm: wins/ties/losses, mean/median difference with 95% bootstrap CIs, Wilcoxon
                              and Holm p; overall, then per depth bucket and varying hyperparameter ("group")
report.md                     all of it as Markdown, with the plots
paired_scatter.png            baseline (x) vs each arm (y) per candidate, above the diagonal = the arm better
metric_vs_depth.png           the metric against depth, one colour per arm, bucket medians joined
divergence.png                diverged arms per depth bucket, per arm
winners.csv                   per-arm searches only: each search's winner, retrained and scored on the test split
```

The baseline arm is ``default`` when the sweep trained it, else the table's first arm
(``--baseline he`` picks another). Plots use matplotlib's Agg canvas (no display;
``autoinit_nas.report_plots``). Command line: ``autoinit-nas report DIR [--baseline ARM]``.
"""

import dataclasses
import os
import sys

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


def build_report(directory, out=None, metric=None, mode=None, value="best", plots=True, baseline=None):
    """Write the tables and plots of the sweep in ``directory``; returns a ``Report``.

    Args:
        directory: a sweep ``--out`` directory (or any directory holding trial records).
        out: where to write (default ``directory/report``).
        metric: the metric to compare (default: the sweep's objective, else val_accuracy).
        mode: "max" or "min" (default: the sweep's direction, else from the name).
        value: "best" (each arm's best epoch) or "final" (last epoch).
        plots: draw the PNGs.
        baseline: the arm the others are compared with (default: "default" when trained, else the first arm).

    Raises:
        FileNotFoundError: ``directory`` does not exist.
        ValueError: no trials found, the metric or the baseline arm is not in the table.
    """
    from autoinit_nas import results
    from autoinit_nas.report_plots import draw_plots

    directory = os.fspath(directory)
    spec = _spec(directory)
    if metric is None:
        metric = spec.objective if spec is not None else "val_accuracy"
    if mode is None:
        mode = spec.direction if spec is not None and metric == spec.objective else _direction(metric)
    table = results.trials_table(directory)
    if table.empty:
        raise ValueError(f"No trials under '{directory}': nothing to report. Run a sweep there first.")
    comparison = results.compare_inits(table, metric=metric, mode=mode, value=value, baseline=baseline)
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
    markdown += winners_section(directory, out, files)
    files["report.md"] = os.path.join(out, "report.md")
    with open(files["report.md"], "w", encoding="utf-8") as stream:
        stream.write(markdown)
    return Report(directory=out, files=files, text=text, table=table, comparison=comparison, summary=summary)


def winners_section(directory, out, files):
    """Write ``winners.csv`` of per-arm searches (if ``directory`` ran them) and return its Markdown section ("" if not).

    One row per arm: the search's winner (best trial by the validation
    objective the search selected on), retrained for ``epochs`` and scored on
    the held-out test split.
    """
    import pandas as pd

    from autoinit_nas.sweeps import winners

    rows = winners.read_winners(directory)
    if not rows:
        return ""
    frame = pd.DataFrame(rows)
    columns = list(winners.COLUMNS) + [name for name in ("seed", "retrained_val_score") if name in frame]
    files["winners.csv"] = os.path.join(out, "winners.csv")
    frame[columns].to_csv(files["winners.csv"], index=False)
    shown = frame[list(winners.COLUMNS)].astype(object).apply(lambda column: column.map(_cell))
    return "\n".join([
        "## Per-arm searches", "",
        "One search per arm from the same seed; each winner (best trial by the validation objective the search "
        "selected on) retrained and scored on a held-out test split that no search saw. "
        "**One search is one sample**: this shows what one search per arm found, not how the arms compare on "
        "average; rerun with other seeds before drawing conclusions.", "",
        markdown_table(shown), "", "- `winners.csv`", "",
    ])


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


def summary_line(table, metric="val_accuracy", mode="max", value="best", baseline=None):
    """One line per arm against the baseline: wins/ties/losses, mean difference and interval, p, divergences.

    Example:
        >>> import pandas as pd
        >>> table = pd.DataFrame({"architecture_id": ["a", "a"], "arm": ["he", "lecun"], "trial_id": "0",
        ...                       "best_val_accuracy": [0.5, 0.6]})
        >>> summary_line(table).split(":")[0]
        'lecun vs he on val_accuracy (1 candidates)'
    """
    from autoinit_nas import results

    try:
        comparison = results.compare_inits(table, metric=metric, mode=mode, value=value, baseline=baseline)
    except ValueError as error:
        return f"no comparison: {error}"
    if comparison.empty:
        return "no comparison: no candidate has two arms"
    lines = []
    for _, row in results.summarize(comparison).iterrows():
        lines.append(
            f"{row.arm} vs {row.baseline} on {metric} ({row.pairs} candidates): {row.wins} better, {row.ties} tied, "
            f"{row.losses} worse; mean difference {_signed(row.mean_difference)} "
            f"[{_signed(row.mean_low)}, {_signed(row.mean_high)}], Wilcoxon p={_p(row.wilcoxon_p)}"
            + (f", Holm p={_p(row.p_holm)}" if len(comparison.attrs["arms"]) > 1 else "")
            + f"; diverged: {row.arm} {row.arm_diverged}, {row.baseline} {row.baseline_diverged}"
        )
    return "\n".join(lines)


# Text.


def comparison_columns(comparison, metric):
    """Columns of the printed comparison table: arm (when several), varying hyperparameters, depth, values."""
    hp = [c for c in comparison if c.startswith("hp_") and c != "hp_depth" and comparison[c].nunique(dropna=True) > 1]
    arm = ["arm"] if comparison["arm"].nunique() > 1 else []
    return arm + ["depth"] + hp + ["baseline_value", "arm_value", "difference", "diverged"]


def comparison_display(comparison, metric):
    """The comparison as strings, ready to print: one row per candidate and arm.

    The value columns are named after the arms ("default", "autoinit"), or
    after the baseline and "value" when several arms share the table.
    """
    import pandas as pd

    shown = pd.DataFrame(index=comparison.index)
    several = comparison["arm"].nunique() > 1
    names = {"baseline_value": comparison["baseline"].iloc[0] if len(comparison) else "baseline",
             "arm_value": "value" if several or comparison.empty else comparison["arm"].iloc[0]}
    for column in comparison_columns(comparison, metric):
        if column == "diverged":
            shown["diverged"] = [
                ",".join(arm for arm, flag in ((row.arm, row.arm_diverged), (row.baseline, row.baseline_diverged))
                         if flag) or "-"
                for row in comparison.itertuples()
            ]
        elif column == "difference":
            shown[column] = comparison[column].map(_signed)
        elif column in names:
            shown[names[column]] = comparison[column].map(_number)
        else:
            shown[column.removeprefix("hp_")] = comparison[column].map(_cell)
    return shown


def report_text(table, comparison, summary, metric, mode, value, spec=None):
    """What ``autoinit-nas report`` prints: header, comparison table, summaries."""
    lines = [_header(table, metric, mode, value, spec)]
    if comparison.empty:
        lines.append("No candidate has both arms (run the sweep with --init compare or --arms to pair them).")
        lines.append(_divergence_text(table))
        return "\n".join(lines)
    lines += ["", format_table(comparison_display(comparison, metric)), ""]
    overall = summary[summary["group"] == "all"]
    lines.append("\n\n".join(_overall_text(row, metric, mode) for _, row in overall.iterrows()))
    grouped = summary[summary["group"] != "all"]
    if len(grouped):
        lines += ["", f"by group (difference = arm - {comparison.attrs['baseline']}, positive = the arm better):"]
        lines.append(format_table(_summary_display(grouped)))
    notes = [note for note in overall["note"] if note]
    if any(note for note in grouped["note"]):
        notes.append("per-group notes (n<2, zero differences) in summary.csv")
    if comparison.attrs.get("unpaired"):
        notes.append(f"{comparison.attrs['unpaired']} candidate(s) lack the baseline or any other arm and are left out")
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
    arm, baseline = row.arm, row.baseline
    holm = "" if _missing(row.p_holm) or row.p_holm == row.wilcoxon_p else f" (Holm over the arms: {_p(row.p_holm)})"
    return (
        f"{arm} better on {row.wins}, tied on {row.ties}, worse on {row.losses} of {row.n} candidates "
        f"against {baseline}.\n"
        f"difference in {metric} ({arm} - {baseline}{', sign flipped: lower is better' if mode == 'min' else ''}): "
        f"mean {_signed(row.mean_difference)} (95% bootstrap CI {_signed(row.mean_low)} to {_signed(row.mean_high)}), "
        f"median {_signed(row.median_difference)} (CI {_signed(row.median_low)} to {_signed(row.median_high)})\n"
        f"Wilcoxon signed-rank p = {_p(row.wilcoxon_p)}{holm}; diverged arms: {arm} {row.arm_diverged}, "
        f"{baseline} {row.baseline_diverged}"
    )


def _summary_display(summary):
    import pandas as pd

    shown = pd.DataFrame(index=summary.index)
    if summary["arm"].nunique() > 1:
        shown["arm"] = summary["arm"]
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
    shown["Holm p"] = summary["p_holm"].map(_p)
    shown["diverged arm/baseline"] = [f"{a}/{b}" for a, b in zip(summary["arm_diverged"], summary["baseline_diverged"])]
    return shown


def _divergence_text(table):
    counts = []
    for arm in (name for name in dict.fromkeys(table["arm"]) if isinstance(name, str)):
        rows = table[table["arm"] == arm]
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
        lines += ["No candidate has both arms (run the sweep with `--init compare` or `--arms`).", "",
                  _divergence_text(table), ""]
    else:
        lines += ["## Summary", ""]
        for _, overall in summary[summary["group"] == "all"].iterrows():
            lines += [_overall_text(overall, metric, mode).replace("\n", "  \n"), ""]
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
    parser.add_argument("--baseline", metavar="ARM",
                        help="the arm every other arm is compared with (default: default when trained, else the first)")
    parser.add_argument("--no-plots", action="store_true", help="tables only")


def run(args):
    """``autoinit-nas report DIR``: print the comparison and summary, write tables and plots.

    Raises ``USAGE_ERRORS`` (no such directory, no such metric), which the
    command line prints as one line.
    """
    report = build_report(args.directory, out=args.out, metric=args.metric, mode=args.mode,
                          value=args.value, plots=not args.no_plots, baseline=args.baseline)
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
