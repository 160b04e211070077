"""Attention: MultiHeadAttention, Attention, AdditiveAttention.

Shared maths. For one query, attention weights a_t = softmax_t(s_t) over the
n keys it may see, and the output is o = sum_t a_t v_t. With scores i.i.d.
N(., sigma^2) across keys and values independent of the weights,

    E[o]   = E[v]                            (the weights sum to one)
    E[o^2] = c^2 + P(n, sigma^2) * f,        P = E[sum_t a_t^2],

where a value's spread splits into a part c^2 shared by all keys (a frozen
per-unit offset, or the value mean) and a part f that varies from key to key.
P has no closed form; it is sampled once per (sigma^2, n) with
``monte_carlo_samples`` draws (seeded, memoized).

When keys and values are computed from the same tensor (self-attention, or
``key`` omitted), the weights are not independent of the values: keys whose
input points along the query's score direction get more weight, so the
weighted average of the D-dimensional input keeps an extra component along
that one direction. Writing z_t for the standardized scores,
E|sum_t a_t c_t|^2 = v_c ((D - 1) P + Q) with Q = E[(sum_t a_t z_t)^2], i.e. P is
replaced by P + (Q - P) / D (measured: +14% at 48 keys and D = 128 when
ignored). The walk sees only whether key and value are the same tensor; a
key computed from the value by other layers counts as independent. Dropout on the weights
multiplies P by 1 / (1 - rate). A causal mask lets query i see i + 1 keys:
P is averaged over i. Padding masks that arrive as tensors are not visible to
the walk: all keys count as valid.
"""

import math

import keras
import numpy as np

from autoinit_nas.maths import gaussian
from autoinit_nas.estimators.activations import activation_moments
from autoinit_nas.estimators.base import LayerOutputDistributionEstimator, WeightedLayerEstimator
from autoinit_nas.estimators.registry import register
from autoinit_nas.estimators.values import to_numpy

_PER_COUNT_MINIMUM = 256
_CHUNK = 1 << 20


