"""The README's study tables: known rows from synthetic report CSVs; the README against the committed CSVs."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from autoinit_nas.study import summary

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "study" / "study-quick"


def _ranking_rows(shift=0.0):
    rows = []
    for space, dataset in (("all", "all"), ("h", "d1"), ("p", "d1")):
        for arm, base in (("he", 0.4), ("autoinit", 0.6)):
            for budget in (1, 2):
                for reference, offset in (("own", 0.0), ("neutral", -0.1)):
                    rho = base + offset + 0.1 * (budget - 1) + shift + (0.05 if space == "p" else 0.0)
                    rows.append((space, dataset, "all", arm, budget, reference, rho, rho - 0.1, rho + 0.1, 20))
        if space == "all":
            rows.append((space, dataset, "all", "he", 1, "others", 0.2, 0.1, 0.3, 40))
            rows.append((space, dataset, "all", "params", 0, "neutral", 0.25, 0.1, 0.4, 40))
            rows.append((space, dataset, "normalization=none", "he", 2, "neutral", 0.31, 0.21, 0.41, 10))
            rows.append((space, dataset, "trains=every arm", "he", 1, "own", 0.5, 0.4, 0.6, 30))
            rows.append((space, dataset, "trains=every arm", "he", 1, "others", 0.55, 0.4, 0.6, 30))
            rows.append((space, dataset, "normalization=none", "he", 1, "own", 0.3, 0.2, 0.4, 10))
            rows.append((space, dataset, "normalization=none", "autoinit", 1, "own", 0.35, 0.25, 0.45, 10))
            rows.append((space, dataset, "activation_family=saturating", "he", 1, "own", 0.1, -0.2, 0.4, 8))
            rows.append((space, dataset, "depth_bucket=1-5", "he", 1, "own", 0.9, 0.8, 1.0, 8))
    return pd.DataFrame(rows, columns=["space", "dataset", "stratum", "arm", "budget", "reference", "spearman",
                                       "ci_low", "ci_high", "n"])


def write_folder(folder, shift=0.0):
    """A report folder's CSVs with round numbers (pooled rho of he at b=1 own: 0.4 + shift)."""
    os.makedirs(folder, exist_ok=True)
    _ranking_rows(shift).to_csv(os.path.join(folder, "ranking.csv"), index=False)
    ceiling = [("all", "all", "all", "he", 0.8, 0.7, 0.9, 40), ("all", "all", "all", "autoinit", 0.85, 0.75, 0.95, 40)]
    pd.DataFrame(ceiling, columns=["space", "dataset", "stratum", "arm", "spearman", "ci_low", "ci_high", "n"]).to_csv(
        os.path.join(folder, "ceiling.csv"), index=False)
    paired = [("all", "all", "all", "autoinit", "he", "random", None, 1, 8, 0.012, -0.003, 0.027, 0.12, 0.5),
              ("all", "all", "all", "autoinit", "default", "random", None, 1, 8, 0.03, 0.01, 0.05, 0.002, 0.0004),
              ("all", "all", "all", "autoinit", "he", "asha", 2, 12, 8, -0.01, -0.02, 0.0, 0.05, 0.2),
              ("h", "d1", "all", "autoinit", "he", "asha", 2, 12, 8, 0.5, 0.4, 0.6, 0.0, 0.0)]
    pd.DataFrame(paired, columns=["space", "dataset", "stratum", "arm", "baseline", "search", "factor", "budget", "k",
                                  "mean_diff", "ci_low", "ci_high", "p", "p_holm"]).to_csv(
        os.path.join(folder, "search_paired.csv"), index=False)
    design = {"epochs": 12, "budgets": [1, 2], "ks": [8], "arms": ["he", "autoinit"], "cells": 2, "candidates": 40,
              "bn_recalibrate": shift != 0.0, "test_fraction": 0.2}
    untrained = [("h", "d1", "he", 0.0, 20), ("h", "d1", "autoinit", 0.25, 20), ("all", "all", "he", 0.0, 40),
                 ("all", "all", "autoinit", 0.125, 40)]
    pd.DataFrame(untrained, columns=["space", "dataset", "arm", "untrained", "n"]).to_csv(
        os.path.join(folder, "untrained.csv"), index=False)
    with open(os.path.join(folder, "design.json"), "w", encoding="utf-8") as stream:
        json.dump(design, stream)
    return folder


