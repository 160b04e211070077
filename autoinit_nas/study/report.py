"""A study's report: ``DIR/report/`` with its tables (CSV), report.md and plots.

Reads the finished trial records (``runner.finished_runs``) as the tables of
``table.study_tables`` (scores, outcomes, reference runs, proxies) and computes,
within each (space, dataset) cell and pooled over cells (``pooled``): ranking
fidelity against ``own`` and ``neutral`` reference runs with the noise ceiling
and the zero-cost proxies (``fidelity``), the replayed random, Hyperband and
ASHA searches (``replay``), each arm's test accuracy paired against ``he``,
``default`` and ``lsuv``, and the share of untrained ranked runs per arm
(``table.untrained_shares``); each also per stratum (``STRATA``). No cell is
singled out.
"""

import json
import os

import pandas as pd

from autoinit_nas.study import fidelity, plots, pooled, replay, table
from autoinit_nas.study.runner import finished_runs
from autoinit_nas.study.summary import interval, markdown, number, p_value, search_label

REPORT_FOLDER = "report"
CELL = ("space", "dataset")
ALL = pooled.ALL
STRATA = ("normalization", "batchnorm", "depth_bucket", "activation_family", "trains")
BASELINES = ("he", "default", "lsuv")
TIMING_FILE = "timing.json"
REPLAY_SAMPLES = 200
TABLES = ("scores", "outcomes", "reference", "proxies")
RESULTS = ("ranking", "ceiling", "search", "search_paired", "paired", "paired_summary", "untrained")


def build_report(spec, wall_seconds=None, samples=fidelity.SAMPLES):
    """Write ``<spec.out>/report/``; returns {file name: path} of what it wrote.

    Example:
        >>> from autoinit_nas.study.spec import load_spec
        >>> files = build_report(load_spec("study-quick", out="out/study-quick"))  # doctest: +SKIP
    """
    finished = finished_runs(spec.out, spec.arms, spec.epochs)
    tables = table.study_tables(finished, spec.arms, spec.epochs, spec.objective)
    if tables["scores"].empty:
        raise ValueError(f"No finished study runs under {spec.out}: run the study first.")
    return write_report(tables, spec, os.path.join(spec.out, REPORT_FOLDER), wall_seconds, samples)


def write_report(tables, spec, out, wall_seconds=None, samples=fidelity.SAMPLES):
    """Write the report of ``tables`` (``table.study_tables``' dict) into ``out``; {file name: path}."""
    os.makedirs(out, exist_ok=True)
    design = design_of(spec, tables, wall_seconds)
    # The replayed searches take minutes (about 14 for the quick study on 2 busy cores): say so up front.
    print(f"report: {design['candidates']} candidates in {design['cells']} cells; replaying random, Hyperband "
          "and ASHA searches per cell and stratum with bootstrap intervals (minutes)...", flush=True)
    results = statistics(tables, spec.arms, spec.epochs, design["budgets"], spec.ks, samples)
    files = {}
    for name, frame in [(name, tables[name]) for name in TABLES] + [(name, results[name]) for name in RESULTS]:
        files[f"{name}.csv"] = os.path.join(out, f"{name}.csv")
        frame.to_csv(files[f"{name}.csv"], index=False)
    files["design.json"] = os.path.join(out, "design.json")
    with open(files["design.json"], "w", encoding="utf-8") as stream:
        json.dump(design, stream, indent=1, sort_keys=True)
    files["rho_vs_budget.png"] = plots.rho_vs_budget(results["ranking"], results["ceiling"], spec.arms,
                                                     spec.epochs, out)
    files["regret.png"] = plots.regret_per_search(results["search"], spec.arms, out)
    files["report.md"] = os.path.join(out, "report.md")
    with open(files["report.md"], "w", encoding="utf-8") as stream:
        stream.write(report_markdown(tables, results, design, spec.arms, files, out))
    return files


