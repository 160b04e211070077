"""Monte Carlo helpers shared by the estimator tests.

Every estimator test compares a prediction with the moments measured on the
output of the real Keras layer, fed with Gaussian inputs. The tolerance is
``K_SIGMA`` standard errors of the measurement (plus the standard error of
the prediction where the estimator samples), so a test fails only when the
prediction is off by more than sampling noise can explain.

Output elements are not independent: a batch row shares its input (softmax,
upsampling, spatial dropout...), and for weighted layers every output unit
shares its weights across the batch. The standard errors here are therefore
cluster-robust: the influence of each element on the statistic is summed over
a cluster (a batch row, an output unit, ...) and the clusters are treated as
the independent draws. With two crossed cluster dimensions (rows and units of
a weighted layer) the two-way formula V = V_rows + V_units - V_cells is used
(Cameron, Gelbach and Miller 2011), floored at the larger one-way variance.

Influence functions: for the mean M it is y - M; for the variance
V = mean((y - M)^2) it is (y - M)^2 - V (the delta method; the O(1/N) term
from estimating M is negligible at these sample sizes).
"""

import math

import keras
import numpy as np

from autoinit_nas.estimators.cache import EstimateCache
from autoinit_nas.estimators.registry import EstimatorRegistry

K_SIGMA = 4.0
FLOAT32_ROUNDING = 1e-6
ROWS = ((0,),)


def gaussian(rng, shape, mean, var):
    """i.i.d. N(mean, var) float32 array of ``shape``."""
    return (mean + math.sqrt(var) * rng.standard_normal(shape)).astype("float32")


def to_numpy(tensor):
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype=float)


def _cluster_variance(psi, axes):
    """Variance of mean(psi) when slices along ``axes`` are independent clusters."""
    axes = tuple(sorted(a % psi.ndim for a in axes))
    other = tuple(a for a in range(psi.ndim) if a not in axes)
    sums = psi.sum(axis=other) if other else psi
    groups = sums.size
    if groups < 2:
        return float("inf")
    return float(np.sum(sums * sums)) / psi.size**2 * groups / (groups - 1)


def _standard_error(psi, clusters):
    clusters = [tuple(c) for c in clusters]
    if len(clusters) == 1:
        return math.sqrt(_cluster_variance(psi, clusters[0]))
    if len(clusters) != 2:
        raise ValueError("one-way or two-way clustering only")
    v_a = _cluster_variance(psi, clusters[0])
    v_b = _cluster_variance(psi, clusters[1])
    v_ab = _cluster_variance(psi, set(clusters[0]) | set(clusters[1]))
    return math.sqrt(max(v_a + v_b - v_ab, v_a, v_b))


class Measured:
    """Mean and variance of all elements of ``values`` with cluster-robust SEs.

    Args:
        values: the layer output (numpy), possibly stacked over weight seeds.
        clusters: a tuple of axis tuples. ``((0,),)``: batch rows are
            independent (the default). ``((0,), (-1,))``: rows and units are
            two crossed independent dimensions (a weighted layer). With a
            leading seed axis use ``((0, 1), (0, -1))``.
    """

    def __init__(self, values, clusters=ROWS):
        values = np.asarray(values, dtype=float)
        self.values = values
        self.n = values.size
        self.mean = float(values.mean())
        centred = values - self.mean
        self.var = float(np.mean(centred * centred))
        self.se_mean = _standard_error(centred, clusters)
        self.se_var = _standard_error(centred * centred - self.var, clusters)

    def __repr__(self):
        return (
            f"Measured(mean={self.mean:.6g} +- {self.se_mean:.2g}, "
            f"var={self.var:.6g} +- {self.se_var:.2g}, n={self.n})"
        )


def assert_matches(measured, predicted, predicted_se=(0.0, 0.0), model_error=(0.0, 0.0),
                   label=""):
    """|measured - predicted| <= K_SIGMA * SE (+ an explicit model-error term).

    ``predicted_se`` is the standard error of a sampled prediction (zero for
    closed forms and quadrature); ``model_error`` is a documented bound on the
    estimator's approximation error, zero wherever the maths is exact.
    """
    mean, var = predicted
    for name, got, want, se, extra_se, model in (
        ("mean", measured.mean, mean, measured.se_mean, predicted_se[0], model_error[0]),
        ("var", measured.var, var, measured.se_var, predicted_se[1], model_error[1]),
    ):
        se_total = math.hypot(se, extra_se)
        # Layers compute in float32: allow 1e-6 relative rounding, which only
        # matters where the statistic is nearly deterministic (normalization).
        rounding = FLOAT32_ROUNDING * (abs(want) + math.sqrt(max(var, 0.0)))
        tolerance = K_SIGMA * se_total + model + rounding
        assert abs(got - want) <= tolerance, (
            f"{label} {name}: measured {got:.6g} vs predicted {want:.6g}: "
            f"|diff| = {abs(got - want):.3g} > {K_SIGMA:g} * SE {se_total:.3g}"
            + (f" + model error {model:.3g}" if model else "")
            + f" ({measured!r})"
        )


