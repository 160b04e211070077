"""SimpleRNN, GRU, LSTM and Bidirectional, by dynamic mean-field Monte Carlo.

A recurrent layer's output moments depend on its own weights through the
state, so there is no closed form. Pushing noise sequences through a copy of
the layer (what the original library did) costs seconds. Instead we simulate
the dynamic mean-field description of a wide random recurrent net: unit j's
gate k at step t receives

    z_kt = b_k + (input drive) + (recurrent drive),

* input drive: W x_t has variance q_x = n_in * s_W * E[x^2]; the part
  m * sum_i W_ij (input mean m) is a per-unit offset constant in time, a
  share c = m^2 / E[x^2] of q_x; the rest is white in time;
* recurrent drive: (U_k h_{t-1})_j, in the wide limit a zero-mean Gaussian
  process over time with covariance g * E[h_{t-1} h_{t'-1}] (g = units * s_U,
  the expectation taken over the population), independent across gates.

Each of ``recurrent_monte_carlo_samples`` chains is one unit: its own state
(h, and c for LSTM) is carried exactly, so non-Gaussian states and the time
correlation of the recurrent drive are both kept (a model that redraws the
drive every step under-predicts LSTM outputs by up to 60%). The process is
sampled causally: row t of the Cholesky factor of its covariance follows
from rows < t once h_{t-1} is known. Cost O(gates * steps^2 * chains);
seeded and memoized.

Weight scales: the input kernel and the recurrent kernel each supply half of
``signal_variance`` to the pre-activations: s_W = sv / (2 n_in E[x^2]), and g
is solved (fixed-point iteration on the simulated steady state) so that
g * E[h^2]_steady = sv / 2. Biases keep the layer's own initializers (zeros,
and one for the LSTM forget gate with ``unit_forget_bias``).

Degenerate inputs: when the input drive is dead (E[x^2] below
``VANISHING_RATIO`` x its target, so the input kernel fell back to fan-in
scaling, see ``WeightedLayerEstimator.scaled_output_variance``), there is no
signal for the recurrent kernel to sustain either: solving g against a
vanishing drive would push g to the edge of stability (for ReLU, g -> 2 as
q_x -> 0, since E[h^2] = q_x / (2 - g)) and past it, overflowing to NaN. The
gain is then solved for the drive a unit-power input would give (sv / 2),
the scale the layer gets at any healthy input, and the output is predicted
with the real, vanishing drive. The ``vanishing_input`` warning names the
layer.

Assumptions: inputs i.i.d. over time and units; the wide-network limit. The
estimate is the moment over all output elements: all time steps for
``return_sequences=True`` (starting from a zero state), the last step
otherwise.
"""

import math

import keras
import numpy as np
from scipy import linalg

from autoinit_nas.maths import gaussian
from autoinit_nas.estimators.base import WeightedLayerEstimator
from autoinit_nas.estimators.registry import register
from autoinit_nas.estimators.recurrent_cells import _numpy_function, run_cell  # noqa: F401 - run_cell is public here too
from autoinit_nas.maths.sanitize import VANISHING_RATIO

_STEADY_STEPS = 40
_GAIN_ITERATIONS = 6
_GAIN_CHAINS = 2000


def _function_name(function):
    return getattr(function, "__module__", "") + "." + getattr(function, "__qualname__", "")


class RecurrentDrive:
    """Zero-mean Gaussian drives with covariance gain * E[s_t s_t'] over a population source s.

    Sampled one step at a time: once the source at step t is known, row t of
    the (lower-triangular) Cholesky factor of gain * C follows from the rows
    before it. ``count`` independent drives (one per gate) share the
    covariance, each with its own white noise.
    """

    def __init__(self, gain, steps, chains, count, rng):
        self.gain = gain
        self.factor = np.zeros((steps, steps))
        self.sources = np.zeros((steps, chains))
        self.noise = rng.standard_normal((count, steps, chains))

    def step(self, t, source):
        self.sources[t] = source
        row = self.gain * (self.sources[: t + 1] @ source) / source.size
        head = np.zeros(t)
        # Steps whose source had zero variance (the zero initial state) carry
        # no noise: their rows and columns drop out of the triangular solve.
        live = np.flatnonzero(np.diag(self.factor)[:t] > 0)
        if live.size:
            head[live] = linalg.solve_triangular(
                self.factor[np.ix_(live, live)], row[live], lower=True, check_finite=False
            )
        self.factor[t, :t] = head
        self.factor[t, t] = math.sqrt(max(row[t] - float(head @ head), 0.0))
        return np.einsum("s,gsc->gc", self.factor[t, : t + 1], self.noise[:, : t + 1])


