"""Naive twins of the diagnose catalog: every KD-loss variant as a loop, from its formula.

Each variant is written one row and one class at a time in Python floats, from the formula in its
docstring (``minikd/verify/diagnosis/variants.py``) or, for the library presets, from the library
code quoted in ``minikd/verify/kd_presets.py``; nothing here calls minikd. Where the variants'
closed-form gradients are short (``T (p_s - p_t) / N`` and its cousins) the twin loops over that
formula; where they are not (probabilities as input, the reversed KL, KD_Lib's MSE, Keras'
clipped KL) it applies the softmax Jacobian ``dp_c / dz_j = p_c (delta_cj - p_j) / T`` to
``dS / dp`` entry by entry, so the closed forms in minikd are checked against a different
computation.

``naive_loss(name, z_s, z_t, labels, T, alpha) -> (loss, grad)``; ``alpha`` None is the soft term
alone, otherwise ``alpha * soft + (1 - alpha) * CE`` (CE at T = 1, mean over rows).
"""

from __future__ import annotations

import math

import numpy as np

KERAS_EPSILON = 1e-7


def log_softmax_row(z, T=1.0):
    u = [float(v) / T for v in z]
    m = max(u)
    lse = m + math.log(sum(math.exp(v - m) for v in u))
    return [v - lse for v in u]


def _jacobian_vjp(dp, p, T):
    """dz_j = sum_c dp_c * p_c (delta_cj - p_j) / T, one entry at a time."""
    C = len(p)
    return [sum(dp[c] * p[c] * ((1.0 if c == j else 0.0) - p[j]) for c in range(C)) / T
            for j in range(C)]


def _row(name, zs, zt, T):
    """(value, gradient) of one row's soft term, before the 1/N (or other) reduction factor."""
    C = len(zs)
    ls, lt = log_softmax_row(zs, T), log_softmax_row(zt, T)
    ps, pt = [math.exp(v) for v in ls], [math.exp(v) for v in lt]
    kl = sum(pt[c] * (lt[c] - ls[c]) for c in range(C))
    g_kl = [T * (ps[c] - pt[c]) for c in range(C)]  # d (T^2 KL) / dz_s
    if name in ("correct", "reduction_mean", "reduction_sum", "numel_norm"):
        return T * T * kl, g_kl
    if name == "missing_t2":
        return kl, [(ps[c] - pt[c]) / T for c in range(C)]
    if name == "t_not_t2":
        return T * kl, [ps[c] - pt[c] for c in range(C)]
    if name == "probs_as_input":
        value = T * T * sum(pt[c] * (lt[c] - ps[c]) for c in range(C))
        return value, _jacobian_vjp([-T * T * pt[c] for c in range(C)], ps, T)
    if name == "reversed_kl":
        value = T * T * sum(ps[c] * (ls[c] - lt[c]) for c in range(C))
        dp = [T * T * (ls[c] - lt[c] + 1.0) for c in range(C)]
        return value, _jacobian_vjp(dp, ps, T)
    if name == "student_t1":
        ls1 = log_softmax_row(zs, 1.0)
        value = T * T * sum(pt[c] * (lt[c] - ls1[c]) for c in range(C))
        return value, [T * T * (math.exp(ls1[c]) - pt[c]) for c in range(C)]
    if name == "teacher_t1":
        lt1 = log_softmax_row(zt, 1.0)
        pt1 = [math.exp(v) for v in lt1]
        value = T * T * sum(pt1[c] * (lt1[c] - ls[c]) for c in range(C))
        return value, [T * (ps[c] - pt1[c]) for c in range(C)]
    if name == "ce_not_kl":
        return -T * T * sum(pt[c] * ls[c] for c in range(C)), g_kl
    if name == "teacher_vs_teacher":
        return T * T * sum(pt[c] * (lt[c] - lt[c]) for c in range(C)), [0.0] * C
    if name == "textbrewer":
        return -sum(pt[c] * ls[c] for c in range(C)), [(ps[c] - pt[c]) / T for c in range(C)]
    if name == "kd_lib":  # T^2 * sum (p_s - p_t)^2, the 1/(N C) is the reduction
        value = T * T * sum((ps[c] - pt[c]) ** 2 for c in range(C))
        return value, _jacobian_vjp([2 * T * T * (ps[c] - pt[c]) for c in range(C)], ps, T)
    if name in ("keras", "keras_2020"):
        t2 = T * T if name == "keras" else 1.0
        cs = [min(max(v, KERAS_EPSILON), 1.0) for v in ps]
        ct = [min(max(v, KERAS_EPSILON), 1.0) for v in pt]
        value = t2 * sum(ct[c] * math.log(ct[c] / cs[c]) for c in range(C))
        dp = [-t2 * ct[c] / cs[c] if ps[c] >= KERAS_EPSILON else 0.0 for c in range(C)]
        return value, _jacobian_vjp(dp, ps, T)
    raise KeyError(name)


_SAME_AS = {"repdistiller": "correct", "mdistiller": "correct", "hf_distilbert": "correct",
            "pytorch_kldivloss_mean": "reduction_mean"}


def _soft(name, z_s, z_t, T):
    """(value, grad) of the soft term over the batch, with the variant's reduction."""
    z_s, z_t = np.asarray(z_s, dtype=np.float64), np.asarray(z_t, dtype=np.float64)
    N, C = z_s.shape
    row_name = _SAME_AS.get(name, name)
    factor = {"reduction_mean": 1.0 / (N * C), "numel_norm": 1.0 / z_s.size,
              "reduction_sum": 1.0, "kd_lib": 1.0 / (N * C)}.get(row_name, 1.0 / N)
    value, grad = 0.0, np.zeros((N, C))
    for n in range(N):
        v, g = _row(row_name, z_s[n], z_t[n], T)
        value += v * factor
        for c in range(C):
            grad[n, c] = g[c] * factor
    return value, grad


def _cross_entropy(z_s, labels):
    z_s = np.asarray(z_s, dtype=np.float64)
    N, C = z_s.shape
    value, grad = 0.0, np.zeros((N, C))
    for n in range(N):
        ls = log_softmax_row(z_s[n])
        value -= ls[int(labels[n])] / N
        for c in range(C):
            grad[n, c] = (math.exp(ls[c]) - (1.0 if c == labels[n] else 0.0)) / N
    return value, grad


def naive_loss(name, z_s, z_t, labels, T, alpha):
    """(loss, grad) of the catalog variant ``name``, alone (alpha None) or blended."""
    if name == "torchdistill":  # bare KL without targets or at its alpha == 0 (ours == 1)
        if alpha is None or alpha == 1.0:
            return _soft("missing_t2", z_s, z_t, T)
        name = "correct"
    if name == "alpha_swapped":
        soft, w = _soft("correct", z_s, z_t, T), 1.0 - alpha
    else:
        soft, w = _soft(name, z_s, z_t, T), alpha
    if w is None:
        return soft
    ce = _cross_entropy(z_s, labels)
    return w * soft[0] + (1 - w) * ce[0], w * soft[1] + (1 - w) * ce[1]


NAMES = ["correct", "reduction_mean", "reduction_sum", "numel_norm", "missing_t2", "t_not_t2",
         "probs_as_input", "reversed_kl", "student_t1", "teacher_t1", "ce_not_kl",
         "teacher_vs_teacher", "alpha_swapped", "repdistiller", "mdistiller", "torchdistill",
         "textbrewer", "kd_lib", "hf_distilbert", "pytorch_kldivloss_mean", "keras",
         "keras_2020"]
"""Every name the twins know: the issue's thirteen and the nine kd_loss_as presets."""