def test_fidelity_rows_are_the_pooled_rho_with_ceiling_and_proxies(tmp_path):
    text = summary.readme_tables([write_folder(tmp_path / "study-quick")])
    assert text.startswith(f"<!-- python -m autoinit_nas.study.summary {tmp_path / 'study-quick'} -->\n")
    assert "#### study-quick" in text
    assert ("E = 12 epochs; budgets 1, 2; k 8; 40 candidates in 2 cells; BN recalibration off; "
            "test fraction 0.2.") in text
    assert ("| he | 0.400 [0.300, 0.500] | 0.300 [0.200, 0.400] | 0.200 [0.100, 0.300] | 0.500 [0.400, 0.600] "
            "| 0.400 [0.300, 0.500] | n/a | 0.800 [0.700, 0.900] |") in text
    assert "| arm | b=1 own | b=1 neutral | b=1 others | b=2 own | b=2 neutral | b=2 others | noise ceiling |" in text
    assert "| params | 0.250 [0.100, 0.400] | 40 |" in text


def test_search_rows_pair_each_arm_with_he_and_default_pooled_only(tmp_path):
    text = summary.readme_tables(write_folder(tmp_path / "s"))
    assert "| search | arm | vs he | Holm p (he) | vs default | Holm p (default) |" in text
    assert "| random b=1 k=8 | autoinit | +0.012 [-0.003, +0.027] | 0.500 | +0.030 [+0.010, +0.050] | 4.0e-04 |" in text
    assert "| asha f=2 k=8 | autoinit | -0.010 [-0.020, +0.000] | 0.200 |  |  |" in text
    assert "+0.500" not in text  # the per-cell row of search_paired.csv is not a pooled figure


def test_per_cell_and_strata_tables_at_the_smallest_and_largest_budget(tmp_path):
    text = summary.readme_tables(write_folder(tmp_path / "s"))
    assert "Rho per cell at budgets 1 and 2:" in text
    assert "| space | dataset | budget | reference | he | autoinit | n |" in text
    cell_rows = [line for line in text.splitlines() if line.startswith("| h | d1 |")]
    assert cell_rows == ["| h | d1 | 1 | own | 0.400 [0.300, 0.500] | 0.600 [0.500, 0.700] | 20 |",
                         "| h | d1 | 1 | neutral | 0.300 [0.200, 0.400] | 0.500 [0.400, 0.600] | 20 |",
                         "| h | d1 | 2 | own | 0.500 [0.400, 0.600] | 0.700 [0.600, 0.800] | 20 |",
                         "| h | d1 | 2 | neutral | 0.400 [0.300, 0.500] | 0.600 [0.500, 0.700] | 20 |"]
    assert "| p | d1 | 2 | neutral | 0.450 [0.350, 0.550] | 0.650 [0.550, 0.750] | 20 |" in text
    assert "| stratum | budget | reference | he | autoinit | n |" in text
    strata_rows = [line for line in text.splitlines() if line.startswith(tuple(f"| {s}=" for s in summary.STRATA))]
    # normalization, batchnorm, depth_bucket, activation_family, trains (STRATA order); own and neutral only
    assert strata_rows == ["| normalization=none | 1 | own | 0.300 [0.200, 0.400] | 0.350 [0.250, 0.450] | 10 |",
                           "| normalization=none | 2 | neutral | 0.310 [0.210, 0.410] |  | 10 |",
                           "| depth_bucket=1-5 | 1 | own | 0.900 [0.800, 1.000] |  | 8 |",
                           "| activation_family=saturating | 1 | own | 0.100 [-0.200, 0.400] |  | 8 |",
                           "| trains=every arm | 1 | own | 0.500 [0.400, 0.600] |  | 30 |"]


def test_untrained_shares_per_cell_and_pooled(tmp_path):
    text = summary.readme_tables(write_folder(tmp_path / "s"))
    assert "| cell | he | autoinit | n |" in text
    assert "| h / d1 | 0% | 25% | 20 |" in text and "| pooled | 0% | 12% | 40 |" in text


