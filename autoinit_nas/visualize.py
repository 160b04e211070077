"""Signal-propagation plots: AutoInit's predictions against what the network does.

``AutoInitVisualizer`` feeds the same Gaussian noise to an AutoInit copy and a
Keras-default copy of a model and lines up, layer by layer, the predicted and
measured mean and variance: a table, and on request two PNG plots. Needs the
``results`` extra (pandas, matplotlib).

Example:
    >>> import keras
    >>> from autoinit_nas import AutoInitVisualizer
    >>> x = keras.Input((16,), name="x")
    >>> h = keras.layers.Dense(32, activation="relu", name="hidden")(x)
    >>> model = keras.Model(x, keras.layers.Dense(1, name="head")(h))
    >>> frame = AutoInitVisualizer().visualize(model, batch_size=64)
    >>> list(frame["layer"])
    ['x', 'hidden', 'head']
"""

import math
import os
import warnings

import keras
import numpy as np

try:
    import pandas as pd
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "AutoInitVisualizer needs pandas and matplotlib, which come with the `results` extra: "
        "pip install 'autoinit_nas[results]'."
    ) from error

from autoinit_nas.core import graph
from autoinit_nas.core.autoinit import AutoInit
from autoinit_nas.core.loading import load_model
from autoinit_nas.core.config import validate_moment
from autoinit_nas.core.measure import measure_moments
from autoinit_nas.core.probe_batch import synthetic_inputs
from autoinit_nas.core.weights import AutoInitInitializer
from autoinit_nas.estimators.layers import CenteredUnitNorm, WeightedSum

COLUMNS = [
    "layer",
    "class",
    "depth_index",
    "predicted_mean",
    "predicted_var",
    "autoinit_mean",
    "autoinit_var",
    "default_mean",
    "default_var",
    "log2_error",
]


