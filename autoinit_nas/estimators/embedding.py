"""Embedding lookups."""

import keras

from autoinit_nas.estimators.base import WeightedLayerEstimator
from autoinit_nas.estimators.registry import register


@register(keras.layers.Embedding)
class EmbeddingEstimator(WeightedLayerEstimator):
    """``Embedding``: each output is one row of the table, drawn with variance sv.

    A lookup copies table entries, so the output's elements are the table's
    elements: drawing them i.i.d. with mean 0 and variance signal_variance
    gives E[y] = 0 and Var(y) = signal_variance whatever the token ids (the
    input moments are ignored; ids are not a signal). ``mask_zero`` does not
    change the values.
    """

    probe_weight = "embeddings"
    method = "exact"
    bias_attributes = ()

    def estimate(self, means_in, vars_in):
        table = self.layer.embeddings
        rows, width = int(table.shape[0]), int(table.shape[-1])
        # fan-in 1 with unit input power: the planned variance is sv itself.
        return 0.0, self.plan_weight("embeddings", self.signal_variance, rows, width)
