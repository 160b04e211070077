"""AutoInit: data-free, topology-aware weight initialization for Keras 3 models."""

import random
import warnings

import keras

from autoinit_nas.core import graph, loading, probe, weights
from autoinit_nas.estimators.cache import GLOBAL_CACHE
from autoinit_nas.core.config import (
    validate_mapping,
    validate_moment,
    validate_probe_batch,
    validate_weight_init_config,
)
from autoinit_nas.maths.sanitize import AutoInitWarning, Diagnostics, checked_moments
from autoinit_nas.estimators.base import (
    PassThroughEstimator,
    WeightedLayerEstimator,
    sampling_seed_of,
)
from autoinit_nas.estimators.registry import EstimatorRegistry

PROPAGATIONS = ("probe", "scalar")


class AutoInit:
    """Initialize a Keras model so every weighted layer outputs unit variance.

    AutoInit walks the model's layer graph from its inputs, tracking the
    signal through every layer, and draws each weighted layer's weights with
    the variance that makes its output variance ``signal_variance``. By
    default a probe batch of synthetic Gaussian noise carries the signal
    (``propagation="probe"``, ``autoinit_nas.core.probe``); the paper's
    scalar propagation of one mean and variance per tensor is
    ``propagation="scalar"``. No data and no training are needed.

    Example:
        >>> import keras
        >>> from autoinit_nas import AutoInit
        >>> x = keras.Input((16,))
        >>> h = keras.layers.Dense(32, activation="relu")(x)
        >>> model = keras.Model(x, keras.layers.Dense(1)(h))
        >>> model, estimates = AutoInit().initialize_model(model, return_estimates=True)
        >>> round(estimates[model.layers[-1].name][1], 3)
        1.0

    Args:
        weight_init_config: dict with any of ``distribution``
            ("truncated_normal" (default), "untruncated_normal", "uniform",
            "orthogonal"), ``constrain_weights`` (False; True keeps each
            unit's incoming weights centred at their initial scale during
            training, via ``CenteredUnitNorm``), ``monte_carlo_samples``
            (1e7 scalar draws for softmax-like functions),
            ``recurrent_monte_carlo_samples`` (1e4 mean-field chains for
            recurrent layers), ``seed`` (None: fresh weights each call; an
            int: the same weights every time) and ``sampling_seed`` (the
            seed of Monte Carlo estimates; None: ``seed``, else 0).
        input_data_mean: mean of the input data (a float, or one per input).
        input_data_var: variance of the input data (a float, or one per input).
        custom_distribution_estimators: dict mapping layer classes to
            ``LayerOutputDistributionEstimator`` subclasses; looked up along
            each layer's MRO, before the built-in ones.
        signal_variance: the output variance every weighted layer aims for.
        custom_objects: custom Keras objects for building from a config
            (may also be given to ``initialize_model``).
        cache: an ``EstimateCache`` for expensive estimates (default: the
            process-wide one).
        propagation: "probe" (default): a batch of synthetic Gaussian noise
            with the input moments flows through the model as it is
            initialized, and each layer's last linear map is scaled for the
            variance measured on it (``autoinit_nas.core.probe``); exact for
            pooling, global pooling, depth and any activation, still without
            data. "scalar": the paper's propagation of one mean and variance
            per tensor (reproduces the paper). A model the probe cannot run
            through falls back to "scalar" with a warning.
        probe_batch: the fewest examples the probe carries (default 32:
            use the batch size you train with, which is what
            BatchNormalization and global pooling will see: statistics over
            B examples read the spread between examples at (B - 1) / B).
            Models whose largest intermediate (attention scores included) is
            small get more, up to 1024, for a more precise reading at no real
            cost. ``initialize_model`` may override it per call. Trade-off:
            the probe is one training-mode forward pass at this batch, taken
            layer by layer; it drops each tensor after its last reader, so
            its memory stays within that of Keras's own forward pass at the
            same batch (which keeps every intermediate), and its time grows
            with the batch as a forward pass does.

    Attributes:
        propagation_used: after ``initialize_model``, the propagation that
            actually ran: "probe", or "scalar" (asked for, or after the probe
            fell back with an ``AutoInitWarning(cause="probe_unavailable")``);
            None before the first call.
    """

    def __init__(
        self,
        weight_init_config=None,
        input_data_mean=0.0,
        input_data_var=1.0,
        custom_distribution_estimators=None,
        signal_variance=1.0,
        custom_objects=None,
        cache=None,
        propagation="probe",
        probe_batch=probe.DEFAULT_PROBE_BATCH,
    ):
        self.weight_init_config = validate_weight_init_config(weight_init_config)
        self.input_data_mean = self._validate_input_moments("input_data_mean", input_data_mean)
        self.input_data_var = self._validate_input_moments("input_data_var", input_data_var)
        self.signal_variance = validate_moment("signal_variance", signal_variance, allow_zero=False)
        self.registry = EstimatorRegistry(custom_distribution_estimators)
        self.custom_distribution_estimators = dict(custom_distribution_estimators or {})
        self.custom_objects = validate_mapping("custom_objects", custom_objects)
        if cache is not None and not callable(getattr(cache, "get_or_compute", None)):
            raise TypeError(
                "`cache` must be an EstimateCache (anything with get_or_compute(key, compute)) "
                f"or None. Received: {cache!r} of type {type(cache).__name__}"
            )
        self.cache = GLOBAL_CACHE if cache is None else cache
        if propagation not in PROPAGATIONS:
            raise ValueError(
                f"`propagation` must be one of {list(PROPAGATIONS)}. "
                f"Received: propagation={propagation!r}"
            )
        self.propagation = propagation
        self.probe_batch = validate_probe_batch(probe_batch)
        self.propagation_used = None
        self.mean_var_estimates = {}
        self.unsupported_layers = []
        self.model = None

    @staticmethod
    def _validate_input_moments(name, value):
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError(f"`{name}` must not be empty. Received: {name}={value!r}")
            return [validate_moment(name, item) for item in value]
        return validate_moment(name, value)

    def initialize_model(self, model, return_estimates=False, custom_objects=None, safe_mode=True,
                         probe_batch=None):
        """Initialize ``model``'s weights in place and return it.

        Args:
            model: a built ``keras.Model`` (Functional or Sequential, possibly
                with nested models), a model config dict (what
                ``model.get_config()`` or ``model.to_json()`` produce), or a
                JSON string; Keras 3 and tf.keras 2 configs are both read.
            return_estimates: also return {entry name: (mean, var)} of every
                layer's predicted output (first output for multi-output
                layers; under probe propagation, what the probe batch
                measured after initialization). Nested layers are keyed
                "outer/inner"; a layer called
                n > 1 times has entries "name@0" ... "name@{n-1}" plus "name"
                for its first call.
            custom_objects: custom Keras objects needed to build a config.
            safe_mode: building a config never runs code from it: Lambda
                layers are refused. Pass False only for configs you trust.
            probe_batch: this call's ``probe_batch`` (None: the instance's);
                engines pass the trial's real batch size here.

        Returns:
            The model, or (model, estimates) when ``return_estimates``.
        """
        objects = dict(self.custom_objects)
        objects.update(validate_mapping("custom_objects", custom_objects))
        if not isinstance(safe_mode, bool):
            raise TypeError(f"`safe_mode` must be True or False. Received: safe_mode={safe_mode!r}")
        batch = self.probe_batch if probe_batch is None else validate_probe_batch(probe_batch)
        self.propagation_used = None
        if isinstance(model, keras.Model):
            model = self._ensure_graph(model)
            estimates = self._initialize(self._walkable(model), batch)
        else:
            model = self._ensure_graph(
                loading.load_model(model, objects, safe_mode, defer_initializers=True)
            )
            estimates = self._initialize(self._walkable(model), batch)
            loading.restore_deferred(model, objects)
        self.model = model
        self.mean_var_estimates = estimates
        if return_estimates:
            return model, estimates
        return model

    # Internals.

    @staticmethod
    def _ensure_graph(model):
        if isinstance(model, keras.Sequential) and not model.built:
            raise ValueError(
                f"Sequential model '{model.name}' is not built and declares no input shape, "
                "so AutoInit cannot know its fan-ins. Start it with keras.Input(shape=...) "
                "or call model.build((None, ...)) before initialize_model."
            )
        return model

    @staticmethod
    def _walkable(model):
        """The model itself, or for a subclassed model the graph its call() traces."""
        if graph.is_graph_model(model):
            return model
        shapes = getattr(model, "_build_shapes_dict", None)
        if not shapes:
            state = (
                "was built without recording its input shapes (Keras could not run its call() "
                "symbolically either, which usually means call() cannot be traced)"
                if model.built else "is not built"
            )
            raise ValueError(
                f"Subclassed model '{model.name}' ({type(model).__name__}) {state}, so AutoInit "
                "cannot know its input shapes. Call model.build(input_shape), or call it once "
                "on a batch, before initialize_model."
            )
        input_shapes = [(None,) + tuple(shape)[1:] for shape in shapes.values()]
        return graph.trace(model, input_shapes)

    def _input_moments(self, count):
        means = self.input_data_mean if isinstance(self.input_data_mean, list) else [self.input_data_mean] * count
        variances = self.input_data_var if isinstance(self.input_data_var, list) else [self.input_data_var] * count
        if len(means) != count or len(variances) != count:
            raise ValueError(
                f"The model has {count} inputs; `input_data_mean` and `input_data_var` must be "
                f"floats or lists of {count}. Received: {len(means)} means, {len(variances)} variances."
            )
        return list(zip(means, variances))

    def _initialize(self, model, probe_batch):
        """Initialize graph model ``model`` in one walk; returns {entry name: (mean, var)}.

        The walk (``graph.walk``) visits every call node from the inputs to
        the outputs, each after the nodes it reads; it descends into nested
        models, traced subclassed models, and custom layers that have no
        estimator (``_Call.expand``), keying what it finds "outer/inner". At
        each node the layer's estimator (looked up along its class's MRO,
        the user's first; a pass-through for a layer without one) takes the
        moments of the node's inputs and gives those of its outputs, and a
        weighted layer's estimator plans each weight's variance so that its
        output has variance ``signal_variance``.

        Under probe propagation (the default) the walk carries a batch of
        synthetic noise instead (``probe.ProbePropagation``): each layer's
        weights are drawn as the probe reaches it and rescaled for the
        variance measured there, and the estimates are the probe's
        measurements. A model the probe cannot run falls back to scalar with
        a warning, and nothing the failed attempt noted survives. Under
        scalar propagation one (mean, var) flows per tensor and the planned
        weights are drawn after the walk, each from its own seed.

        Warnings (layers without estimators, custom layers left whole,
        degenerate statistics) are held until the propagation that ran is
        known, then issued once each, pointing at the caller of
        ``initialize_model``.
        """
        input_moments = self._input_moments(len(graph.graph_of(model)[0]))
        if self.propagation == "probe":
            call = _Call(self)
            entries = self._probe(model, call, input_moments, probe_batch)
            if entries is not None:
                call.finish(measured=True)
                self.propagation_used = "probe"
                return entries
        call = _Call(self)
        _, entries = graph.walk(model, input_moments, call.visit, expand=call.expand)
        self._apply_weights(call.estimators)
        call.finish(measured=False)
        self.propagation_used = "scalar"
        return entries

    def _probe(self, model, call, input_moments, probe_batch):
        """The probe's estimates, or None (with a warning) when the probe cannot run through ``model``."""
        config = self.weight_init_config
        try:
            return probe.ProbePropagation(
                model, call.estimator_for, call.estimate_if_needed, input_moments, config,
                self.signal_variance, call.diagnostics, probe_batch, expand=call.expand,
            ).run(self._weight_base_seed(), sampling_seed_of(config))
        except probe.ProbeUnavailable as reason:
            warnings.warn(
                AutoInitWarning(
                    f"Probe propagation is not possible for model '{model.name}': {reason}. "
                    "Falling back to scalar propagation for this model.",
                    cause="probe_unavailable",
                ),
                stacklevel=4,  # _probe, _initialize, initialize_model, the caller
            )
        return None

    def _weight_base_seed(self):
        """``seed``, or a fresh one when it is None (new weights every call)."""
        seed = self.weight_init_config["seed"]
        return random.SystemRandom().randrange(2**31) if seed is None else seed

    def _apply_weights(self, estimators):
        config = self.weight_init_config
        weighted = [e for e in estimators.values() if isinstance(e, WeightedLayerEstimator)]
        total = sum(len(e.weight_plan) for e in weighted)
        seeds = iter(weights.weight_seeds(self._weight_base_seed(), total))
        for estimator in weighted:
            weights.apply_plan(estimator, config["distribution"], seeds, config["constrain_weights"])