def attention_weight_power(score_var, counts, samples, seed, query_dims=None, offset_ratio=0.0):
    """(P, Q) = (E[sum_t a_t^2], E[(sum_t a_t z_t)^2]) for softmax weights a.

    Scores are s_t = sqrt(score_var * R) z_t with z_t i.i.d. N(0, 1).

    Averaged over the (equally frequent) key counts in ``counts``. A score is
    a dot product with one query, so its spread across keys scales with that
    query's squared norm: R = |q|^2 / E|q|^2 varies from query to query. For
    a query of ``query_dims`` Gaussian entries whose shared (offset) part has
    ``offset_ratio`` times the variance of their fluctuating part, |q|^2 is a
    scaled non-central chi-square with query_dims degrees of freedom and
    non-centrality query_dims * offset_ratio; it is sampled per vector
    (P is convex in the score variance, so ignoring R under-estimates P).
    ``samples`` scalar draws are spread over the counts (>= 256 vectors each).
    """
    counts = np.asarray(counts, dtype=int)
    rng = np.random.default_rng(seed)
    vectors = max(int(samples) // max(int(counts.sum()), 1), _PER_COUNT_MINIMUM)
    distinct, frequency = np.unique(counts, return_counts=True)
    total = 0.0
    aligned = 0.0
    for count, weight in zip(distinct, frequency):
        count = int(count)
        # Chunks of at most 2^20 scores keep memory flat whatever ``samples`` is.
        rows_per_chunk = max(_CHUNK // count, 1)
        power_sum = 0.0
        aligned_sum = 0.0
        done = 0
        while done < vectors:
            rows = min(rows_per_chunk, vectors - done)
            if query_dims:
                norms = rng.noncentral_chisquare(query_dims, query_dims * offset_ratio, size=(rows, 1)) \
                    if offset_ratio > 0 else rng.chisquare(query_dims, size=(rows, 1))
                ratio = norms / (query_dims * (1.0 + offset_ratio))
            else:
                ratio = 1.0
            standard = rng.standard_normal((rows, count))
            scores = np.sqrt(max(score_var, 0.0) * ratio) * standard
            scores -= scores.max(axis=1, keepdims=True)
            weights = np.exp(scores)
            weights /= weights.sum(axis=1, keepdims=True)
            power_sum += float(np.sum(weights**2))
            aligned_sum += float(np.sum(np.sum(weights * standard, axis=1) ** 2))
            done += rows
        total += weight * power_sum / vectors
        aligned += weight * aligned_sum / vectors
    return total / counts.size, aligned / counts.size


_HERMITE_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(48)
_HERMITE_WEIGHTS = _HERMITE_WEIGHTS / _HERMITE_WEIGHTS.sum()


def tanh_score_spread(q_mean, q_var, k_mean, k_var):
    """Spread across keys of u = tanh(q + k) for one fixed query, and its linear share.

    Returns (within, share): within = E_q[Var_k tanh(q + k)], the variance of a
    score term across keys that share the query, and share = the fraction of
    it that is linear in k. By Stein's lemma, given q,
    Cov_k(k, tanh(q + k)) = Var(k) E_k[tanh'(q + k)], so
    share = Var(k) E_q[E_k[1 - tanh^2]^2] / within. Gauss-Hermite (48 x 48
    nodes; tanh is smooth).
    """
    q = q_mean + np.sqrt(max(q_var, 0.0)) * _HERMITE_NODES[:, None]
    k = k_mean + np.sqrt(max(k_var, 0.0)) * _HERMITE_NODES[None, :]
    values = np.tanh(q + k)
    conditional_mean = values @ _HERMITE_WEIGHTS
    conditional_second = (values**2) @ _HERMITE_WEIGHTS
    within = float(_HERMITE_WEIGHTS @ (conditional_second - conditional_mean**2))
    slope = 1.0 - conditional_second
    if within <= 0 or k_var <= 0:
        return max(within, 0.0), 0.0
    share = float(k_var * (_HERMITE_WEIGHTS @ slope**2) / within)
    return within, min(share, 1.0)


class _AttentionBase:
    """Helpers shared by the attention estimators (mixed into estimator classes)."""

    def moments_of(self, tensor, means_in, vars_in):
        tensors = getattr(self, "input_tensors", None) or self.node.input_tensors
        for index, candidate in enumerate(tensors):
            if candidate is tensor:
                return means_in[index], vars_in[index]
        raise ValueError(f"Layer '{self.layer.name}': tensor {tensor!r} is not among its inputs.")

    def call_argument(self, name, position):
        args, kwargs = self.node.arguments.args, self.node.arguments.kwargs
        if name in kwargs:
            return kwargs[name]
        return args[position] if len(args) > position else None

    def key_counts(self, query_length, key_length, causal):
        if not key_length:
            key_length = 1
        if causal and query_length:
            return [min(i + 1, key_length) for i in range(query_length)]
        return [key_length]

    def weight_power(self, score_var, counts, rate, query_dims=None, offset_ratio=0.0,
                     shared_input_dims=None, linear_share=1.0):
        """P of the module docstring, with dropout and the shared key/value correction.

        ``linear_share`` is the share of the score variance that is linear in
        the key (1 for dot products); only that share aligns weights with values.
        """
        samples = self.estimator_config["monte_carlo_samples"]
        seed = self.sampling_seed()
        power, aligned = self.memoized(
            "weight_power", tuple(sorted(set(counts))) + (len(counts), query_dims),
            (score_var, offset_ratio),
            lambda: attention_weight_power(score_var, counts, samples, seed, query_dims, offset_ratio),
        )
        if shared_input_dims:
            power = power + linear_share * (aligned - power) / shared_input_dims
        return power / (1.0 - rate) if rate < 1.0 else power


@register(keras.layers.MultiHeadAttention)
class MultiHeadAttentionEstimator(_AttentionBase, WeightedLayerEstimator):
    """``MultiHeadAttention``: the four projections drawn for unit variance.

    Query, key and value projections (EinsumDense, fan-in d) are each drawn so
    that their outputs have second moment signal_variance (sv):
    s = sv / (d E[x^2]). A projection of an input with mean m and variance v
    gives each unit a frozen offset of variance d s m^2 and a fluctuating part
    d s v. Scores q.k / sqrt(key_dim) then spread across keys with
    sigma^2 = E[q^2] * (key's fluctuating part), and the attended values have
    E[o^2] = c^2 + P f with c^2, f the value projection's offset and
    fluctuating parts (module docstring). The output projection (fan-in
    heads * value_dim) is drawn for output variance sv. An optional gate
    (sigmoid EinsumDense on the query) multiplies E[o^2] by E[g^2].
    """

    probe_weight = "_output_dense.kernel"
    method = "exact (attention weights sampled)"

    def _projection(self, name, tensor, means_in, vars_in):
        dense = getattr(self.layer, name)
        mean, var = self.moments_of(tensor, means_in, vars_in)
        fan_in = int(dense.kernel.shape[0])
        second = self.scaled_output_variance(
            f"{name}.kernel", fan_in, math.prod(dense.kernel.shape[1:]), gaussian.second_moment(mean, var)
        )
        scale = second / gaussian.second_moment(mean, var) if gaussian.second_moment(mean, var) > 0 else 0.0
        return second, scale * mean * mean, scale * var  # total, offset part, fluctuating part

    def estimate(self, means_in, vars_in):
        layer = self.layer
        query = self.call_argument("query", 0)
        value = self.call_argument("value", 1)
        key = self.call_argument("key", 2)
        key = value if key is None else key
        q_total, q_offset, q_fluct = self._projection("_query_dense", query, means_in, vars_in)
        _, _, k_fluct = self._projection("_key_dense", key, means_in, vars_in)
        _, v_offset, v_fluct = self._projection("_value_dense", value, means_in, vars_in)
        score_var = q_total * k_fluct
        causal = bool(self.node.arguments.kwargs.get("use_causal_mask", False))
        counts = self.key_counts(query.shape[1], key.shape[1], causal)
        power = self.weight_power(
            score_var, counts, float(getattr(layer, "_dropout", 0.0)),
            query_dims=int(layer._key_dim), offset_ratio=q_offset / q_fluct if q_fluct > 0 else 0.0,
            shared_input_dims=(value.shape[-1] or None) if key is value else None,
        )
        attended = v_offset + power * v_fluct
        if getattr(layer, "_use_gate", False):
            q_mean, q_var = self.moments_of(query, means_in, vars_in)
            gate_pre = self.scaled_output_variance(
                "_gate_dense.kernel", int(layer._gate_dense.kernel.shape[0]),
                math.prod(layer._gate_dense.kernel.shape[1:]), gaussian.second_moment(q_mean, q_var),
            )
            g_mean, g_var = activation_moments(layer._gate_dense.activation, 0.0, gate_pre, self)
            attended *= gaussian.second_moment(g_mean, g_var)
        output_kernel = layer._output_dense.kernel
        fan_in = math.prod(output_kernel.shape[:-1])
        out_var = self.scaled_output_variance("_output_dense.kernel", fan_in, output_kernel.shape[-1], attended)
        return 0.0, out_var


class _ParameterFreeAttention(_AttentionBase, LayerOutputDistributionEstimator):
    def query_value_key(self, means_in, vars_in):
        inputs = self.call_argument("inputs", 0)
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        return query, value, key

    def attend(self, score_var, query, key, value, means_in, vars_in, query_dims=None,
               offset_ratio=0.0, linear_share=1.0):
        v_mean, v_var = self.moments_of(value, means_in, vars_in)
        causal = bool(self.node.arguments.kwargs.get("use_causal_mask", False))
        counts = self.key_counts(query.shape[1], key.shape[1], causal)
        power = self.weight_power(
            score_var, counts, float(getattr(self.layer, "dropout", 0.0)), query_dims, offset_ratio,
            shared_input_dims=(value.shape[-1] or None) if key is value else None,
            linear_share=linear_share,
        )
        # Values without a projection: their mean is shared by all keys and
        # survives the weighted sum; their variance is averaged down by P.
        return v_mean, power * v_var


@register(keras.layers.Attention)
class AttentionEstimator(_ParameterFreeAttention):
    """``Attention`` (Luong): scores q . k over the feature axis, no weights.

    dot mode: for a fixed query the score spread across keys is
    sigma^2 = scale^2 * d * E[q^2] * Var(k) (d features; the key mean shifts all
    scores equally and cancels in the softmax). concat mode:
    s = w * sum_d tanh(scale (q_d + k_d)), spread across keys
    w^2 d E_q[Var_k tanh(scale (q + k))] (``tanh_score_spread``). Output:
    module docstring, with the value's mean as the shared part.
    Approximation: when the key is the value (the default) in concat mode,
    large values attract weight and the output mean shifts (measured: by 0.17
    standard deviations at 48 keys); the shared-input correction covers the
    variance only.
    """

    method = "exact (attention weights sampled)"

    def _scalar(self, weight, default=1.0):
        if weight is None:
            return default
        return float(to_numpy(weight).ravel()[0])

    def estimate(self, means_in, vars_in):
        query, value, key = self.query_value_key(means_in, vars_in)
        q_mean, q_var = self.moments_of(query, means_in, vars_in)
        k_mean, k_var = self.moments_of(key, means_in, vars_in)
        dim = query.shape[-1] or 1
        scale = self._scalar(getattr(self.layer, "scale", None))
        if self.layer.score_mode == "concat":
            weight = self._scalar(getattr(self.layer, "concat_score_weight", None))
            within, share = tanh_score_spread(scale * q_mean, scale**2 * q_var, scale * k_mean, scale**2 * k_var)
            score_var = weight**2 * dim * within
            return self.attend(score_var, query, key, value, means_in, vars_in, linear_share=share)
        score_var = scale**2 * dim * gaussian.second_moment(q_mean, q_var) * k_var
        ratio = q_mean * q_mean / q_var if q_var > 0 else 0.0
        return self.attend(score_var, query, key, value, means_in, vars_in, dim, ratio)


@register(keras.layers.AdditiveAttention)
class AdditiveAttentionEstimator(AttentionEstimator):
    """``AdditiveAttention`` (Bahdanau): s = sum_d w_d tanh(q_d + k_d).

    With the layer's current per-feature ``scale`` weights w_d (ones when
    ``use_scale=False``), the spread across keys for a fixed query is
    sum_d w_d^2 E_q[Var_k tanh(q + k)] (``tanh_score_spread``).
    """

    def estimate(self, means_in, vars_in):
        query, value, key = self.query_value_key(means_in, vars_in)
        q_mean, q_var = self.moments_of(query, means_in, vars_in)
        k_mean, k_var = self.moments_of(key, means_in, vars_in)
        dim = query.shape[-1] or 1
        if getattr(self.layer, "use_scale", False) and getattr(self.layer, "scale", None) is not None:
            weights = to_numpy(self.layer.scale, dtype=float).ravel()
            weight_power = float(np.sum(weights**2)) if weights.size > 1 else float(weights[0] ** 2) * dim
        else:
            weight_power = float(dim)
        within, share = tanh_score_spread(q_mean, q_var, k_mean, k_var)
        return self.attend(weight_power * within, query, key, value, means_in, vars_in, linear_share=share)
