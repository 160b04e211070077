"""A study's trial records as the tables the report reads: scores, outcomes, reference runs and proxies.

``study_tables`` gives four pandas tables keyed by ``space``, ``dataset`` and
``candidate``: ``scores`` (one row per arm and epoch of the ranked run:
``val_accuracy``, with the strata columns ``depth``, ``depth_bucket``,
``activation``, ``activation_family``, ``normalization``, ``batchnorm`` and
``trains``), ``outcomes`` (the ranked run's test accuracy at E, with the
candidate's ``chance`` accuracy), ``reference`` (the reference run's, with its
own seed) and ``proxies`` (zero-cost values). A run that diverged stops early;
its later epochs (and any non-finite score) get chance accuracy, 1 / classes,
which is what a network whose outputs are NaN scores (it predicts one class).

``trains`` separates candidates that train under every arm from dead ones: a
candidate that stays at chance under some arm scores chance in both its ranked
and reference runs and ties at the bottom of both rankings, which inflates rho.
"""

import math

import numpy as np
import pandas as pd

DEPTH_BUCKETS = ((1, 5, "1-5"), (6, 11, "6-11"), (12, 23, "12-23"), (24, 10**9, "24+"))
RECTIFIERS = {"relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "swish", "silu", "mish", "softplus"}
SATURATING = {"tanh", "sigmoid", "hard_sigmoid", "hard_tanh", "softsign"}
SCORE_COLUMNS = ["space", "dataset", "candidate", "arm", "seed", "epoch", "val_accuracy", "diverged",
                 "init_seconds", "train_seconds", "depth", "depth_bucket", "activation", "activation_family",
                 "normalization", "batchnorm", "trains"]
RUN_COLUMNS = ["space", "dataset", "candidate", "arm", "seed", "epochs", "test_accuracy"]
OUTCOME_COLUMNS = RUN_COLUMNS + ["chance"]
TRAIN_MARGIN = 0.1  # a run "trains" when its test accuracy beats chance by at least this much
EVERY_ARM, NOT_EVERY_ARM = "every arm", "not every arm"
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


def trained(test_accuracy, chance, margin=TRAIN_MARGIN):
    """Whether a test accuracy beats ``chance`` by at least ``margin`` (1e-9 slack for float error).

    Example:
        >>> trained(0.35, 0.25), trained(0.34, 0.25), trained(float("nan"), 0.25)
        (True, False, False)
    """
    return bool(float(test_accuracy) - float(chance) >= margin - 1e-9)


def _share(flags):
    """"none", "every" or "some" for a list of per-block booleans."""
    return "every" if all(flags) else ("none" if not any(flags) else "some")


def splits(candidate):
    """Strata of one candidate: depth, depth bucket, activation, activation family, normalization, batchnorm.

    Reads the heterogeneous space's blocks (normalization "none", "every"
    block or "some"; batchnorm the same for BatchNormalization alone) or the
    deep-plain space's depth and activation (never normalized); other spaces
    get "?" labels.

    Example:
        >>> c = {"space": "h", "values": {"blocks": 2, "block_0_activation": "relu", "block_1_activation": "tanh",
        ...      "block_0_normalization": "batch", "block_1_normalization": "batch"}}
        >>> s = splits(c)
        >>> s["activation"], s["activation_family"], s["normalization"], s["batchnorm"]
        ('relu+tanh', 'mixed', 'every', 'every')
        >>> splits({"space": "p", "values": {"depth": 20, "width": 16, "activation": "tanh"}})["normalization"]
        'none'
    """
    from search_spaces import deep_plain, heterogeneous

    values = candidate["values"]
    if "blocks" in values:
        described = heterogeneous.describe(values)
        kinds = [values.get(f"block_{i}_normalization", "none") for i in range(int(values.get("blocks", 1)))]
        normalization = _share([kind != "none" for kind in kinds])
        batchnorm = _share([kind == "batch" for kind in kinds])
    elif "depth" in values and "activation" in values:
        described, normalization, batchnorm = deep_plain.describe(values), "none", "none"
    else:
        described, normalization, batchnorm = {"depth": 0, "activations": "?"}, "?", "?"
    return {"depth": described["depth"], "depth_bucket": depth_bucket(described["depth"]),
            "activation": described["activations"], "activation_family": activation_family(described["activations"]),
            "normalization": normalization, "batchnorm": batchnorm}


def _finite(value, fallback):
    return float(value) if value is not None and math.isfinite(float(value)) else fallback


def _arm_rows(rows, key, arm, fields, record, epochs, objective, chance, labels):
    """Append one arm's score, outcome and reference rows; (ranked, reference) test accuracy (NaN: none)."""
    series = (fields.get("history") or {}).get(objective) or []
    for epoch in range(1, epochs + 1):
        value = series[epoch - 1] if epoch <= len(series) else None
        rows["scores"].append(dict(
            key, arm=arm, seed=record.get("seed"), epoch=epoch, val_accuracy=_finite(value, chance),
            diverged=bool(fields.get("diverged")), init_seconds=float(fields.get("init_seconds") or 0.0),
            train_seconds=float(fields.get("train_seconds") or 0.0), **labels))
    ranked = _finite(fields.get("test_accuracy"), chance)
    rows["outcomes"].append(dict(key, arm=arm, seed=record.get("seed"), epochs=int(fields.get("epochs") or 0),
                                 test_accuracy=ranked, chance=chance))
    reference = fields.get("reference") or {}
    if not reference:
        return ranked, float("nan")
    rows["reference"].append(dict(key, arm=arm, seed=reference.get("seed"), epochs=int(reference.get("epochs") or 0),
                                  test_accuracy=_finite(reference.get("test_accuracy"), chance)))
    return ranked, rows["reference"][-1]["test_accuracy"]


def study_tables(finished, arms, epochs, objective="val_accuracy"):
    """{"scores", "outcomes", "reference", "proxies"} of ``finished`` ({candidate id: record}).

    ``trains`` is "every arm" when every arm's ranked-run and reference-run
    test accuracy beat chance by ``TRAIN_MARGIN`` (``trained``; a missing
    reference run fails), else "not every arm".

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
        trained_arms = record["executions"][-1]["arms"]
        first = len(rows["scores"])
        accuracies = [_arm_rows(rows, key, arm, trained_arms[arm], record, epochs, objective, chance, labels)
                      for arm in arms]
        trains = EVERY_ARM if all(trained(a, chance) for pair in accuracies for a in pair) else NOT_EVERY_ARM
        for row in rows["scores"][first:]:
            row["trains"] = trains
        for proxy, value in sorted((record.get("proxies") or {}).items()):
            rows["proxies"].append(dict(key, proxy=proxy, value=float(value)))
    columns = {"scores": SCORE_COLUMNS, "outcomes": OUTCOME_COLUMNS, "reference": RUN_COLUMNS,
               "proxies": PROXY_COLUMNS}
    return {name: pd.DataFrame(found, columns=columns[name]) for name, found in rows.items()}


def untrained_shares(outcomes, by=("space", "dataset"), margin=TRAIN_MARGIN):
    """Per cell and arm, then pooled over every candidate (the ``by`` columns "all"): the share of ranked
    runs whose test accuracy does not beat chance by ``margin`` (``untrained``), and n.

    ``outcomes``: ``study_tables``' outcomes (``test_accuracy`` and ``chance``).

    Example:
        >>> outcomes = pd.DataFrame({"space": ["a", "a", "b", "b"], "arm": "he", "chance": 0.25,
        ...                          "test_accuracy": [0.3, 0.9, 0.8, 0.9]})
        >>> untrained_shares(outcomes, by=["space"]).values.tolist()
        [['a', 'he', 0.5, 2], ['b', 'he', 0.0, 2], ['all', 'he', 0.25, 4]]
    """
    by = list(by)
    require(outcomes, by + ["arm", "test_accuracy", "chance"], "outcomes")
    flags = outcomes.assign(untrained=[not trained(t, c, margin) for t, c in
                                       zip(outcomes["test_accuracy"], outcomes["chance"])])
    pooled = flags.assign(**{column: "all" for column in by})
    parts = [frame.groupby(by + ["arm"], sort=True)["untrained"].agg(["mean", "size"]).reset_index()
             for frame in ((flags, pooled) if by else (flags,))]
    table = pd.concat(parts, ignore_index=True).rename(columns={"mean": "untrained", "size": "n"})
    return table[by + ["arm", "untrained", "n"]]


def require(table, columns, name):
    """Raise ValueError naming the ``columns`` that ``table`` (called ``name``) lacks."""
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"`{name}` needs columns {list(columns)}; missing {missing}. "
                         f"Received columns: {list(table.columns)}")


def cells(curves, outcomes, by, strata):
    """(key, curves, outcomes) per ``by`` group of ``curves``, then per value of each ``strata`` column.

    ``outcomes`` (any table with ``candidate`` and the ``by`` columns) is cut to
    the same cell and candidates; a stratum column must be constant per candidate.

    Example:
        >>> curves = pd.DataFrame({"dataset": ["a", "a", "b"], "candidate": [0, 1, 0], "norm": ["x", "y", "x"]})
        >>> [key["stratum"] for key, _, _ in cells(curves, curves, ["dataset"], ["norm"])]
        ['all', 'norm=x', 'norm=y', 'all', 'norm=x']
    """
    by = list(by)
    require(curves, by + list(strata) + ["candidate"], "curves")
    require(outcomes, by + ["candidate"], "outcomes")
    groups = curves.groupby(by, sort=True) if by else [((), curves)]
    for values, group in groups:
        values = values if isinstance(values, tuple) else (values,)
        key = dict(zip(by, values))
        mask = np.ones(len(outcomes), bool)
        for column, value in key.items():
            mask &= (outcomes[column] == value).to_numpy()
        cell_outcomes = outcomes[mask]
        yield dict(key, stratum="all"), group, cell_outcomes
        for column in strata:
            for value, part in group.groupby(column, sort=True):
                chosen = cell_outcomes[cell_outcomes["candidate"].isin(set(part["candidate"]))]
                yield dict(key, stratum=f"{column}={value}"), part, chosen