def assert_documented_model_error(measured, predicted, reference, documented, rounding,
                                  label="", reference_se=(0.0, 0.0)):
    """A documented approximation: the prediction misses by the stated amount, and no more.

    ``reference`` accounts exactly for what the estimator approximates, and
    ``documented`` is the miss the test's docstring states, signed
    (reference - predicted, for the mean and the variance), known to
    ``rounding`` (half the last digit stated). Two checks:

    1. the measurement matches ``reference`` within K_SIGMA standard errors
       (the explanation is complete, to the sample's resolution);
    2. reference - predicted is ``documented`` within ``rounding`` (both are
       closed forms or quadrature: no noise).

    So |measured - predicted| <= K_SIGMA SE + |documented| + rounding, a
    bound set by the sample size and the stated figure, not by the gap it
    checks: a prediction that moves fails even where sampling would hide it.
    Returns reference - predicted.
    """
    assert_matches(measured, reference, reference_se, label=f"{label} reference")
    error = (reference[0] - predicted[0], reference[1] - predicted[1])
    for name, got, want, allowed in zip(("mean", "var"), error, documented, rounding):
        assert abs(got - want) <= allowed, (
            f"{label}: model error of the {name} is {got:.4g}; documented {want:.4g} +- {allowed:.2g}"
        )
    return error


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def estimator_for(layer, input_shapes, config=None, signal_variance=1.0):
    """Build ``layer`` on symbolic inputs and return its registered estimator.

    ``input_shapes`` are full shapes with a leading None batch dimension. The
    estimator gets its own cache so tests never share memoized estimates.
    """
    inputs = [keras.Input(shape=tuple(shape[1:])) for shape in input_shapes]
    outputs = _as_list(layer(inputs if len(inputs) > 1 else inputs[0]))
    estimator_class = EstimatorRegistry().lookup(type(layer))
    assert estimator_class is not None, f"no estimator registered for {type(layer).__name__}"
    config = {"seed": 0, **(config or {})}
    estimator = estimator_class(layer, config, signal_variance)
    estimator.cache = EstimateCache()
    estimator.input_shapes = [tuple(tensor.shape) for tensor in inputs]
    estimator.output_shapes = [tuple(tensor.shape) for tensor in outputs]
    return estimator


def predict(layer, input_shapes, means, variances, config=None):
    """(mean, var) the layer's estimator predicts for its first output."""
    estimator = estimator_for(layer, input_shapes, config)
    result = estimator.estimate([float(m) for m in means], [float(v) for v in variances])
    return result[0] if isinstance(result, list) else result


def run_layer(layer, arrays, **kwargs):
    """Call ``layer`` eagerly in training mode on numpy arrays; numpy output."""
    inputs = [keras.ops.convert_to_tensor(a) for a in arrays]
    output = layer(inputs if len(inputs) > 1 else inputs[0], training=True, **kwargs)
    return to_numpy(output)


def initialized_outputs(build, input_shape, mean, var, seeds, rng, batch, **autoinit_kwargs):
    """Run AutoInit on fresh models, one per weight seed, and measure them.

    ``build()`` returns ``(model, name)``: a fresh single-input model and the
    estimate entry to compare. Each seed gets its own weights (``seed`` in
    ``weight_init_config``) and its own batch of i.i.d. N(mean, var) inputs, so
    the stacked outputs (seed axis first) are independent across seeds.

    Returns (outputs stacked over seeds, list of the predicted (mean, var)).
    """
    from autoinit_nas import AutoInit

    config = dict(autoinit_kwargs.pop("weight_init_config", {}) or {})
    outputs, predictions = [], []
    for seed in seeds:
        model, name = build()
        _, estimates = AutoInit(
            propagation="scalar",
            weight_init_config={**config, "seed": int(seed)},
            input_data_mean=mean,
            input_data_var=var,
            **autoinit_kwargs,
        ).initialize_model(model, return_estimates=True)
        predictions.append(estimates[name])
        x = gaussian(rng, (batch,) + tuple(input_shape[1:]), mean, var)
        outputs.append(run_layer(model, [x]))
    return np.stack(outputs), predictions


SEED_ROWS_UNITS = ((0, 1), (0, -1))
