"""Walk a Keras 3 model's graph through its tensor history.

The walk knows nothing about layer types: it orders the call nodes of a
Functional (or built Sequential) model from inputs to outputs using each
KerasTensor's ``_keras_history`` (operation, node index, tensor index), hands
each node's input moments to a callback, and stores the moments it returns for
the node's output tensors. A nested model called as a layer is walked in turn,
its inputs seeded with the moments of the tensors it was called on, so a model
called several times is walked once per call. Subclassed models have no
graph; ``trace`` records one by running their ``call()`` on symbolic inputs.
Custom layers (``keras.layers.Layer`` subclasses written outside Keras) are
opened the same way when the caller's ``expand`` predicate allows it, so the
Keras layers and ``keras.ops`` calls inside them become nodes of their own
(entries "outer/inner"); one that cannot be traced is left whole, and
``unopened_reason`` says why.

Example:
    >>> import keras
    >>> x = keras.Input((3,))
    >>> model = keras.Model(x, keras.layers.Dense(2)(x))
    >>> [node.operation.name for node in ordered_nodes(model)] == [model.layers[1].name]
    True
"""

import threading

import keras
import numpy as np
from keras.src.backend.common.symbolic_scope import in_symbolic_scope
from keras.src.ops import numpy as knp

from autoinit_nas.estimators.constant import TracedConstant


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
    """A subclassed model or custom layer whose ``call()`` cannot run on symbolic inputs."""


def is_openable(operation):
    """True for a layer AutoInit may open: a non-model Layer written outside Keras and AutoInit."""
    module = type(operation).__module__
    return (
        isinstance(operation, keras.layers.Layer)
        and not isinstance(operation, keras.Model)
        and not module.startswith(("keras.", "autoinit_nas."))
    )


def unopened_reason(operation):
    """Why the walk left custom layer ``operation`` whole (its last attempt), or None.

    A clause, such as "it holds weights of its own (kernel) and no
    sublayers, so AutoInit cannot tell how its call() uses them".
    """
    return operation.__dict__.get("_autoinit_unopened")


# Layer.__call__ is patched for the length of a trace only; the lock keeps two
# threads from interleaving patch and restore.
_LIFT_LOCK = threading.RLock()


class _LiftedConstants:
    """While tracing ``owner``, sublayers called on concrete tensors are called on graph nodes.

    A value ``call()`` computes without its inputs (``ops.arange`` positions
    fed to a position Embedding) would make that sublayer run eagerly at
    tracing time and vanish from the graph, weights and all. Each such
    tensor argument becomes a ``TracedConstant`` node anchored on the trace's
    first input. Calls inside a layer's own shape inference (Keras's
    symbolic scope) are left alone.
    """

    def __init__(self, owner, anchor):
        self.targets = {id(layer) for layer in owner._flatten_layers(include_self=False, recursive=True)}
        self.anchor = anchor
        self.original = None

    def __enter__(self):
        _LIFT_LOCK.acquire()
        self.original = vars(keras.layers.Layer)["__call__"]
        original, lift = self.original, self._lift

        def lifting_call(layer, *args, **kwargs):
            if id(layer) in self.targets and not in_symbolic_scope():
                args, kwargs = lift(layer, args, kwargs)
            return original(layer, *args, **kwargs)

        keras.layers.Layer.__call__ = lifting_call
        return self

    def __exit__(self, *exc):
        keras.layers.Layer.__call__ = self.original
        _LIFT_LOCK.release()
        return False

    def _lift(self, layer, args, kwargs):
        leaves = keras.tree.flatten((args, kwargs))
        if any(isinstance(leaf, keras.KerasTensor) for leaf in leaves):
            return args, kwargs

        def to_node(value):
            concrete = isinstance(value, (keras.Variable, np.ndarray)) or keras.ops.is_tensor(value)
            if not concrete:
                return value
            return TracedConstant(value, name=f"{layer.name}_constant")(self.anchor)

        lifted_kwargs = {
            name: value if name in ("mask", "training") else keras.tree.map_structure(to_node, value)
            for name, value in kwargs.items()
        }
        return keras.tree.map_structure(to_node, args), lifted_kwargs


