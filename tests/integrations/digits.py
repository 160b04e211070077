"""Shared test helpers: a small offline dataset and a HyperModel that probes candidates.

The data is scikit-learn's bundled digits (8x8 grey images, 10 classes), cut
to a few hundred samples so a one-epoch trial takes about a second.
"""

import functools

import keras
import keras_tuner
import numpy as np
from sklearn.datasets import load_digits

TRAIN, VALIDATION = 240, 80
# Where the variance of a candidate's logits must land when AutoInit aims at
# 1.0. Wide on purpose: AutoInit's estimates are known to drift from the
# measurement after global pooling of correlated positions (see the report).
VARIANCE_BAND = (1 / 8, 8.0)


@functools.lru_cache(maxsize=None)
def digits(kind="flat"):
    """((x_train, y_train), (x_val, y_val)) in the layout of a space.

    kind: "flat" (64 floats in [0, 1]), "image" (8x8x1 floats) or "tokens"
    (64 int32 pixel intensities, 0..16, for the transformer space).
    """
    data = load_digits()
    images, labels = data.data[: TRAIN + VALIDATION], data.target[: TRAIN + VALIDATION]
    if kind == "tokens":
        x = images.astype("int32")
    elif kind == "image":
        x = (images / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    elif kind == "flat":
        x = (images / 16.0).astype("float32")
    else:
        raise ValueError(f"kind must be 'flat', 'image' or 'tokens'. Received: {kind!r}")
    y = labels.astype("int32")
    return (x[:TRAIN], y[:TRAIN]), (x[TRAIN:], y[TRAIN:])


SPACES = {
    # name: (input shape, data kind, space options)
    "mlp": ((64,), "flat", {}),
    "cnn": ((8, 8, 1), "image", {}),
    "resnet": ((8, 8, 1), "image", {}),
    "transformer": ((64,), "tokens", {"vocab_size": 17}),
}


def trial_id_of(callbacks):
    """The id of the trial a fit call belongs to (keras-tuner adds a callback holding it)."""
    for callback in callbacks or []:
        trial = getattr(callback, "trial", None)
        if hasattr(trial, "trial_id"):
            return str(trial.trial_id)
    return None


def probe_batch(model, rng, size=256):
    """Unit-variance inputs for ``model`` (random token ids for int inputs)."""
    shape = (size,) + tuple(model.input_shape[1:])
    if "int" in str(model.inputs[0].dtype):
        return rng.integers(0, 17, shape).astype("int32")
    return rng.standard_normal(shape).astype("float32")


def kernel_initializers(model):
    """{layer name: (layer class, initializer class)} of every Dense and Conv2D layer."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            found[layer.name] = (type(layer).__name__, type(layer.kernel_initializer).__name__)
    return found


class ProbeHyperModel(keras_tuner.HyperModel):
    """Builds with ``build_fn``; in ``fit``, measures the untrained candidate first.

    ``self.probes`` maps each trial id to one entry per fit call (one per
    arm): the variance of the "logits" layer on unit-variance inputs, the
    kernel initializer classes, and the weights the model starts from.
    """

    def __init__(self, build_fn, seed=0):
        super().__init__(name="probe")
        self.build_fn = build_fn
        self.rng = np.random.default_rng(seed)
        self.probes = {}
        self.last_trial = None

    def build(self, hp):
        return self.build_fn(hp)

    def fit(self, hp, model, *args, **kwargs):
        weights = [np.array(w) for w in model.get_weights()]  # before the probe moves BN statistics
        logits = keras.Model(model.inputs, model.get_layer("logits").output)
        values = np.asarray(keras.ops.convert_to_numpy(logits(probe_batch(model, self.rng), training=True)))
        # The default arm of "compare" mode trains without the tuner's callbacks:
        # its fit follows the AutoInit arm's of the same trial.
        trial_id = trial_id_of(kwargs.get("callbacks")) or self.last_trial
        self.last_trial = trial_id
        self.probes.setdefault(trial_id, []).append(
            {
                "logits_variance": float(values.var()),
                "initializers": kernel_initializers(model),
                "weights": weights,
                "hyperparameters": dict(hp.values),
            }
        )
        return model.fit(*args, **kwargs)
