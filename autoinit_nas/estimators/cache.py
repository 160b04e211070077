"""Per-process memo of expensive estimates.

Sampled and quadrature estimates depend only on the estimator, a signature of
the layer (its configuration as far as the estimate uses it) and the input
moments. Rounding the moments to a few significant digits lets a NAS sweep,
which builds many candidates from the same layer types, pay for each estimate
once per process.

Example:
    >>> cache = EstimateCache()
    >>> cache.get_or_compute(("relu", 1.0), lambda: 0.5)
    0.5
    >>> cache.hits, cache.misses
    (0, 1)
"""

import math
import threading


def round_moment(value, digits=6):
    """Round to ``digits`` significant digits so nearby moments share a key."""
    value = float(value)
    if value == 0.0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


class EstimateCache:
    """A thread-safe dictionary with hit and miss counts."""

    def __init__(self):
        self._values = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key, compute):
        """Return the value stored under ``key``, computing it on a miss."""
        with self._lock:
            if key in self._values:
                self.hits += 1
                return self._values[key]
        value = compute()
        with self._lock:
            self.misses += 1
            self._values[key] = value
        return value

    def clear(self):
        """Forget every stored value and reset the counts."""
        with self._lock:
            self._values.clear()
            self.hits = 0
            self.misses = 0

    def __len__(self):
        return len(self._values)


# The process-wide cache every AutoInit instance uses unless given its own.
GLOBAL_CACHE = EstimateCache()
