"""Wrapper layers that apply another layer: TimeDistributed."""

import keras

from autoinit_nas.estimators.base import PassThroughEstimator, WeightedLayerEstimator
from autoinit_nas.estimators.registry import register


@register(keras.layers.TimeDistributed)
class TimeDistributedEstimator(WeightedLayerEstimator):
    """``TimeDistributed(inner)``: the inner layer applied to every time step.

    Every step is an independent call of the same inner layer on a tensor
    with the time axis removed, so the output moments are the inner layer's
    for the same input moments. The inner layer's own estimator (looked up
    in the registry, custom estimators included) does the work and chooses
    the inner weights; they are applied through ``layer.<weight>``.
    """

    method = "as the wrapped layer"

    def inner(self):
        if getattr(self, "_inner", None) is None:
            wrapped = self.layer.layer
            registry = getattr(self, "registry", None)
            estimator_class = registry.lookup(type(wrapped)) if registry is not None else None
            estimator_class = estimator_class or PassThroughEstimator
            self._inner = estimator_class(wrapped, self.estimator_config, self.signal_variance)
            self._inner.cache = self.cache
            self._inner.diagnostics = self.diagnostics
            self._inner.registry = registry
        return self._inner

    def estimate(self, means_in, vars_in):
        inner = self.inner()
        drop_time = lambda shape: (shape[0],) + tuple(shape[2:])  # noqa: E731
        inner.input_shapes = [drop_time(shape) for shape in self.input_shapes]
        inner.output_shapes = [drop_time(shape) for shape in self.output_shapes]
        inner.node = getattr(self, "node", None)
        result = inner.estimate(means_in, vars_in)
        for attribute, plan in getattr(inner, "weight_plan", {}).items():
            self.weight_plan[f"layer.{attribute}"] = plan
        return result

    def probe_target(self):
        target = self.inner().probe_target() if hasattr(self.inner(), "probe_target") else None
        if target is None:
            return None
        attribute, activation_owner = target
        return "layer." + attribute, activation_owner

    def initializer_attribute(self, attribute):
        owner, name = self.weight_owner(attribute)
        inner = self.inner()
        return owner, getattr(inner, "initializer_attributes", {}).get(name, name + "_initializer")

    @property
    def bias_attributes(self):
        return getattr(self.inner(), "bias_attributes", ())
