"""Which estimator handles which layer class.

Estimator modules add themselves with the ``register`` decorator; users add
theirs through ``AutoInit(custom_distribution_estimators=...)``. Lookup walks
the layer class's MRO, so a subclass of ``Dense`` is estimated as a ``Dense``
unless something more specific is registered.

Example:
    >>> import keras
    >>> registry = EstimatorRegistry()
    >>> registry.lookup(keras.layers.Dense).__name__
    'DenseEstimator'
"""

_BUILTIN = {}


def register(*layer_classes):
    """Class decorator: make the estimator the built-in one for ``layer_classes``."""

    def decorate(estimator_class):
        for layer_class in layer_classes:
            _BUILTIN[layer_class] = estimator_class
        return estimator_class

    return decorate


def builtin_estimators():
    """A copy of the built-in mapping from layer class to estimator class."""
    _load_builtin_modules()
    return dict(_BUILTIN)


def _load_builtin_modules():
    # Importing the family modules runs their @register decorators.
    from autoinit_nas.estimators import (  # noqa: F401
        activations,
        attention,
        constant,
        convolutional,
        core,
        embedding,
        merging,
        normalization,
        ops,
        ops_arithmetic,
        ops_image,
        pooling,
        recurrent,
        regularization,
        reshaping,
        wrappers,
    )


class EstimatorRegistry:
    """Built-in estimators overlaid with user ones; picklable.

    Args:
        custom_estimators: optional dict mapping a layer class to an estimator
            class (a ``LayerOutputDistributionEstimator`` subclass). User
            entries win over built-in ones for the same class.
    """

    def __init__(self, custom_estimators=None):
        from autoinit_nas.estimators.base import LayerOutputDistributionEstimator

        self.mapping = builtin_estimators()
        if custom_estimators is not None and not isinstance(custom_estimators, dict):
            raise TypeError(
                "`custom_distribution_estimators` must be a dict mapping layer classes to "
                "LayerOutputDistributionEstimator subclasses. "
                f"Received: {custom_estimators!r} of type {type(custom_estimators).__name__}"
            )
        for layer_class, estimator_class in (custom_estimators or {}).items():
            if not isinstance(layer_class, type):
                raise TypeError(
                    "Keys of `custom_distribution_estimators` must be layer classes. "
                    f"Received: {layer_class!r} of type {type(layer_class).__name__}"
                )
            if not (
                isinstance(estimator_class, type)
                and issubclass(estimator_class, LayerOutputDistributionEstimator)
            ):
                raise TypeError(
                    "Values of `custom_distribution_estimators` must be subclasses of "
                    f"LayerOutputDistributionEstimator. Received for {layer_class.__name__}: "
                    f"{estimator_class!r}"
                )
            self.mapping[layer_class] = estimator_class

    def lookup(self, layer_class):
        """The estimator class for ``layer_class``, or None if nothing in its MRO has one."""
        for klass in layer_class.__mro__:
            if klass in self.mapping:
                return self.mapping[klass]
        return None
