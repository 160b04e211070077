"""Offline datasets for sweeps: small, bundled or generated, standardized on the training split.

No function here downloads anything. scikit-learn ships digits, breast_cancer,
wine and iris inside its wheel; mnist1d is generated from its ten templates by
the ``mnist1d`` package (``make_dataset``, never its downloading
``get_dataset``), and is only offered when that package is installed.

Every loader returns a ``Dataset``: training and validation arrays (a
stratified split with a fixed seed), standardized with statistics of the
training split only, with the input shape and class count a search space
needs. On request (``test_fraction``) a stratified **test** split is held out
first, disjoint from both, for outcomes that nothing selects on; without it the
train/validation split is exactly what it always was.

Example:
    >>> from autoinit_nas import datasets
    >>> data = datasets.load("digits")
    >>> data.input_shape, data.num_classes, data.x_train.shape
    ((8, 8, 1), 10, (1437, 8, 8, 1))
    >>> round(float(data.x_train.mean()), 6), round(float(data.x_train.std()), 6)
    (0.0, 1.0)
    >>> held_out = datasets.load("digits", test_fraction=0.2)
    >>> len(held_out.y_train), len(held_out.y_val), len(held_out.y_test)
    (1077, 360, 360)

Standardization: tabular data (breast_cancer, wine, iris) per feature;
images (digits) per channel, over all pixels, so the picture keeps its
shape; signals (mnist1d) over all positions. A feature with no spread in the
training split is centred and left unscaled.
"""

import dataclasses
import functools
import importlib.util

import numpy as np

VALIDATION_FRACTION = 0.2
TEST_FRACTION = None  # no test split unless asked for


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A train/validation (and optional test) split ready for ``model.fit``.

    Attributes:
        name: the registry name.
        x_train, y_train, x_val, y_val: float32 inputs, int32 labels.
        x_test, y_test: the held-out test split, or None when not requested.
        input_shape: shape of one example (no batch axis).
        num_classes: number of classes.
        kind: "image", "tabular" or "signal".
        description: one line, with where the data comes from.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    input_shape: tuple
    num_classes: int
    kind: str
    description: str
    x_test: np.ndarray = None
    y_test: np.ndarray = None

    @property
    def train(self):
        """``(x_train, y_train)``."""
        return self.x_train, self.y_train

    @property
    def validation(self):
        """``(x_val, y_val)``, as ``validation_data``."""
        return self.x_val, self.y_val

    @property
    def test(self):
        """``(x_test, y_test)``; a ValueError when the dataset was loaded without ``test_fraction``."""
        if self.y_test is None:
            raise ValueError(
                f"Dataset '{self.name}' has no test split: load it with a test fraction, e.g. "
                f"datasets.load({self.name!r}, test_fraction=0.2). Received: test_fraction=None"
            )
        return self.x_test, self.y_test

    def summary(self):
        """One line: name, sizes, shape, classes."""
        test = "" if self.y_test is None else f" / {len(self.y_test)} test"
        return (
            f"{self.name}: {len(self.y_train)} train / {len(self.y_val)} validation{test} examples, "
            f"input shape {self.input_shape}, {self.num_classes} classes"
        )


@dataclasses.dataclass(frozen=True)
class _Entry:
    loader: object
    kind: str
    description: str
    requires: str = None  # an importable module the loader needs


def _digits(seed):
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images.astype("float32")[..., None], data.target


def _breast_cancer(seed):
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return data.data, data.target


def _wine(seed):
    from sklearn.datasets import load_wine

    data = load_wine()
    return data.data, data.target


def _iris(seed):
    from sklearn.datasets import load_iris

    data = load_iris()
    return data.data, data.target


def _mnist1d(seed):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    state = np.random.get_state()  # make_dataset seeds NumPy's global generator
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    x = np.concatenate([data["x"], data["x_test"]])
    y = np.concatenate([data["y"], data["y_test"]])
    return x, y


_DATASETS = {
    "digits": _Entry(_digits, "image", "scikit-learn's bundled 8x8 handwritten digits (1797 images)"),
    "breast_cancer": _Entry(_breast_cancer, "tabular", "scikit-learn's bundled Wisconsin breast cancer (569 x 30)"),
    "wine": _Entry(_wine, "tabular", "scikit-learn's bundled wine recognition (178 x 13)"),
    "iris": _Entry(_iris, "tabular", "scikit-learn's bundled iris (150 x 4)"),
    "mnist1d": _Entry(
        _mnist1d, "signal", "MNIST-1D generated offline from its templates (5000 x 40)", requires="mnist1d"
    ),
}


def names(available_only=True):
    """Registered dataset names, sorted; with ``available_only``, those whose package is installed."""
    return sorted(
        name for name, entry in _DATASETS.items()
        if not available_only or entry.requires is None or _importable(entry.requires)
    )


def describe():
    """{name: description} of every available dataset."""
    return {name: _DATASETS[name].description for name in names()}


