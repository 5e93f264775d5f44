r"""Row kernels and block drivers behind :mod:`minikd.tokens` (private; no validation here).

A *kernel* takes the teacher's and the student's log-probabilities and probabilities over the
same outcomes, ``lp, p, lq, q`` of shape (B, K), and returns the divergence of each row, shape
(B,), and

.. math::

    G = \frac{\partial \ell}{\partial \log q}  \quad\text{up to } c\,q \text{ per row},

shape (B, K). The student's gradient with respect to its logits then follows from the
log-softmax vector-Jacobian product, :math:`\partial \ell / \partial z = (G - q \sum_k G_k) / T`,
in which any multiple of ``q`` added to a row of G cancels (that is how the ``+1`` of
:math:`\partial (q \log q) / \partial q` is dropped). Probabilities and log-probabilities come
from the stable ``softmax._softmax_and_log`` (one ``exp`` for both); a mixture m is formed in
probability space and the smallest normal number is added before its log, and every term that
uses log m is weighted by p, q or their ratio to m (bounded by 1/weight), so logit gaps of 1e5
stay finite. Kernels may overwrite the teacher's
``lp`` and ``p`` but never the student's ``lq`` or ``q``.

The drivers walk the rows in blocks of about ``_BLOCK_ELEMS`` elements: the temporaries are a few
blocks (a few MB, cache-sized) instead of a few copies of the (N·L, V) array, and masked rows are
never computed.
"""

from __future__ import annotations

import numpy as np

from .softmax import log_softmax_kernel


def _softmax_and_log(z, temperature):
    log_p = log_softmax_kernel(z / temperature)
    return np.exp(log_p), log_p

_BLOCK_ELEMS = 1 << 16  # 256 kB of float32 per temporary: the block stays in cache


def _rowdot(a, b):
    """Row-wise inner product of two (B, K) arrays, without a (B, K) temporary."""
    return np.einsum("ij,ij->i", a, b)


def _log_mix(a, b, w):
    """log(w a + (1 - w) b) for probabilities a, b and 0 < w < 1; returns (log m, m).

    Mixed in probability space (one log instead of a log-add-exp). The smallest normal number
    ``tiny`` is added first, so where a and b both underflow to 0, log m is finite; every term
    that uses log m is multiplied by a, b or their ratio to m, so those terms stay 0 or bounded.
    The addition moves only m < 2**24 tiny (about 2e-31 in float32), whose terms are negligible,
    and costs a quarter of an ``np.maximum``.
    """
    m = np.multiply(a, a.dtype.type(w))
    m += b * b.dtype.type(1.0 - w)
    m += np.finfo(m.dtype).tiny
    return np.log(m), m


def forward_kl(lp, p, lq, q, _w=None):
    """KL(p || q) = sum p (log p - log q); G = -p."""
    ell = _rowdot(p, np.subtract(lp, lq, out=lp))
    return ell, np.negative(p, out=p)


def reverse_kl(lp, p, lq, q, _w=None):
    """KL(q || p) = sum q (log q - log p); G = q (log q - log p)."""
    r = np.subtract(lq, lp, out=lp)
    ell = _rowdot(q, r)
    r *= q
    return ell, r


def jsd_gkd(lp, p, lq, q, beta):
    """GKD Eq. 1: beta KL(p || m) + (1 - beta) KL(q || m), m = beta p + (1 - beta) q.

    G = (1 - beta) q (log q - log m). Zero at beta in {0, 1} (m equals q or p).
    """
    if beta in (0.0, 1.0):
        return np.zeros(lp.shape[0], lp.dtype), np.zeros_like(lq)
    lm, _ = _log_mix(p, q, beta)
    ell = beta * _rowdot(p, np.subtract(lp, lm, out=lp))
    d = np.subtract(lq, lm, out=lm)
    ell += (1.0 - beta) * _rowdot(q, d)
    d *= q
    d *= d.dtype.type(1.0 - beta)
    return ell, d


def jsd_trl(lp, p, lq, q, beta):
    """TRL since PR #3043: forward KL at beta = 0, reverse KL at beta = 1, GKD Eq. 1 between."""
    if beta == 0.0:
        return forward_kl(lp, p, lq, q)
    if beta == 1.0:
        return reverse_kl(lp, p, lq, q)
    return jsd_gkd(lp, p, lq, q, beta)


def jsd_trl_legacy(lp, p, lq, q, beta):
    """TRL before PR #3043: beta KL(p || m) + (1 - beta) KL(q || m), m = beta q + (1 - beta) p.

    dl/dq = (1 - beta)(log q - log m + 1) - beta (beta p + (1 - beta) q) / m, so
    G = q [(1 - beta)(log q - log m - beta q / m) - beta^2 p / m].
    """
    if beta == 0.0:
        return reverse_kl(lp, p, lq, q)
    if beta == 1.0:
        return forward_kl(lp, p, lq, q)
    lm, m = _log_mix(q, p, beta)
    ell = beta * _rowdot(p, np.subtract(lp, lm, out=lp))
    d = np.subtract(lq, lm, out=lm)  # log q - log m
    ell += (1.0 - beta) * _rowdot(q, d)
    p /= m  # p / m
    p *= p.dtype.type(beta * beta)
    d -= np.divide(q, m, out=m) * d.dtype.type(beta)  # log q - log m - beta q / m
    d *= d.dtype.type(1.0 - beta)
    d -= p
    d *= q
    return ell, d


