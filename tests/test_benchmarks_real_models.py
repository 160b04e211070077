"""Smoke test of the real-models benchmark on a tiny stand-in model: structure, not figures."""

import math

import pytest

from experiments.benchmarks import real_models


@pytest.fixture
def tiny_model(monkeypatch):
    spec = dict(length=16, head_size=8, num_heads=2, blocks=1, mlp_units=8)
    monkeypatch.setitem(real_models.BUILDERS, "tiny", lambda _res: real_models.timeseries_transformer(spec))
    return "tiny"


def test_one_model_gives_a_row_per_mode_with_every_column(tiny_model):
    quality = ("ok", real_models.quality_task(tiny_model, None, ("scalar", "probe"), 0))
    memory = {what: real_models.memory_task(tiny_model, None, what, 0) for what in ("forward", "probe")}
    rows = real_models.rows_for(tiny_model, None, quality, dict(memory, scalar=None))
    assert [row["mode"] for row in rows] == ["default", "scalar", "probe"]
    probe = rows[-1]
    for column in ("build_s", "init_s", "step_s", "init_per_step", "var32", "var128", "median_log2"):
        assert math.isfinite(probe[column]) and probe[column] >= 0, column
    assert probe["layers"] > 10 and 0 <= probe["beyond_2x"] <= probe["layers"]
    assert probe["init_mb"] is not None and probe["forward_mb"] is not None
    assert rows[0].get("init_s") is None  # Keras's default has no init step of its own
    markdown = real_models.TABLE.markdown(rows)
    assert markdown.count("\n") == 4 and "| tiny |" in markdown


def test_a_failing_model_becomes_an_error_row():
    rows = real_models.rows_for("broken", None, real_models._safe(real_models.build, "broken", None), {})
    assert rows[0]["mode"] == "all" and "Unknown model 'broken'" in rows[0]["error"]


def test_targets_name_each_miss():
    row = {"var32": 0.3, "median_log2": 0.2, "beyond_2x": 5, "init_per_step": 3.0,
           "init_mb": 500.0, "forward_mb": 200.0}
    assert real_models.misses(row) == "var@32 0.3; median 0.200; 5 layers >2x; 3.00 steps > 1; 500 MB > 200"
    assert real_models.misses({"var32": 1.0, "median_log2": 0.01, "beyond_2x": 0,
                               "init_per_step": 0.5, "init_mb": 90.0, "forward_mb": 20.0}) == ""
    # Half a training step at 224x224, one at 96x96.
    assert real_models.misses({"resolution": 224, "init_per_step": 0.6}) == "0.60 steps > 0.5"
    assert real_models.misses({"resolution": 96, "init_per_step": 0.6}) == ""


def test_quick_runs_two_models_at_96_and_the_keras_io_models_once():
    args = real_models.parse_args(["--quick"])
    assert args.models == list(real_models.QUICK_MODELS) and args.resolutions == [96]
    pairs = real_models.configurations(real_models.MODELS, [96, 224])
    assert len(pairs) == 2 * len(real_models.APPLICATIONS) + len(real_models.KERAS_IO)
    with pytest.raises(SystemExit):
        real_models.parse_args(["--models", "vgg99"])


def test_token_models_get_token_ids_in_their_input_dtype():
    from tests.e2e.models import keras_io_text_transformer

    model = keras_io_text_transformer(maxlen=8, vocab_size=50, embed_dim=8, num_heads=2, ff_dim=8)
    inputs, labels = real_models.batch_of(model, 32, 0)
    assert inputs.dtype == "float32" and inputs.shape == (32, 8)
    assert (inputs == inputs.round()).all() and inputs.min() >= 0 and inputs.max() < 50
    assert set(labels) <= {0, 1}
