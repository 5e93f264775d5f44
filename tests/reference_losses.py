"""Naive loop twins of minikd's softmax and response-based losses, written from the docstrings.

Every function here works one position and one class at a time in Python floats (float64), with
the formulas exactly as the docstrings state them, and returns ``(loss, grad)`` with the same
reduction rules (batchmean / sum / mean over selected positions). The vectorised code is compared
with these at rtol 1e-10: a drift between docstring and code shows up here.
"""

from __future__ import annotations

import math

import numpy as np

DKD_MASK = 1000.0


def log_softmax_row(z, T=1.0):
    """log softmax(z / T) for one row: u_i - log sum_j exp(u_j), shifted by max(u)."""
    u = [float(v) / T for v in z]
    m = max(u)
    lse = m + math.log(sum(math.exp(v - m) for v in u))
    return [v - lse for v in u]


def softmax_row(z, T=1.0):
    return [math.exp(v) for v in log_softmax_row(z, T)]


def _positions(z):
    """(M, C) view of (..., C) logits, one row per position."""
    z = np.asarray(z, dtype=np.float64)
    return z.reshape(-1, z.shape[-1])


def _reduce(rows, grads, shape, selected, reduction):
    """Reduce per-position losses/gradients (lists) exactly as the docstrings say."""
    C = shape[-1]
    M = sum(selected)
    if reduction == "sum":
        factor = 1.0
    elif M == 0:
        factor = 0.0
    elif reduction == "batchmean":
        factor = 1.0 / M
    else:  # "mean"
        factor = 1.0 / (M * C)
    loss = 0.0
    grad = np.zeros((len(rows), C))
    for m, keep in enumerate(selected):
        if keep:
            loss += rows[m]
            for c in range(C):
                grad[m, c] = grads[m][c] * factor
    return loss * factor, grad.reshape(shape)


def _selected(n_pos, mask=None, labels=None, ignore_index=-100):
    sel = [True] * n_pos
    if mask is not None:
        sel = [bool(v) for v in np.asarray(mask).reshape(-1)]
    if labels is not None:
        flat = [int(v) for v in np.asarray(labels).reshape(-1)]
        sel = [s and y != ignore_index for s, y in zip(sel, flat, strict=True)]
    return sel


def cross_entropy(z, y, *, mask=None, ignore_index=-100, reduction="batchmean"):
    """-log p[y], grad p - onehot(y)."""
    Z = _positions(z)
    ys = [int(v) for v in np.asarray(y).reshape(-1)]
    rows, grads = [], []
    for zrow, label in zip(Z, ys, strict=True):
        label = 0 if label == ignore_index else label
        lp = log_softmax_row(zrow)
        rows.append(-lp[label])
        grads.append([math.exp(lp[c]) - (1.0 if c == label else 0.0) for c in range(len(zrow))])
    sel = _selected(len(rows), mask, y, ignore_index)
    return _reduce(rows, grads, np.shape(z), sel, reduction)


def _kl_row(zs, zt, T):
    ls, lt = log_softmax_row(zs, T), log_softmax_row(zt, T)
    kl = sum(math.exp(b) * (b - a) for a, b in zip(ls, lt, strict=True))
    g = [(math.exp(a) - math.exp(b)) / T for a, b in zip(ls, lt, strict=True)]
    return kl, g


def kl_divergence(zs, zt, *, temperature=1.0, mask=None, reduction="batchmean"):
    """sum_c p_t (log p_t - log p_s); grad (p_s - p_t) / T."""
    rows, grads = [], []
    for a, b in zip(_positions(zs), _positions(zt), strict=True):
        kl, g = _kl_row(a, b, temperature)
        rows.append(kl)
        grads.append(g)
    return _reduce(rows, grads, np.shape(zs), _selected(len(rows), mask), reduction)


def soft_cross_entropy(zs, zt, *, temperature=1.0, mask=None, reduction="batchmean"):
    """-sum_c p_t log p_s; grad (p_s - p_t) / T."""
    T = temperature
    rows, grads = [], []
    for a, b in zip(_positions(zs), _positions(zt), strict=True):
        ls, lt = log_softmax_row(a, T), log_softmax_row(b, T)
        rows.append(-sum(math.exp(q) * p for p, q in zip(ls, lt, strict=True)))
        grads.append([(math.exp(p) - math.exp(q)) / T for p, q in zip(ls, lt, strict=True)])
    return _reduce(rows, grads, np.shape(zs), _selected(len(rows), mask), reduction)


def kd_loss(zs, zt, *, temperature=4.0, mask=None, reduction="batchmean"):
    """T^2 KL; grad T (p_s - p_t)."""
    T = temperature
    rows, grads = [], []
    for a, b in zip(_positions(zs), _positions(zt), strict=True):
        kl, g = _kl_row(a, b, T)
        rows.append(T * T * kl)
        grads.append([T * T * v for v in g])
    return _reduce(rows, grads, np.shape(zs), _selected(len(rows), mask), reduction)