def trace(model, input_shapes, call_arguments=None, input_dtypes=None):
    """A Functional view of a subclassed model or custom layer, from ``call()`` on ``keras.Input``s.

    ``call()`` runs on symbolic inputs of the given shapes (batch dimension
    first) and dtypes (default float32), so every layer and ``keras.ops``
    call inside it records a node; the returned ``keras.Model`` shares the
    layer's sublayers and weights. Sublayers called on values computed
    without the inputs are called on ``TracedConstant`` nodes instead.
    ``call_arguments`` (a node's SymbolicArguments) gives the call's
    structure when it is a layer of an outer graph, with one shape per
    ``signal_tensors`` entry (masks are passed as None); otherwise each
    shape is one positional argument. Traces are cached on the layer by
    shape, so repeated initialization adds no nodes.

    Raises:
        TraceError: when ``call()`` needs concrete values (Python control flow
            on tensors, backend-specific ops, ...).
    """
    key = tuple(tuple(shape) for shape in input_shapes)
    cache = model.__dict__.setdefault("_autoinit_traces", {})
    if key in cache:
        return cache[key]
    dtypes = input_dtypes or [None] * len(input_shapes)
    inputs = [keras.Input(batch_shape=tuple(shape), dtype=dtype) for shape, dtype in zip(input_shapes, dtypes)]
    try:
        if call_arguments is not None:
            mapping = {id(t): i for t, i in zip(signal_tensors(call_arguments), inputs)}
            args, kwargs = call_arguments.fill_in(mapping)
        else:
            args, kwargs = inputs, {}
        with _LiftedConstants(model, inputs[0]):
            outputs = model.call(*args, **kwargs)
        traced = keras.Model(inputs, outputs, name=model.name)
        _free_batch_reshapes(traced)
    except Exception as error:  # any failure of the user's call() is a trace failure
        kind = "subclassed model" if isinstance(model, keras.Model) else "custom layer"
        reason = (
            f"its call() failed on symbolic keras.Input tensors of shapes {list(key)} with "
            f"{type(error).__name__}: {str(error).strip().rstrip('.')} (use keras.ops, not "
            "backend-specific ops or Python control flow on tensor values, inside call())"
        )
        remedy = ", or build the model functionally (keras.Model(inputs, outputs))" if kind[0] == "s" else ""
        raised = TraceError(
            f"AutoInit could not trace {kind} '{model.name}' ({type(model).__name__}): {reason}{remedy}."
        )
        raised.reason = reason
        raise raised from error
    cache[key] = traced
    return traced


def _free_batch_reshapes(model):
    """Let reshapes traced with an unknown batch size run on a concrete batch.

    ``call()`` code such as ``ops.reshape(x, (ops.shape(x)[0], -1))`` (the
    keras-io ``Patches`` layer) records the symbolic batch size, None, in the
    reshape's target shape; on a real batch that entry must be -1.
    """
    for node in ordered_nodes(model):
        operation = node.operation
        shape = getattr(operation, "newshape", None)
        if isinstance(operation, knp.Reshape) and isinstance(shape, (tuple, list)):
            if list(shape).count(None) == 1 and -1 not in shape:
                operation.newshape = tuple(-1 if dim is None else dim for dim in shape)