class _Call:
    """One walk's state: an estimator per layer, diagnostics, and warnings held until the end.

    Its methods are the callbacks the walk (scalar) or the probe receives.
    A fresh one starts the scalar walk after a probe fallback, so nothing
    the probe noted stands.
    """

    def __init__(self, autoinit):
        self.autoinit = autoinit
        self.estimators = {}  # id(layer) -> its estimator, shared by all its calls
        self.diagnostics = Diagnostics()
        self.unsupported = {}  # class name -> first layer name; warned once the propagation is known
        self.unopened = {}  # id(layer) -> its warning, issued for the propagation that ran
        self.custom_classes = set(autoinit.custom_distribution_estimators.values())
        autoinit.unsupported_layers = self.unsupported_layers = []

    def expand(self, layer):
        # A custom layer is opened only when nothing is registered for it.
        return self.autoinit.registry.lookup(type(layer)) is None

    def estimator_for(self, node, key):
        """The node's layer's estimator (created at its first call), with this call's shapes set."""
        operation = node.operation
        estimator = self.estimators.get(id(operation))
        if estimator is None:
            autoinit = self.autoinit
            estimator_class = autoinit.registry.lookup(type(operation))
            if estimator_class is None:
                estimator_class = PassThroughEstimator
                self.unsupported_layers.append(key)
                self._hold_unopened(operation, key)
                self.unsupported.setdefault(type(operation).__name__, operation.name)
            estimator = estimator_class(operation, autoinit.weight_init_config, autoinit.signal_variance)
            estimator.cache = autoinit.cache
            estimator.registry = autoinit.registry
            estimator.diagnostics = self.diagnostics
            self.estimators[id(operation)] = estimator
        estimator.node = node
        estimator.input_tensors = graph.signal_tensors(node)
        estimator.input_shapes = [tuple(tensor.shape) for tensor in estimator.input_tensors]
        estimator.output_shapes = [tuple(tensor.shape) for tensor in node.outputs]
        return estimator

    def estimate(self, estimator, node, key, means_in, vars_in):
        """The estimator's checked output moments; an error gets a note naming the layer."""
        means_in = [float(mean) for mean in means_in]
        vars_in = [float(var) for var in vars_in]
        try:
            result = estimator.estimate(means_in, vars_in)
        except Exception as error:
            if hasattr(error, "add_note"):
                error.add_note(
                    f"(raised by {type(estimator).__name__}.estimate for layer '{key}' of "
                    f"class {type(node.operation).__name__}, input moments "
                    f"{list(zip(means_in, vars_in))})"
                )
            raise
        return checked_moments(result, type(estimator).__name__, key, len(node.outputs), self.diagnostics)

    def estimate_if_needed(self, estimator, node, key, means_in, vars_in):
        # The probe measures every layer itself; only estimators that choose
        # weights, and users' own (whose contract is to be called), need to run.
        if isinstance(estimator, WeightedLayerEstimator) or type(estimator) in self.custom_classes:
            return self.estimate(estimator, node, key, means_in, vars_in)
        return None

    def visit(self, node, key, moments_in):
        """The scalar walk's callback: the node's estimate from its input moments."""
        estimator = self.estimator_for(node, key)
        return self.estimate(estimator, node, key, [m for m, _ in moments_in], [v for _, v in moments_in])

    def _hold_unopened(self, operation, key):
        reason = graph.unopened_reason(operation)
        if reason is not None and id(operation) not in self.unopened:
            self.unopened[id(operation)] = AutoInitWarning(
                f"AutoInit could not open custom layer '{key}' ({type(operation).__name__}): "
                f"{reason}. It is handled whole, as a layer without an estimator.",
                cause="unopened", layers=(key,),
            )

    def finish(self, measured):
        """Issue the held warnings, saying what the propagation that ran did (``measured``: the probe)."""
        for warning in self.unopened.values():
            warnings.warn(warning, stacklevel=4)  # finish, _initialize, initialize_model, the caller
        for class_name, layer_name in self.unsupported.items():
            # record_unsupported, finish, _initialize, initialize_model, the caller
            self.diagnostics.record_unsupported(layer_name, class_name, stacklevel=5, measured=measured)
        self.diagnostics.emit(stacklevel=5)  # emit, finish, _initialize, initialize_model, the caller
