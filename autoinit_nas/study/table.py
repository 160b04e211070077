"""A study's trial records as the tables the report reads: scores, outcomes, reference runs and proxies.

``study_tables`` gives four pandas tables keyed by ``space``, ``dataset`` and
``candidate``: ``scores`` (one row per arm and epoch of the ranked run:
``val_accuracy``, with the strata columns ``depth``, ``depth_bucket``,
``activation``, ``activation_family``, ``normalization``), ``outcomes`` (the
ranked run's test accuracy at E), ``reference`` (the reference run's, with its
own seed) and ``proxies`` (zero-cost values). A run that diverged stops early;
its later epochs (and any non-finite score) get chance accuracy, 1 / classes,
which is what a network whose outputs are NaN scores (it predicts one class).
"""

import math

import pandas as pd

DEPTH_BUCKETS = ((1, 5, "1-5"), (6, 11, "6-11"), (12, 23, "12-23"), (24, 10**9, "24+"))
RECTIFIERS = {"relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "swish", "silu", "mish", "softplus"}
SATURATING = {"tanh", "sigmoid", "hard_sigmoid", "hard_tanh", "softsign"}
SCORE_COLUMNS = ["space", "dataset", "candidate", "arm", "seed", "epoch", "val_accuracy", "diverged",
                 "init_seconds", "train_seconds", "depth", "depth_bucket", "activation", "activation_family",
                 "normalization"]
RUN_COLUMNS = ["space", "dataset", "candidate", "arm", "seed", "epochs", "test_accuracy"]
PROXY_COLUMNS = ["space", "dataset", "candidate", "proxy", "value"]


def depth_bucket(depth):
    """The bucket label of a depth (weighted layers in the blocks).

    Example:
        >>> depth_bucket(2), depth_bucket(12), depth_bucket(40)
        ('1-5', '12-23', '24+')
    """
    for low, high, label in DEPTH_BUCKETS:
        if low <= depth <= high:
            return label
    return "?"


def activation_family(activations):
    """"rectifier", "saturating" or "mixed" for a "+"-joined set of activation names ("?" if unknown).

    Example:
        >>> activation_family("relu+gelu"), activation_family("tanh"), activation_family("relu+sigmoid")
        ('rectifier', 'saturating', 'mixed')
    """
    names = set(str(activations).split("+"))
    if names <= RECTIFIERS:
        return "rectifier"
    if names <= SATURATING:
        return "saturating"
    return "mixed" if names <= RECTIFIERS | SATURATING else "?"


def splits(candidate):
    """Strata of one candidate: depth, depth bucket, activation, activation family, normalization.

    Reads the heterogeneous space's blocks (normalization "none", "every"
    block or "some") or the deep-plain space's depth and activation (never
    normalized); other spaces get "?" labels.

    Example:
        >>> c = {"space": "h", "values": {"blocks": 2, "block_0_activation": "relu", "block_1_activation": "tanh",
        ...      "block_0_normalization": "batch", "block_1_normalization": "batch"}}
        >>> s = splits(c)
        >>> s["activation"], s["activation_family"], s["normalization"]
        ('relu+tanh', 'mixed', 'every')
        >>> splits({"space": "p", "values": {"depth": 20, "width": 16, "activation": "tanh"}})["normalization"]
        'none'
    """
    from search_spaces import deep_plain, heterogeneous

    values = candidate["values"]
    if "blocks" in values:
        described = heterogeneous.describe(values)
        normalized = [values.get(f"block_{i}_normalization", "none") != "none"
                      for i in range(int(values.get("blocks", 1)))]
        normalization = "every" if all(normalized) else ("none" if not any(normalized) else "some")
    elif "depth" in values and "activation" in values:
        described, normalization = deep_plain.describe(values), "none"
    else:
        described, normalization = {"depth": 0, "activations": "?"}, "?"
    return {"depth": described["depth"], "depth_bucket": depth_bucket(described["depth"]),
            "activation": described["activations"], "activation_family": activation_family(described["activations"]),
            "normalization": normalization}


def _finite(value, fallback):
    return float(value) if value is not None and math.isfinite(float(value)) else fallback


def study_tables(finished, arms, epochs, objective="val_accuracy"):
    """{"scores", "outcomes", "reference", "proxies"} of ``finished`` ({candidate id: record}).

    Example:
        >>> sorted(study_tables({}, ["he"], 2))
        ['outcomes', 'proxies', 'reference', 'scores']
    """
    rows = {"scores": [], "outcomes": [], "reference": [], "proxies": []}
    for candidate_id, record in sorted(finished.items()):
        candidate = record["hyperparameters"]["candidate"]
        key = dict(space=candidate["space"], dataset=candidate["dataset"], candidate=candidate_id)
        labels = splits(candidate)
        chance = 1.0 / float(candidate.get("num_classes") or 10)
        trained = record["executions"][-1]["arms"]
        for arm in arms:
            fields = trained[arm]
            series = (fields.get("history") or {}).get(objective) or []
            for epoch in range(1, epochs + 1):
                value = series[epoch - 1] if epoch <= len(series) else None
                rows["scores"].append(dict(
                    key, arm=arm, seed=record.get("seed"), epoch=epoch, val_accuracy=_finite(value, chance),
                    diverged=bool(fields.get("diverged")), init_seconds=float(fields.get("init_seconds") or 0.0),
                    train_seconds=float(fields.get("train_seconds") or 0.0), **labels))
            rows["outcomes"].append(dict(key, arm=arm, seed=record.get("seed"), epochs=int(fields.get("epochs") or 0),
                                         test_accuracy=_finite(fields.get("test_accuracy"), chance)))
            reference = fields.get("reference") or {}
            if reference:
                rows["reference"].append(dict(key, arm=arm, seed=reference.get("seed"),
                                              epochs=int(reference.get("epochs") or 0),
                                              test_accuracy=_finite(reference.get("test_accuracy"), chance)))
        for proxy, value in sorted((record.get("proxies") or {}).items()):
            rows["proxies"].append(dict(key, proxy=proxy, value=float(value)))
    columns = {"scores": SCORE_COLUMNS, "outcomes": RUN_COLUMNS, "reference": RUN_COLUMNS, "proxies": PROXY_COLUMNS}
    return {name: pd.DataFrame(found, columns=columns[name]) for name, found in rows.items()}