def distillation_loss(zs, zt, y, *, temperature=4.0, alpha=0.9, mask=None, ignore_index=-100,
                      reduction="batchmean"):
    """alpha T^2 KL - (1 - alpha) log p[y]; grad alpha T (p^T_s - p^T_t) + (1-alpha)(p - e_y)."""
    T = temperature
    rows, grads = [], []
    Y = [None] * _positions(zs).shape[0] if y is None else [int(v) for v in np.ravel(y)]
    for a, b, label in zip(_positions(zs), _positions(zt), Y, strict=True):
        kl, g = _kl_row(a, b, T)
        row = alpha * T * T * kl
        grad = [alpha * T * T * v for v in g]
        if label is not None and alpha != 1.0:
            label = 0 if label == ignore_index else label
            lp = log_softmax_row(a)
            row += (1 - alpha) * -lp[label]
            for c in range(len(a)):
                grad[c] += (1 - alpha) * (math.exp(lp[c]) - (1.0 if c == label else 0.0))
        rows.append(row)
        grads.append(grad)
    sel = _selected(len(rows), mask, y, ignore_index)
    return _reduce(rows, grads, np.shape(zs), sel, reduction)


def _dkd_parts_row(z, label, T):
    """log b1, log b2, p_hat (renormalised non-target softmax), log q (masked softmax)."""
    u = [float(v) / T for v in z]
    C = len(u)
    lse = max(u) + math.log(sum(math.exp(v - max(u)) for v in u))
    others = [u[c] for c in range(C) if c != label]
    m = max(others)
    lse_nt = m + math.log(sum(math.exp(v - m) for v in others))
    log_b1 = u[label] - lse
    log_b2 = lse_nt - lse
    p_hat = [0.0 if c == label else math.exp(u[c] - lse_nt) for c in range(C)]
    masked = [u[c] - (DKD_MASK if c == label else 0.0) for c in range(C)]
    mm = max(masked)
    lse_m = mm + math.log(sum(math.exp(v - mm) for v in masked))
    log_q = [v - lse_m for v in masked]
    return log_b1, log_b2, p_hat, log_q


def dkd_row(zs, zt, label, T, alpha, beta):
    """Per-position TCKD and NCKD (each times T^2) and the total DKD gradient, from the docstring.

    TCKD = T^2 KL(b_t || b_s), NCKD = T^2 KL(q_t || q_s),
    grad = T [alpha g + beta (q_s - q_t)], g_y = b_s1 - b_t1, g_c = p_hat_s,c (b_s2 - b_t2).
    """
    s1, s2, phat_s, lq_s = _dkd_parts_row(zs, label, T)
    t1, t2, _, lq_t = _dkd_parts_row(zt, label, T)
    tckd = math.exp(t1) * (t1 - s1) + math.exp(t2) * (t2 - s2)
    nckd = sum(math.exp(b) * (b - a) for a, b in zip(lq_s, lq_t, strict=True))
    grad = []
    for c in range(len(zs)):
        g = (math.exp(s1) - math.exp(t1)) if c == label else phat_s[c] * (math.exp(s2)
                                                                           - math.exp(t2))
        grad.append(T * (alpha * g + beta * (math.exp(lq_s[c]) - math.exp(lq_t[c]))))
    return T * T * tckd, T * T * nckd, grad


def dkd_loss(zs, zt, y, *, alpha=1.0, beta=8.0, temperature=4.0, mask=None, ignore_index=-100,
             reduction="batchmean"):
    rows, grads = [], []
    for a, b, label in zip(_positions(zs), _positions(zt), np.ravel(y), strict=True):
        label = 0 if int(label) == ignore_index else int(label)
        tckd, nckd, g = dkd_row(a, b, label, temperature, alpha, beta)
        rows.append(alpha * tckd + beta * nckd)
        grads.append(g)
    sel = _selected(len(rows), mask, y, ignore_index)
    return _reduce(rows, grads, np.shape(zs), sel, reduction)


def dkd_mdistiller_naive(zs, zt, y, *, alpha=1.0, beta=8.0, temperature=4.0, parts=False):
    """mdistiller's ``dkd_loss`` transcribed to NumPy as it computes it, probabilities first.

    ``b_s`` is formed in probability space and ``np.log`` is taken of it (``torch.log`` in
    mdistiller), so it is -inf (and the loss inf or nan) once ``p_s[target]`` rounds to 1 or 0.
    Returns the batchmean loss value, or ``(tckd, nckd)`` (each T²-scaled) with ``parts=True``.
    """
    zs = np.asarray(zs, dtype=np.float64)
    zt = np.asarray(zt, dtype=np.float64)
    T = temperature
    B, C = zs.shape
    gt = np.zeros((B, C))
    gt[np.arange(B), np.asarray(y)] = 1.0
    other = 1.0 - gt

    def softmax(a):
        e = np.exp(a - a.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def log_softmax(a):
        s = a - a.max(axis=1, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=1, keepdims=True))

    def kl_div_sum(log_input, target):  # F.kl_div(..., size_average=False): xlogy(t, t) - t*in
        with np.errstate(divide="ignore", invalid="ignore"):
            tlogt = np.where(target > 0, target * np.log(np.where(target > 0, target, 1.0)), 0.0)
            return float(np.sum(tlogt - target * log_input))

    p_s, p_t = softmax(zs / T), softmax(zt / T)
    b_s = np.stack([(p_s * gt).sum(1), (p_s * other).sum(1)], axis=1)
    b_t = np.stack([(p_t * gt).sum(1), (p_t * other).sum(1)], axis=1)
    with np.errstate(divide="ignore"):
        log_b_s = np.log(b_s)
    tckd = kl_div_sum(log_b_s, b_t) * T**2 / B
    log_q_s = log_softmax(zs / T - DKD_MASK * gt)
    q_t = softmax(zt / T - DKD_MASK * gt)
    nckd = kl_div_sum(log_q_s, q_t) * T**2 / B
    if parts:
        return tckd, nckd
    return alpha * tckd + beta * nckd