def open_layer(layer, tensors, call_arguments):
    """The traced graph of custom layer ``layer`` called on ``tensors``, or None if it stays whole.

    A layer that holds weights of its own (``add_weight``) and no sublayers
    is not opened: AutoInit cannot tell how ``call()`` uses those weights,
    so opening it would initialize nothing. Nor is one whose ``call()``
    cannot be traced. Either way the reason is kept for ``unopened_reason``.
    """
    own = list(layer._trainable_variables) + list(layer._non_trainable_variables)
    reason = None
    if own and not any(sublayer.weights for sublayer in layer._layers):
        names = ", ".join(variable.name for variable in own)
        reason = (
            f"it holds weights of its own ({names}) and no sublayers, so AutoInit cannot tell "
            "how its call() uses them"
        )
    else:
        try:
            traced = trace(
                layer, [t.shape for t in tensors], call_arguments, [t.dtype for t in tensors]
            )
        except TraceError as error:
            reason = error.reason
    if reason is not None:
        layer.__dict__["_autoinit_unopened"] = reason
        return None
    layer.__dict__.pop("_autoinit_unopened", None)
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


def inner_graph(node, expand=None):
    """The graph ``walk`` descends into at ``node``, or None when it visits the node whole.

    A nested graph model is its own graph; a subclassed model is traced
    (``TraceError`` if it cannot be); a custom layer is opened when
    ``expand`` allows it (see ``walk``) and can be (``open_layer``). The
    inner graph's inputs match ``signal_tensors(node)`` one to one, so a
    caller can follow a tensor inside.

    Example:
        >>> import keras
        >>> class Block(keras.layers.Layer):
        ...     __module__ = "user_blocks"  # a user's layer (AutoInit's own are never opened)
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.dense = keras.layers.Dense(2, name="proj")
        ...     def call(self, x):
        ...         return self.dense(x)
        >>> x = keras.Input((3,))
        >>> node = ordered_nodes(keras.Model(x, Block()(x)))[0]
        >>> [n.operation.name for n in ordered_nodes(inner_graph(node))]
        ['proj']
    """
    operation = node.operation
    if is_graph_model(operation):
        return operation
    tensors = signal_tensors(node)
    if isinstance(operation, keras.Model):
        return trace(operation, [t.shape for t in tensors], node.arguments)
    if is_openable(operation) and (expand is None or expand(operation)):
        return open_layer(operation, tensors, node.arguments)
    return None


class _Liveness:
    """Hands each value of one graph's walk to ``release`` once nothing in that graph reads it again.

    Counts the nodes still to read each tensor; a tensor is done after its
    last reader has returned, nested walks and their whole-layer retries
    included. The graph's inputs belong to the caller and its outputs to
    the caller's graph, so they are never released here: a value entering a
    nested walk stays alive until that walk returns. A value held by several
    tensors (a nested graph that returns its input) goes when the last goes.
    """

    def __init__(self, nodes, inputs, outputs, release):
        self.release = release
        self.reads_left = {}  # id(tensor) -> nodes still to read it
        for node in nodes:
            for key in {id(tensor) for tensor in signal_tensors(node)}:
                self.reads_left[key] = self.reads_left.get(key, 0) + 1
        self.kept = {id(tensor) for tensor in inputs + outputs}
        self.holders = {}  # id(value) -> tensors of this graph that still need it

    def produced(self, tensors, values):
        """Count the new values; one that nothing reads is released at once."""
        for tensor, value in zip(tensors, values):
            if id(tensor) in self.kept or self.reads_left.get(id(tensor)):
                self.holders[id(value)] = self.holders.get(id(value), 0) + 1
            elif not self.holders.get(id(value)):
                self.release(value)

    def read(self, tensors, values):
        """A node has read ``tensors`` (holding ``values``): release those it was the last reader of."""
        done = {}
        for tensor, value in zip(tensors, values):
            done[id(tensor)] = value
        for key, value in done.items():
            self.reads_left[key] -= 1
            if self.reads_left[key] or key in self.kept:
                continue
            self.holders[id(value)] -= 1
            if not self.holders[id(value)]:
                del self.holders[id(value)]
                self.release(value)


