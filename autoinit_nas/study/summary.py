"""The README's study tables, rendered from a study's committed report CSVs (``python -m autoinit_nas.study.summary``).

``readme_tables(folders, ablation=None)`` reads the CSVs ``build_report`` writes
(``ranking.csv``, ``ceiling.csv``, ``search_paired.csv``, ``design.json`` and,
when present, ``untrained.csv``; a folder holding copies of them, e.g. under
``docs/study/``) and returns Markdown: per folder, (a) pooled rho per arm and
budget against ``own``, ``neutral`` and ``others`` references with the noise
ceiling, and the zero-cost proxies; (b) the replayed searches' paired
test-accuracy differences against ``he``, ``default`` and ``lsuv``; (c) rho per cell and
(d) pooled rho per stratum (``STRATA``), both against ``own`` and ``neutral``
(per cell also ``others``) at the smallest and the largest budget; (e) the
share of untrained ranked runs per arm and cell; and with ``ablation`` (a study
run with ``bn_recalibrate``) (f) rho at the smallest budget per shared cell,
without and with BN recalibration (pooled too: over the same cells, or the
main study's ``normalization=every`` stratum when the cells differ). The text
opens with the command that makes it, so ``expected_block`` can check a README against
the CSVs: the README keeps it between ``BEGIN`` and ``END``.

Example:
    >>> print(readme_tables("docs/study/study-quick"))  # doctest: +SKIP
    >>> interval(0.5, 0.25, 0.75), interval(0.01, -0.02, 0.04, signed=True)
    ('0.500 [0.250, 0.750]', '+0.010 [-0.020, +0.040]')
"""

import argparse
import json
import math
import os
import shlex

import pandas as pd

BEGIN = "<!-- study-tables:begin -->"
END = "<!-- study-tables:end -->"
COMMAND = "python -m autoinit_nas.study.summary"
ALL = "all"
STRATA = ("normalization", "batchnorm", "depth_bucket", "activation_family", "trains")
REFERENCES = ("own", "neutral", "others")
BASELINES = ("he", "default", "lsuv")
NORMALIZED = "normalization=every"


def number(value, digits=3, signed=False):
    """``value`` with ``digits`` decimals ("+" shown when ``signed``); "n/a" for NaN or None."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def p_value(value):
    """A p-value: three decimals, or scientific notation below 0.001; "0" as is; "n/a" for NaN."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def interval(value, low, high, digits=3, signed=False):
    """"value [low, high]" (see ``number``); "n/a" when ``value`` is NaN."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{number(value, digits, signed)} [{number(low, digits, signed)}, {number(high, digits, signed)}]"


def search_label(row):
    """A replayed search in words: "random b=1 k=8", "hyperband f=3 (k=22)", "asha f=2 k=8"."""
    if row["search"] == "random":
        return f"random b={int(row['budget'])} k={int(row['k'])}"
    if row["search"] == "hyperband":
        return f"hyperband f={int(row['factor'])} (k={int(row['k'])})"
    return f"asha f={int(row['factor'])} k={int(row['k'])}"


def markdown(frame):
    """``frame`` as a GitHub Markdown table (cells as given); "(none)" when empty."""
    if frame.empty:
        return "(none)"
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines)


def _read(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`{folder}` has no {name}: pass a study's report folder (or a copy of its CSVs). "
                                f"Received: folder={folder!r}")
    return pd.read_csv(path, keep_default_na=False, na_values=["", "nan", "NaN"])


def _arms(frame, design):
    order = list(design.get("arms") or [])
    present = list(dict.fromkeys(frame["arm"]))
    return [arm for arm in order if arm in present] + sorted(arm for arm in present if arm not in order)


def _design(folder):
    path = os.path.join(folder, "design.json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


def _design_line(design):
    if not design:
        return ""
    parts = [f"E = {design['epochs']} epochs", f"budgets {', '.join(map(str, design['budgets']))}",
             f"k {', '.join(map(str, design['ks']))}", f"{design.get('candidates', '?')} candidates in "
             f"{design.get('cells', '?')} cells", f"BN recalibration {'on' if design.get('bn_recalibrate') else 'off'}",
             f"test fraction {design.get('test_fraction')}"]
    return "; ".join(parts) + "."


def _pooled(frame, stratum=ALL):
    return frame[(frame["space"] == ALL) & (frame["dataset"] == ALL) & (frame["stratum"] == stratum)]


def _short_budget(ranking):
    budgets = sorted(b for b in ranking["budget"].unique() if b > 0)
    return int(budgets[0]) if budgets else None


def _fidelity_table(ranking, ceiling, design):
    """(a): pooled rho per arm, one column per budget and reference, then the arm's noise ceiling."""
    pooled = _pooled(ranking)
    trained = pooled[pooled["budget"] > 0]
    ceilings = _pooled(ceiling).set_index("arm") if len(ceiling) else pd.DataFrame()
    budgets = sorted(int(b) for b in trained["budget"].unique())
    references = [reference for reference in REFERENCES if reference in set(trained["reference"])]
    rows = []
    for arm in _arms(trained, design):
        cells = trained[trained["arm"] == arm].set_index(["budget", "reference"])
        row = {"arm": arm}
        for budget in budgets:
            for reference in references:
                found = cells.loc[(budget, reference)] if (budget, reference) in cells.index else None
                row[f"b={budget} {reference}"] = "n/a" if found is None else interval(
                    found["spearman"], found["ci_low"], found["ci_high"])
        found = ceilings.loc[arm] if arm in ceilings.index else None
        row["noise ceiling"] = "n/a" if found is None else interval(found["spearman"], found["ci_low"],
                                                                    found["ci_high"])
        rows.append(row)
    proxies = pooled[pooled["budget"] == 0]
    zero = [{"proxy": r["arm"], "rho vs neutral": interval(r["spearman"], r["ci_low"], r["ci_high"]), "n": int(r["n"])}
            for _, r in proxies[proxies["reference"] == "neutral"].iterrows()]
    return pd.DataFrame(rows), pd.DataFrame(zero)