def simulate_cell(kind, activation, recurrent_activation, input_var, gain, steps,
                  chains, seed, forget_bias=0.0, reset_after=True, input_constant_share=0.0):
    """Dynamic mean-field trajectories of one recurrent cell type (module docstring).

    Returns a dict of arrays over steps: ``h_mean``, ``h_second`` (E[h_t],
    E[h_t^2]) and ``c_mean``, ``c_second`` (LSTM cell state; zeros otherwise).
    Starts from a zero state. ``kind`` is "simple", "gru" or "lstm".
    """
    gates = {"simple": 1, "gru": 3, "lstm": 4}.get(kind)
    if gates is None:
        raise ValueError(f"Unknown cell kind {kind!r}; expected simple, gru or lstm.")
    rng = np.random.default_rng(seed)
    act = _numpy_function(activation)
    gate = _numpy_function(recurrent_activation)
    # GRU with reset_after=False feeds its candidate U (r_t * h_{t-1}): a drive
    # over a different source.
    split = kind == "gru" and not reset_after
    drive = RecurrentDrive(gain, steps, chains, gates - split, rng)
    candidate_drive = RecurrentDrive(gain, steps, chains, 1, rng) if split else None
    share = min(max(input_constant_share, 0.0), 1.0)
    white = math.sqrt(max(input_var, 0.0) * (1.0 - share))
    constant = math.sqrt(max(input_var, 0.0) * share) * rng.standard_normal((gates, chains))
    h = np.zeros(chains)
    c = np.zeros(chains)
    record = {key: np.zeros(steps) for key in ("h_mean", "h_second", "c_mean", "c_second")}
    for t in range(steps):
        recurrent = drive.step(t, h)
        inputs = constant + white * rng.standard_normal((gates, chains))
        if kind == "simple":
            h = act(inputs[0] + recurrent[0])
        elif kind == "gru":
            update = gate(inputs[0] + recurrent[0])
            reset = gate(inputs[1] + recurrent[1])
            if split:
                candidate = act(inputs[2] + candidate_drive.step(t, reset * h)[0])
            else:
                candidate = act(inputs[2] + reset * recurrent[2])
            h = update * h + (1.0 - update) * candidate
        else:
            in_gate = gate(inputs[0] + recurrent[0])
            forget = gate(forget_bias + inputs[1] + recurrent[1])
            cell_input = act(inputs[2] + recurrent[2])
            out_gate = gate(inputs[3] + recurrent[3])
            c = forget * c + in_gate * cell_input
            h = out_gate * act(c)
        record["h_mean"][t] = float(np.mean(h))
        record["h_second"][t] = float(np.mean(h * h))
        record["c_mean"][t] = float(np.mean(c))
        record["c_second"][t] = float(np.mean(c * c))
    return record


