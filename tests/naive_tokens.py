"""Naive twins of the token losses (minikd.losses.tokens, mixtures, topk): one position at a
time, straight from the docstring formulas.

Plain Python loops over positions and float64 throughout; no code shared with minikd. Each twin
returns (loss, grad) for logits of shape (..., V), with the reduction written out by hand. Here
p is the teacher's distribution and q the student's.
"""

import math

import numpy as np


def softmax_row(u):
    e = [math.exp(x - max(u)) for x in u]
    s = sum(e)
    return [x / s for x in e]


def kl(a, b):
    """KL(a || b) over lists, with 0 log 0 = 0."""
    return sum(x * math.log(x / y) for x, y in zip(a, b, strict=True) if x > 0)


def _mix(a, b, w):
    return [w * x + (1 - w) * y for x, y in zip(a, b, strict=True)]


# -- per-position loss and gradient with respect to z / T, i.e. d loss / d u ----------------

def forward_row(p, q, _w):
    return kl(p, q), [qi - pi for pi, qi in zip(p, q, strict=True)]


def reverse_row(p, q, _w):
    ell = kl(q, p)
    return ell, [qi * (math.log(qi / pi) - ell) for pi, qi in zip(p, q, strict=True)]


def jsd_gkd_row(p, q, beta):
    """beta KL(p||m) + (1-beta) KL(q||m), m = beta p + (1-beta) q.

    grad (1-beta) q (log q/m - KL(q||m)).
    """
    if beta in (0.0, 1.0):
        return 0.0, [0.0] * len(p)
    m = _mix(p, q, beta)
    kqm = kl(q, m)
    ell = beta * kl(p, m) + (1 - beta) * kqm
    return ell, [(1 - beta) * qi * (math.log(qi / mi) - kqm) for qi, mi in zip(q, m, strict=True)]


def jsd_trl_row(p, q, beta):
    if beta == 0.0:
        return forward_row(p, q, None)
    if beta == 1.0:
        return reverse_row(p, q, None)
    return jsd_gkd_row(p, q, beta)


def _softmax_vjp(q, dq):
    """d/du of a function of q = softmax(u), given d/dq."""
    s = sum(qi * gi for qi, gi in zip(q, dq, strict=True))
    return [qi * (gi - s) for qi, gi in zip(q, dq, strict=True)]


def jsd_trl_legacy_row(p, q, beta):
    """m = beta q + (1-beta) p; beta KL(p||m) + (1-beta) KL(q||m); d/dq by the product rule."""
    m = _mix(q, p, beta)
    ell = beta * kl(p, m) + (1 - beta) * kl(q, m)
    dq = [-beta * pi * beta / mi + (1 - beta) * (math.log(qi / mi) + 1)
          - (1 - beta) * qi * beta / mi for pi, qi, mi in zip(p, q, m, strict=True)]
    return ell, _softmax_vjp(q, dq)


def jsd_trl_logspace_row(p, q, beta):
    """The first TRL GKD (q the student, p the teacher): log m = beta log q + (1-beta) log p,
    unnormalised, then beta * sum p (log p - log m) + (1-beta) * sum q (log q - log m)."""
    lm = [beta * math.log(qi) + (1 - beta) * math.log(pi) for pi, qi in zip(p, q, strict=True)]
    ell = (beta * sum(pi * (math.log(pi) - li) for pi, li in zip(p, lm, strict=True))
           + (1 - beta) * sum(qi * (math.log(qi) - li) for qi, li in zip(q, lm, strict=True)))
    dq = [(1 - beta) ** 2 * (math.log(qi / pi) + 1) - beta**2 * pi / qi
          for pi, qi in zip(p, q, strict=True)]
    return ell, _softmax_vjp(q, dq)


def skew_row(p, q, alpha):
    """KL(p || alpha p + (1-alpha) q); grad (1-alpha) q (sum q p / qt - p / qt)."""
    qt = _mix(p, q, alpha)
    s = sum(qi * pi / ti for pi, qi, ti in zip(p, q, qt, strict=True))
    return kl(p, qt), [(1 - alpha) * qi * (s - pi / ti)
                       for pi, qi, ti in zip(p, q, qt, strict=True)]


def skew_reverse_row(p, q, alpha):
    """KL(q || (1-alpha) p + alpha q); grad q (g - sum q g), g = log q / pt - alpha q / pt."""
    pt = _mix(q, p, alpha)
    g = [math.log(qi / ti) - alpha * qi / ti for qi, ti in zip(q, pt, strict=True)]
    return kl(q, pt), _softmax_vjp(q, g)


