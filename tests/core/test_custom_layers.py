"""Custom layers are opened, not skipped (issue 13, item 2).

A ``keras.layers.Layer`` subclass without an estimator whose ``call()`` traces
on symbolic inputs is walked inside: its Keras layers, nested custom layers
and ``keras.ops`` calls are estimated and initialized, keyed "outer/inner".
The canonical model is the keras-io text-classification transformer
(``tests/e2e/models.py``), Functional and subclassed, at small sizes.
"""

import math
import warnings

import keras
import numpy as np
import pytest

from autoinit_nas import AutoInit, LayerOutputDistributionEstimator
from autoinit_nas.core import graph, probe
from autoinit_nas.core.measure import measure_moments
from autoinit_nas.maths.sanitize import AutoInitWarning
from tests.conftest import to_numpy
from tests.e2e import models

MAXLEN, VOCAB, EMBED, HEADS, FF = 16, 1000, 32, 2, 32
MEASURE_BATCH = 256
# The smallest probe batch (the default training batch): a variance
# the probe reads from this many sequences is known to ~sqrt(2 / n) of its
# n = batch * MAXLEN * EMBED values; 4 standard errors bound a block's output.
MIN_PROBE_BATCH = 32
BLOCK_TOLERANCE = 4 * math.sqrt(2 / (MIN_PROBE_BATCH * MAXLEN * EMBED))

BUILDERS = {
    "functional": models.keras_io_text_transformer,
    "subclassed": models.keras_io_text_transformer_subclassed,
}
INNER_KEYS = [
    "embedding/token_emb", "embedding/pos_emb", "block/att", "block/dropout1", "block/layernorm1",
    "block/ffn/ffn_1", "block/ffn/ffn_2", "block/dropout2", "block/layernorm2",
]


def build(kind, keras_seed):
    keras.utils.set_random_seed(keras_seed)
    return BUILDERS[kind](maxlen=MAXLEN, vocab_size=VOCAB, embed_dim=EMBED, num_heads=HEADS, ff_dim=FF)


def drawn_weights(model):
    """{path: values} of every kernel and embedding table (biases start at zero either way)."""
    # A subclassed model prefixes its weights' paths with its own name.
    return {
        variable.path.removeprefix(model.name + "/"): to_numpy(variable.value)
        for variable in model.weights
        if variable.name in ("kernel", "embeddings")
    }


def walkable(model):
    return model if graph.is_graph_model(model) else graph.trace(model, [(None, MAXLEN)])


def computed_keys(model):
    """Entry names of nodes that compute something (the walk's visits: no input layers)."""
    keys = []

    def visit(node, key, moments_in):
        keys.append(key)
        return [None for _ in node.outputs]

    graph.walk(walkable(model), [None], visit)
    return keys


def tokens(batch=MEASURE_BATCH, seed=1):
    # Float, as the example's Input is declared.
    return np.random.default_rng(seed).integers(0, VOCAB, size=(batch, MAXLEN)).astype("float32")


@pytest.fixture(scope="module", params=[(k, p) for k in BUILDERS for p in ("probe", "scalar")],
                ids=lambda param: "-".join(param))
def initialized(request):
    kind, propagation = request.param
    results = []
    for keras_seed in (1, 2):
        model = build(kind, keras_seed)
        before = drawn_weights(model)
        autoinit = AutoInit(weight_init_config={"seed": 0}, propagation=propagation)
        model, estimates = autoinit.initialize_model(model, return_estimates=True)
        results.append((model, before, estimates, autoinit))
    return kind, propagation, results


def test_every_kernel_and_embedding_is_autoinits(initialized):
    """Two models built from different Keras seeds end with identical
    kernels and embeddings under the same AutoInit seed: every one was drawn
    by AutoInit (one left to Keras would differ), inside the custom layers too.
    """
    kind, propagation, [(first, before, _, autoinit), (second, *_)] = initialized
    assert autoinit.propagation_used == propagation
    ours, theirs = drawn_weights(first), drawn_weights(second)
    assert len(ours) == 10  # 2 embeddings, 4 attention projections, 2 feed-forward, 2 head
    for path, values in ours.items():
        assert not np.array_equal(values, before[path]), f"{path} kept Keras's initial values"
        np.testing.assert_array_equal(values, theirs[path], err_msg=path)