def design_of(spec, tables, wall_seconds=None):
    """The design the report states (also ``design.json``): E, budgets, ks, seeds, BN recalibration, ..."""
    outcomes, reference = tables["outcomes"], tables["reference"]
    cells = tables["scores"][list(CELL)].drop_duplicates()
    if wall_seconds is None:
        wall_seconds = _recorded_wall_seconds(getattr(spec, "out", None))
    return {
        "epochs": int(spec.epochs), "budgets": sorted(int(b) for b in spec.budgets if b < spec.epochs)
        or sorted(int(b) for b in spec.budgets), "ks": [int(k) for k in spec.ks], "arms": list(spec.arms),
        "cells": len(cells), "candidates": int(tables["scores"][list(CELL) + ["candidate"]].drop_duplicates().shape[0]),
        "ranked_seeds": int(outcomes["seed"].nunique()), "reference_seeds": int(reference["seed"].nunique()),
        "shared_seeds": len(set(outcomes["seed"].dropna()) & set(reference["seed"].dropna())),
        "bn_recalibrate": bool(getattr(spec, "bn_recalibrate", False)),
        "test_fraction": getattr(spec, "test_fraction", None), "objective": spec.objective,
        "spaces": [entry["name"] for entry in spec.spaces], "datasets": [entry["name"] for entry in spec.datasets],
        "wall_minutes": None if not wall_seconds else round(wall_seconds / 60, 1),
    }


