"""The README's fidelity figures, guarded: a fast subset of the zoo and the three NAS anchors.

``experiments/benchmarks/fidelity.py`` (README "Fidelity", seed 1, batch 512)
measures per model the median over layers of |log2(measured / predicted
variance)| and the final variance under probe propagation. Here the same
measurement (the benchmark's own builders, inputs and scoring) runs on the
models that take a few seconds each and on the pmlb anchor (mnist and
toxicity take up to 100 s each: marked slow, run by ``make check``), and must
reproduce the README's figures within a tolerance derived from the
seed-to-seed spread: each figure was re-measured over seeds 1-5 (1-4 for
mnist and toxicity; the spreads in ``FIGURES`` are the standard deviations
over those seeds), and a figure may move by 4 of those standard deviations
plus half its last printed digit.
A probe that falls back, or drifts beyond its own noise, fails here.
"""

import math
import statistics
import warnings

import keras
import pytest

from autoinit_nas import AutoInit
from autoinit_nas.core.measure import measure_moments
from experiments.benchmarks import fidelity

SEED = fidelity.DEFAULT_SEED
BATCH = fidelity.DEFAULT_BATCH

# model: (probe median, its spread, probe final variance, its spread). The
# figures are the README's (fidelity table, seed 1); the spreads are standard
# deviations over seeds 1-5 measured with ``probe_fidelity`` on the current
# code. The anchors' final variance is their own softmax/sigmoid output's,
# not a target (None).
FIGURES = {
    "mlp_relu_d10": (0.02, 0.0097, 0.983, 0.0075),
    "gated_multiply": (0.01, 0.0039, 0.978, 0.0145),
    "branches_concat": (0.01, 0.0051, 0.997, 0.0135),
    "nested_shared": (0.02, 0.0058, 0.99, 0.0180),
    # 0.03 / 0.992 before the probe rescaled narrow layers too; the table of
    # docs/benchmarks/fidelity.csv, re-measured since, prints 0.00 / 1. Seeds
    # 1-5 on the current probe: medians 0.001-0.021, final 0.994-1.019 (the
    # spreads below), so the tolerance cannot tell 0.00 from the old 0.03.
    "conv1d_avgpool": (0.00, 0.0075, 1.0, 0.0099),
    "anchor_pmlb": (0.01, 0.0219, None, None),
    "anchor_mnist": (0.01, 0.0026, None, None),
    "anchor_toxicity": (0.01, 0.0021, None, None),
}
# 40-100 s each on a busy 2-core machine: run by make check (marked slow).
SLOW = ("anchor_mnist", "anchor_toxicity")
MEDIAN_DIGIT = 0.005  # medians are printed to 2 decimals
FINAL_DIGIT = 0.0005  # final variances to 3 significant digits


def probe_fidelity(name, seed=SEED, batch=BATCH):
    """(median per-layer |log2| error, final variance, propagation used) of zoo model ``name``."""
    _, builder, kind, _ = fidelity.ZOO[name]
    keras.utils.set_random_seed(seed)
    model = builder(fidelity.Size(False))
    inputs = fidelity.make_inputs(model, kind, batch, seed + 1000)
    autoinit = AutoInit(weight_init_config={"seed": seed})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, estimates = autoinit.initialize_model(model, return_estimates=True)
        measured = measure_moments(model, inputs)
    rows = fidelity._layer_rows(name, "probe", estimates, measured, fidelity._input_layer_names(model))
    median = statistics.median(row["abs_log2"] for row in rows)
    return median, measured[fidelity._output_key(model)][1], autoinit.propagation_used


def tolerance(spread, digit):
    """Four seed-to-seed standard deviations plus half the last printed digit."""
    return 4 * spread + digit


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in sorted(FIGURES)]
)
def test_probe_fidelity_reproduces_the_readme(name):
    median_figure, median_spread, final_figure, final_spread = FIGURES[name]
    median, final, used = probe_fidelity(name)
    assert used == "probe", f"{name}: the probe fell back to scalar propagation"
    allowed = tolerance(median_spread, MEDIAN_DIGIT)
    assert abs(median - median_figure) <= allowed, (
        f"{name}: median per-layer error {median:.4f}, README {median_figure} +- {allowed:.4f}"
    )
    if final_figure is not None:
        allowed = tolerance(final_spread, FINAL_DIGIT)
        assert abs(final - final_figure) <= allowed, (
            f"{name}: final variance {final:.4f}, README {final_figure} +- {allowed:.4f}"
        )
    assert math.isfinite(final)
