r"""Token distillation from the teacher's stored top-k per position (values + indices).

When teacher outputs are cached to disk (or come from an inference server), often only the top-k
per token are kept. :func:`topk_divergence` takes any divergence of
:mod:`minikd.losses.divergences` between two distributions over the stored tokens, with the
missing tail handled one of two named ways (``tail="renorm"`` or ``"bucket"``), and reduces like
:func:`minikd.forward_kl`. ``docs/token_losses.md`` has the derivation.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_bool, check_choice, check_pair, check_temperature, param_error
from .divergences import divergence_per_position
from .reduction import REDUCTIONS, LossGrad, reduce_positions
from .softmax import log_softmax_kernel
from .tokens import check_divergence, check_positions

__all__ = ["TAILS", "VALUES_KINDS", "topk_divergence"]

TAILS = ("renorm", "bucket")
VALUES_KINDS = ("logits", "log_probs")


def _logsumexp(x):
    """log sum exp over the last axis, shifted by the row maximum. (..., K) -> (...,)."""
    top = x.max(axis=-1)  # (...,)
    return top + np.log(np.exp(x - top[..., None]).sum(axis=-1))


def topk_divergence_kernel(student_logits, topk_values, topk_indices, *, tail="renorm",
                           values_kind="logits", divergence="forward_kl", beta=0.5, alpha=0.1,
                           convention="trl", temperature, mask=None, reduction="batchmean",
                           t2_scale=True):
    """:func:`topk_divergence` on checked arguments (``values_kind`` resolved, labels folded
    into ``mask``, indices an int array, ``values_kind="log_probs"`` with ``tail="bucket"``)."""
    T = temperature
    per_position = divergence_per_position(divergence, beta=beta, alpha=alpha,
                                           convention=convention)
    t2 = T**2 if t2_scale else 1.0  # Hinton et al. §2
    if tail == "renorm":  # both distributions renormalised over the K stored tokens
        z_k = np.take_along_axis(student_logits, topk_indices, axis=-1)  # (..., K)
        if values_kind == "logits":  # p_t = softmax(values / T), like p_s = softmax(z_k / T)
            ell, dz_k = per_position(z_k, topk_values, T)  # (...,), (..., K)
        else:  # log-probabilities at T already: p_t = softmax(values); T on the student only
            ell, du_k = per_position(z_k / T, topk_values, 1.0)  # d / d(z_k / T)
            dz_k = du_k / T
        loss, dz_k = reduce_positions(t2 * ell, t2 * dz_k, mask, reduction)  # "mean": / (M K)
        grad = np.zeros_like(student_logits)  # (..., V): the other V - K tokens get zero
        np.put_along_axis(grad, topk_indices, dz_k, axis=-1)
        return LossGrad(loss, grad)
    # bucket: K + 1 outcomes, the K stored tokens and "any other token"
    tiny = np.finfo(student_logits.dtype).tiny  # floor of a tail mass of exactly 0
    log_p_s = log_softmax_kernel(student_logits / T)  # (..., V)
    p_s = np.exp(log_p_s)
    in_top = np.zeros(p_s.shape, dtype=bool)  # (..., V)
    np.put_along_axis(in_top, topk_indices, True, axis=-1)
    p_rest = np.where(in_top, 0.0, p_s)  # (..., V) the student outside the top-k
    tail_s = np.maximum(p_rest.sum(axis=-1), tiny)  # (...,) summed, not 1 - sum: no cancellation
    tail_t = np.maximum(-np.expm1(np.minimum(_logsumexp(topk_values), 0.0)), tiny)  # 1 - sum
    u_s = np.concatenate([np.take_along_axis(log_p_s, topk_indices, axis=-1),
                          np.log(tail_s)[..., None]], axis=-1)  # (..., K + 1) log-probabilities
    u_t = np.concatenate([topk_values, np.log(tail_t)[..., None]], axis=-1)  # (..., K + 1)
    ell, du = per_position(u_s, u_t, 1.0)  # (...,), (..., K + 1): d / d u_s
    loss, du = reduce_positions(t2 * ell, t2 * du, mask, reduction)  # "mean": / (M (K + 1))
    # chain rule to z_s: d u_b / d z_{I_b} = 1 / T; d u_tail / d z_j = p_j / (T tail_s), j not
    # stored (the common -p_s / T of every u_b drops out: du sums to 0 over the bins)
    grad = p_rest * (du[..., -1] / tail_s)[..., None] / T  # (..., V) the tail tokens
    np.put_along_axis(grad, topk_indices, du[..., :-1] / T, axis=-1)  # the stored tokens
    return LossGrad(loss, grad)


def _check_topk_indices(indices, shape, vocab, func):
    """``topk_indices`` as an intp array of ``shape``, distinct within a position, in [0, V)."""
    try:
        idx = np.asarray(indices)
    except (ValueError, TypeError) as err:
        raise param_error("topk_indices", func, "an integer array", type(indices).__name__,
                          TypeError) from err
    if idx.dtype.kind not in "iu":
        raise param_error("topk_indices", func, "an integer array of token indices",
                          f"dtype {idx.dtype}", TypeError)
    if idx.shape != shape:
        raise param_error("topk_indices", func, f"an array of shape {shape} (like topk_values)",
                          f"shape {idx.shape}")
    if idx.min() < 0 or idx.max() >= vocab:
        raise param_error("topk_indices", func, f"token indices in [0, {vocab})",
                          f"values in [{idx.min()}, {idx.max()}]")
    if shape[-1] > 1 and (np.diff(np.sort(idx, axis=-1), axis=-1) == 0).any():
        raise param_error("topk_indices", func, "distinct indices within each position",
                          "a repeated index")
    return idx.astype(np.intp, copy=False)


def topk_divergence(student_logits, topk_values, topk_indices, *, tail="renorm", values_kind=None,
                    divergence="forward_kl", beta=0.5, alpha=0.1, convention="trl",
                    temperature=1.0, mask=None, labels=None, ignore_index=-100,
                    reduction="batchmean", t2_scale=True):
    r"""Distil from the teacher's stored top-k per token (values + indices), with a named tail.

    .. math::

        \text{renorm:}\ \hat p_t = \mathrm{softmax}(t / T),\
            \hat p_s = \mathrm{softmax}(z_{s,I} / T)
            \text{ over the K stored tokens } I; \qquad
        \text{bucket:}\ \hat p_t = (e^{t_1}, \dots, e^{t_K}, 1 - \textstyle\sum_k e^{t_k}),\
            \hat p_s = (p_{s,I_1}, \dots, p_{s,I_K}, 1 - \textstyle\sum_k p_{s,I_k})

    .. math::

        \ell_m = D(\hat p_t, \hat p_s), \qquad
        \frac{\partial \ell_m}{\partial z_{s,v}} = \frac{1}{T} \begin{cases}
            \hat G_b & v = I_b \\
            \hat G_{\text{tail}}\, p_{s,v} / \hat p_{s,\text{tail}} & v \notin I
            \text{ (bucket; 0 for renorm)} \end{cases}

    with :math:`\hat G = \partial \ell / \partial \log \hat p_s` through the softmax over the
    outcomes (what :mod:`minikd.losses.divergences` returns for logits :math:`\log \hat p_s` at
    T = 1). For the forward KL the bucket gradient is :math:`(p_s - \tilde p_t)/T`, where
    :math:`\tilde p_t` is the teacher's top-k probabilities plus its tail mass spread over the
    other tokens in proportion to the student. The reduction is as in :func:`minikd.forward_kl`,
    with ``"mean"`` dividing by M·K (renorm) or M·(K + 1) (bucket), the outcomes summed.

    * ``tail="renorm"``: both distributions renormalised over the stored tokens, as TRL's
      ``DistillationTrainer`` top-k mode and ms-swift gather then ``log_softmax``.
    * ``tail="bucket"``: one extra outcome for "any other token"; no mass is discarded.
      The temperature is applied to the student only. A tail of exactly 0 is floored at the
      smallest normal number of the dtype.

    ``values_kind`` says what ``topk_values`` holds:

    * ``"logits"`` (the default with ``tail="renorm"``): the teacher's logits :math:`z_t` at the
      stored tokens, divided by T like the student's. Log-probabilities at T = 1 work too (a
      constant per position cancels), log-probabilities at any other T do not.
    * ``"log_probs"`` (the default, and the only choice, with ``tail="bucket"``): the teacher's
      log-probabilities *at temperature T* over the full vocabulary,
      :math:`\log \mathrm{softmax}(z_t / T)` at the stored tokens (their exponentials sum to at
      most 1), used as they are: what an inference server returns when asked for logprobs at T
      (TRL's ``ServerDistillationTrainer``).

    Parameters
    ----------
    student_logits : array_like of shape (..., V)
    topk_values : array_like of shape (..., K)
        The teacher's logits or log-probabilities at the stored tokens (``values_kind``).
    topk_indices : array_like of int of shape (..., K)
        Their token indices, distinct within a position, in [0, V).
    tail : {"renorm", "bucket"}, default "renorm"
    values_kind : {"logits", "log_probs"} or None, default None
        None: "logits" with ``tail="renorm"``, "log_probs" with ``tail="bucket"``.
    divergence : str, default "forward_kl"
        One of :data:`minikd.losses.divergences.DIVERGENCES`.
    beta, alpha, convention
        The divergence's parameters, as in :func:`minikd.token_divergence`.
    temperature, mask, labels, ignore_index, reduction, t2_scale
        As in :func:`minikd.forward_kl`.

    Returns
    -------
    LossGrad
        ``loss`` and ``grad`` of shape (..., V).

    Examples
    --------
    >>> import numpy as np
    >>> z_t = np.log([[0.5, 0.3, 0.1, 0.1]])             # full teacher, stored as top-2
    >>> vals, idx = z_t[:, :2], np.array([[0, 1]])
    >>> z_s = np.zeros((1, 4))
    >>> round(topk_divergence(z_s, vals, idx, tail="bucket").loss, 4)   # tail 0.2 vs 0.5
    0.218
    >>> np.round(topk_divergence(z_s, vals, idx, tail="bucket").grad, 4)
    array([[-0.25, -0.05,  0.15,  0.15]])
    """
    func = "topk_divergence"
    tail = check_choice(tail, "tail", func, TAILS)
    if values_kind is None:
        values_kind = "logits" if tail == "renorm" else "log_probs"
    values_kind = check_choice(values_kind, "values_kind", func, VALUES_KINDS)
    if tail == "bucket" and values_kind != "log_probs":
        raise param_error("values_kind", func, "'log_probs' with tail='bucket' (the tail mass is "
                          "1 - sum(exp(topk_values)))", repr(values_kind))
    divergence, beta, alpha, convention = check_divergence(divergence, beta, alpha, convention,
                                                           func)
    T = check_temperature(temperature, func)
    z_s, vals = check_pair(student_logits, topk_values, func, temperature=T, match="rows",
                           names=("student_logits", "topk_values"))
    lead, vocab = z_s.shape[:-1], z_s.shape[-1]
    if vals.shape[:-1] != lead or not 1 <= vals.shape[-1] <= vocab:
        raise param_error("topk_values", func, f"an array of shape {lead + ('K',)} with "
                          f"1 <= K <= V = {vocab}", f"shape {vals.shape}")
    mask = check_positions(mask, labels, ignore_index, lead, vocab, func)
    check_choice(reduction, "reduction", func, REDUCTIONS)
    t2_scale = check_bool(t2_scale, "t2_scale", func)
    idx = _check_topk_indices(topk_indices, vals.shape, vocab, func)
    if values_kind == "log_probs":
        stored = _logsumexp(vals)  # (...,) log of the stored teacher mass
        if (stored > 1e-3).any():
            raise param_error("topk_values", func, "log-probabilities whose exponentials sum to "
                              "at most 1 per position (values_kind='log_probs')",
                              f"a stored mass of {float(np.exp(stored.max())):.6g}")
    return topk_divergence_kernel(z_s, vals, idx, tail=tail, values_kind=values_kind,
                                  divergence=divergence, beta=beta, alpha=alpha,
                                  convention=convention, temperature=T, mask=mask,
                                  reduction=reduction, t2_scale=t2_scale)