def load(name, seed=0, validation_fraction=VALIDATION_FRACTION, limit=None, test_fraction=TEST_FRACTION):
    """The dataset ``name``, split and standardized.

    Args:
        name: one of ``names()``.
        seed: seeds the stratified split (and mnist1d's generator).
        validation_fraction: share of the examples held out for validation.
        limit: keep at most this many training examples (and a proportional
            number of validation and test examples), for quick tests; None keeps all.
        test_fraction: None (no test split: the train/validation split of
            earlier releases, unchanged), or the share of all examples held out
            first as a stratified test split; validation then takes
            ``validation_fraction`` of all examples from the rest.

    Raises:
        ValueError: unknown name, or a bad fraction or limit.
        ModuleNotFoundError: the dataset's package is not installed.
    """
    if name not in _DATASETS:
        raise ValueError(
            f"Unknown dataset '{name}'. Expected one of: {', '.join(names(available_only=False))}. "
            f"Received: name={name!r}"
        )
    if not 0.0 < float(validation_fraction) < 1.0:
        raise ValueError(
            f"`validation_fraction` must be strictly between 0 and 1. "
            f"Received: validation_fraction={validation_fraction!r}"
        )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 10):
        raise ValueError(f"`limit` must be None or an int >= 10. Received: limit={limit!r}")
    if test_fraction is not None and not (
        0.0 < float(test_fraction) < 1.0 and float(test_fraction) + float(validation_fraction) < 1.0
    ):
        raise ValueError(
            f"`test_fraction` must be None or in (0, 1) with test_fraction + validation_fraction < 1. "
            f"Received: test_fraction={test_fraction!r}, validation_fraction={validation_fraction!r}"
        )
    entry = _DATASETS[name]
    if entry.requires and not _importable(entry.requires):
        raise ModuleNotFoundError(
            f"Dataset '{name}' needs the `{entry.requires}` package, which is not installed "
            f"(pip install {entry.requires}; it generates the data offline)."
        )
    test = None if test_fraction is None else float(test_fraction)
    return _load(name, int(seed), float(validation_fraction), limit, test)


@functools.lru_cache(maxsize=16)
def _load(name, seed, validation_fraction, limit, test_fraction=None):
    from sklearn.model_selection import train_test_split

    entry = _DATASETS[name]
    x, y = entry.loader(seed)
    x = np.asarray(x, dtype="float32")
    classes, y = np.unique(np.asarray(y), return_inverse=True)
    y = y.astype("int32")
    x_test = y_test = None
    validation_share = validation_fraction
    if test_fraction is not None:  # held out first, so train and validation never see it
        x, x_test, y, y_test = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
        validation_share = validation_fraction / (1 - test_fraction)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=validation_share, random_state=seed, stratify=y
    )
    if limit is not None and limit < len(y_train):
        share = limit / len(y_train)
        x_train, y_train = _stratified_head(x_train, y_train, limit, seed)
        x_val, y_val = _kept(x_val, y_val, limit, validation_fraction, share, len(classes), seed, test_fraction)
        if y_test is not None:
            x_test, y_test = _kept(x_test, y_test, limit, test_fraction, share, len(classes), seed, test_fraction)
    axes = _standardize_axes(entry.kind, x_train.ndim)
    x_train, x_val, *x_test = standardize(x_train, x_val, *([] if x_test is None else [x_test]), axes=axes)
    x_test = x_test[0] if x_test else None
    for array in (x_train, x_val, y_train, y_val, x_test, y_test):
        if array is not None:
            array.setflags(write=False)
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        input_shape=tuple(int(d) for d in x_train.shape[1:]),
        num_classes=int(len(classes)),
        kind=entry.kind,
        description=entry.description,
        x_test=x_test,
        y_test=y_test,
    )


def _kept(x, y, limit, fraction, share, num_classes, seed, test_fraction):
    """The examples of a held-out split kept under ``limit``: proportional to the kept training examples."""
    if test_fraction is None:  # the rule of earlier releases, kept exactly
        count = int(round(limit * fraction / (1 - fraction)))
    else:
        count = int(round(len(y) * share))
    return _stratified_head(x, y, min(max(count, num_classes), len(y)), seed)


def standardize(x_train, x_val, *others, axes=(0,)):
    """``(x_train, x_val, *others)`` shifted and scaled by the training split's mean and std over ``axes``.

    Example:
        >>> a, b = standardize(np.array([[0.0], [2.0]]), np.array([[4.0]]))
        >>> a.ravel().tolist(), b.ravel().tolist()
        ([-1.0, 1.0], [3.0])
    """
    mean = x_train.mean(axis=axes, keepdims=True)
    std = x_train.std(axis=axes, keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return tuple(((x - mean) / std).astype("float32") for x in (x_train, x_val) + others)


def _standardize_axes(kind, ndim):
    if kind == "tabular":
        return (0,)  # per feature
    if kind == "image":
        return tuple(range(ndim - 1))  # per channel
    return tuple(range(ndim))  # signal: one mean and std


def _stratified_head(x, y, count, seed):
    from sklearn.model_selection import train_test_split

    if count >= len(y):
        return x, y
    try:
        x, _, y, _ = train_test_split(x, y, train_size=count, random_state=seed, stratify=y)
    except ValueError:  # too few per class to stratify
        x, _, y, _ = train_test_split(x, y, train_size=count, random_state=seed)
    return x, y


def _importable(module):
    return importlib.util.find_spec(module) is not None