ROWS = {
    ("forward_kl", None): forward_row,
    ("reverse_kl", None): reverse_row,
    ("generalized_jsd", "trl"): jsd_trl_row,
    ("generalized_jsd", "gkd"): jsd_gkd_row,
    ("generalized_jsd", "trl_legacy"): jsd_trl_legacy_row,
    ("generalized_jsd", "trl_logspace"): jsd_trl_logspace_row,
    ("skew_kl", None): skew_row,
    ("skew_reverse_kl", None): skew_reverse_row,
}


def _reduce(per_pos, grads, selected, lead, n_out, reduction, T, t2_scale):
    """Sum over selected positions, then divide as the reduction says; grads are d/du rows."""
    m = sum(selected.values())
    total = sum(per_pos[i] for i in per_pos if selected[i])
    if reduction == "sum":
        factor = 1.0
    elif m == 0:
        factor = 0.0
    elif reduction == "batchmean":
        factor = 1.0 / m
    elif reduction == "mean":
        factor = 1.0 / (m * n_out)
    else:  # sequence_mean
        factor = 1.0 / lead[0]
    t2 = T * T if t2_scale else 1.0
    return total * factor * t2, factor * t2 / T


def divergence(z_s, z_t, divergence, *, w=None, convention=None, T=1.0, mask=None,
               labels=None, ignore_index=-100, reduction="batchmean", t2_scale=True):
    z_s, z_t = np.asarray(z_s, float), np.asarray(z_t, float)
    lead, vocab = z_s.shape[:-1], z_s.shape[-1]
    row = ROWS[(divergence, convention if divergence == "generalized_jsd" else None)]
    per_pos, grads, selected = {}, {}, {}
    for i in np.ndindex(*lead):
        selected[i] = ((mask is None or bool(mask[i]))
                       and (labels is None or int(labels[i]) != ignore_index))
        p = softmax_row([x / T for x in z_t[i]])
        q = softmax_row([x / T for x in z_s[i]])
        per_pos[i], grads[i] = row(p, q, w)
    loss, scale = _reduce(per_pos, grads, selected, lead, vocab, reduction, T, t2_scale)
    grad = np.zeros_like(z_s)
    for i in grads:
        if selected[i]:
            grad[i] = [scale * g for g in grads[i]]
    return loss, grad


def topk(z_s, values, indices, divergence, *, tail, w=None, convention=None, T=1.0, mask=None,
         reduction="batchmean", t2_scale=True, values_kind="logits"):
    """renorm: softmax over the K stored tokens for both (the teacher's values divided by T when
    they are logits, as they are when they are log-probabilities at T); bucket: K stored + one
    tail outcome."""
    z_s, values = np.asarray(z_s, float), np.asarray(values, float)
    lead, vocab = z_s.shape[:-1], z_s.shape[-1]
    k = values.shape[-1]
    row = ROWS[(divergence, convention if divergence == "generalized_jsd" else None)]
    per_pos, grads, selected = {}, {}, {}
    for i in np.ndindex(*lead):
        selected[i] = mask is None or bool(mask[i])
        idx = [int(j) for j in indices[i]]
        g_full = [0.0] * vocab
        if tail == "renorm":
            p = softmax_row([x / T if values_kind == "logits" else x for x in values[i]])
            q = softmax_row([z_s[i][j] / T for j in idx])
            per_pos[i], g = row(p, q, w)
            for b, j in enumerate(idx):
                g_full[j] = g[b]
        else:
            p_k = [math.exp(x) for x in values[i]]
            p = p_k + [max(1.0 - sum(p_k), 0.0)]
            q_full = softmax_row([x / T for x in z_s[i]])
            rest = [j for j in range(vocab) if j not in idx]
            q = [q_full[j] for j in idx] + [sum(q_full[j] for j in rest)]
            # d loss / d u_j through the bins: q_j (dl/dq_bin(j) - sum_v q_v dl/dq_bin(v))
            ell, g_bins_u = row([max(x, 1e-300) for x in p], [max(x, 1e-300) for x in q], w)
            per_pos[i] = ell
            # recover dl/dq_bin from the bin-level softmax-vjp form: g_u = q_b (d_b - s)
            d = [gb / qb for gb, qb in zip(g_bins_u, q, strict=True)]  # = d_b - s
            for b, j in enumerate(idx):
                g_full[j] = q_full[j] * d[b]
            for j in rest:
                g_full[j] = q_full[j] * d[-1]
        grads[i] = g_full
    n_out = k if tail == "renorm" else k + 1
    loss, scale = _reduce(per_pos, grads, selected, lead, n_out, reduction, T, t2_scale)
    grad = np.zeros_like(z_s)
    for i in grads:
        if selected[i]:
            grad[i] = [scale * g for g in grads[i]]
    return loss, grad