def _search_table(paired, design):
    """(b): pooled paired test-accuracy difference of each arm's pick against each baseline's, per search."""
    pooled = _pooled(paired)
    baselines = [b for b in BASELINES if b in set(pooled["baseline"])]
    rows = []
    for _, group in pooled.groupby(["search", "factor", "budget", "k"], sort=False, dropna=False):
        for arm in _arms(group, design):
            row = {"search": search_label(group.iloc[0]), "arm": arm}
            for baseline in baselines:
                found = group[(group["arm"] == arm) & (group["baseline"] == baseline)]
                first = found.iloc[0] if len(found) else None
                row[f"vs {baseline}"] = "" if first is None else interval(
                    first["mean_diff"], first["ci_low"], first["ci_high"], signed=True)
                row[f"Holm p ({baseline})"] = "" if first is None else p_value(first["p_holm"])
            rows.append(row)
    return pd.DataFrame(rows)


def _budgets(ranking):
    """The smallest and the largest trained budget (one if they agree)."""
    budgets = sorted(int(b) for b in ranking["budget"].unique() if b > 0)
    return sorted({budgets[0], budgets[-1]}) if budgets else []


def _per_cell_table(ranking, design):
    """(c): rho per cell (stratum "all") at the smallest and largest budget, a row per budget and reference
    (``own``, ``neutral``, ``others``), one column per arm."""
    rows = ranking[(ranking["stratum"] == ALL) & ranking["budget"].isin(_budgets(ranking))
                   & ranking["reference"].isin(REFERENCES) & (ranking["space"] != ALL)]
    return _wide(rows, ["space", "dataset"], design)


def _strata_table(ranking, design):
    """(d): pooled rho per stratum of ``STRATA`` against ``own`` and ``neutral`` at the smallest and largest
    budget, a row per stratum, budget and reference, one column per arm."""
    rows = ranking[(ranking["space"] == ALL) & ranking["budget"].isin(_budgets(ranking))
                   & ranking["reference"].isin(("own", "neutral"))
                   & ranking["stratum"].str.startswith(tuple(f"{s}=" for s in STRATA))]
    rows = rows.assign(_order=[STRATA.index(s.split("=", 1)[0]) for s in rows["stratum"]])
    return _wide(rows, ["_order", "stratum"], design).drop(columns="_order", errors="ignore")