def jsd_trl_logspace(lp, p, lq, q, beta):
    """The first GKDTrainer: log m = beta log q + (1 - beta) log p (unnormalised; q the student),
    and beta KL(p || m) + (1 - beta) KL(q || m), which sums to
    beta^2 KL(p || q) + (1 - beta)^2 KL(q || p); G = (1 - beta)^2 q (log q - log p) - beta^2 p.
    """
    c2, b2 = beta * beta, (1.0 - beta) * (1.0 - beta)  # weights of KL(p||q) and KL(q||p)
    r = np.subtract(lq, lp, out=lp)  # log q - log p
    ell = b2 * _rowdot(q, r) - c2 * _rowdot(p, r)
    r *= q
    r *= r.dtype.type(b2)
    p *= p.dtype.type(c2)
    r -= p
    return ell, r


def skew_kl(lp, p, lq, q, alpha):
    """DistiLLM SKL: KL(p || m), m = alpha p + (1 - alpha) q; G = -(1 - alpha) q p / m."""
    if alpha == 0.0:
        return forward_kl(lp, p, lq, q)
    lm, m = _log_mix(p, q, alpha)
    ell = _rowdot(p, np.subtract(lp, lm, out=lp))
    g = np.divide(p, m, out=p)  # p / m <= 1 / alpha
    g *= q
    g *= g.dtype.type(-(1.0 - alpha))
    return ell, g


def skew_reverse_kl(lp, p, lq, q, alpha):
    """DistiLLM SRKL: KL(q || m), m = (1 - alpha) p + alpha q.

    G = q (log q - log m - alpha q / m).
    """
    if alpha == 0.0:
        return reverse_kl(lp, p, lq, q)
    lm, m = _log_mix(q, p, alpha)
    d = np.subtract(lq, lm, out=lm)  # log q - log m
    ell = _rowdot(q, d)
    r = np.divide(q, m, out=m)  # q / m <= 1 / alpha
    r *= r.dtype.type(alpha)
    d -= r
    d *= q
    return ell, d


def _blocks(n_rows, n_cols, rows):
    """Yield row selections (slices, or index arrays when ``rows`` is given) of ~_BLOCK_ELEMS."""
    step = max(1, _BLOCK_ELEMS // max(n_cols, 1))
    total = n_rows if rows is None else rows.size
    for start in range(0, total, step):
        yield slice(start, start + step) if rows is None else rows[start:start + step]


def _block(z, sel):
    """The rows ``sel`` of z as a fresh contiguous block. Index arrays copy anyway; for a slice the
    copy is measured ~1.5x faster overall than working on the view (the block then stays hot)."""
    return z[sel].copy() if isinstance(sel, slice) else z[sel]


def full(z_s, z_t, kernel, w, temperature, rows, grad_scale):
    """Per-row losses (R,) and scaled gradients (R, V) for 2-D logits; rows=None selects all."""
    out = np.zeros_like(z_s)
    losses = np.zeros(z_s.shape[0], dtype=z_s.dtype)
    scale = z_s.dtype.type(grad_scale)
    for sel in _blocks(*z_s.shape, rows):
        q, lq = _softmax_and_log(_block(z_s, sel), temperature)  # (B, V) each
        p, lp = _softmax_and_log(_block(z_t, sel), temperature)  # (B, V) each
        ell, g = kernel(lp, p, lq, q, w)
        q *= g.sum(axis=-1, keepdims=True)
        g -= q
        g *= scale
        out[sel] = g  # one write to the (cold) output; measured faster than working in it
        losses[sel] = ell
    return losses, out


def bucket(z_s, lp_bins, idx, kernel, w, temperature, rows, grad_scale):
    """Top-k with a tail bucket: K + 1 outcomes, the student's tail mass summed over the rest.

    ``lp_bins`` (R, K + 1) holds the teacher's log-probabilities of the top-k tokens and of the
    tail; ``idx`` (R, K) the token indices. The tail's G spreads over the tail tokens in
    proportion to q: dl/dlog q_j = q_j G_tail / q_tail.
    """
    n_rows, _ = z_s.shape
    k = idx.shape[1]
    tiny = np.finfo(z_s.dtype).tiny
    out = np.empty_like(z_s) if rows is None else np.zeros_like(z_s)
    losses = np.zeros(n_rows, dtype=z_s.dtype)
    scale = z_s.dtype.type(grad_scale)
    for sel in _blocks(*z_s.shape, rows):
        ib = idx[sel]  # (B, K)
        q, lq = _softmax_and_log(_block(z_s, sel), temperature)  # (B, V) each
        lq_bins = np.empty((lq.shape[0], k + 1), dtype=lq.dtype)  # (B, K + 1)
        lq_bins[:, :k] = np.take_along_axis(lq, ib, axis=-1)
        q_bins = np.empty_like(lq_bins)  # (B, K + 1)
        q_k = q_bins[:, :k]
        q_k[...] = np.take_along_axis(q, ib, axis=-1)
        np.put_along_axis(q, ib, 0.0, axis=-1)
        tail = np.maximum(q.sum(axis=-1), tiny)  # (B,) summed, not 1 - sum(q_k): no cancellation
        q_bins[:, k] = tail
        lq_bins[:, k] = np.log(tail)
        lp_b = lp_bins[sel].copy()  # (B, K + 1): the kernel may overwrite it
        ell, g = kernel(lp_b, np.exp(lp_b), lq_bins, q_bins, w)
        g_sum = g.sum(axis=-1)  # (B,)
        q *= (g[:, k] / tail - g_sum)[:, None]
        np.put_along_axis(q, ib, g[:, :k] - q_k * g_sum[:, None], axis=-1)
        q *= scale
        out[sel] = q
        losses[sel] = ell
    return losses, out