def test_ablation_compares_shared_cells_without_and_with(tmp_path):
    main, ablation = write_folder(tmp_path / "main"), write_folder(tmp_path / "bn", shift=0.1)
    text = summary.readme_tables([main], ablation=ablation)
    assert "#### BN recalibration (main without, bn with)" in text
    assert ("| space | dataset | arm | own, without | own, with | neutral, without | neutral, with | others, without "
            "| others, with |") in text
    assert ("| h | d1 | he | 0.400 [0.300, 0.500] | 0.500 [0.400, 0.600] | 0.300 [0.200, 0.400] "
            "| 0.400 [0.300, 0.500] |") in text
    assert "| all | all | autoinit | 0.600 [0.500, 0.700] | 0.700 [0.600, 0.800] |" in text
    assert summary.readme_tables([main], ablation=ablation) == text  # deterministic


def test_ablation_on_other_cells_pools_against_the_normalized_stratum(tmp_path):
    main = write_folder(tmp_path / "main")
    ranking = pd.read_csv(main / "ranking.csv", keep_default_na=False)
    every = [("all", "all", "normalization=every", arm, 1, "own", rho, rho - 0.1, rho + 0.1, 30)
             for arm, rho in (("he", 0.2), ("autoinit", 0.7))]
    pd.concat([ranking, pd.DataFrame(every, columns=ranking.columns)]).to_csv(main / "ranking.csv", index=False)
    ablation = write_folder(tmp_path / "bn", shift=0.1)
    other = pd.read_csv(ablation / "ranking.csv", keep_default_na=False)
    other[other["space"] != "p"].to_csv(ablation / "ranking.csv", index=False)  # the ablation lacks cell p
    table = summary._ablation_table(ranking=pd.read_csv(main / "ranking.csv", keep_default_na=False),
                                    other=pd.read_csv(ablation / "ranking.csv", keep_default_na=False),
                                    budget=1, design={"arms": ["he", "autoinit"]})
    assert table["space"].tolist() == ["h", "h", "pooled (normalization=every)", "pooled (normalization=every)"]
    pooled = table[table["space"].str.startswith("pooled")].set_index("arm")
    # without: the main study's normalization=every row; with: the ablation's pooled "all" row (0.4 + 0.1 for he)
    assert pooled.loc["he", ["own, without", "own, with"]].tolist() == ["0.200 [0.100, 0.300]", "0.500 [0.400, 0.600]"]
    assert pooled.loc["autoinit", "own, without"] == "0.700 [0.600, 0.800]"
    assert pooled.loc["he", "neutral, without"] == "n/a"  # the stratum has no neutral row at b=1


def test_search_table_adds_a_column_per_baseline_present(tmp_path):
    folder = write_folder(tmp_path / "s")
    paired = pd.read_csv(folder / "search_paired.csv", keep_default_na=False, na_values=[""])
    lsuv = paired.iloc[[0]].assign(baseline="lsuv", mean_diff=-0.02, ci_low=-0.04, ci_high=0.0, p_holm=0.03)
    pd.concat([paired, lsuv]).to_csv(folder / "search_paired.csv", index=False)
    text = summary.readme_tables(folder)
    assert ("| search | arm | vs he | Holm p (he) | vs default | Holm p (default) | vs lsuv | Holm p (lsuv) |"
            in text)
    assert "| +0.030 [+0.010, +0.050] | 4.0e-04 | -0.020 [-0.040, +0.000] | 0.030 |" in text


def test_expected_block_reruns_the_recorded_command(tmp_path):
    write_folder(tmp_path / "docs" / "quick")
    text = summary.readme_tables([str(tmp_path / "docs" / "quick")])
    relative = text.replace(str(tmp_path / "docs" / "quick"), "docs/quick", 1)
    readme = f"# Title\n\n{summary.BEGIN}\n{relative}{summary.END}\n"
    assert summary.readme_block(readme) == summary.expected_block(readme, root=tmp_path)
    stale = readme.replace("0.400 [0.300, 0.500]", "0.410 [0.300, 0.500]", 1)
    assert summary.readme_block(stale) != summary.expected_block(stale, root=tmp_path)
    with pytest.raises(ValueError, match="study-tables"):
        summary.readme_block("# no markers")


def test_a_folder_without_csvs_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no ranking.csv"):
        summary.readme_tables([tmp_path])


def test_readme_study_tables_match_committed_csvs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert summary.readme_block(readme) == summary.expected_block(readme, root=ROOT)