def _wide(rows, keys, design):
    """A row per ``keys``, budget and reference (in ``REFERENCES`` order), a column per arm, then n."""
    rows = rows.assign(_reference=[REFERENCES.index(r) for r in rows["reference"]])
    table = []
    for key, group in rows.groupby(keys + ["budget", "_reference"], sort=True):
        row = dict(zip(keys, key[:len(keys)]), budget=int(key[-2]), reference=REFERENCES[key[-1]])
        for arm in _arms(rows, design):
            found = group[group["arm"] == arm]
            row[arm] = "" if found.empty else interval(*found.iloc[0][["spearman", "ci_low", "ci_high"]])
        row["n"] = int(group["n"].max())
        table.append(row)
    return pd.DataFrame(table)


def _untrained_table(untrained, design):
    """(e): the share of untrained ranked runs per cell ("pooled" last), one column per arm."""
    table = []
    for (space, dataset), group in untrained.groupby(["space", "dataset"], sort=False):
        shares = group.set_index("arm")
        row = {"cell": "pooled" if space == ALL else f"{space} / {dataset}"}
        row.update({arm: f"{shares.loc[arm, 'untrained']:.0%}" if arm in shares.index else ""
                    for arm in _arms(untrained, design)})
        row["n"] = int(shares["n"].max())
        table.append(row)
    return pd.DataFrame(table)


def _ablation_table(ranking, other, budget, design):
    """(f): rho at ``budget`` per shared cell and arm, without and with, then a pooled row: both studies'
    pooled rho when their cells agree, else the main study's pooled ``NORMALIZED`` stratum (the normalized
    space the ablation runs) against the ablation's pooled rho, labelled "pooled (normalization=every)"."""
    def pick(frame, stratum=ALL):
        rows = frame[(frame["stratum"] == stratum) & (frame["budget"] == budget)]
        return rows.set_index(["space", "dataset", "arm", "reference"])

    without, with_ = pick(ranking), pick(other)
    cells = lambda frame: {k[:2] for k in frame.index if k[0] != ALL}  # noqa: E731
    shared = [(space, space, dataset, without) for space, dataset in sorted(cells(without) & cells(with_))]
    if cells(without) == cells(with_):
        shared.append((ALL, ALL, ALL, without))
    elif len(pick(ranking, NORMALIZED)):
        shared.append((f"pooled ({NORMALIZED})", ALL, ALL, pick(ranking, NORMALIZED)))
    references = [r for r in REFERENCES if r in set(without.index.get_level_values("reference"))]
    rows = []
    for label, space, dataset, before in shared:
        for arm in _arms(ranking[ranking["budget"] == budget], design):
            row = {"space": label, "dataset": dataset, "arm": arm}
            for reference in references:
                for name, frame in (("without", before), ("with", with_)):
                    key = (space, dataset, arm, reference)
                    row[f"{reference}, {name}"] = interval(*frame.loc[key][["spearman", "ci_low", "ci_high"]]) \
                        if key in frame.index else "n/a"
            rows.append(row)
    return pd.DataFrame(rows)


def _folder_section(folder, name):
    design = _design(folder)
    ranking, ceiling = _read(folder, "ranking.csv"), _read(folder, "ceiling.csv")
    fidelity, zero = _fidelity_table(ranking, ceiling, design)
    budgets = " and ".join(map(str, _budgets(ranking)))
    lines = [f"#### {name}", ""] + ([_design_line(design), ""] if design else [])
    lines += ["Ranking fidelity pooled over cells: unweighted mean over cells (each with >= 8 candidates) of the "
              "Spearman rho of the b-epoch validation score against the arm's own reference run (`own`), the mean "
              "over all arms' reference runs (`neutral`) and over the other arms' (`others`), test split; 95% "
              "stratified bootstrap interval. Noise ceiling: rho between two runs of each candidate at E.", "",
              markdown(fidelity), "", "Zero-cost proxies (budget 0):", "", markdown(zero), "",
              "Replayed searches, pooled over cells: test accuracy at E of the arm's pick minus the baseline's "
              "(same candidate subsets), 95% bootstrap interval; p from the bootstrap standard error (normal "
              "approximation), Holm over every paired row.", "",
              markdown(_search_table(_read(folder, "search_paired.csv"), design)), "",
              f"Rho per cell at budgets {budgets}:", "", markdown(_per_cell_table(ranking, design)),
              "", f"Rho per stratum at budgets {budgets}, pooled over cells:", "",
              markdown(_strata_table(ranking, design))]
    if os.path.exists(os.path.join(folder, "untrained.csv")):
        lines += ["", "Untrained: share of ranked runs whose test accuracy at E is within 0.1 of chance:", "",
                  markdown(_untrained_table(_read(folder, "untrained.csv"), design))]
    return lines, ranking, _short_budget(ranking), design


