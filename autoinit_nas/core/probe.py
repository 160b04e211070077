"""Probe propagation: initialize a model while a batch of synthetic noise flows through it.

Walking the graph, each layer's estimator plans its weights from the probe's measured input
moments, the layer's last linear map is rescaled to the variance measured on the probe, and the
layer's real output goes on to the next layers. The batch and its inputs come from ``probe_batch``,
the tensors and their moments from ``probe_values``. Why, step by step, and what the probe cannot
see: docs/probe.md.
"""

import itertools
import math

import keras
import numpy as np

from autoinit_nas.core import graph, weights
from autoinit_nas.core.probe_batch import (  # noqa: F401 - the probe's public names
    DEFAULT_PROBE_BATCH,
    MAX_BATCH,
    PROBE_ELEMENTS,
    PROBE_STREAM,
    ProbeUnavailable,
    batch_size,
    embedding_vocabularies,
    is_keras_builtin,
    probe_inputs,
)
from autoinit_nas.core.probe_values import (  # noqa: F401
    ProbeValue,
    array_moments,
    tensor_moments,
    value_shape,
)
from autoinit_nas.maths.sanitize import VANISHING_RATIO, clamp_weight_variance
from autoinit_nas.estimators.values import MeasuredOutput, to_numpy


# A layer is rescaled to its measured variance when its probe output holds
# at least this many values: two, the fewest a variance is read from, so in
# effect always. Re-measuring from n values errs by about sqrt(2 / n); keeping
# the estimate's scale instead errs by the spread of the realized weights,
# about sqrt(2 / units) of the variance (frozen per-unit offsets after global
# pooling: 2-5x on real models' heads), and n = batch x units (x positions) is
# always the larger count. A 2-unit head at batch 32 is read from 64 values
# (~18%) where its estimate is 2x off (the keras-io text transformer's logits).
RESCALE_ELEMENTS = 2
# Weights up to this many values keep their unit draw for the rescale (16 MB).
KEEP_UNIT_ELEMENTS = 2**22
# Memo-key precision of estimators called with measured moments.
MEMO_DIGITS = 2


def _invoke(operation, args, kwargs):
    """``operation(*args, **kwargs)``; for Keras's own float32 layers, their ``call`` directly.

    ``Layer.__call__`` (name scopes, masks, autocasting, argument checks)
    costs about as much as a small layer's maths, per layer and per call;
    the probe passes tensors and masks explicitly, so Keras's own layers can
    skip it. Anything else, or a direct call that fails, goes through
    ``__call__``.
    """
    direct = (
        isinstance(operation, keras.layers.Layer)
        and not isinstance(operation, keras.Model)
        and is_keras_builtin(operation)
        and operation.built
        and getattr(getattr(operation, "dtype_policy", None), "name", None) == "float32"
    )
    if direct:
        direct_kwargs = dict(kwargs)
        if not getattr(operation, "_call_has_training_arg", False):
            direct_kwargs.pop("training", None)
        try:
            return operation.call(*args, **direct_kwargs)
        except Exception:  # noqa: BLE001 - __call__ below reports the real error, if any
            pass
    return operation(*args, **kwargs)


def _check_shapes(node, key, outputs):
    """ProbeUnavailable when a layer's probe output contradicts the shape it declared.

    A layer whose call returns another shape than its symbolic output (e.g.
    ``Activation("glu")`` halves the last axis but declares it unchanged)
    breaks every later layer that was built for the declared shape; naming it
    here names the cause, not a victim further down.
    """
    for tensor, probe in zip(node.outputs, outputs):
        declared = tuple(getattr(tensor, "shape", None) or ())
        actual = value_shape(probe.value) if probe.value is not None else declared
        if len(declared) != len(actual) or any(
            d is not None and a is not None and int(d) != int(a) for d, a in zip(declared[1:], actual[1:])
        ):
            raise ProbeUnavailable(
                f"layer '{key}' ({type(node.operation).__name__}) returned shape "
                f"{tuple(actual)} on the probe batch but declares {declared}: layers "
                "built for the declared shape cannot be trusted to run"
            )


