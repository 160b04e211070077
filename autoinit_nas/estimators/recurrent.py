"""SimpleRNN, GRU, LSTM and Bidirectional, by mean-field Monte Carlo.

A recurrent layer's output moments depend on its own weights through the
state, so there is no closed form. Pushing noise sequences through a copy of
the layer (what the original library did) costs seconds. Instead we use the
mean-field description of a wide random recurrent net: every gate
pre-activation of a unit at step t is

    z_t = b + sqrt(q_x) xi_t + sqrt(g * E[h_{t-1}^2]) eta_t,

with xi, eta independent standard normals, q_x = n_in * s_W * E[x^2] the
input term's variance and g = units * s_U the recurrent gain. The unit's own
state (h for GRU, c for LSTM) is carried along its chain, so the state's
non-Gaussian distribution is tracked exactly. ``recurrent_monte_carlo_samples``
chains are simulated (seeded, memoized), costing O(chains * steps) scalar
operations.

Weight scales: the input kernel and the recurrent kernel each supply half of
``signal_variance`` to the pre-activations: s_W = sv / (2 n_in E[x^2]), and
g is solved (fixed-point iteration on the simulated steady state) so that
g * E[h^2]_steady = sv / 2. Biases keep the layer's own initializers (zeros,
and one for the LSTM forget gate with ``unit_forget_bias``).

Assumptions: inputs i.i.d. over time and units; in the wide limit the
recurrent drive is Gaussian and independent of the unit's own state; the
temporal correlation of the recurrent drive is ignored (fresh draws each
step). The estimate is the moment over all output elements: all time steps for
``return_sequences=True`` (starting from a zero state), the last step
otherwise.
"""

import math

import keras
import numpy as np

from autoinit_nas.core import gaussian
from autoinit_nas.estimators.activations import evaluate
from autoinit_nas.estimators.base import WeightedLayerEstimator
from autoinit_nas.estimators.registry import register

_A = keras.activations
_NUMPY_ACTIVATIONS = {
    _A.tanh: np.tanh,
    _A.sigmoid: lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),
    _A.relu: lambda x: np.maximum(x, 0.0),
    _A.linear: lambda x: x,
    _A.hard_sigmoid: lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0),
}
_STEADY_STEPS = 60
_GAIN_ITERATIONS = 6


def _numpy_function(function):
    if function in _NUMPY_ACTIVATIONS:
        return _NUMPY_ACTIVATIONS[function]
    return lambda x: evaluate(function, x)


def _function_name(function):
    return getattr(function, "__module__", "") + "." + getattr(function, "__qualname__", "")


def simulate_cell(kind, activation, recurrent_activation, input_var, gain, steps,
                  chains, seed, forget_bias=0.0, reset_after=True):
    """Mean-field trajectories of one recurrent cell type.

    Returns a dict of arrays over steps: ``h_mean``, ``h_second`` (E[h_t],
    E[h_t^2]) and, for LSTM, ``c_mean``, ``c_second``. Starts from zero state.
    ``kind`` is "simple", "gru" or "lstm".
    """
    rng = np.random.default_rng(seed)
    act = _numpy_function(activation)
    gate = _numpy_function(recurrent_activation)
    input_std = math.sqrt(max(input_var, 0.0))
    h = np.zeros(chains)
    c = np.zeros(chains)
    record = {key: np.zeros(steps) for key in ("h_mean", "h_second", "c_mean", "c_second")}

    draws_per_step = {"simple": 2, "gru": 6, "lstm": 8}.get(kind)
    if draws_per_step is None:
        raise ValueError(f"Unknown cell kind {kind!r}; expected simple, gru or lstm.")
    for t in range(steps):
        recurrent_std = math.sqrt(max(gain * float(np.mean(h * h)), 0.0))
        noise = iter(rng.standard_normal((draws_per_step, chains)))

        def pre(bias=0.0):
            return bias + input_std * next(noise) + recurrent_std * next(noise)

        if kind == "simple":
            h = act(pre())
        elif kind == "gru":
            update = gate(pre())
            reset = gate(pre())
            if reset_after:
                candidate_recurrent = reset * recurrent_std * next(noise)
            else:
                candidate_recurrent = math.sqrt(
                    max(gain * float(np.mean((reset * h) ** 2)), 0.0)
                ) * next(noise)
            candidate = act(input_std * next(noise) + candidate_recurrent)
            h = update * h + (1.0 - update) * candidate
        else:
            in_gate = gate(pre())
            forget = gate(pre(forget_bias))
            cell_input = act(pre())
            out_gate = gate(pre())
            c = forget * c + in_gate * cell_input
            h = out_gate * act(c)
        record["h_mean"][t] = float(np.mean(h))
        record["h_second"][t] = float(np.mean(h * h))
        record["c_mean"][t] = float(np.mean(c))
        record["c_second"][t] = float(np.mean(c * c))
    return record


