"""A real keras-tuner search over every space: each candidate starts from AutoInit.

Digits, a few hundred samples, two trials of one epoch per space, with the
spaces' ranges narrowed (registered in advance) so candidates stay tiny.
"""

import keras_tuner
import pytest

import search_spaces
from autoinit_nas.integrations import records
from autoinit_nas.integrations.keras_tuner import AutoInitHyperModel
from tests.integrations.digits import SPACES, VARIANCE_BAND, ProbeHyperModel, digits

# Narrowed ranges per space (the build's wider definitions are then ignored).
NARROW = {
    "mlp": lambda hp: (hp.Int("depth", 2, 6), hp.Choice("units", [16, 32])),
    "cnn": lambda hp: (hp.Int("depth", 2, 4), hp.Choice("filters", [8]), hp.Int("downsamples", 0, 2)),
    "resnet": lambda hp: (hp.Int("stages", 1, 2), hp.Int("blocks", 1, 2), hp.Choice("filters", [8])),
    "transformer": lambda hp: (hp.Int("depth", 1, 2), hp.Choice("embed_dim", [16]), hp.Choice("heads", [1, 2])),
}


@pytest.mark.parametrize("name", sorted(SPACES))
def test_search_initializes_every_candidate(name, tmp_path):
    shape, kind, options = SPACES[name]
    probe = ProbeHyperModel(search_spaces.get(name)(shape, 10, **options))
    narrowed = keras_tuner.HyperParameters()
    NARROW[name](narrowed)
    tuner = keras_tuner.RandomSearch(
        AutoInitHyperModel(probe),
        objective="val_accuracy",
        max_trials=2,
        seed=3,
        hyperparameters=narrowed,
        directory=str(tmp_path),
        project_name=name,
        overwrite=True,
    )
    (x, y), validation = digits(kind)
    tuner.search(x, y, validation_data=validation, epochs=1, batch_size=32, verbose=0)

    found = records.read_records(tuner.project_dir)
    assert [record["trial_id"] for record in found] == sorted(probe.probes)
    assert len(found) == 2
    for record in found:
        assert record["status"] == "completed", record["reason"]
        arm = record["executions"][0]["arms"]["autoinit"]
        assert arm["initialized"] and arm["init_seconds"] > 0
        assert arm["estimates"]["logits"][1] == pytest.approx(1.0)
        (measured,) = probe.probes[record["trial_id"]]
        # Every Dense and Conv2D kernel was drawn by AutoInit, not by Keras.
        assert measured["initializers"], measured
        assert {init for _, init in measured["initializers"].values()} == {"AutoInitInitializer"}
        if name == "transformer":
            # Layers without an estimator (at least the space's own PositionEmbedding)
            # pass through and are recorded; the logits variance is not checked.
            assert arm["layers_without_estimator"] == len(arm["unsupported_layers"]) >= 1
            assert any("position_embedding" in layer for layer in arm["unsupported_layers"])
        else:
            assert arm["layers_without_estimator"] == 0
            low, high = VARIANCE_BAND
            assert low < measured["logits_variance"] < high, (measured["logits_variance"], record["hyperparameters"])
