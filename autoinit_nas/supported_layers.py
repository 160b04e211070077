"""The supported-layers tables (``autoinit-nas layers``, the README's table), built from the estimator registry."""

import re
import sys
import textwrap

_START = "<!-- supported-layers:start -->"
_END = "<!-- supported-layers:end -->"
_NO_METHOD = "—"
# Estimator modules in reading order; others follow alphabetically, shared helpers (base) last.
_FAMILY_ORDER = ("core", "convolutional", "activations", "merging", "normalization",
                 "regularization", "pooling", "reshaping", "recurrent", "attention", "ops")


def supported_layers():
    """Rows of the supported-layers tables, built from the estimator registry.

    One row per built-in estimator class, in family order: ``names`` (layer
    class names, "Conv1D/2D/3D" for dimension variants; or ``keras.ops``
    function names), ``estimator``, ``method`` (the estimator's ``method``
    attribute, "—" where it has none), ``probe`` (what probe propagation
    does with the layer) and ``summary`` (its docstring's first line).

    Returns:
        (layer_rows, op_rows): Keras layers, and ``keras.ops`` operations
        that AutoInit recognises inside Functional graphs.
    """
    import keras

    from autoinit_nas.estimators.registry import builtin_estimators

    groups = {}
    for layer_class, estimator_class in builtin_estimators().items():
        is_layer = issubclass(layer_class, keras.layers.Layer)
        groups.setdefault((is_layer, estimator_class), []).append(layer_class)
    layer_rows, op_rows = [], []
    ordered = sorted(groups.items(), key=lambda item: _estimator_order(item[0][1]))
    for (is_layer, estimator_class), classes in ordered:
        if is_layer:
            names = _compress(sorted({cls.__name__ for cls in classes}))
        else:
            names = sorted({_op_name(cls) for cls in classes})
        row = {
            "names": names,
            "estimator": estimator_class.__name__,
            "method": getattr(estimator_class, "method", None) or _NO_METHOD,
            "probe": _probe_role(estimator_class),
            "summary": _first_line(estimator_class),
        }
        (layer_rows if is_layer else op_rows).append(row)
    return layer_rows, op_rows


def _probe_role(estimator_class):
    """What probe propagation does with a layer of this estimator, in a few words."""
    from autoinit_nas.estimators.wrappers import TimeDistributedEstimator

    if issubclass(estimator_class, TimeDistributedEstimator):
        return "as the wrapped layer"
    weight = getattr(estimator_class, "probe_weight", None)
    if weight:
        return f"runs it; rescales `{weight}` to the measured variance"
    if hasattr(estimator_class, "run_on_probe"):
        return "cells run in numpy; scale from the estimate"
    return "runs it"


def supported_layers_markdown():
    """The supported-layers section of the README, as Markdown."""
    layer_rows, op_rows = supported_layers()
    lines = [
        "<!-- Generated from the estimator registry by `python scripts/supported_layers.py "
        "--write README.md`; edit the estimators, not this table. -->",
        "",
        "| layers | estimator | method (scalar) | probe | summary |",
        "|---|---|---|---|---|",
    ]
    for row in layer_rows:
        lines.append(_markdown_row(", ".join(row["names"]), row, probe=True))
    lines += [
        "",
        "`keras.ops` calls recorded in Functional graphs (`x + y`, `keras.ops.matmul(a, b)`, ...) "
        "are recognised by their op class:",
        "",
        "| keras.ops | estimator | method (scalar) | summary |",
        "|---|---|---|---|",
    ]
    for row in op_rows:
        lines.append(_markdown_row(", ".join(f"`{name}`" for name in row["names"]), row))
    return "\n".join(lines)


def supported_layers_text(width=100):
    """The supported-layers tables as plain text, one block per estimator."""
    layer_rows, op_rows = supported_layers()
    blocks = []
    for title, rows in (("Keras layers", layer_rows), ("keras.ops operations", op_rows)):
        blocks.append(f"{title}\n{'=' * len(title)}")
        for row in rows:
            block = [f"{row['estimator']}  [{row['method']}]"]
            block += textwrap.wrap(", ".join(row["names"]), width, initial_indent="  layers:  ",
                                   subsequent_indent=" " * 11)
            if rows is layer_rows:
                block.append(f"  probe:   {row['probe']}")
            block += textwrap.wrap(row["summary"], width, initial_indent="  summary: ",
                                   subsequent_indent=" " * 11)
            blocks.append("\n".join(block))
    return "\n\n".join(blocks)


def replace_marked_block(text, block):
    """``text`` with everything between the supported-layers markers replaced by ``block``.

    Raises:
        ValueError: the markers are missing, repeated or out of order.
    """
    starts, ends = text.count(_START), text.count(_END)
    if starts != 1 or ends != 1 or text.index(_START) > text.index(_END):
        raise ValueError(
            f"Expected one '{_START}' followed by one '{_END}'. "
            f"Received: {starts} start and {ends} end markers."
        )
    head, rest = text.split(_START)
    _, tail = rest.split(_END)
    return f"{head}{_START}\n{block}\n{_END}{tail}"


def _markdown_row(names, row, probe=False):
    cells = [names, f"`{row['estimator']}`", row["method"]]
    cells += [row["probe"]] if probe else []
    cells += [row["summary"]]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _estimator_order(estimator_class):
    module = sys.modules[estimator_class.__module__]
    family = estimator_class.__module__.rpartition(".")[2]
    if family in _FAMILY_ORDER:
        rank = (0, _FAMILY_ORDER.index(family), "")
    elif family == "base":
        rank = (2, 0, "")
    else:
        rank = (1, 0, estimator_class.__module__)
    names = list(vars(module))  # definition order within the module
    position = names.index(estimator_class.__name__) if estimator_class.__name__ in names else len(names)
    return rank + (position, estimator_class.__name__)


def _compress(names):
    """["Conv1D", "Conv2D", "Conv3D", "Dense"] -> ["Conv1D/2D/3D", "Dense"]."""
    grouped, order = {}, []
    for name in names:
        match = re.fullmatch(r"(.*?)(\d)D", name)
        stem = match.group(1) if match else name
        if stem not in grouped:
            grouped[stem] = []
            order.append(stem)
        grouped[stem].append(name if not match else f"{match.group(2)}D")
    result = []
    for stem in order:
        parts = grouped[stem]
        if parts == [stem]:
            result.append(stem)
        else:
            result.append(stem + "/".join(parts))
    return result


def _op_name(op_class):
    """The public function name of a keras op class: Matmul -> matmul, ReLU -> activations.relu."""
    import keras

    name = op_class.__name__
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    if op_class.__module__.startswith("keras.src.activations"):
        namespace, prefix = keras.activations, "activations."
    else:
        namespace, prefix = keras.ops, ""
    for candidate in (snake, name.lower()):
        if hasattr(namespace, candidate):
            return prefix + candidate
    return prefix + snake


def _first_line(estimator_class):
    doc = estimator_class.__doc__ or ""
    for line in doc.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""
