"""A study's report: ``DIR/report/`` with report.md, ranking.csv, regret.csv, paired.csv and plots.

Reads the finished trial records (``runner.finished_runs``), turns them into
the long table (``table.long_table``) and computes everything with
``autoinit_nas.study.stats``: paired accuracy against "default" and "he",
evaluation fidelity per arm and budget, simulated search regret, and the
same split by space, dataset, depth bucket, activation and normalization.
"""

import os

import numpy as np

from autoinit_nas.study import stats as study_stats
from autoinit_nas.report import markdown_table
from autoinit_nas.study import plots
from autoinit_nas.study.runner import finished_runs
from autoinit_nas.study.table import long_table

REPORT_FOLDER = "report"
TIE = 0.005  # accuracy differences within half a point count as ties
SPLITS = ("space", "dataset", "depth_bucket", "activation", "normalization")
REFERENCES = ("default", "he")


def build_report(spec, wall_seconds=None, samples=study_stats.SAMPLES):
    """Write ``<spec.out>/report/``; returns {name: path} of what it wrote.

    Example:
        >>> from autoinit_nas.study.spec import load_spec
        >>> files = build_report(load_spec("study-quick", out="out/study-quick"))  # doctest: +SKIP
    """
    out = os.path.join(spec.out, REPORT_FOLDER)
    os.makedirs(out, exist_ok=True)
    table = long_table(finished_runs(spec.out, spec.arms, spec.epochs), spec.arms, spec.epochs, spec.objective)
    if table.empty:
        raise ValueError(f"No finished study runs under {spec.out}: run the study first.")
    stats_table = table.drop(columns=["init_seconds", "train_seconds"])
    budgets = [b for b in spec.budgets if b < spec.epochs] or list(spec.budgets)
    results = _statistics(stats_table, spec, budgets, samples)
    files = {}
    for name in ("ranking", "regret", "paired"):
        files[f"{name}.csv"] = os.path.join(out, f"{name}.csv")
        results[name].to_csv(files[f"{name}.csv"], index=False)
    table.to_csv(os.path.join(out, "scores.csv"), index=False)
    files.update(_plots(table, results, spec, out))
    text = report_markdown(table, results, spec, budgets, wall_seconds, files, out)
    files["report.md"] = os.path.join(out, "report.md")
    with open(files["report.md"], "w", encoding="utf-8") as stream:
        stream.write(text)
    return files


CELL = ["space", "dataset"]


def _with_mean_over_cells(frame, keys, columns):
    """``frame`` (rows per cell) plus rows space = dataset = "all": the mean of ``columns`` over the cells."""
    import pandas as pd

    if frame.empty:
        return frame
    pooled = frame.groupby(keys, sort=True)[columns].mean().reset_index()
    pooled["n"] = frame.groupby(keys, sort=True)["n"].sum().to_numpy()
    pooled["space"], pooled["dataset"] = "all", "all"
    return pd.concat([pooled, frame], ignore_index=True)[list(frame.columns)]


def _statistics(table, spec, budgets, samples):
    """Fidelity and regret within each (space, dataset) cell (a search never mixes them), then their mean."""
    references = [r for r in REFERENCES if r in spec.arms]
    paired = study_stats.paired(table, references=references, epochs=spec.epochs,
                                split_columns=list(SPLITS) + ["depth"])
    ranking = study_stats.ranking(table, budgets, epochs=spec.epochs, by=CELL, samples=samples)
    regret = study_stats.regret(table, budgets, ks=spec.ks, epochs=spec.epochs, by=CELL)
    results = {
        "ranking": _with_mean_over_cells(ranking, ["arm", "budget"], ["spearman"]),
        "regret": _with_mean_over_cells(regret, ["arm", "budget", "k"], ["mean_regret", "hit_rate"]),
        "paired": paired,
        "summaries": {ref: study_stats.paired_summary(paired, ref, tie=TIE, samples=samples) for ref in references},
        "splits": {},
    }
    baseline = "he" if "he" in spec.arms else spec.arms[0]
    results["ranking_vs"] = (baseline, study_stats.ranking_differences(
        table, budgets, baseline, epochs=spec.epochs, by=CELL, samples=samples))
    reference = "he" if "he" in references else (references[0] if references else None)
    for column in SPLITS:
        if reference is not None and paired[column].nunique() > 1:
            results["splits"][column] = (reference, study_stats.paired_summary(paired, reference, tie=TIE, by=[column],
                                                                               samples=samples))
    return results


def _plots(table, results, spec, out):
    files = {"rho_vs_budget.png": plots.rho_vs_budget(results["ranking"], spec.arms, out),
             "regret.png": plots.regret_per_arm(results["regret"], spec.arms, out),
             "accuracy_vs_depth.png": plots.accuracy_vs_depth(table, spec.arms, spec.epochs, out)}
    for reference in ("he", "default"):
        path = plots.paired_scatter(results["paired"], spec.arms, reference, out) if reference in spec.arms else None
        if path:
            files[os.path.basename(path)] = path
    return files


def _f(value, digits=3, signed=False):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _p(value):
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def summary_rows(summary, split=None):
    """Display rows of a ``paired_summary`` frame (strings)."""
    rows = []
    for _, row in summary.iterrows():
        shown = {split: row[split]} if split else {}
        shown.update({
            "arm": row["arm"], "n": int(row["n"]), "win/tie/loss": f"{row['wins']}/{row['ties']}/{row['losses']}",
            "median diff [95% CI]": f"{_f(row['median_difference'], signed=True)} "
                                    f"[{_f(row['ci_low'], signed=True)}, {_f(row['ci_high'], signed=True)}]",
            "Wilcoxon p": _p(row["p_value"]), "Holm p": _p(row["p_holm"]),
            "diverged": f"{row['divergence_rate']:.0%}",
        })
        rows.append(shown)
    return rows