class AutoInitVisualizer:
    """Compare AutoInit's predicted signal with the measured one, layer by layer.

    Example:
        >>> visualizer = AutoInitVisualizer()
        >>> frame = visualizer.visualize(model, path="out/mlp")   # out/mlp_variance.png, out/mlp_mean.png
        >>> frame[["layer", "predicted_var", "autoinit_var", "default_var"]]
        >>> AutoInitVisualizer.summarize(frame)["median_log2_error"]

    After ``visualize``, ``paths`` holds the PNG files written (empty when
    none were), and ``autoinit_model`` / ``default_model`` the two copies.
    """

    def __init__(self):
        self.paths = []
        self.autoinit_model = None
        self.default_model = None

    def visualize(
        self,
        model,
        path=None,
        batch_size=256,
        input_data_mean=0.0,
        input_data_var=1.0,
        seed=0,
        autoinit=None,
        training=True,
        show=False,
        custom_objects=None,
        safe_mode=True,
        propagation="probe",
    ):
        """Predicted vs measured mean and variance of every layer's output.

        Two independent copies are made, and ``model`` itself is never
        changed (a model is cloned twice; a config or JSON is built with its
        own initializers, giving the default copy, which is then cloned):

        * the **AutoInit copy** is initialized by ``autoinit`` (default:
          ``AutoInit(weight_init_config={"seed": seed}, propagation=propagation)``
          with these input
          moments); its ``return_estimates`` are the predicted columns;
        * the **default copy** keeps the weights each layer's own initializer
          draws, as Keras would (layers without a seed draw from Keras's
          global generator: ``keras.utils.set_random_seed`` makes them
          repeatable). A model that already carries AutoInit's initializers
          reproduces AutoInit here, and a warning says so.

        Both copies see the same batch: ``batch_size`` samples of
        N(``input_data_mean``, ``input_data_var``) noise per model input,
        drawn with ``seed``.

        Example:
            >>> frame = AutoInitVisualizer().visualize(model, path="out/run")
            >>> frame.loc[frame["log2_error"] > 1, ["layer", "class"]]   # layers off by more than 2x

        Args:
            model: a Functional or built Sequential ``keras.Model``, a model
                config dict, or a JSON string (``model.to_json()``; tf.keras 2
                files included), as ``AutoInit.initialize_model`` accepts.
            path: where to save the plots, or None. A directory (existing, or
                ending in a path separator) gets ``variance.png`` and
                ``mean.png``; anything else is a prefix: ``<path>_variance.png``
                and ``<path>_mean.png``. Parent directories are created.
            batch_size: number of noise samples per input.
            input_data_mean: mean of the noise (a float, or one per input).
            input_data_var: variance of the noise (a float, or one per input).
            seed: seeds the noise and, when ``autoinit`` is None, AutoInit.
            autoinit: an ``AutoInit`` instance to use instead of the default
                one; its ``input_data_mean`` / ``input_data_var`` should match
                the noise (a warning says when they do not).
            training: measure in training mode (dropout active, batch
                statistics), which is what AutoInit predicts.
            show: also show the plots with pyplot's current backend (they are
                drawn, and saved, with Agg otherwise).
            custom_objects: custom Keras objects needed to build a config.
            safe_mode: building a config never runs code from it (Lambda
                layers are refused); pass False only for configs you trust.
                (A ``keras.Model`` is cloned as it is: its code already runs.)
            propagation: "probe" (AutoInit's default) or "scalar" (the
                paper's), when ``autoinit`` is None. Under "probe" the
                predicted columns are what AutoInit's own probe batch (an
                independent N(mean, var) sample) measured.

        Returns:
            A pandas DataFrame with one row per estimate entry, in walk order:
            ``layer`` (entry name: "outer/inner" inside nested models,
            "name@i" for repeated calls), ``class``, ``depth_index`` (position
            in walk order), ``predicted_mean`` / ``predicted_var``,
            ``autoinit_mean`` / ``autoinit_var``, ``default_mean`` /
            ``default_var`` (measured), and ``log2_error``
            (|log2(autoinit_var / predicted_var)|, NaN where undefined).
        """
        batch_size = _checked_count("batch_size", batch_size)
        given = autoinit is not None
        if not given:
            autoinit = AutoInit(
                weight_init_config={"seed": seed},
                input_data_mean=input_data_mean,
                input_data_var=input_data_var,
                custom_objects=custom_objects,
                propagation=propagation,
            )
        elif not isinstance(autoinit, AutoInit):
            raise TypeError(
                f"`autoinit` must be an AutoInit instance or None. Received: {type(autoinit).__name__}"
            )

        default_model, autoinit_model = self._copies(model, autoinit, custom_objects, safe_mode)
        noise_mean, noise_var = _per_input(input_data_mean, input_data_var, default_model)
        if given:
            assumed = _per_input(autoinit.input_data_mean, autoinit.input_data_var, default_model)
            if assumed != (noise_mean, noise_var):
                warnings.warn(
                    f"The noise has means {noise_mean} and variances {noise_var}, but the given "
                    f"AutoInit assumes means {assumed[0]} and variances {assumed[1]}; predictions "
                    "and measurements will disagree by construction.",
                    stacklevel=2,
                )
        batch = noise_batch(default_model, batch_size, noise_mean, noise_var, seed)
        autoinit_model, predicted = autoinit.initialize_model(autoinit_model, return_estimates=True)
        measured_autoinit = measure_moments(autoinit_model, batch, training=training)
        measured_default = measure_moments(default_model, batch, training=training)
        self.autoinit_model, self.default_model = autoinit_model, default_model

        classes = _EntryClasses(autoinit_model)
        missing = (math.nan, math.nan)
        rows = []
        for index, (key, (mean, var)) in enumerate(predicted.items()):
            autoinit_mean, autoinit_var = measured_autoinit.get(key, missing)
            default_mean, default_var = measured_default.get(key, missing)
            rows.append({
                "layer": key,
                "class": classes(key),
                "depth_index": index,
                "predicted_mean": float(mean),
                "predicted_var": float(var),
                "autoinit_mean": autoinit_mean,
                "autoinit_var": autoinit_var,
                "default_mean": default_mean,
                "default_var": default_var,
                "log2_error": log2_error(autoinit_var, var),
            })
        frame = pd.DataFrame(rows, columns=COLUMNS)

        self.paths = []
        if path is not None or show:
            self.paths = plot(frame, path, autoinit.signal_variance, autoinit_model.name, show)
        return frame

    @staticmethod
    def summarize(frame):
        """Headline numbers of a ``visualize`` table, as a dict.

        Example:
            >>> AutoInitVisualizer.summarize(frame)["final_autoinit_var"]
            0.98...

        Returns:
            ``median_log2_error``, ``max_log2_error`` (NaN ignored), ``worst_layer``,
            and ``final_layer``, ``final_{predicted,autoinit,default}_var`` of the last entry.
        """
        missing = [column for column in COLUMNS if column not in frame.columns]
        if missing or frame.empty:
            raise ValueError(
                "`frame` must be a non-empty table returned by AutoInitVisualizer.visualize. "
                f"Received: {len(frame)} rows, missing columns {missing}"
            )
        errors = frame["log2_error"].dropna()
        last = frame.iloc[-1]
        return {
            "median_log2_error": float(errors.median()) if len(errors) else math.nan,
            "max_log2_error": float(errors.max()) if len(errors) else math.nan,
            "worst_layer": str(frame.loc[errors.idxmax(), "layer"]) if len(errors) else None,
            "final_layer": str(last["layer"]),
            "final_predicted_var": float(last["predicted_var"]),
            "final_autoinit_var": float(last["autoinit_var"]),
            "final_default_var": float(last["default_var"]),
        }

    @staticmethod
    def _copies(model, autoinit, custom_objects, safe_mode):
        """(default copy, copy for AutoInit): two independent models with Keras's initializers."""
        objects = _custom_objects(autoinit, custom_objects)
        if isinstance(model, keras.Model):
            if not graph.is_graph_model(model):
                raise ValueError(
                    f"AutoInitVisualizer needs a Functional or built Sequential model to measure "
                    f"layer by layer. Received: '{model.name}' of class {type(model).__name__} "
                    "(subclassed, or a Sequential model that is not built)."
                )
            base = model
            if _carries_autoinit(model):
                warnings.warn(
                    f"Model '{model.name}' was already initialized by AutoInit: its layers carry "
                    "AutoInitInitializer, so the 'default' copy reproduces AutoInit's weights. "
                    "Pass the model as it was built (or its config) to compare with Keras's default.",
                    stacklevel=3,
                )
            # The model's code already runs in this process: cloning it (Lambda layers
            # included) loads nothing from outside, so safe mode does not apply.
            safe_mode = False
            default = _clone(base, objects, safe_mode)
        else:
            # Built once from the config with its own initializers; that build is the default copy.
            default = _build_from_config(model, autoinit, objects, safe_mode)
            base = default
        return default, _clone(base, objects, safe_mode)