def _walk_node(node, keys, moments_in, visit, expand, release):
    """(output moments, entries inside) of one node: walked inside when it has a graph, else visited.

    Opening a custom layer never does worse than leaving it whole: if
    anything inside it fails (an estimator that cannot handle what the
    trace recorded, a value the probe cannot run), the layer is visited
    whole instead, on its inputs as they entered (a nested walk releases
    only what it computed), and ``unopened_reason`` says what failed.
    """
    nested = inner_graph(node, expand)
    if nested is None:
        return visit(node, keys[0], moments_in), {}
    try:
        return walk(nested, moments_in, visit, keys[0] + "/", expand, release)
    except Exception as error:  # noqa: BLE001 - any failure inside falls back to the whole layer
        if not is_openable(node.operation):
            raise
        # The first line of the error, and the note naming the inner layer, if any.
        lines = [line for line in str(error).strip().splitlines() if line.strip()][:1]
        lines += list(getattr(error, "__notes__", []))[:1]
        node.operation.__dict__["_autoinit_unopened"] = (
            f"the layers inside it could not be estimated ({type(error).__name__}: "
            f"{' '.join(line.strip() for line in lines)})"
        )
    return visit(node, keys[0], moments_in), {}


def _entry_keys(nodes, prefix):
    """Each node's entry names: ``prefix + name``; ``@i`` suffixes (and the plain name for @0) for layers called more than once."""
    call_counts = {}
    for node in nodes:
        call_counts[id(node.operation)] = call_counts.get(id(node.operation), 0) + 1
    seen_calls = {}
    for node in nodes:
        operation = node.operation
        call_index = seen_calls.get(id(operation), 0)
        seen_calls[id(operation)] = call_index + 1
        name = prefix + operation.name
        if call_counts[id(operation)] == 1:
            yield [name]
        else:
            yield [f"{name}@{call_index}"] + ([name] if call_index == 0 else [])


def walk(model, input_moments, visit, prefix="", expand=None, release=None):
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
        expand: ``expand(layer) -> bool``, asked for each custom layer
            (``is_openable``): True opens it (``open_layer``) and walks the
            nodes inside it as a nested graph, "outer/inner"; None opens
            every custom layer. A layer that cannot be opened, or whose
            inside fails, is visited whole (``unopened_reason`` says why).
        release: ``release(value)``, called once per value the walk computed
            as soon as no later node reads it (the probe frees its tensor
            there); never for ``input_moments`` or the returned outputs.

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
    liveness = _Liveness(nodes, inputs, outputs, release) if release is not None else None
    entries = {}
    for tensor, value in zip(inputs, input_moments):
        history = getattr(tensor, "_keras_history", None)
        if history is not None and history.operation is not None:
            entries[prefix + history.operation.name] = value
    for node, keys in zip(nodes, _entry_keys(nodes, prefix)):
        tensors = signal_tensors(node)
        try:
            moments_in = [moments[id(tensor)] for tensor in tensors]
        except KeyError:
            raise ValueError(
                f"Layer '{keys[0]}' is called on a tensor that does not come from the inputs "
                f"of model '{model.name}'; AutoInit can only walk connected graphs."
            ) from None
        outputs_moments, inner = _walk_node(node, keys, moments_in, visit, expand, release)
        entries.update(inner)
        if len(keys) > 1:  # first call of a reused model: plain-name paths too
            entries.update({keys[1] + key[len(keys[0]):]: value for key, value in inner.items()})
        for tensor, value in zip(node.outputs, outputs_moments):
            moments[id(tensor)] = value
        for key in keys:
            entries[key] = outputs_moments[0]
        if liveness is not None:
            liveness.produced(node.outputs, outputs_moments)
            liveness.read(tensors, moments_in)
    return [moments[id(tensor)] for tensor in outputs], entries


def producer(tensor):
    """The operation (layer, model or op) whose call produced a KerasTensor; None for a plain tensor.

    For a model's input tensor it is the ``InputLayer``. Lets other rooms name
    a tensor's layer without reading ``_keras_history`` themselves.

    Example:
        >>> import keras
        >>> x = keras.Input((3,), name="features")
        >>> producer(x).name
        'features'
    """
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else getattr(history, "operation", None)
