"""A Ray named actor that shares expensive AutoInit estimates across trials and machines.

``SharedEstimateCache`` is a drop-in ``cache`` for ``AutoInit``: the first
trial that needs a sampled estimate computes it, every later trial on any node
gets it back. What is shared, keys, lifetime and fallbacks: docs/engines.md.

Example:
    >>> from autoinit_nas import AutoInit
    >>> cache = SharedEstimateCache()        # no Ray needed to create it
    >>> autoinit = AutoInit(cache=cache)     # or with_autoinit(..., shared_cache=cache)
    >>> cache.shared_key(("SoftmaxEstimator", "vector", ("softmax", 10), (0.0, 1.0), 10, 10, 0))
    True
"""

import asyncio
import threading
import types

DEFAULT_NAME = "autoinit_nas_estimates"
DEFAULT_NAMESPACE = "autoinit_nas"
# Memo names (the second element of a key) of the sampled estimates.
SAMPLED_NAMES = frozenset({"vector", "weight_power", "chains", "gain"})
SHARED_MODES = ("sampled", "all")

# Process-wide local tiers, one per (namespace, name): survive across trials
# that Ray Tune runs in the same worker process.
_LOCAL = {}
_LOCAL_LOCK = threading.Lock()
_MISSING = object()


class _LocalTier:
    """A thread-safe dict: what this process fetched from the actor or computed."""

    def __init__(self):
        self._values = {}
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            return self._values.get(key, _MISSING)

    def put(self, key, value):
        with self._lock:
            return self._values.setdefault(key, value)

    def clear(self):
        with self._lock:
            self._values.clear()


def _local_tier(namespace, name):
    with _LOCAL_LOCK:
        key = (namespace, name)
        if key not in _LOCAL:
            _LOCAL[key] = _LocalTier()
        return _LOCAL[key]


class EstimateStore:
    """The actor behind ``SharedEstimateCache``: a dict with per-node accounting.

    Run as a Ray async actor (``estimate_store_actor()``); its methods are
    coroutines so waiting for a pending key blocks no other caller.
    """

    def __init__(self):
        self._values = {}
        self._computed_by = {}
        self._pending = {}
        self.hits = 0
        self.misses = 0
        self.cross_node_hits = 0
        self.waits = 0
        self.timeouts = 0
        self.hits_by_node = {}
        self.computed_by_node = {}

    async def lookup(self, key, node_id, timeout_s):
        """(True, value) if stored; (False, None) if the caller must compute and ``store``."""
        while True:
            if key in self._values:
                self.hits += 1
                self.hits_by_node[node_id] = self.hits_by_node.get(node_id, 0) + 1
                if self._computed_by.get(key) != node_id:
                    self.cross_node_hits += 1
                return True, self._values[key]
            event = self._pending.get(key)
            if event is None:
                self._pending[key] = asyncio.Event()
                self.misses += 1
                return False, None
            self.waits += 1
            try:
                await asyncio.wait_for(event.wait(), timeout_s)
            except asyncio.TimeoutError:
                self.timeouts += 1
                self.misses += 1
                return False, None

    async def store(self, key, value, node_id):
        """Keep ``value`` under ``key`` and wake everyone waiting for it."""
        if key not in self._values:
            self._values[key] = value
            self._computed_by[key] = node_id
            self.computed_by_node[node_id] = self.computed_by_node.get(node_id, 0) + 1
        event = self._pending.pop(key, None)
        if event is not None:
            event.set()

    async def release(self, key):
        """Give up a pending key (its computation failed); a waiter will compute it."""
        event = self._pending.pop(key, None)
        if event is not None:
            event.set()

    async def stats(self):
        """Counts: entries, hits, misses, cross-node hits, waits, per-node hits and computations."""
        return {
            "entries": len(self._values),
            "hits": self.hits,
            "misses": self.misses,
            "cross_node_hits": self.cross_node_hits,
            "waits": self.waits,
            "timeouts": self.timeouts,
            "pending": len(self._pending),
            "hits_by_node": dict(self.hits_by_node),
            "computed_by_node": dict(self.computed_by_node),
        }

    async def clear(self):
        """Forget every value and count; anyone waiting on a pending key computes it."""
        for event in self._pending.values():
            event.set()
        self.__init__()