def log2_error(measured_var, predicted_var, signed=False):
    """|log2(measured / predicted)|, NaN unless both are positive and finite.

    The one variance error (this table's and the benchmarks'); ``signed`` keeps the sign.

    Example:
        >>> log2_error(2.0, 1.0), log2_error(0.5, 1.0, signed=True)
        (1.0, -1.0)
    """
    try:
        measured, predicted = float(measured_var), float(predicted_var)
    except (TypeError, ValueError):
        return math.nan
    if not (0.0 < measured < math.inf and 0.0 < predicted < math.inf):
        return math.nan
    ratio = math.log2(measured / predicted)
    return ratio if signed else abs(ratio)


def noise_batch(model, batch_size, means, variances, seed):
    """One float32 array of N(mean, var) noise per model input, shape (batch_size, ...).

    Drawn by ``probe_batch.synthetic_inputs`` (ids for a float input that feeds an Embedding).

    Example:
        >>> [array.shape for array in noise_batch(model, 8, [0.0], [1.0], seed=0)]
        [(8, 16)]

    Raises:
        ValueError: for an integer or boolean input, or an unknown non-batch dimension.
    """
    for tensor in graph.graph_of(model)[0]:
        layer = graph.producer(tensor)
        name = layer.name if layer is not None else getattr(tensor, "name", "input")
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        if not dtype.startswith(("float", "bfloat")):
            raise ValueError(
                f"AutoInitVisualizer feeds Gaussian noise, so every model input must be floating "
                f"point. Received: input '{name}' of model '{model.name}' with dtype {dtype} "
                "(integer inputs, such as token ids for an Embedding, are not supported)."
            )
        if None in tuple(tensor.shape)[1:]:
            raise ValueError(
                f"AutoInitVisualizer needs every non-batch dimension of the inputs to draw a noise "
                f"batch. Received: input '{name}' of model '{model.name}' with shape "
                f"{tuple(tensor.shape)}. Build the model with a fixed shape, e.g. keras.Input((100, 8))."
            )
    arrays = synthetic_inputs(model, batch_size, np.random.default_rng(seed), list(zip(means, variances)))
    return [array.astype("float32") for array in arrays]