def write_timing(out, wall_seconds):
    """Record the training wall time in ``<out>/timing.json`` ({"train_minutes": ...}) for later reports."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, TIMING_FILE), "w", encoding="utf-8") as stream:
        json.dump({"train_minutes": round(wall_seconds / 60, 1)}, stream)


def _recorded_wall_seconds(out):
    """The training wall seconds ``write_timing`` recorded under ``out``; None if none."""
    path = os.path.join(out, TIMING_FILE) if out else None
    if not path or not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as stream:
        minutes = json.load(stream).get("train_minutes")
    return None if minutes is None else float(minutes) * 60


def statistics(tables, arms, epochs, budgets, ks, samples=fidelity.SAMPLES):
    """{name: DataFrame} of ``RESULTS`` from ``tables`` (see the module docstring)."""
    scores, outcomes, reference = tables["scores"], tables["outcomes"], tables["reference"]
    proxies = tables["proxies"] if len(tables["proxies"]) else None
    baselines = [b for b in BASELINES if b in arms]
    strata = [column for column in STRATA if column in scores.columns]
    ranking = pooled.pooled_ranking(scores, reference, budgets, proxies, CELL, strata, samples)
    ceiling = pooled.pooled_ceiling(outcomes, reference, CELL, scores, strata, samples)
    searches = replay.search_grid(budgets, ks, epochs)
    search, search_paired = replay.replay(scores, outcomes, searches, baselines, CELL, strata,
                                          samples=min(samples, REPLAY_SAMPLES))
    paired = pooled.paired_outcomes(outcomes, scores, baselines, CELL, strata)
    summary = pooled.paired_summaries(paired, baselines, CELL, strata, samples=samples)
    return {"ranking": ranking, "ceiling": ceiling, "search": search, "search_paired": search_paired,
            "paired": paired, "paired_summary": summary, "untrained": table.untrained_shares(outcomes, CELL)}


def _cell(row):
    return "pooled" if row["space"] == ALL else f"{row['space']} / {row['dataset']}"


def _header(tables, design, arms):
    seeds = (f"seeds: {design['ranked_seeds']} ranked-run seeds, {design['reference_seeds']} reference-run seeds, "
             f"{design['shared_seeds']} shared")
    lines = ["# Init study", "",
             f"{design['candidates']} candidates in {design['cells']} cells ({', '.join(design['spaces'])} on "
             f"{', '.join(design['datasets'])}) x {len(arms)} arms ({', '.join(arms)}); every candidate and arm "
             f"trains a ranked run and a reference run (its own seed) for E = {design['epochs']} epochs.",
             f"Budgets {design['budgets']}; searches with k in {design['ks']}; {seeds}; BN recalibration "
             f"{'on' if design['bn_recalibrate'] else 'off'}; test fraction {design['test_fraction']}; "
             f"score: {design['objective']} (validation split); every outcome is read on the test split."]
    if design["wall_minutes"]:
        lines.append(f"Wall time of the run that finished the study: {design['wall_minutes']} min.")
    return lines


def _accuracy_section(tables, results, arms):
    outcomes, reference, scores = tables["outcomes"], tables["reference"], tables["scores"]
    last = scores.sort_values("epoch").groupby(list(CELL) + ["candidate", "arm"]).tail(1)
    rows = [{"arm": arm, "runs": int((outcomes["arm"] == arm).sum()),
             "test accuracy (ranked)": number(outcomes.loc[outcomes["arm"] == arm, "test_accuracy"].mean()),
             "test accuracy (reference)": number(reference.loc[reference["arm"] == arm, "test_accuracy"].mean()),
             "diverged": f"{last.loc[last['arm'] == arm, 'diverged'].mean():.0%}",
             "init s (mean)": number(last.loc[last["arm"] == arm, "init_seconds"].mean()),
             "train s (mean)": number(last.loc[last["arm"] == arm, "train_seconds"].mean(), 1)} for arm in arms]
    summary = results["paired_summary"]
    shown = summary[summary["stratum"] == ALL]
    paired = [{"cell": _cell(r), "arm": r["arm"], "baseline": r["baseline"], "n": int(r["n"]),
               "win/tie/loss": f"{r['wins']}/{r['ties']}/{r['losses']}",
               "median diff [95% CI]": interval(r["median_difference"], r["ci_low"], r["ci_high"], signed=True),
               "Wilcoxon p": p_value(r["p_value"]), "Holm p": p_value(r["p_holm"])} for _, r in shown.iterrows()]
    return ["## Test accuracy", "", "Mean test accuracy at E per arm (all cells):", "", markdown(pd.DataFrame(rows)),
            "", f"Untrained: the share of candidates whose ranked-run test accuracy at E is within "
            f"{table.TRAIN_MARGIN} of chance, per cell and pooled over every candidate (stratum `trains` in the "
            "tables below separates candidates that train under every arm):", "",
            markdown(untrained_table(results["untrained"], arms)), "",
            f"Paired per candidate: the arm's ranked-run test accuracy minus the baseline's (a tie is |diff| <= "
            f"{pooled.TIE}); median with a 95% bootstrap interval; two-sided Wilcoxon signed-rank p; Holm over "
            "every row of paired_summary.csv (cells, pooled, strata). \"pooled\": every candidate of every cell.", "",
            markdown(pd.DataFrame(paired))]


def untrained_table(untrained, arms):
    """Rows per cell ("pooled" last), a column per arm: the share of untrained ranked runs, and n."""
    rows = []
    for (space, dataset), group in untrained.groupby(list(CELL), sort=False):
        shares = group.set_index("arm")
        row = {"cell": _cell({"space": space, "dataset": dataset})}
        row.update({arm: f"{shares.loc[arm, 'untrained']:.0%}" if arm in shares.index else "" for arm in arms})
        row["n"] = int(shares["n"].max())
        rows.append(row)
    return pd.DataFrame(rows)


def _rho_rows(frame, keys):
    def value(r, key):
        return _cell(r) if key == "cell" else (int(r[key]) if key == "cells" else r[key])

    return [dict({key: value(r, key) for key in keys},
                 **{"rho [95% CI]": interval(r["spearman"], r["ci_low"], r["ci_high"]), "n": int(r["n"])})
            for _, r in frame.iterrows()]


def _fidelity_section(results):
    ranking, ceiling = results["ranking"], results["ceiling"]
    overall = ranking[ranking["stratum"] == ALL]
    trained, zero = overall[overall["budget"] > 0], overall[overall["budget"] == 0]
    pooled_rows = trained[trained["space"] == ALL]
    return ["## Ranking fidelity", "",
            "Spearman rho of each arm's validation accuracy after b epochs against the test accuracy at E of the "
            "arm's own reference run (`own`), the mean over every arm's reference run (`neutral`) or the mean over "
            "every other arm's reference run (`others`: neutral without the arm's own run). Intervals: 95% "
            "percentile bootstrap over candidates; pooled rows average the cells' rho unweighted (each cell once; "
            f"only cells with >= {pooled.MIN_CELL_CANDIDATES} candidates, counted in `cells`), the interval from a "
            "stratified bootstrap (candidates resampled within each cell).", "", "### Pooled over cells", "",
            markdown(pd.DataFrame(_rho_rows(pooled_rows, ["arm", "budget", "reference", "cells"]))), "",
            "### Noise ceiling", "", "rho between a candidate's ranked run and its reference run, both at E on the "
            "test split: what no short budget can be expected to beat.", "",
            markdown(pd.DataFrame(_rho_rows(ceiling[ceiling["stratum"] == ALL], ["cell", "arm"]))), "",
            "### Zero-cost baselines (budget 0, against `neutral`)", "",
            markdown(pd.DataFrame(_rho_rows(zero[zero["reference"] == "neutral"], ["cell", "arm"]))), "",
            "### Per cell", "",
            markdown(pd.DataFrame(_rho_rows(trained[trained["space"] != ALL], ["cell", "arm", "budget", "reference"])))]


def _search_section(results):
    search = results["search"]
    search = search[(search["stratum"] == ALL) & (search["subsets"] > 0)]
    rows = [{"cell": _cell(r), "search": search_label(r), "arm": r["arm"],
             "test accuracy": number(r["mean_test_accuracy"]),
             "regret [95% CI]": interval(r["mean_regret"], r["ci_low"], r["ci_high"]),
             "common regret": number(r["mean_common_regret"]), "hit rate": number(r["hit_rate"], 2),
             "n": int(r["n"])} for _, r in search.iterrows()]
    paired = results["search_paired"]
    paired = paired[(paired["space"] == ALL) & (paired["stratum"] == ALL)]
    diffs = [{"search": search_label(r), "arm": r["arm"], "baseline": r["baseline"],
              "diff [95% CI]": interval(r["mean_diff"], r["ci_low"], r["ci_high"], signed=True),
              "p": p_value(r["p"]), "Holm p": p_value(r["p_holm"])} for _, r in paired.iterrows()]
    return ["## Replayed searches", "",
            "Random search (k candidates, the best after b epochs), keras-tuner Hyperband and Ray ASHA replayed on "
            "the recorded curves, every arm on the same candidate subsets and arrival orders; outcome: the pick's "
            "test accuracy at E; regret: the subset's best test accuracy under the arm minus the pick's; common "
            "regret: the subset's best test accuracy over every arm's ranked runs (one oracle for all arms) minus "
            "the pick's; hit rate: picks tying the arm's best. A cell with fewer candidates than k has no row.", "",
            markdown(pd.DataFrame(rows)), "",
            "Paired against the baselines, pooled over cells (mean of the cells' differences; Holm over every "
            "row of search_paired.csv):", "", markdown(pd.DataFrame(diffs))]


def _strata_section(results, design):
    ranking, summary = results["ranking"], results["paired_summary"]
    budget = min(design["budgets"])
    rho = ranking[(ranking["space"] == ALL) & (ranking["stratum"] != ALL) & (ranking["budget"] == budget)]
    paired = summary[(summary["space"] == ALL) & (summary["stratum"] != ALL)]
    rows = [{"stratum": r["stratum"], "arm": r["arm"], "baseline": r["baseline"], "n": int(r["n"]),
             "win/tie/loss": f"{r['wins']}/{r['ties']}/{r['losses']}",
             "median diff [95% CI]": interval(r["median_difference"], r["ci_low"], r["ci_high"], signed=True),
             "Holm p": p_value(r["p_holm"])} for _, r in paired.iterrows()]
    return ["## Strata", "", f"Rho at budget {budget}, pooled over the cells holding each stratum:", "",
            markdown(pd.DataFrame(_rho_rows(rho, ["stratum", "arm", "reference", "cells"]))), "",
            "Paired test accuracy per stratum (every candidate of the stratum):", "", markdown(pd.DataFrame(rows)),
            "", "Per cell and stratum: ranking.csv, ceiling.csv, search.csv, search_paired.csv, paired_summary.csv."]


def report_markdown(tables, results, design, arms, files, out):
    """The report's Markdown text."""
    figures = ["## Plots", ""] + [f"![{name}]({os.path.relpath(path, out)})" for name, path in files.items()
                                  if name.endswith(".png") and path]
    sections = [_header(tables, design, arms), _accuracy_section(tables, results, arms), _fidelity_section(results),
                _search_section(results), _strata_section(results, design), figures]
    return "\n".join(line for section in sections for line in section + [""]).rstrip() + "\n"