class _SeededGenerators:
    """Swap a layer's random generators for ones seeded from the probe seed, then restore them.

    Dropout-like layers draw from a ``SeedGenerator`` seeded at construction
    (randomly unless the user fixed one); the probe's masks must depend on
    ``sampling_seed`` only, or the weights chosen after them would not be
    reproducible. ``object.__setattr__`` keeps Keras from tracking the
    temporary generators as new layer state.
    """

    def __init__(self, operation, seeds):
        self.operation = operation
        self.seeds = seeds
        self.saved = []

    def __enter__(self):
        if not isinstance(self.operation, keras.layers.Layer):
            return self
        for layer in self.operation._flatten_layers(include_self=True, recursive=True):
            for attribute in ("seed_generator", "_seed_generator"):
                current = layer.__dict__.get(attribute)
                if isinstance(current, keras.random.SeedGenerator):
                    self.saved.append((layer, attribute, current))
                    generator = keras.random.SeedGenerator(next(self.seeds))
                    object.__setattr__(layer, attribute, generator)
        return self

    def __exit__(self, *exc):
        for layer, attribute, generator in reversed(self.saved):
            object.__setattr__(layer, attribute, generator)
        return False


class _BypassedActivation:
    """Replace ``layer.activation`` by the identity while measuring a pre-activation."""

    def __init__(self, layer):
        self.layer = layer
        self.saved = None
        self.replaced = False

    def __enter__(self):
        if self.layer is not None and "activation" in vars(self.layer):
            self.saved = vars(self.layer)["activation"]
            object.__setattr__(self.layer, "activation", keras.activations.linear)
            self.replaced = True
        return self

    def __exit__(self, *exc):
        if self.replaced:
            object.__setattr__(self.layer, "activation", self.saved)
        return False