def output_path(path, name):
    """Where ``name`` goes for ``path``: inside it if a directory, else ``<path>_<name>``.

    A directory is one that exists or a path ending in a separator. Parent
    directories are created.

    Example:
        >>> output_path("out/run", "variance.png")
        'out/run_variance.png'
    """
    text = os.fspath(path)
    if os.path.isdir(text) or text.endswith(("/", os.sep)):
        os.makedirs(text, exist_ok=True)
        return os.path.join(text, name)
    parent = os.path.dirname(text)
    if parent:
        os.makedirs(parent, exist_ok=True)
    return f"{text}_{name}"


def plot(frame, path=None, signal_variance=1.0, title="model", show=False):
    """Draw the variance and mean plots of a ``visualize`` table; returns the files written.

    Predicted values are a line, measured ones markers (AutoInit: circles,
    Keras default: crosses), against ``depth_index``; the variance axis is
    logarithmic with a dashed line at ``signal_variance``. Figures are drawn
    with matplotlib's Agg canvas (no display needed) unless ``show``.

    Example:
        >>> plot(frame, "out/run")
        ['out/run_variance.png', 'out/run_mean.png']
    """
    written = []
    for quantity in ("variance", "mean"):
        figure = _draw(frame, quantity, signal_variance, title, show)
        if path is not None:
            target = output_path(path, f"{quantity}.png")
            figure.savefig(target, dpi=110, bbox_inches="tight")
            written.append(target)
    if show:
        import matplotlib.pyplot as plt

        plt.show()
    return written


def _draw(frame, quantity, signal_variance, title, show):
    if show:
        import matplotlib.pyplot as plt

        figure = plt.figure()
    else:
        from matplotlib.figure import Figure

        figure = Figure()  # its own Agg canvas: no pyplot state, no display
    count = len(frame)
    labelled = count <= 80
    figure.set_size_inches(max(8.0, 0.16 * count + 2.0), 6.5 if labelled else 4.5)
    axes = figure.add_subplot(1, 1, 1)
    x = frame["depth_index"].to_numpy()
    short = "var" if quantity == "variance" else "mean"
    axes.plot(x, frame[f"predicted_{short}"], "-", color="tab:blue", lw=1.5, label="predicted (AutoInit)")
    axes.plot(x, frame[f"autoinit_{short}"], "o", color="tab:green", ms=4, label="measured, AutoInit init")
    axes.plot(x, frame[f"default_{short}"], "x", color="tab:red", ms=5, label="measured, Keras default init")
    if quantity == "variance":
        values = frame[["predicted_var", "autoinit_var", "default_var"]].to_numpy(dtype=float)
        if np.any(values > 0):
            axes.set_yscale("log")
        axes.axhline(signal_variance, color="grey", ls="--", lw=1,
                     label=f"signal variance {signal_variance:g}")
        axes.set_ylabel("output variance")
    else:
        axes.axhline(0.0, color="grey", ls=":", lw=1)
        axes.set_ylabel("output mean")
    if labelled:
        axes.set_xticks(x)
        axes.set_xticklabels(frame["layer"], rotation=90, fontsize=6)
    axes.set_xlabel("layer (walk order)")
    axes.set_title(f"{title}: output {quantity} by layer")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    return figure