class RecurrentEstimator(WeightedLayerEstimator):
    """SimpleRNN, GRU and LSTM layers (see the module docstring for the maths)."""

    kind = "simple"
    bias_attributes = ()

    def _cell_settings(self):
        cell = self.layer.cell
        forget_bias = 0.0
        if self.kind == "lstm" and cell.use_bias and getattr(cell, "unit_forget_bias", False):
            forget_bias = 1.0
        return dict(
            kind=self.kind,
            activation=cell.activation,
            recurrent_activation=getattr(cell, "recurrent_activation", None),
            forget_bias=forget_bias,
            reset_after=getattr(cell, "reset_after", True),
        )

    def _simulate(self, input_var, gain, steps):
        settings = self._cell_settings()
        chains = int(self.estimator_config["recurrent_monte_carlo_samples"])
        seed = self.sampling_seed()
        signature = (
            settings["kind"],
            _function_name(settings["activation"]),
            _function_name(settings["recurrent_activation"]),
            settings["forget_bias"],
            settings["reset_after"],
            steps,
        )
        return self.memoized(
            "chains", signature, (input_var, gain),
            lambda: simulate_cell(input_var=input_var, gain=gain, steps=steps,
                                  chains=chains, seed=seed, **settings),
        )

    def _solve_gain(self, input_var):
        """Recurrent gain g with g * E[h^2]_steady = signal_variance / 2.

        Fixed-point iteration g <- target / E[h^2]_steady(g), stopped when g
        changes by less than 0.5% (E[h^2] is smooth and bounded in g, so the
        iteration contracts quickly).
        """
        target = 0.5 * self.signal_variance
        gain = target
        for _ in range(_GAIN_ITERATIONS):
            steady = self._simulate(input_var, gain, _STEADY_STEPS)["h_second"][-10:].mean()
            updated = target / max(float(steady), 1e-12)
            converged = abs(updated - gain) <= 5e-3 * gain
            gain = updated
            if converged:
                break
        return gain

    def estimate(self, means_in, vars_in):
        cell = self.layer.cell
        kernel_shape = tuple(cell.kernel.shape)
        units = int(cell.units)
        input_var = self.scaled_output_variance(
            "cell.kernel", kernel_shape[0], kernel_shape[1],
            self.weight_input_power(means_in, vars_in, kernel_shape[0]),
            target=0.5 * self.signal_variance,
        )
        if "cell.recurrent_kernel" not in self.weight_plan:
            gain = self.memoized(
                "gain", self._cell_settings()["kind"], (input_var, self.signal_variance),
                lambda: self._solve_gain(input_var),
            )
            self.weight_plan["cell.recurrent_kernel"] = (
                gain / units, units, int(cell.recurrent_kernel.shape[-1]),
            )
        gain = self.weight_plan["cell.recurrent_kernel"][0] * units
        shape = self.input_shapes[0] if self.input_shapes else None
        steps = shape[1] if shape is not None and len(shape) > 1 and shape[1] else None
        record = self._simulate(input_var, gain, steps or _STEADY_STEPS)
        if self.layer.return_sequences and steps:
            mean = float(np.mean(record["h_mean"]))
            second = float(np.mean(record["h_second"]))
        else:
            mean = float(record["h_mean"][-1])
            second = float(record["h_second"][-1])
        output = (mean, gaussian.variance_from_moments(mean, second))
        if not self.layer.return_state:
            return output
        last_h = (float(record["h_mean"][-1]), gaussian.variance_from_moments(
            record["h_mean"][-1], record["h_second"][-1]))
        states = [last_h]
        if self.kind == "lstm":
            states.append((float(record["c_mean"][-1]), gaussian.variance_from_moments(
                record["c_mean"][-1], record["c_second"][-1])))
        return [output] + states


