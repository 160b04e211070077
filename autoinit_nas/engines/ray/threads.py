"""TensorFlow thread pools sized to a Ray trial's CPU allocation."""

import math

import keras


def set_tensorflow_threads(cpus):
    """Size TensorFlow's intra- and inter-op thread pools to ``cpus``; never raises.

    Must run before TensorFlow initializes its runtime in this process (the
    first op or device query); afterwards TensorFlow refuses any change, and
    the result says so instead of raising.

    Example:
        >>> info = set_tensorflow_threads(2)
        >>> sorted(info)
        ['applied', 'cpus', 'inter_op', 'intra_op', 'reason']

    Returns:
        {"cpus", "intra_op", "inter_op" (the threads asked for: ceil(cpus),
        at least 1), "applied" (whether TensorFlow now uses them), "reason"
        (why not, else None)}.
    """
    try:
        cpus = float(cpus)
    except (TypeError, ValueError):
        cpus = 1.0
    threads = max(1, int(math.ceil(cpus))) if math.isfinite(cpus) else 1
    info = {"cpus": cpus, "intra_op": threads, "inter_op": threads, "applied": False, "reason": None}
    if keras.backend.backend() != "tensorflow":
        info["reason"] = f"the Keras backend is {keras.backend.backend()}, not tensorflow"
        return info
    import tensorflow as tf

    threading = tf.config.threading
    current = (threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads())
    if current == (threads, threads):
        info["applied"] = True
        return info
    try:
        threading.set_intra_op_parallelism_threads(threads)
        threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as error:
        info["reason"] = (
            "TensorFlow was already initialized in this process (intra_op="
            f"{current[0]}, inter_op={current[1]}; 0 means TensorFlow's choice): {error}"
        )
        return info
    info["applied"] = True
    return info

