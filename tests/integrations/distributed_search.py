"""One process of a distributed keras-tuner search (chief or worker, per the environment).

Run by ``test_keras_tuner.test_distributed_search_runs_the_same_script``: the
same file, unchanged, in every process; only KERASTUNER_TUNER_ID says which
role it plays. Usage: python distributed_search.py DIRECTORY
"""

import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.simplefilter("ignore")

import keras_tuner  # noqa: E402

import search_spaces  # noqa: E402
from autoinit_nas.integrations.keras_tuner import AutoInitHyperModel  # noqa: E402
from tests.integrations.digits import digits  # noqa: E402


def main(directory):
    hp = keras_tuner.HyperParameters()
    hp.Choice("units", [16, 32])
    hp.Fixed("learning_rate", 1e-2)
    tuner = keras_tuner.RandomSearch(
        AutoInitHyperModel(search_spaces.get("mlp")((64,), 10), init="compare"),
        objective="val_accuracy",
        max_trials=2,
        seed=0,
        hyperparameters=hp,
        tune_new_entries=False,
        directory=directory,
        project_name="distributed",
    )
    (x, y), validation = digits("flat")
    tuner.search(x, y, validation_data=validation, epochs=1, batch_size=32, verbose=0)
    print("finished", os.environ.get("KERASTUNER_TUNER_ID"))


if __name__ == "__main__":
    main(sys.argv[1])