@register(keras.layers.SimpleRNN)
class SimpleRNNEstimator(RecurrentEstimator):
    """``SimpleRNN``: h_t = f(W x_t + U h_{t-1} + b); mean-field chains."""

    kind = "simple"


@register(keras.layers.GRU)
class GRUEstimator(RecurrentEstimator):
    """``GRU``: update/reset gates and a candidate, h_t = z h_{t-1} + (1-z) h~; mean-field chains."""

    kind = "gru"


@register(keras.layers.LSTM)
class LSTMEstimator(RecurrentEstimator):
    """``LSTM``: c_t = f c_{t-1} + i g, h_t = o tanh(c_t); mean-field chains."""

    kind = "lstm"


@register(keras.layers.Bidirectional)
class BidirectionalEstimator(WeightedLayerEstimator):
    """``Bidirectional``: the forward and backward layers estimated separately.

    Each direction is its own recurrent layer (and gets its own weights); the
    directions are independent, so ``merge_mode`` combines their moments as
    Concatenate (equal halves), Add, Average or Multiply would. Reversing time
    does not change the pooled moments.
    """

    bias_attributes = ()

    def __init__(self, layer, estimator_config=None, signal_variance=1.0):
        super().__init__(layer, estimator_config, signal_variance)
        self.directions = {}

    def _direction(self, name):
        if name not in self.directions:
            sub_layer = getattr(self.layer, name)
            estimator_class = {
                keras.layers.SimpleRNN: SimpleRNNEstimator,
                keras.layers.GRU: GRUEstimator,
                keras.layers.LSTM: LSTMEstimator,
            }.get(type(sub_layer))
            if estimator_class is None:
                for klass, candidate in ((keras.layers.LSTM, LSTMEstimator),
                                         (keras.layers.GRU, GRUEstimator),
                                         (keras.layers.SimpleRNN, SimpleRNNEstimator)):
                    if isinstance(sub_layer, klass):
                        estimator_class = candidate
                        break
            if estimator_class is None:
                raise TypeError(
                    f"Bidirectional '{self.layer.name}' wraps {type(sub_layer).__name__}; "
                    "AutoInit estimates SimpleRNN, GRU and LSTM (and their subclasses)."
                )
            estimator = estimator_class(sub_layer, self.estimator_config, self.signal_variance)
            estimator.cache = self.cache
            self.directions[name] = estimator
        return self.directions[name]

    def estimate(self, means_in, vars_in):
        results = []
        for name in ("forward_layer", "backward_layer"):
            estimator = self._direction(name)
            estimator.input_shapes = self.input_shapes
            output = estimator.estimate(means_in, vars_in)
            results.append(output[0] if isinstance(output, list) else output)
            for attribute, plan in estimator.weight_plan.items():
                self.weight_plan[f"{name}.{attribute}"] = plan
        (m0, v0), (m1, v1) = results
        mode = self.layer.merge_mode
        if mode == "sum":
            return m0 + m1, v0 + v1
        if mode == "ave":
            return 0.5 * (m0 + m1), 0.25 * (v0 + v1)
        if mode == "mul":
            first = m0 * m1
            second = gaussian.second_moment(m0, v0) * gaussian.second_moment(m1, v1)
            return first, gaussian.variance_from_moments(first, second)
        first = 0.5 * (m0 + m1)
        second = 0.5 * (gaussian.second_moment(m0, v0) + gaussian.second_moment(m1, v1))
        if mode is None:
            return [(m0, v0), (m1, v1)]
        return first, gaussian.variance_from_moments(first, second)