def test_estimates_are_keyed_outer_inner(initialized):
    kind, propagation, [(_, _, estimates, autoinit), _] = initialized
    for key in INNER_KEYS + ["embedding", "block", "logits"]:
        assert key in estimates, (key, sorted(estimates))
    assert autoinit.unsupported_layers == []
    if propagation == "scalar":
        # The positions the embedding reads are a traced constant: its exact moments.
        assert estimates["embedding/pos_emb_constant"] == pytest.approx((7.5, (MAXLEN**2 - 1) / 12))
        assert estimates["embedding"] == pytest.approx((0.0, 2.0))  # two unit-variance tables, summed
        assert estimates["block/att"] == pytest.approx((0.0, 1.0))


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_probe_predicts_every_layer_within_2x_and_blocks_at_their_variance(kind):
    """Measured on real token ids in training mode, every layer the walk
    visits (inside the custom layers too) is within 2x of its prediction.
    The transformer block ends in LayerNormalization (unit variance); the
    embedding block adds two unit-variance tables (variance 2, predicted).
    """
    model, estimates = AutoInit(weight_init_config={"seed": 0}).initialize_model(
        build(kind, 1), return_estimates=True
    )
    measured = measure_moments(walkable(model), tokens())
    for key in computed_keys(model):
        predicted, actual = estimates[key][1], measured[key][1]
        assert 0.5 <= actual / predicted <= 2.0, (key, predicted, actual)
    assert abs(measured["block"][1] - 1.0) <= BLOCK_TOLERANCE
    assert abs(measured["embedding"][1] / estimates["embedding"][1] - 1.0) <= BLOCK_TOLERANCE
    assert abs(estimates["embedding"][1] / 2.0 - 1.0) <= BLOCK_TOLERANCE


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_the_probes_token_ids_span_the_token_vocabulary_not_maxlen(kind):
    """Inside ``TokenAndPositionEmbedding`` the input reaches only the
    token embedding (the positions come from ``ops.arange``): the probe's
    ids span its VOCAB = 1000 entries, not the MAXLEN = 16 positions. 512
    uniform draws stay below 900 with probability 0.9^512 < 1e-23.
    """
    model = walkable(build(kind, 1))
    assert probe.embedding_vocabularies(model, model.inputs[0]) == [VOCAB]
    ids = to_numpy(probe.probe_inputs(model, [(0.0, 1.0)], MIN_PROBE_BATCH, seed=0)[0])
    assert ids.min() >= 0 and 900 <= ids.max() < VOCAB


def test_scalar_predicts_the_custom_layers_within_2x():
    """Scalar propagation is right inside the custom layers; after them,
    global pooling of attention-correlated tokens is its known limit (it
    assumes independent tokens: predicted 1/16 of the variance, measured
    about 1/4), so only the layers up to the transformer block are asserted.
    """
    model, estimates = AutoInit(weight_init_config={"seed": 0}, propagation="scalar").initialize_model(
        build("functional", 1), return_estimates=True
    )
    measured = measure_moments(model, tokens())
    for key in [k for k in computed_keys(model) if k.startswith(("embedding", "block"))]:
        predicted, actual = estimates[key][1], measured[key][1]
        assert 0.5 <= actual / predicted <= 2.0, (key, predicted, actual)


def test_a_registered_estimator_wins_over_opening():
    class BlockEstimator(LayerOutputDistributionEstimator):
        calls = 0

        def estimate(self, means_in, vars_in):
            BlockEstimator.calls += 1
            return 0.0, 1.0

    for propagation in ("probe", "scalar"):
        BlockEstimator.calls = 0
        model = build("functional", 1)
        before = drawn_weights(model)
        model, estimates = AutoInit(
            weight_init_config={"seed": 0}, propagation=propagation,
            custom_distribution_estimators={models.TransformerBlock: BlockEstimator},
        ).initialize_model(model, return_estimates=True)
        assert BlockEstimator.calls == 1
        assert not any(key.startswith("block/") for key in estimates)
        after = drawn_weights(model)
        for path in after:
            kept = np.array_equal(after[path], before[path])
            assert kept == path.startswith("block/"), (propagation, path)