class SharedEstimateCache:
    """An ``AutoInit`` cache backed by a Ray named actor, shared by every trial and node.

    Picklable: it travels to Ray workers (``with_autoinit(shared_cache=...)``
    ships it through the object store) and reconnects there by name.

    Example:
        >>> cache = SharedEstimateCache(shared="all")
        >>> cache.get_or_compute(("Demo", "vector", (), (0.0, 1.0), 1, 1, 0), lambda: 0.5)
        0.5
        >>> cache.misses   # computed here (locally: Ray is not running)
        1

    Args:
        name: the actor's name.
        namespace: the Ray namespace it lives in (fixed, so every job finds it).
        shared: "sampled" (default), "all", or a callable ``shared(key) -> bool``
            choosing the keys that go through the actor; the others stay in
            the process.
        wait_timeout_s: how long to wait for a key another process is
            computing before computing it here.

    Attributes (counts of this client since it was created or unpickled):
        hits: lookups answered without computing (local tier or actor).
        misses: estimates computed by this client.
        shared_hits: lookups the actor answered.
        shared_misses: shared (by default: sampled) estimates this client
            computed because the actor did not have them.
        errors: times the actor could not be used (computed locally instead).
    """

    def __init__(self, name=DEFAULT_NAME, namespace=DEFAULT_NAMESPACE, shared="sampled", wait_timeout_s=300.0):
        if not isinstance(name, str) or not name:
            raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")
        if not isinstance(namespace, str) or not namespace:
            raise ValueError(f"`namespace` must be a non-empty string. Received: namespace={namespace!r}")
        if not (callable(shared) or shared in SHARED_MODES):
            raise ValueError(
                f"`shared` must be one of {SHARED_MODES} or a callable shared(key) -> bool. "
                f"Received: shared={shared!r}"
            )
        try:
            timeout = float(wait_timeout_s)
        except (TypeError, ValueError):
            timeout = float("nan")
        if isinstance(wait_timeout_s, bool) or not timeout > 0:
            raise ValueError(
                f"`wait_timeout_s` must be a positive number of seconds. Received: wait_timeout_s={wait_timeout_s!r}"
            )
        self.name = name
        self.namespace = namespace
        self.shared = shared
        self.wait_timeout_s = timeout
        self._reset()

    def _reset(self):
        self._actor = None
        self._node_id = None
        self._lock = threading.Lock()
        self.hits = 0
        self.shared_hits = 0
        self.misses = 0
        self.shared_misses = 0
        self.errors = 0
        self.last_error = None

    def __getstate__(self):
        return {
            "name": self.name,
            "namespace": self.namespace,
            "shared": self.shared,
            "wait_timeout_s": self.wait_timeout_s,
        }

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reset()

    def __repr__(self):
        return (
            f"SharedEstimateCache(name={self.name!r}, namespace={self.namespace!r}, "
            f"shared={self.shared!r})"
        )

    # The cache protocol AutoInit uses.

    def get_or_compute(self, key, compute):
        """The value stored under ``key``; computed (and shared) on a miss."""
        local = _local_tier(self.namespace, self.name)
        value = local.get(key)
        if value is not _MISSING:
            self._count("hits")
            return value
        actor = self._connect() if self.shared_key(key) else None
        if actor is None:
            return self._compute(local, key, compute)
        import ray

        try:
            found, value = ray.get(actor.lookup.remote(key, self._node_id, self.wait_timeout_s))
        except Exception as error:  # noqa: BLE001 - the actor is an optimization only
            self._lost_actor(error)
            return self._compute(local, key, compute)
        if found:
            self._count("hits", "shared_hits")
            return local.put(key, value)
        try:
            value = self._compute(local, key, compute, shared=True)
        except BaseException:
            try:
                actor.release.remote(key)
            except Exception:  # noqa: BLE001
                pass
            raise
        try:
            ray.get(actor.store.remote(key, value, self._node_id))
        except Exception as error:  # noqa: BLE001
            self._lost_actor(error)
        return value

    def shared_key(self, key):
        """Whether ``key`` goes through the actor (per ``shared``)."""
        if callable(self.shared):
            return bool(self.shared(key))
        if self.shared == "all":
            return True
        return isinstance(key, tuple) and len(key) > 1 and key[1] in SAMPLED_NAMES

    def counts(self):
        """This client's counts as a dict (what the trial records show)."""
        return {
            "hits": self.hits,
            "misses": self.misses,
            "shared_hits": self.shared_hits,
            "shared_misses": self.shared_misses,
            "errors": self.errors,
        }

    # Managing the actor.

    def start(self):
        """Create the actor now (or find it); needs ``ray.init()`` first. Returns its handle."""
        import ray

        if not ray.is_initialized():
            raise RuntimeError(
                "SharedEstimateCache.start() needs a running Ray: call ray.init() (or ray.init(address=...)) "
                "first. Workers of a Tune experiment connect on their own; start() is optional."
            )
        actor = self._connect()
        if actor is None:
            raise RuntimeError(f"Could not create or reach the estimate actor {self.name!r}: {self.last_error}")
        return actor

    def stats(self):
        """The actor's counts (``EstimateStore.stats``), or None if it is not running."""
        actor = self._connect(create=False)
        if actor is None:
            return None
        import ray

        return ray.get(actor.stats.remote())

    def clear(self):
        """Forget the shared values (and this process's local tier)."""
        _local_tier(self.namespace, self.name).clear()
        actor = self._connect(create=False)
        if actor is not None:
            import ray

            ray.get(actor.clear.remote())

    def shutdown(self):
        """Kill the actor (it is detached: it otherwise lives as long as the cluster)."""
        actor = self._connect(create=False)
        if actor is not None:
            import ray

            ray.kill(actor)
        self._actor = None

    # Internals.

    def _connect(self, create=True):
        if self._actor is not None:
            return self._actor
        try:
            import ray
        except ImportError as error:  # pragma: no cover - ray is an optional extra
            self.last_error = error
            return None
        if not ray.is_initialized():
            return None
        with self._lock:
            if self._actor is not None:
                return self._actor
            try:
                if create:
                    self._actor = estimate_store_actor().options(
                        name=self.name,
                        namespace=self.namespace,
                        get_if_exists=True,
                        lifetime="detached",
                        num_cpus=0,
                    ).remote()
                else:
                    self._actor = ray.get_actor(self.name, namespace=self.namespace)
                self._node_id = ray.get_runtime_context().get_node_id()
            except ValueError as error:  # get_actor: no such actor
                self.last_error = error
                self._actor = None
            except Exception as error:  # noqa: BLE001
                self.last_error = error
                self.errors += 1
                self._actor = None
        return self._actor

    def _lost_actor(self, error):
        with self._lock:
            self.errors += 1
            self.last_error = error
            self._actor = None

    def _compute(self, local, key, compute, shared=False):
        value = compute()
        self._count(*(("misses", "shared_misses") if shared else ("misses",)))
        return local.put(key, value)

    def _count(self, *names):
        with self._lock:
            for name in names:
                setattr(self, name, getattr(self, name) + 1)


_ACTOR_CLASS = None


def estimate_store_actor():
    """``EstimateStore`` as a Ray actor class (``num_cpus=0``), made on first use.

    The class is a copy whose module cannot be imported, so Ray's cloudpickle
    ships it by value: the actor's process never imports ``autoinit_nas`` (and
    with it Keras and TensorFlow, seconds and hundreds of MB), and the node it
    lands on needs nothing beyond Ray.
    """
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        import ray

        _ACTOR_CLASS = ray.remote(num_cpus=0)(_unimportable_copy(EstimateStore))
    return _ACTOR_CLASS


def _unimportable_copy(cls, module="autoinit_nas_estimate_store_by_value"):
    namespace = {"__module__": module}
    for name, value in vars(cls).items():
        if name in ("__dict__", "__weakref__", "__module__"):
            continue
        if isinstance(value, types.FunctionType):
            function = types.FunctionType(
                value.__code__, value.__globals__, value.__name__, value.__defaults__, value.__closure__
            )
            function.__qualname__ = value.__qualname__
            function.__doc__ = value.__doc__
            function.__module__ = module
            value = function
        namespace[name] = value
    return type(cls.__name__, cls.__bases__, namespace)