class RecurrentEstimator(WeightedLayerEstimator):
    """SimpleRNN, GRU and LSTM layers (see the module docstring for the maths)."""

    method = "sampled (dynamic mean field)"

    kind = "simple"
    bias_attributes = ()

    def run_on_probe(self, inputs, rng):
        """The layer's output on a probe batch via ``run_cell`` (training mode), or None.

        None (call the layer instead) where numpy would not compute what
        Keras does: state carried between batches, returned states, or a
        non-sequence input.
        """
        layer, cell = self.layer, self.layer.cell
        if len(inputs) != 1 or np.ndim(inputs[0]) != 3 or layer.stateful or layer.return_state:
            return None
        sequence = inputs[0][:, ::-1] if layer.go_backwards else inputs[0]
        states = run_cell(self.kind, cell, sequence, rng)
        return [states if layer.return_sequences else states[:, -1]]

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

    def _signature(self):
        settings = self._cell_settings()
        return (
            settings["kind"],
            _function_name(settings["activation"]),
            _function_name(settings["recurrent_activation"]),
            settings["forget_bias"],
            settings["reset_after"],
        )

    def _simulate(self, input_var, gain, steps, share, chains=None):
        chains = int(chains or self.estimator_config["recurrent_monte_carlo_samples"])
        seed = self.sampling_seed()
        return self.memoized(
            "chains", self._signature() + (steps, chains), (input_var, gain, share),
            lambda: simulate_cell(input_var=input_var, gain=gain, steps=steps, chains=chains,
                                  seed=seed, input_constant_share=share, **self._cell_settings()),
        )

    def _solve_gain(self, input_var, share):
        """Recurrent gain g with g * E[h^2]_steady = signal_variance / 2.

        Fixed-point iteration g <- target / E[h^2]_steady(g), stopped when g
        changes by less than 0.5% (E[h^2] is smooth and bounded in g, so the
        iteration contracts quickly). Uses at most 2,000 chains: the steady
        state needs less precision than the reported trajectory.

        An input drive that vanishes (below ``VANISHING_RATIO`` x its target
        sv / 2, or not finite) is replaced by sv / 2, the drive of a matched
        input (module docstring). A steady state that is not finite and
        positive (an iterate past the edge of stability) ends the iteration
        at the last gain that gave one.
        """
        target = 0.5 * self.signal_variance
        if not (math.isfinite(input_var) and input_var > VANISHING_RATIO * target):
            input_var = target
        chains = min(int(self.estimator_config["recurrent_monte_carlo_samples"]), _GAIN_CHAINS)
        gain = target
        for _ in range(_GAIN_ITERATIONS):
            record = self._simulate(input_var, gain, _STEADY_STEPS, share, chains)
            steady = float(record["h_second"][-10:].mean())
            if not (math.isfinite(steady) and steady > 0.0):
                break
            updated = target / steady
            if not math.isfinite(updated):
                break
            converged = abs(updated - gain) <= 5e-3 * gain
            gain = updated
            if converged:
                break
        return gain

    def estimate(self, means_in, vars_in):
        cell = self.layer.cell
        kernel_shape = tuple(cell.kernel.shape)
        units = int(cell.units)
        power = self.weight_input_power(means_in, vars_in, kernel_shape[0])
        input_var = self.scaled_output_variance(
            "cell.kernel", kernel_shape[0], kernel_shape[1], power, target=0.5 * self.signal_variance,
        )
        # The input mean's share of the input drive is a per-unit offset, constant in time.
        share = (power - vars_in[0]) / power if 0.0 < power < math.inf else 0.0
        if "cell.recurrent_kernel" not in self.weight_plan:
            gain = self.memoized(
                "gain", self._signature(), (input_var, share, self.signal_variance),
                lambda: self._solve_gain(input_var, share),
            )
            self.plan_weight(
                "cell.recurrent_kernel", gain / units, units, int(cell.recurrent_kernel.shape[-1])
            )
        gain = self.weight_plan["cell.recurrent_kernel"][0] * units
        shape = self.input_shapes[0] if self.input_shapes else None
        steps = shape[1] if shape is not None and len(shape) > 1 and shape[1] else None
        record = self._simulate(input_var, gain, steps or _STEADY_STEPS, share)
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

    method = "sampled (dynamic mean field)"

    bias_attributes = ()

    def __init__(self, layer, estimator_config=None, signal_variance=1.0):
        super().__init__(layer, estimator_config, signal_variance)
        self.directions = {}

    def run_on_probe(self, inputs, rng):
        """Both directions via ``run_cell``, merged as the layer merges them; or None."""
        if self.layer.return_state or self.layer.merge_mode is None:
            return None
        outputs = []
        for name in ("forward_layer", "backward_layer"):
            result = self._direction(name).run_on_probe(inputs, rng)
            if result is None:
                return None
            outputs.append(result[0])
        forward, backward = outputs
        if self.layer.return_sequences:
            backward = backward[:, ::-1]  # back to input order, as Bidirectional does
        mode = self.layer.merge_mode
        if mode == "concat":
            return [np.concatenate([forward, backward], axis=-1)]
        if mode == "sum":
            return [forward + backward]
        if mode == "ave":
            return [0.5 * (forward + backward)]
        if mode == "mul":
            return [forward * backward]
        return None

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
            estimator.diagnostics = self.diagnostics
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
