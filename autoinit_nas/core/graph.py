"""Walk a Keras 3 model's graph through its tensor history.

The walk knows nothing about layer types: it orders the call nodes of a
Functional (or built Sequential) model from inputs to outputs using each
KerasTensor's ``_keras_history`` (operation, node index, tensor index), hands
each node's input moments to a callback, and stores the moments it returns for
the node's output tensors. A nested model called as a layer is walked in turn,
its inputs seeded with the moments of the tensors it was called on, so a model
called several times is walked once per call. Subclassed models have no
graph; ``trace`` records one by running their ``call()`` on symbolic inputs.

Example:
    >>> import keras
    >>> x = keras.Input((3,))
    >>> model = keras.Model(x, keras.layers.Dense(2)(x))
    >>> [node.operation.name for node in ordered_nodes(model)] == [model.layers[1].name]
    True
"""

import keras


def is_graph_model(operation):
    """True for models with a symbolic graph: Functional and built Sequential."""
    if not isinstance(operation, keras.Model):
        return False
    if isinstance(operation, keras.Sequential):
        return operation.built and getattr(operation, "_functional", None) is not None
    return hasattr(operation, "_nodes_by_depth") and hasattr(operation, "inputs")


def signal_tensors(node_or_arguments):
    """The tensors a call computes from: its inputs less the masks Keras passes as ``mask=``.

    Keras hands a layer whose ``call`` takes ``mask`` the masks of its inputs
    (e.g. after ``Embedding(mask_zero=True)``); they are inputs of the node
    but not signals, and AutoInit's moments do not depend on them. Accepts a
    Node or its SymbolicArguments.
    """
    arguments = getattr(node_or_arguments, "arguments", node_or_arguments)
    tensors = list(arguments.keras_tensors)
    mask = arguments.kwargs.get("mask") if isinstance(arguments.kwargs, dict) else None
    if mask is None:
        return tensors
    masks = {id(t) for t in keras.tree.flatten(mask) if isinstance(t, keras.KerasTensor)}
    return [tensor for tensor in tensors if id(tensor) not in masks]


class TraceError(TypeError):
    """A subclassed model whose ``call()`` cannot run on symbolic inputs."""


def trace(model, input_shapes, call_arguments=None):
    """A Functional view of a subclassed model, from ``call()`` on ``keras.Input``s.

    ``call()`` runs on symbolic inputs of the given shapes (batch dimension
    first), so every layer and ``keras.ops`` call inside it records a node;
    the returned ``keras.Model`` shares the subclassed model's layers and
    weights. ``call_arguments`` (a node's SymbolicArguments) gives the call's
    structure when the model is a layer of an outer graph, with one shape per
    ``signal_tensors`` entry (masks are passed as None); otherwise each
    shape is one positional argument. Traces are cached on the model by
    shape, so repeated initialization adds no nodes.

    Raises:
        TraceError: when ``call()`` needs concrete values (Python control flow
            on tensors, backend-specific ops, ...).
    """
    key = tuple(tuple(shape) for shape in input_shapes)
    cache = model.__dict__.setdefault("_autoinit_traces", {})
    if key in cache:
        return cache[key]
    inputs = [keras.Input(batch_shape=tuple(shape)) for shape in input_shapes]
    try:
        if call_arguments is not None:
            mapping = {id(t): i for t, i in zip(signal_tensors(call_arguments), inputs)}
            args, kwargs = call_arguments.fill_in(mapping)
        else:
            args, kwargs = inputs, {}
        outputs = model.call(*args, **kwargs)
        traced = keras.Model(inputs, outputs, name=model.name)
    except Exception as error:  # any failure of the user's call() is a trace failure
        raise TraceError(
            f"AutoInit could not trace subclassed model '{model.name}' ({type(model).__name__}): "
            f"its call() failed on symbolic keras.Input tensors of shapes {list(key)} with "
            f"{type(error).__name__}: {error}. Use keras.ops (not backend-specific ops or Python "
            "control flow on tensor values) inside call(), or build the model functionally "
            "(keras.Model(inputs, outputs))."
        ) from error
    cache[key] = traced
    return traced


