"""What one study trial runs on a Ray worker: one candidate, trained under every arm in turn.

The candidate is built and compiled once; before each arm its declared
weights are re-drawn from the trial seed, the arm is applied
(``prepare_model(..., arm=...)``), and the optimizer and random streams are
put back to their start (``TrainingStart``), so every arm trains from the same
seed, data order and dropout masks. Every epoch of every arm lands in the
trial record (``RayReportCallback``), so one run gives a score at every budget.
"""

import keras

from autoinit_nas.integrations.ray_tune import RayReportCallback, build_from_config, prepare_model
from autoinit_nas.trials.arms import data_batch
from autoinit_nas.trials.rerun import TrainingStart
from autoinit_nas.study.candidates import load_dataset, space_of


def train_candidate(config, settings):
    """Ray function trainable: train ``config["candidate"]`` under each of ``settings["arms"]``.

    ``settings``: arms, epochs, batch_size, lsuv_batch, seed, and ``cells``
    ({"<space>/<dataset>": (space entry, dataset entry)}).
    """
    candidate = config["candidate"]
    space_entry, data_entry = settings["cells"][f"{candidate['space']}/{candidate['dataset']}"]
    dataset = load_dataset(data_entry, settings["seed"])
    build = space_of(space_entry, dataset)
    model = build_from_config(build, candidate["values"])
    if not isinstance(model, keras.Model):
        raise TypeError(f"Space {space_entry['space']!r} built {model!r}, not a keras.Model.")
    start = TrainingStart(model)
    batch_size = settings["batch_size"]
    x, y = dataset.train
    probe = data_batch(x, settings.get("lsuv_batch") or batch_size)
    for arm in settings["arms"]:
        start.restore()  # LSUV measures in training mode: the dropout streams it draws from too
        prepare_model(model, batch_size=batch_size, data=probe, arm=arm)
        start.restore()
        model.fit(x, y, validation_data=dataset.validation, epochs=settings["epochs"], batch_size=batch_size,
                  verbose=0, callbacks=[RayReportCallback()])
