"""The opt-in test split: absent by default (today's split unchanged), disjoint from train and validation."""

import hashlib

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from autoinit_nas import datasets

# sha256 of (y_train, y_val) as int64 bytes, recorded before the test split existed:
# (default split, seed=3 with limit=60).
LABELS = {
    "digits": ("7994555514f84aea", "b6599bfe4a50faf8"),
    "wine": ("87be5a9ced59d04a", "96542d2465d7d901"),
    "breast_cancer": ("81e3f2fb42345b5a", "66867aa302f3b4b6"),
    "iris": ("32b5cdd4081691a8", "f692d7d6dabdeee5"),
}


def digest(*arrays):
    hasher = hashlib.sha256()
    for array in arrays:
        hasher.update(np.ascontiguousarray(array, dtype="int64").tobytes())
    return hasher.hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(LABELS))
def test_without_a_test_fraction_the_split_is_unchanged(name):
    plain, limited = datasets.load(name), datasets.load(name, seed=3, limit=60)
    assert (digest(plain.y_train, plain.y_val), digest(limited.y_train, limited.y_val)) == LABELS[name]
    assert plain.x_test is None and plain.y_test is None
    with pytest.raises(ValueError, match="test_fraction=0.2"):
        plain.test


def test_without_a_test_fraction_the_inputs_are_todays():
    # Re-derived here from the raw data: stratified 80/20 split, standardized per feature on train.
    raw = load_breast_cancer()
    x_train, x_val, _, _ = train_test_split(raw.data.astype("float32"), raw.target, test_size=0.2,
                                            random_state=0, stratify=raw.target)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    data = datasets.load("breast_cancer")
    np.testing.assert_allclose(data.x_train, (x_train - mean) / std, atol=1e-5)
    np.testing.assert_allclose(data.x_val, (x_val - mean) / std, atol=1e-5)


def rows(x):
    return {row.tobytes() for row in np.ascontiguousarray(x)}


def test_the_test_split_is_disjoint_and_stratified():
    raw = load_breast_cancer()
    assert len(rows(raw.data.astype("float32"))) == len(raw.target)  # no duplicate examples to confuse us
    data = datasets.load("breast_cancer", test_fraction=0.2)
    x_test, y_test = data.test
    train, val, test = rows(data.x_train), rows(data.x_val), rows(x_test)
    assert not (train & test) and not (val & test) and not (train & val)
    assert len(train) + len(val) + len(test) == len(raw.target)
    assert abs(len(test) - 0.2 * len(raw.target)) <= 1 and abs(len(val) - 0.2 * len(raw.target)) <= 1
    # Stratified: each class's share in the test split within one example of its share overall.
    for label in (0, 1):
        assert abs(np.sum(y_test == label) - 0.2 * np.sum(raw.target == label)) <= 1
    assert data.summary().endswith("114 test examples, input shape (30,), 2 classes")


def test_the_test_split_is_seeded_and_kept_under_a_limit():
    first = datasets.load("digits", seed=1, test_fraction=0.25)
    datasets._load.cache_clear()  # draw it again, not from the cache
    np.testing.assert_array_equal(first.x_test, datasets.load("digits", seed=1, test_fraction=0.25).x_test)
    other = datasets.load("digits", seed=2, test_fraction=0.25)
    assert not np.array_equal(first.y_test, other.y_test)
    limited = datasets.load("digits", limit=100, test_fraction=0.2)
    assert (len(limited.y_train), len(limited.y_val), len(limited.y_test)) == (100, 33, 33)
    assert not limited.x_test.flags.writeable


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.85, -0.1])
def test_bad_test_fractions_say_what_was_received(fraction):
    with pytest.raises(ValueError, match=f"Received: test_fraction={fraction!r}"):
        datasets.load("iris", test_fraction=fraction)