class ProbePropagation:
    """One probe pass: initialize ``model``'s layers in walk order (the steps: docs/probe.md).

    Args:
        model: a graph model (``graph.is_graph_model``).
        estimator_for: ``estimator_for(node, key)`` -> the node's estimator,
            with its shapes set (AutoInit's lookup).
        estimate: ``estimate(estimator, node, key, means, vars)`` -> checked
            list of (mean, var) (AutoInit's call with error notes), or None to
            skip the estimator for this node.
        input_moments: one declared (mean, var) per model input.
        config: the validated ``weight_init_config``.
        signal_variance: the pre-activation variance every rescaled layer gets.
        diagnostics: the call's ``Diagnostics``.
        probe_batch: the fewest examples the probe carries (``batch_size``).
        expand: the walk's ``expand`` predicate (which custom layers to open),
            or None for the walk's default.
    """

    def __init__(self, model, estimator_for, estimate, input_moments, config, signal_variance,
                 diagnostics, probe_batch=DEFAULT_PROBE_BATCH, expand=None):
        self.model = model
        self.estimator_for = estimator_for
        self.estimate = estimate
        self.input_moments = input_moments
        self.config = config
        self.signal_variance = float(signal_variance)
        self.diagnostics = diagnostics
        self.probe_batch = int(probe_batch)
        self.expand = expand
        self.seeds = {}  # (id(estimator), attribute) -> weight seed, once assigned
        self.units = {}  # (id(estimator), attribute) -> unit draw of a small weight, until rescaled
        self.powers = {}  # (id(estimator), attribute) -> power of two its unit draw holds, until rescaled
        self._weight_seeds = []

    def run(self, base_seed, probe_seed):
        """Initialize every layer; returns {entry name: (mean, var)} measured on the probe."""
        self.base_seed = int(base_seed)
        self.mask_seeds = (
            int(np.random.SeedSequence([int(probe_seed), PROBE_STREAM, index]).generate_state(1)[0])
            & 0x7FFFFFFF
            for index in itertools.count()
        )
        self.batch = batch = batch_size(self.model, self.probe_batch)
        self.rng = np.random.default_rng([int(probe_seed), PROBE_STREAM, 1])
        arrays = probe_inputs(self.model, self.input_moments, batch, probe_seed, self.expand)
        values = [ProbeValue(array) for array in arrays]
        # Copies on the variables' device: a read back to the host per
        # variable (BatchNorm's moving statistics) cost more than the copy.
        saved_state = [
            (variable, keras.ops.copy(variable.value))
            for variable in self.model.non_trainable_variables
        ]
        try:
            _, entries = self._walk(values, self.visit)
        finally:
            for variable, value in saved_state:
                variable.assign(value)
        return {key: probe.moments for key, probe in entries.items()}

    def _walk(self, values, visit):
        # Each tensor is dropped (its moments kept) once the walk is past its
        # last reader, so the probe holds less than Keras's own forward pass,
        # which keeps every intermediate until the end.
        options = {} if self.expand is None else {"expand": self.expand}
        return graph.walk(self.model, values, visit, release=ProbeValue.release, **options)

    # The walk's callback.

    def visit(self, node, key, probes_in):
        outputs = self._outputs(node, key, probes_in)
        self.units.clear()  # a weight is rescaled only on the call that drew it
        for probe in outputs:
            try:
                mean, var = probe.moments
            except Exception as error:  # a layer that returned something that is not numbers
                raise ProbeUnavailable(
                    f"layer '{key}' ({type(node.operation).__name__}) returned "
                    f"{type(probe.value).__name__} on the probe batch, not a numeric tensor"
                ) from error
            if not (math.isfinite(mean) and math.isfinite(var)):
                # Overflow, or an empty tensor: scalar propagation's clamps
                # and warnings handle these.
                raise ProbeUnavailable(
                    f"the probe's values at layer '{key}' are not finite (mean {mean}, "
                    f"variance {var})"
                )
        _check_shapes(node, key, outputs)
        return outputs

    def _outputs(self, node, key, probes_in):
        estimator = self.estimator_for(node, key)
        estimator.memo_digits = MEMO_DIGITS
        moments = [probe.moments for probe in probes_in]
        planned = self.estimate(
            estimator, node, key, [m for m, _ in moments], [v for _, v in moments]
        )
        runner = getattr(estimator, "run_on_probe", None)
        target = estimator.probe_target() if hasattr(estimator, "probe_target") else None
        if target is not None and target[1] is not None and "activation" not in vars(target[1]):
            target = None  # no activation attribute to bypass
        if planned is None:
            return self._call(node, key, probes_in, getattr(estimator, "probe_call", None))
        fresh = self._assign_new_weights(estimator, None if runner else target)
        if runner is not None:
            arrays = self._run_numpy(runner, node, key, probes_in)
            if arrays is not None:
                return [
                    ProbeValue(keras.ops.convert_to_tensor(np.asarray(array, np.float32)))
                    for array in arrays
                ]
        if target is None or target[0] not in fresh:
            return self._call(node, key, probes_in, getattr(estimator, "probe_call", None))
        attribute, activation_owner = target
        with _BypassedActivation(activation_owner):
            pre_activation = self._call(node, key, probes_in)
        size = math.prod(value_shape(pre_activation[0].value))
        if size < RESCALE_ELEMENTS:
            # No variance to read from one value: keep the estimate's scale,
            # from the measured input.
            self._finish(estimator, attribute)
            outputs = self._call(node, key, probes_in)
            return [ProbeValue(o.value, moments) for o, moments in zip(outputs, planned)]
        gain = self._rescale(estimator, attribute, pre_activation[0])
        if gain is None or not is_keras_builtin(node.operation) or len(pre_activation) != 1:
            return self._call(node, key, probes_in)
        # Biases are zero, so the rescaled layer's output is its activation of
        # gain * pre-activation (what calling it again would compute, up to
        # float32 rounding of the weights).
        mean, var = pre_activation[0].moments
        scaled = keras.ops.multiply(pre_activation[0].value, gain)
        pre_activation = None  # free it before the activation allocates its output
        activation = getattr(activation_owner, "activation", None) if activation_owner is not None else None
        if activation is None or activation is keras.activations.linear:
            # gain times the measured pre-activation: its moments follow
            # without reading the tensor again (most convs in normalized nets).
            return [ProbeValue(scaled, (mean * gain, var * gain * gain))]
        return [ProbeValue(activation(scaled))]

    def _run_numpy(self, runner, node, key, probes_in):
        """An estimator's numpy runner (recurrent cells) on the probe; ProbeUnavailable if it fails."""
        try:
            return runner([to_numpy(p.value) for p in probes_in], self.rng)
        except Exception as error:  # e.g. an input whose width is not the one the layer was built for
            shapes = [value_shape(p.value) for p in probes_in]
            raise ProbeUnavailable(
                f"layer '{key}' ({type(node.operation).__name__}) failed on the probe batch "
                f"(inputs of shapes {shapes}) with {type(error).__name__}: {error}"
            ) from error

    def _call(self, node, key, probes_in, fast=None):
        """The node's outputs on the probe: ``fast`` (an estimator's ``probe_call``) or the layer's call."""
        kwargs = node.arguments.kwargs
        if fast is not None and not (isinstance(kwargs, dict) and kwargs.get("mask") is not None):
            outputs = fast([p.value for p in probes_in])
            if outputs is not None:
                return [
                    ProbeValue(*value) if isinstance(value, MeasuredOutput) else ProbeValue(value)
                    for value in outputs
                ]
        mapping = {id(t): p.value for t, p in zip(graph.signal_tensors(node), probes_in)}
        args, kwargs = node.arguments.fill_in(mapping)
        operation = node.operation
        if isinstance(operation, keras.layers.Layer):
            kwargs = dict(kwargs, training=True)
        try:
            with _SeededGenerators(operation, self.mask_seeds):
                outputs = _invoke(operation, args, kwargs)
        except Exception as error:  # a layer that cannot run eagerly on the probe
            raise ProbeUnavailable(
                f"layer '{key}' ({type(operation).__name__}) failed on the probe batch with "
                f"{type(error).__name__}: {error}"
            ) from error
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        return [ProbeValue(value) for value in outputs]

    def _assign_new_weights(self, estimator, target):
        """Draw the weights the estimator planned and that are not assigned yet.

        The weight ``target`` names (the one the probe rescales), when it
        can, is assigned at a power of two of the planned scale instead
        (``weights.assign_power_of_two``), for ``_finish`` to bring it to its
        measured scale in place.
        """
        plan = getattr(estimator, "weight_plan", None)
        if not plan:
            return []
        fresh = [attribute for attribute in plan if (id(estimator), attribute) not in self.seeds]
        for attribute in fresh:
            seed = self._next_weight_seed()
            key = (id(estimator), attribute)
            self.seeds[key] = seed
            power = None
            if target is not None and attribute == target[0] and not self.config["constrain_weights"]:
                power = weights.assign_power_of_two(
                    estimator, attribute, self.config["distribution"], seed
                )
            if power is None:
                self._assign(estimator, attribute, seed)
            else:
                self.powers[key] = power
        return fresh

    def _finish(self, estimator, attribute):
        """Bring a power-of-two weight to its plan's variance; returns the factor its output scales by."""
        key = (id(estimator), attribute)
        power = self.powers.pop(key, None)
        if power is None:
            return None
        return weights.finish_power_of_two(
            estimator, attribute, self.config["distribution"], self.seeds[key], power
        )

    def _next_weight_seed(self):
        # weight_seeds(base, n) is a prefix of weight_seeds(base, m) for n < m,
        # so the block is regrown, doubling, instead of redrawn per weight.
        if len(self.seeds) >= len(self._weight_seeds):
            self._weight_seeds = weights.weight_seeds(self.base_seed, 2 * len(self._weight_seeds) + 64)
        return self._weight_seeds[len(self.seeds)]

    def _assign(self, estimator, attribute, seed, zero_biases=True):
        # A large weight's unit draw is redrawn from its seed when the weight
        # is rescaled rather than kept: keeping it would hold a third copy of
        # it (VGG16's first dense kernel is 75 MB at 96x96). Small ones are
        # kept: drawing is most of their cost.
        key = (id(estimator), attribute)
        owner, name = estimator.weight_owner(attribute)
        shape = tuple(weights.weight_variable(owner, name).shape)
        unit = self.units.get(key)
        if unit is None and math.prod(shape) <= KEEP_UNIT_ELEMENTS:
            unit = self.units[key] = weights.unit_draw(self.config["distribution"], shape, seed)
        weights.assign_weight(
            estimator, attribute, self.config["distribution"], seed,
            self.config["constrain_weights"], unit=unit, zero_biases=zero_biases,
        )

    def _rescale(self, estimator, attribute, probe):
        """Redraw ``attribute`` so the measured pre-activation variance is signal_variance.

        Returns the factor the layer's linear output was multiplied by, or
        None when it is not known (the layer is then called again). A dead
        path keeps the estimate's scale: its weight, drawn at a power of two,
        is brought to the plan's variance, and the output scales by that
        factor (the time-series transformer's attention after a one-channel
        LayerNormalization: calling it again cost a second attention pass).
        """
        _, measured = probe.moments
        if not math.isfinite(measured):
            self._finish(estimator, attribute)
            return None
        if measured <= VANISHING_RATIO * self.signal_variance:
            return self._finish(estimator, attribute)
        variance, fan_in, fan_out = estimator.weight_plan[attribute]
        power = self.powers.get((id(estimator), attribute))
        # The variance the weight holds while measured.
        current = variance if power is None else weights.power_variance(self.config["distribution"], power)
        rescaled = clamp_weight_variance(
            current * self.signal_variance / measured, estimator.layer.name, attribute,
            self.diagnostics,
        )
        estimator.weight_plan[attribute] = (rescaled, fan_in, fan_out)
        if power is not None:
            return self._finish(estimator, attribute)
        self._assign(estimator, attribute, self.seeds[(id(estimator), attribute)], zero_biases=False)
        return math.sqrt(rescaled / variance) if variance > 0 else None