class DataDependent(keras.layers.Layer):
    """Python control flow on a tensor's value: runs eagerly, cannot be traced symbolically.

    Keras itself builds it into a graph through ``compute_output_shape``.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(8, name="inner")

    def build(self, input_shape):
        self.dense.build(input_shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (8,)

    def call(self, x):
        if keras.ops.convert_to_numpy(keras.ops.mean(x)) > 100.0:
            return x
        return self.dense(x)


class OwnKernel(keras.layers.Layer):
    """A projection through its own ``add_weight`` kernel: nothing to open."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 8), initializer="ones", name="kernel")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel)


def unopened_warnings(layer, propagation):
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(layer(inputs)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, estimates = AutoInit(
            weight_init_config={"seed": 0}, propagation=propagation, input_data_var=3.0
        ).initialize_model(model, return_estimates=True)
    found = [w.message for w in caught if getattr(w.message, "cause", None) == "unopened"]
    return found, estimates


@pytest.mark.parametrize("propagation", ["probe", "scalar"])
def test_an_untraceable_layer_passes_through_with_a_warning_that_says_why(propagation):
    original_call = keras.layers.Layer.__call__
    layer = DataDependent(name="odd")
    found, estimates = unopened_warnings(layer, propagation)
    assert len(found) == 1 and isinstance(found[0], AutoInitWarning)
    message = str(found[0])
    assert "could not open custom layer 'odd' (DataDependent): its call() failed" in message
    assert "Error" in message and "keras.ops" in message  # the error it met, and the remedy
    assert found[0].layers == ("odd",)
    assert not any(key.startswith("odd/") for key in estimates)
    if propagation == "scalar":
        assert estimates["odd"] == (0.0, 3.0)  # passed through, as before
    assert keras.layers.Layer.__call__ is original_call  # the trace's patch is undone


def test_a_layer_with_only_its_own_weights_is_not_opened():
    found, estimates = unopened_warnings(OwnKernel(name="proj"), "scalar")
    assert len(found) == 1
    assert "'proj' (OwnKernel): it holds weights of its own (kernel) and no sublayers" in str(found[0])
    assert estimates["proj"] == (0.0, 3.0)


class SinePositionEncoding(keras.layers.Layer):
    """Adds fixed sinusoidal position codes: an op with a (length, dim) constant operand."""

    def call(self, x):
        length, dim = x.shape[-2], x.shape[-1]
        positions = keras.ops.cast(keras.ops.arange(length), "float32")[:, None]
        frequencies = keras.ops.cast(keras.ops.arange(dim // 2), "float32")[None, :]
        angles = positions / keras.ops.power(10000.0, 2.0 * frequencies / dim)
        return x + keras.ops.concatenate([keras.ops.sin(angles), keras.ops.cos(angles)], axis=-1)


def sine_codes(length=32, dim=16):
    positions = np.arange(length)[:, None]
    angles = positions / np.power(10000.0, 2.0 * np.arange(dim // 2)[None, :] / dim)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)


@pytest.mark.parametrize("propagation", ["probe", "scalar"])
def test_a_layer_adding_tensor_shaped_constants_is_opened(propagation):
    """``x + codes``: the ops estimator takes the codes' own mean and
    variance (spread over the positions, independent of x), so the layer
    opens under scalar too, and its estimate is the projection's plus the
    codes' moments. The probe runs the codes as they are.
    """
    inputs = keras.Input((32, 16))
    hidden = SinePositionEncoding(name="sine")(keras.layers.Dense(16, name="proj")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(8, name="head")(hidden))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, estimates = AutoInit(weight_init_config={"seed": 0}, propagation=propagation).initialize_model(
            model, return_estimates=True
        )
    assert [w for w in caught if getattr(w.message, "cause", None) in ("unopened", "unsupported")] == []
    assert any(key.startswith("sine/add") for key in estimates), sorted(estimates)
    codes = sine_codes()
    if propagation == "scalar":
        expected = (estimates["proj"][0] + codes.mean(), estimates["proj"][1] + codes.var())
        assert estimates["sine"] == pytest.approx(expected, rel=1e-5)
    else:
        # Unit-variance projection plus codes of variance about 1/2: above 1.
        assert estimates["sine"][1] > 1.2


class Doubling(keras.layers.Layer):
    """A user layer with a registered estimator that cannot estimate it."""

    def call(self, x):
        return 2.0 * x


class Failing(LayerOutputDistributionEstimator):
    def estimate(self, means_in, vars_in):
        raise ValueError("no rule for this input")


class Holder(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.proj_in = keras.layers.Dense(16, name="proj_in")
        self.doubling = Doubling(name="doubling")

    def call(self, x):
        return self.doubling(self.proj_in(x))


@pytest.mark.parametrize("propagation", ["probe", "scalar"])
def test_a_layer_whose_inside_cannot_be_estimated_is_handled_whole(propagation):
    """An estimator inside the opened layer fails: the layer falls back to
    what it was before opening, one layer without an estimator (passed
    through under scalar, measured under the probe), with a warning naming
    the inner failure.
    """
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(4, name="head")(Holder(name="holder")(inputs)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autoinit = AutoInit(weight_init_config={"seed": 0}, propagation=propagation, input_data_var=3.0,
                            custom_distribution_estimators={Doubling: Failing})
        _, estimates = autoinit.initialize_model(model, return_estimates=True)
    found = [str(w.message) for w in caught if getattr(w.message, "cause", None) == "unopened"]
    assert autoinit.propagation_used == propagation
    assert len(found) == 1 and "inside it could not be estimated" in found[0], found
    assert "no rule for this input" in found[0] and "for layer 'holder/doubling'" in found[0]
    assert not any(key.startswith("holder/") for key in estimates)
    if propagation == "scalar":
        assert estimates["holder"] == (0.0, 3.0)


class SplitHeads(keras.layers.Layer):
    """Reshapes by two traced dimensions (batch and a variable length): runs whole, not node by node."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(8, name="inner")

    def call(self, x):
        batch, length, _ = keras.ops.shape(x)
        heads = keras.ops.reshape(self.dense(x), (batch, length, 2, 4))
        return keras.ops.reshape(heads, (batch, length, 8))


def split_model():
    inputs = keras.Input((None, 8))
    hidden = SplitHeads(name="split")(keras.layers.Dense(8, name="pre")(inputs))
    branch = keras.layers.Dense(8, name="branch")(hidden)
    merged = keras.layers.Add(name="merge")([hidden, keras.layers.Dense(8, name="side")(branch)])
    return keras.Model(inputs, keras.layers.Dense(4, name="head")(merged))


def test_a_layer_whose_inside_fails_on_the_probe_runs_whole_under_the_probe():
    """The probe cannot run this layer's inside (a reshape to (None, None,
    2, 4)), so it runs the layer whole, on its inputs as they entered (the
    nested walk must not have freed them): the probe still runs, and the
    warnings and estimates agree (whole: one warning, no inner entries).
    """
    autoinit = AutoInit(weight_init_config={"seed": 0})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, estimates = autoinit.initialize_model(split_model(), return_estimates=True)
    causes = [getattr(w.message, "cause", None) for w in caught]
    assert autoinit.propagation_used == "probe" and "probe_unavailable" not in causes
    assert causes.count("unopened") == 1 and "split/inner" not in estimates
    for key in ("branch", "side", "head"):  # rescaled on the probe after the retry
        assert estimates[key][1] == pytest.approx(1.0, rel=1e-3), key


class Tokens:
    """A walk value that knows whether it was released."""

    def __init__(self, name):
        self.name, self.released = name, False

    def release(self):
        assert not self.released, f"{self.name} released twice"
        self.released = True


def test_the_walk_releases_each_value_after_its_last_reader_across_a_failed_nested_walk():
    """Values entering a nested walk stay alive until it returns, so the
    whole-layer retry after a failure inside reads live inputs; every value
    the walk computed is released once, after its last reader, never
    before; the graph's inputs and outputs are not released.
    """
    model = split_model()
    visits = []

    def visit(node, key, values_in):
        assert not any(value.released for value in values_in), (key, [v.name for v in values_in])
        visits.append(key)
        if key.startswith("split/") and key != "split/inner":
            raise RuntimeError("cannot run inside")  # after the inner Dense ran and its input went
        return [Tokens(f"{key}:{i}") for i, _ in enumerate(node.outputs)]

    inputs = [Tokens("input")]
    outputs, entries = graph.walk(model, inputs, visit, release=Tokens.release)
    assert visits[:3] == ["pre", "split/inner", visits[2]] and visits[3] == "split"
    assert visits[4:] == ["branch", "side", "merge", "head"]
    assert not inputs[0].released and not outputs[0].released
    computed = [entries[key] for key in visits if key in entries and entries[key] is not outputs[0]]
    assert all(value.released for value in computed), [v.name for v in computed if not v.released]


# Other keras-io custom-layer patterns.


class ResidualConvBlock(keras.layers.Layer):
    """Conv2D -> BatchNormalization -> relu (a keras.ops call) -> Conv2D, plus the input."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv_a = keras.layers.Conv2D(filters, 3, padding="same", name="conv_a")
        self.norm = keras.layers.BatchNormalization(name="norm")
        self.conv_b = keras.layers.Conv2D(filters, 3, padding="same", name="conv_b")

    def call(self, x, training=None):
        hidden = keras.ops.relu(self.norm(self.conv_a(x), training=training))
        return x + self.conv_b(hidden)


class Stage(keras.layers.Layer):
    """Two residual blocks: a custom layer made of custom layers."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.first = ResidualConvBlock(filters, name="first")
        self.second = ResidualConvBlock(filters, name="second")

    def call(self, x, training=None):
        return self.second(self.first(x, training=training), training=training)


class Patches(keras.layers.Layer):
    """The ViT example's patch extraction: ``ops.image.extract_patches``, reshaped by the dynamic batch size."""

    def __init__(self, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size

    def call(self, images):
        patches = keras.ops.image.extract_patches(images, size=self.patch_size)
        batch, rows, columns, channels = keras.ops.shape(patches)
        return keras.ops.reshape(patches, (batch, rows * columns, channels))


class PatchEncoder(keras.layers.Layer):
    """The ViT example's encoder: a Dense projection plus an Embedding of the patch positions."""

    def __init__(self, num_patches, projection_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_patches = num_patches
        self.projection = keras.layers.Dense(projection_dim, name="projection")
        self.position_embedding = keras.layers.Embedding(num_patches, projection_dim, name="position_embedding")

    def call(self, patch):
        positions = keras.ops.expand_dims(keras.ops.arange(0, self.num_patches, 1), axis=0)
        return self.projection(patch) + self.position_embedding(positions)


@pytest.mark.parametrize("propagation", ["probe", "scalar"])
def test_nested_custom_layers_and_position_embeddings_are_opened(propagation):
    images = keras.Input((8, 8, 16))
    hidden = Stage(16, name="stage")(images)
    patches = Patches(2, name="patches")(hidden)  # (batch, 16, 64)
    encoded = PatchEncoder(16, 32, name="encoder")(patches)
    shared = ResidualConvBlock(32, name="shared")
    grid = keras.layers.Reshape((4, 4, 32))(encoded)
    outputs = shared(shared(grid))
    model = keras.Model(images, keras.layers.GlobalAveragePooling2D(name="pool")(outputs))
    before = drawn_weights(model)
    autoinit = AutoInit(weight_init_config={"seed": 0}, propagation=propagation)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, estimates = autoinit.initialize_model(model, return_estimates=True)
    # Every layer opened (the patches' reshape by the traced batch size runs too): no fallback.
    assert autoinit.propagation_used == propagation
    assert not [w for w in caught if getattr(w.message, "cause", None) in ("unopened", "probe_unavailable")]
    after = drawn_weights(model)
    assert len(after) == 8
    for path in after:
        assert not np.array_equal(after[path], before[path]), path
    for key in ["stage/first/conv_a", "stage/first/norm", "stage/second/conv_b",
                "encoder/projection", "encoder/position_embedding",
                "shared@0/conv_a", "shared@1/conv_b", "shared/conv_a"]:
        assert key in estimates, (key, sorted(estimates))
    assert any(key.startswith("patches/reshape") for key in estimates), sorted(estimates)
    # A weighted layer's output is drawn for unit variance in both propagations.
    for key in ["stage/first/conv_a", "encoder/projection", "shared@0/conv_b"]:
        assert estimates[key][1] == pytest.approx(1.0, rel=0.05), (key, estimates[key])