def _markdown(rows):
    import pandas as pd

    return markdown_table(pd.DataFrame(rows)) if rows else "(none)"


def _accuracy_section(table, results, spec):
    final = table[table["epoch"] == spec.epochs]
    per_arm = []
    for arm in spec.arms:
        runs = final[final["arm"] == arm]
        per_arm.append({"arm": arm, "runs": len(runs), "mean accuracy": _f(runs["score"].mean()),
                        "median accuracy": _f(runs["score"].median()),
                        "diverged": f"{runs['diverged'].mean():.0%}",
                        "init s (mean)": _f(runs["init_seconds"].mean(), 3),
                        "train s (mean)": _f(runs["train_seconds"].mean(), 1)})
    lines = ["## Accuracy", "", f"Final validation accuracy after {spec.epochs} epochs, per arm "
             "(init s: the arm's own initialization time per run; 0 for default):", "", _markdown(per_arm)]
    for reference, summary in results["summaries"].items():
        lines += ["", f"Paired against `{reference}` (same candidate, seed and data order; a tie is "
                  f"|difference| <= {TIE}; median difference with a 95% bootstrap CI; two-sided Wilcoxon "
                  "signed-rank p, Holm-corrected across the arms):", "", _markdown(summary_rows(summary))]
    return lines


def _fidelity_section(results, spec):
    ranking = results["ranking"]
    rows = [{"space": r["space"], "dataset": r["dataset"], "arm": r["arm"], "budget": int(r["budget"]),
             "rho [95% CI]":
             f"{_f(r['spearman'])} [{_f(r['ci_low'])}, {_f(r['ci_high'])}]", "n": int(r["n"])}
            for _, r in ranking.iterrows()]
    baseline, differences = results["ranking_vs"]
    diff_rows = [{"space": r["space"], "dataset": r["dataset"], "arm": r["arm"], "budget": int(r["budget"]),
                  f"rho - rho({baseline}) [95% CI]":
                  f"{_f(r['difference'], signed=True)} [{_f(r['ci_low'], signed=True)}, "
                  f"{_f(r['ci_high'], signed=True)}]", "p": _p(r["p_value"]), "n": int(r["n"])}
                 for _, r in differences.iterrows()]
    return ["## Evaluation fidelity", "",
            f"Spearman rho between each arm's score after b epochs and the candidate's converged quality "
            f"(E = {spec.epochs} epochs). {study_stats.CONVERGED_QUALITY} 95% percentile bootstrap over "
            "candidates, within each space and dataset; rows \"all\" average the cells' rho (no interval).", "",
            _markdown(rows), "",
            f"Paired bootstrap between arms (the same resampled candidates for both): rho(arm) - rho({baseline}).",
            "", _markdown(diff_rows)]


def _search_section(results):
    rows = [{"space": r["space"], "dataset": r["dataset"], "arm": r["arm"], "budget": int(r["budget"]),
             "k": int(r["k"]),
             "mean regret [95% CI]": f"{_f(r['mean_regret'])} [{_f(r['ci_low'])}, {_f(r['ci_high'])}]",
             "hit rate [95% CI]": f"{_f(r['hit_rate'], 2)} [{_f(r['hit_ci_low'], 2)}, {_f(r['hit_ci_high'], 2)}]",
             "n": int(r["n"])} for _, r in results["regret"].iterrows()]
    return ["## Search outcome", "",
            "Simulated budget-limited searches: draw k candidates (2,000 times), pick the best by the arm's "
            "score at budget b, regret = best converged quality among the k minus the pick's (converged "
            "quality as above); hit rate = share of searches whose pick is the best of the k. Intervals "
            "resample the candidate pool. Searches stay within one space and dataset; rows \"all\" average the "
            "cells. k larger than the pool gives n/a.", "", _markdown(rows)]


def _splits_section(results):
    lines = ["## Splits", ""]
    for column, (reference, summary) in results["splits"].items():
        lines += [f"### By {column.replace('_', ' ')} (paired against `{reference}`)", "",
                  _markdown(summary_rows(summary, split=column)), ""]
    return lines


def report_markdown(table, results, spec, budgets, wall_seconds, files, out):
    """The report's Markdown text."""
    candidates = table["candidate"].nunique()
    header = ["# Init study", "",
              f"{candidates} candidates ({', '.join(s['name'] for s in spec.spaces)} on "
              f"{', '.join(d['name'] for d in spec.datasets)}) x {len(spec.arms)} arms "
              f"({', '.join(spec.arms)}), {spec.epochs} epochs each, batch {spec.batch_size}; "
              f"short budgets {budgets}; score: {spec.objective}. Diverged runs score chance accuracy "
              "from the epoch they stopped."]
    if wall_seconds:
        header.append(f"Wall time of the run that finished the study: {wall_seconds / 60:.1f} min.")
    figures = ["## Plots", ""] + [f"![{name}]({os.path.relpath(path, out)})" for name, path in files.items()
                                  if name.endswith(".png")]
    lines = header + [""] + _accuracy_section(table, results, spec) + [""] + _fidelity_section(results, spec)
    lines += [""] + _search_section(results) + [""] + _splits_section(results) + figures
    return "\n".join(lines) + "\n"