class _EntryClasses:
    """Class name of the operation behind an entry name ("outer/inner@1" ...)."""

    def __init__(self, model):
        self.model = model
        self.operations = {}

    def __call__(self, key):
        container, operation = self.model, None
        for part in key.split("/"):
            if operation is not None:
                container = _graph_view(operation)
                if container is None:
                    return "?"
            name, _, index = part.rpartition("@")
            if not (name and index.isdigit()):
                name = part
            operation = self._named(container).get(name)
            if operation is None:
                return "?"
        return type(operation).__name__

    def _named(self, container):
        if id(container) not in self.operations:
            inputs, _ = graph.graph_of(container)
            named = {}
            for tensor in inputs:
                layer = graph.producer(tensor)
                if layer is not None:
                    named[layer.name] = layer
            for node in graph.ordered_nodes(container):
                named.setdefault(node.operation.name, node.operation)
            self.operations[id(container)] = named
        return self.operations[id(container)]


def _graph_view(operation):
    if graph.is_graph_model(operation):
        return operation
    traces = getattr(operation, "__dict__", {}).get("_autoinit_traces") or {}
    return next(iter(traces.values()), None)


def _clone(model, objects, safe_mode):
    from keras.src.saving.serialization_lib import SafeModeScope

    try:
        with keras.saving.custom_object_scope(objects), SafeModeScope(safe_mode):
            return keras.models.clone_model(model)
    except Exception as error:  # clone_model raises many types for unclonable layers
        raise ValueError(
            f"AutoInitVisualizer needs two independent copies of model '{model.name}', but "
            f"keras.models.clone_model failed with {type(error).__name__}: {error}"
        ) from error


def _custom_objects(autoinit, custom_objects):
    """The custom objects AutoInit itself builds configs with."""
    objects = {"WeightedSum": WeightedSum, "CenteredUnitNorm": CenteredUnitNorm}
    objects.update(autoinit.custom_objects)
    objects.update(custom_objects or {})
    return objects


def _build_from_config(spec, autoinit, objects, safe_mode):
    """A model built from a config dict / JSON with the config's own initializers."""
    return load_model(spec, objects, safe_mode)


def _carries_autoinit(model):
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for attribute in ("kernel_initializer", "recurrent_initializer", "depthwise_initializer"):
            if isinstance(getattr(layer, attribute, None), AutoInitInitializer):
                return True
    return False


def _per_input(means, variances, model):
    count = len(graph.graph_of(model)[0])
    means = list(means) if isinstance(means, (list, tuple)) else [means] * count
    variances = list(variances) if isinstance(variances, (list, tuple)) else [variances] * count
    if len(means) != count or len(variances) != count:
        raise ValueError(
            f"Model '{model.name}' has {count} inputs; `input_data_mean` and `input_data_var` must "
            f"be floats or lists of {count}. Received: {len(means)} means, {len(variances)} variances."
        )
    return (
        [validate_moment("input_data_mean", m) for m in means],
        [validate_moment("input_data_var", v) for v in variances],
    )


def _checked_count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)