def readme_tables(folders, ablation=None):
    """The README's study tables (Markdown) from report CSV ``folders`` (a path or a list); deterministic.

    ``ablation``: a report folder of the same study run with BN recalibration,
    compared with the first folder on their shared cells.

    Example:
        >>> text = readme_tables(["docs/study/study-quick"])  # doctest: +SKIP
    """
    folders = [folders] if isinstance(folders, (str, os.PathLike)) else list(folders)
    if not folders:
        raise ValueError("`folders` must name at least one report folder. Received: folders=[]")
    lines = [f"<!-- {command_line(folders, ablation)} -->", ""]
    first = None
    for folder in folders:
        section, ranking, budget, design = _folder_section(folder, _name(folder))
        first = first or (ranking, budget, design)
        lines += section + [""]
    if ablation is not None:
        ranking, budget, design = first
        lines += [f"#### BN recalibration ({_name(folders[0])} without, {_name(ablation)} with)", "",
                  f"Rho at budget {budget} per cell both studies share, then pooled:", "",
                  markdown(_ablation_table(ranking, _read(ablation, "ranking.csv"), budget, design)), ""]
    return "\n".join(lines).rstrip() + "\n"


def _name(folder):
    return os.path.basename(os.path.normpath(os.fspath(folder)))


def command_line(folders, ablation=None):
    """The command that prints ``readme_tables(folders, ablation)``."""
    words = [os.fspath(f) for f in folders] + (["--ablation", os.fspath(ablation)] if ablation else [])
    return " ".join([COMMAND] + [shlex.quote(word) for word in words])


def readme_block(readme_text):
    """The text between ``BEGIN`` and ``END`` in a README, stripped; raises ValueError without them."""
    if BEGIN not in readme_text or END not in readme_text:
        raise ValueError(f"The README has no {BEGIN} ... {END} block.")
    return readme_text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def expected_block(readme_text, root="."):
    """What the README's block should be: ``readme_tables`` rerun with the command its first line records.

    Folders in that command are relative to ``root`` (the repository); the
    result is stripped, like ``readme_block``.
    """
    first = readme_block(readme_text).splitlines()[0]
    if not (first.startswith(f"<!-- {COMMAND} ") and first.endswith(" -->")):
        raise ValueError(f"The study-tables block must open with `<!-- {COMMAND} ... -->`. Received: {first!r}")
    args = _parser().parse_args(shlex.split(first[len(f"<!-- {COMMAND} "):-len(" -->")]))
    text = readme_tables([os.path.join(root, f) for f in args.folders],
                         os.path.join(root, args.ablation) if args.ablation else None)
    return "\n".join([first] + text.splitlines()[1:]).strip()


def _parser():
    parser = argparse.ArgumentParser(prog=COMMAND, description="Print the README's study tables.")
    parser.add_argument("folders", nargs="+", help="report folders (their CSVs), e.g. docs/study/study-quick")
    parser.add_argument("--ablation", help="the report folder of the BN-recalibration ablation")
    return parser


def main(argv=None):
    """``python -m autoinit_nas.study.summary FOLDER [FOLDER ...] [--ablation FOLDER]``."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        text = readme_tables(args.folders, args.ablation)
    except FileNotFoundError as error:
        parser.error(str(error))
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
