"""The estimator interface: from a layer's input moments to its output moments.

An estimator answers one question for one layer: if each inbound tensor has
elements with mean ``means_in[i]`` and variance ``vars_in[i]``, what are the
mean and variance of the layer's output elements? Estimators of layers with
weights also choose the variance of those weights so the output variance is
``signal_variance``.

All estimates assume training mode (dropout active, normalization layers using
batch statistics), because AutoInit prepares a network for training.

Example:
    >>> class DoublingEstimator(LayerOutputDistributionEstimator):
    ...     def estimate(self, means_in, vars_in):
    ...         return 2.0 * means_in[0], 4.0 * vars_in[0]
"""

import math

from autoinit_nas.maths import gaussian
from autoinit_nas.estimators.cache import GLOBAL_CACHE, round_moment
from autoinit_nas.maths.sanitize import VANISHING_RATIO, Diagnostics, clamp_weight_variance

DEFAULT_ESTIMATOR_CONFIG = {
    "distribution": "truncated_normal",
    "constrain_weights": False,
    "monte_carlo_samples": int(1e7),
    "recurrent_monte_carlo_samples": int(1e4),
    "seed": None,
    "sampling_seed": None,
}


class LayerOutputDistributionEstimator:
    """Base class of every estimator; subclass it and override ``estimate``.

    Attributes available inside ``estimate``:
        layer: the Keras layer (or operation) being estimated.
        estimator_config: the validated ``weight_init_config`` with defaults.
        signal_variance: the variance weighted layers should produce.
        input_shapes / output_shapes: shapes of the inbound and outbound
            tensors of the call being estimated (batch dimension None).
        input_tensors: the inbound KerasTensors (masks left out), one per
            entry of ``means_in``.
        cache: the estimate cache, for memoizing expensive estimates.

    Example:
        >>> class MyCustomOutputDistributionEstimator(LayerOutputDistributionEstimator):
        ...     def estimate(self, means_in, vars_in):
        ...         return means_in[0], 4.0 * vars_in[0]

    Args:
        layer: the layer this estimator describes.
        estimator_config: dict of AutoInit options; defaults filled in.
        signal_variance: target output variance of weighted layers.
    """

    # How the estimate is computed (shown in the supported-layers table):
    # "exact", "quadrature", "sampled", or a short qualified phrase.
    method = "custom"
    # Significant digits of the input moments in memo keys. Probe propagation
    # lowers it to 2: its measured moments differ in every candidate, and the
    # probe corrects the scales that matter afterwards.
    memo_digits = 6

    def __init__(self, layer, estimator_config=None, signal_variance=1.0):
        self.layer = layer
        self.estimator_config = dict(DEFAULT_ESTIMATOR_CONFIG)
        self.estimator_config.update(estimator_config or {})
        self.signal_variance = float(signal_variance)
        self.input_shapes = []
        self.output_shapes = []
        self.input_tensors = []
        self.cache = GLOBAL_CACHE
        # Degenerate statistics met while estimating; AutoInit shares one
        # collector among all estimators of an initialize_model call.
        self.diagnostics = Diagnostics()

    def estimate(self, means_in, vars_in):
        """Return (mean_out, var_out), or a list of such pairs, one per output.

        Args:
            means_in: list with the mean of each inbound tensor.
            vars_in: list with the variance of each inbound tensor.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must override `estimate(self, means_in, vars_in)`."
        )

    # Helpers shared by the built-in estimators.

    def memoized(self, name, signature, moments, compute):
        """Memoize ``compute()`` under (estimator, layer signature, moments).

        ``moments`` are rounded to ``memo_digits`` (6) significant digits, so
        estimates for nearly identical inputs are computed once per process.
        """
        key = (
            type(self).__name__,
            name,
            signature,
            tuple(round_moment(value, self.memo_digits) for value in moments),
            self.estimator_config["monte_carlo_samples"],
            self.estimator_config["recurrent_monte_carlo_samples"],
            self.sampling_seed(),
        )
        return self.cache.get_or_compute(key, compute)

    def sampling_seed(self):
        """The seed Monte Carlo estimates use: ``sampling_seed``, else ``seed``, else 0.

        Part of every memo key, so a sweep that draws each candidate's weights
        from its own ``seed`` but fixes ``sampling_seed`` computes each sampled
        estimate once.
        """
        return sampling_seed_of(self.estimator_config)


class PassThroughEstimator(LayerOutputDistributionEstimator):
    """Identity on the moments: for layers that move or copy elements.

    Reshaping, permuting, flattening, cropping, repeating and nearest-neighbour
    upsampling only rearrange (or duplicate) elements, so the distribution of
    a typical element is unchanged: E[y] = E[x], Var(y) = Var(x). Also the
    fallback for layers with no estimator.
    """

    method = "exact"

    def estimate(self, means_in, vars_in):
        return means_in[0], vars_in[0]


class WeightedLayerEstimator(LayerOutputDistributionEstimator):
    """Base for layers whose weights AutoInit draws.

    For a weight tensor W with i.i.d. zero-mean entries of variance s and an
    input x independent of W, each output of a linear map y = sum_i W_i x_i
    over ``fan_in`` terms has E[y] = 0 and
        Var(y) = fan_in * s * E[x^2],   E[x^2] = Var(x) + E[x]^2.
    (The mean term matters: a non-zero input mean becomes a per-unit offset
    mean_in * sum_i W_i, which is part of the output's spread over units.)
    Choosing s = signal_variance / (fan_in * E[x^2]) gives Var(y) =
    signal_variance.

    A layer called at several places shares its weights. Its scale is chosen
    at the first call the graph walk reaches (topological order from the
    inputs); later calls reuse that scale, and their predicted output variance
    is signal_variance * E[x^2]_later / E[x^2]_first.
    """

    def __init__(self, layer, estimator_config=None, signal_variance=1.0):
        super().__init__(layer, estimator_config, signal_variance)
        # attribute name -> (variance, fan_in, fan_out); filled at first call.
        self.weight_plan = {}

    def plan_weight(self, attribute, variance, fan_in, fan_out):
        """Record weight ``attribute``'s variance; returns the variance recorded.

        Every weight variance goes through here, so it is clamped (once, with
        one warning per ``initialize_model`` call) to the range float32
        weights can hold (``autoinit_nas.maths.sanitize``). A weight already
        planned (a shared layer's later call) keeps its first variance.
        """
        if attribute not in self.weight_plan:
            variance = clamp_weight_variance(variance, self.layer.name, attribute, self.diagnostics)
            self.weight_plan[attribute] = (variance, max(int(fan_in), 1), max(int(fan_out), 1))
        return self.weight_plan[attribute][0]

    def scaled_output_variance(self, attribute, fan_in, fan_out, input_second_moment,
                               target=None):
        """Choose (first call) or reuse the variance of weight ``attribute``.

        The weight variance s makes fan_in * s * E[x^2] equal ``target``
        (default: signal_variance). Returns the predicted variance
        fan_in * s * E[x^2] of the linear output.

        This is the single guard against degenerate input statistics:
        * E[x^2] below ``VANISHING_RATIO * target`` (a dead path: zero, or so
          small that matching it would need a gain above 10^6), or not finite:
          no scale to match, so s = target / fan_in (fan-in scaling: the
          scale a unit-power input, E[x^2] = 1, would get; the predicted
          output keeps the real, vanishing E[x^2]);
        * fan_in == 0 (an empty input): the kernel has no entries and the
          output is constant (variance 0);
        and s itself is clamped to the float32-safe range by ``plan_weight``.
        Each is recorded once per cause for the warning AutoInit issues.
        """
        target = self.signal_variance if target is None else target
        power = float(input_second_moment)
        if attribute not in self.weight_plan:
            if int(fan_in) == 0:
                self.diagnostics.record("empty_input", self.layer.name, f"`{attribute}` has fan-in 0")
                variance = target
            elif math.isfinite(power) and power > VANISHING_RATIO * target:
                variance = target / (int(fan_in) * power)
            else:
                self.diagnostics.record(
                    "vanishing_input", self.layer.name, f"E[x^2] = {power:.3g} into `{attribute}`"
                )
                variance = target / int(fan_in)
            self.plan_weight(attribute, variance, fan_in, fan_out)
        if int(fan_in) == 0:
            return 0.0
        if not math.isfinite(power):
            return target
        return int(fan_in) * self.weight_plan[attribute][0] * power

    def weight_input_power(self, means_in, vars_in, fan_in, centred_count=None, index=0):
        """The input power P in Var(y) = fan_in * s * P for inbound tensor ``index``.

        P = E[x^2] = v + m^2 for i.i.d. zero-mean weights. With
        ``constrain_weights`` every group of ``centred_count`` weights that
        CenteredUnitNorm centres together (default: the unit's fan_in) sums to
        zero, so the weights are exchangeable with E[W_i W_j] = -s / (N - 1)
        and the mean term m^2 Var(sum of one output's fan_in weights) /
        (fan_in s) shrinks to m^2 (N - fan_in) / (N - 1): P = v when N ==
        fan_in (Dense, Conv, the input kernel of recurrent layers).
        """
        mean, var = means_in[index], vars_in[index]
        if not self.estimator_config.get("constrain_weights", False):
            return gaussian.second_moment(mean, var)
        fan_in = max(int(fan_in), 1)
        count = fan_in if centred_count is None else max(int(centred_count), fan_in)
        shrink = (count - fan_in) / (count - 1) if count > 1 else 0.0
        return var + mean * mean * shrink

    # Probe propagation (``AutoInit(propagation="probe")``) measures the
    # layer's output on the probe batch and rescales this weight, which scales
    # the pre-activation output linearly (biases are zero), to make the
    # measured variance signal_variance exactly. None: the layer keeps the
    # scale its estimate chose. With ``probe_bypasses_activation`` the layer's
    # ``activation`` attribute is applied after the linear map (Dense, Conv),
    # and is bypassed while measuring.
    probe_weight = None
    probe_bypasses_activation = False
    # An estimator may define ``run_on_probe(self, inputs, rng)``: the layer's
    # training-mode outputs (numpy arrays) for probe inputs (numpy arrays),
    # computed faster than an eager call (recurrent layers), drawing any
    # randomness from the numpy Generator ``rng``; or None to call the layer.
    # And ``probe_call(self, inputs)``: the layer's training-mode outputs
    # (backend tensors, or ``values.MeasuredOutput`` where the moments come
    # with them) for the probe's input tensors, from a faster equivalent of
    # its call (BatchNormalization's fused op), or None to call the layer.

    def probe_target(self):
        """(weight attribute, layer whose ``activation`` to bypass or None), or None.

        Example:
            >>> import keras
            >>> from autoinit_nas.estimators.core import DenseEstimator
            >>> layer = keras.layers.Dense(2, activation="relu")
            >>> DenseEstimator(layer).probe_target() == ("kernel", layer)
            True
        """
        if self.probe_weight is None:
            return None
        return self.probe_weight, (self.layer if self.probe_bypasses_activation else None)

    # Weight attribute -> the layer attribute holding its initializer, where
    # the name is not simply "<weight>_initializer".
    initializer_attributes = {"recurrent_kernel": "recurrent_initializer"}
    # Bias weights AutoInit resets to zero.
    bias_attributes = ("bias",)

    def weight_owner(self, attribute):
        """(object, attribute) holding weight ``attribute``; dotted names descend."""
        owner = self.layer
        *path, name = attribute.split(".")
        for step in path:
            owner = getattr(owner, step)
        return owner, name

    def initializer_attribute(self, attribute):
        """(object, attribute) holding the initializer of weight ``attribute``."""
        owner, name = self.weight_owner(attribute)
        return owner, self.initializer_attributes.get(name, name + "_initializer")


def sampling_seed_of(config):
    """The seed of sampled estimates (and the probe batch): ``sampling_seed``, else ``seed``, else 0.

    Example:
        >>> sampling_seed_of({"seed": 7, "sampling_seed": None})
        7
    """
    seed = config.get("sampling_seed")
    if seed is None:
        seed = config.get("seed")
    return 0 if seed is None else int(seed)
