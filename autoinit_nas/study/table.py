"""A study's trial records as the long table ``autoinit_nas.study.stats`` reads: one row per candidate, arm, epoch.

Columns: ``candidate``, ``arm``, ``epoch`` (1-based), ``score`` (the objective
at that epoch), ``diverged``, ``init_seconds``, ``train_seconds``, and the
split columns ``space``, ``dataset``, ``depth``, ``depth_bucket``,
``activation``, ``normalization``. A run that diverged stops early; its
later epochs (and any non-finite score) get chance accuracy, 1 / classes,
which is what a network whose outputs are NaN scores (it predicts one class).
"""

import math

import pandas as pd

DEPTH_BUCKETS = ((1, 3, "1-3"), (4, 6, "4-6"), (7, 9, "7-9"), (10, 10**9, "10+"))


def depth_bucket(depth):
    """The bucket label of a depth (weighted layers in the blocks).

    Example:
        >>> depth_bucket(2), depth_bucket(12)
        ('1-3', '10+')
    """
    for low, high, label in DEPTH_BUCKETS:
        if low <= depth <= high:
            return label
    return "?"


def splits(candidate):
    """Split labels of one candidate: depth, depth bucket, activation ("mixed" or the one), normalization.

    Uses the space's ``describe(values)`` when it has one (the heterogeneous
    space); normalization is "none", "all" (every block) or "some".

    Example:
        >>> c = {"space": "h", "values": {"blocks": 2, "block_0_activation": "relu", "block_1_activation": "tanh",
        ...      "block_0_normalization": "batch", "block_1_normalization": "batch"}}
        >>> splits(c)["activation"], splits(c)["normalization"]
        ('mixed', 'all')
    """
    from search_spaces import heterogeneous

    values = candidate["values"]
    described = heterogeneous.describe(values)
    blocks = range(int(values.get("blocks", 1)))
    normalized = [values.get(f"block_{i}_normalization", "none") != "none" for i in blocks]
    activation = described["activations"]
    return {
        "depth": described["depth"],
        "depth_bucket": depth_bucket(described["depth"]),
        "activation": "mixed" if "+" in activation else activation,
        "normalization": "all" if all(normalized) else ("none" if not any(normalized) else "some"),
    }


def long_table(finished, arms, epochs, objective="val_accuracy"):
    """The long table of ``finished`` ({candidate id: record}, from ``runner.finished_runs``).

    Example:
        >>> long_table({}, ["he"], 2).columns.tolist()[:4]
        ['candidate', 'arm', 'epoch', 'score']
    """
    rows = []
    for candidate_id, record in sorted(finished.items()):
        candidate = record["hyperparameters"]["candidate"]
        labels = dict(space=candidate["space"], dataset=candidate["dataset"], **splits(candidate))
        chance = 1.0 / float(candidate.get("num_classes") or 10)
        trained = record["executions"][-1]["arms"]
        for arm in arms:
            fields = trained[arm]
            series = (fields.get("history") or {}).get(objective) or []
            for epoch in range(1, epochs + 1):
                value = series[epoch - 1] if epoch <= len(series) else None
                score = value if value is not None and math.isfinite(value) else chance
                rows.append(dict(candidate=candidate_id, arm=arm, epoch=epoch, score=float(score),
                                 diverged=bool(fields.get("diverged")),
                                 init_seconds=float(fields.get("init_seconds") or 0.0),
                                 train_seconds=float(fields.get("train_seconds") or 0.0), **labels))
    columns = ["candidate", "arm", "epoch", "score", "diverged", "init_seconds", "train_seconds", "space",
               "dataset", "depth", "depth_bucket", "activation", "normalization"]
    return pd.DataFrame(rows, columns=columns)