def graph_of(model):
    """(inputs, outputs) of a graph model, for a built Sequential its inner Functional's."""
    if isinstance(model, keras.Sequential):
        model = model._functional
    return list(model.inputs), list(model.outputs)


def ordered_nodes(model):
    """Call nodes of ``model`` in an order where every node follows its inputs.

    Iterative depth-first search from the outputs back through
    ``_keras_history`` of each node's ``signal_tensors``, stopping at the
    model's input tensors; post-order, so deterministic for a given model.
    Input-layer nodes, and nodes that only compute masks, are left out.
    """
    inputs, outputs = graph_of(model)
    input_ids = {id(tensor) for tensor in inputs}
    order = []
    done = set()
    stack = [(tensor, False) for tensor in reversed(outputs)]
    while stack:
        tensor, expanded = stack.pop()
        if id(tensor) in input_ids:
            continue
        history = getattr(tensor, "_keras_history", None)
        if history is None or history.operation is None:
            continue
        node = history.operation._inbound_nodes[history.node_index]
        if id(node) in done or node.is_input:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((tensor, True))
        for parent_tensor in reversed(signal_tensors(node)):
            stack.append((parent_tensor, False))
    return order


def walk(model, input_moments, visit, prefix=""):
    """Propagate moments through ``model``; returns the moments of its outputs.

    Args:
        model: a graph model (see ``is_graph_model``).
        input_moments: one (mean, var) per model input.
        visit: callback ``visit(node, key, moments_in) -> list of (mean, var)``
            (one per output tensor) for every node that is not a nested model;
            ``moments_in`` has one entry per ``signal_tensors(node)``.
            ``key`` is the node's entry name: ``prefix + layer.name``, with
            ``@i`` appended for the i-th call of a layer called more than once
            in this graph.
        prefix: name prefix of this (nested) graph, e.g. ``"outer/"``.

    Returns:
        (outputs, entries): the output moments, and a dict of entry name ->
        moments of each node's first output (input layers included, holding
        the moments they were seeded with), nested models included.
    """
    inputs, outputs = graph_of(model)
    if len(input_moments) != len(inputs):
        raise ValueError(
            f"Model '{model.name}' has {len(inputs)} inputs but {len(input_moments)} "
            "input moments were given."
        )
    moments = {id(tensor): value for tensor, value in zip(inputs, input_moments)}
    nodes = ordered_nodes(model)
    call_counts = {}
    for node in nodes:
        call_counts[id(node.operation)] = call_counts.get(id(node.operation), 0) + 1
    seen_calls = {}
    entries = {}
    for tensor, value in zip(inputs, input_moments):
        history = getattr(tensor, "_keras_history", None)
        if history is not None and history.operation is not None:
            entries[prefix + history.operation.name] = value
    for node in nodes:
        operation = node.operation
        call_index = seen_calls.get(id(operation), 0)
        seen_calls[id(operation)] = call_index + 1
        name = prefix + operation.name
        keys = [name]
        if call_counts[id(operation)] > 1:
            keys = [f"{name}@{call_index}"] + ([name] if call_index == 0 else [])
        tensors = signal_tensors(node)
        try:
            moments_in = [moments[id(tensor)] for tensor in tensors]
        except KeyError:
            raise ValueError(
                f"Layer '{name}' is called on a tensor that does not come from the inputs "
                f"of model '{model.name}'; AutoInit can only walk connected graphs."
            ) from None
        nested = operation if is_graph_model(operation) else None
        if nested is None and isinstance(operation, keras.Model):
            nested = trace(operation, [t.shape for t in tensors], node.arguments)
        if nested is not None:
            outputs_moments, inner = walk(nested, moments_in, visit, keys[0] + "/")
            entries.update(inner)
            if len(keys) > 1:  # first call of a reused model: plain-name paths too
                entries.update(
                    {name + key[len(keys[0]):]: value for key, value in inner.items()}
                )
        else:
            outputs_moments = visit(node, keys[0], moments_in)
        for tensor, value in zip(node.outputs, outputs_moments):
            moments[id(tensor)] = value
        for key in keys:
            entries[key] = outputs_moments[0]
    return [moments[id(tensor)] for tensor in outputs], entries
