r"""Token-level distillation losses for sequence models: logits (..., V), masked positions.

Every function takes student logits ``z_s`` and teacher logits ``z_t`` of shape (..., V) (for a
language model (N, L, V): batch, sequence, vocabulary), turns each position into
:math:`q = \mathrm{softmax}(z_s / T)` (student) and :math:`p = \mathrm{softmax}(z_t / T)`
(teacher), computes a divergence :math:`\ell_m` per position, and reduces over the selected
positions (``mask``, or ``labels != ignore_index`` as Hugging Face does):

* :func:`forward_kl`: :math:`KL(p \| q)`, mass-covering (classic KD, per token);
* :func:`reverse_kl`: :math:`KL(q \| p)`, mode-seeking (MiniLLM);
* :func:`generalized_jsd`: :math:`\beta KL(p \| m) + (1-\beta) KL(q \| m)`,
  :math:`m = \beta p + (1-\beta) q` (GKD Eq. 1); ``convention`` picks a TRL version;
* :func:`skew_kl`: :math:`KL(p \| \alpha p + (1-\alpha) q)` (DistiLLM; α = 0 is forward KL);
* :func:`skew_reverse_kl`: :math:`KL(q \| (1-\alpha) p + \alpha q)` (DistiLLM; α = 0 is
  reverse KL);
* :func:`token_divergence`: any of them by name;
* :func:`topk_divergence`: any of them from the teacher's stored top-k logits, the tail
  renormalised away or kept as one bucket.

Conventions (``docs/token_losses.md`` has the derivations and the library mapping):

* ``reduction="batchmean"`` (default): sum over the selected positions divided by their number M,
  a per-token mean, as TRL (with labels), DistiLLM and HF DistilBERT do. ``"sum"``; ``"mean"``
  divides by M·V (``torch`` ``jsd.mean()``); ``"sequence_mean"`` divides by N, the size of the first
  axis (``torch``'s ``reduction="batchmean"`` on an (N, L, V) tensor). A fully masked batch gives
  loss 0.0 and a zero gradient, never NaN.
* ``t2_scale=True`` (default) multiplies the loss by T², as minikd does for every soft loss
  (Hinton et al. 2015, §2). TRL's ``generalized_jsd_loss`` has no T² (pass ``t2_scale=False``).
* The gradient is with respect to the student logits ``z_s``; the teacher is a constant.
  Masked positions get a zero gradient and are never computed.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import (
    as_float_array,
    check_bool,
    check_choice,
    check_fraction,
    check_labels,
    check_logit_range,
    check_mask,
    check_same_shape,
    check_temperature,
    check_unit_interval,
    common_float_dtype,
    param_error,
)
from . import divergences as _dv
from .reduction import REDUCTIONS, LossGrad, reduction_factor

__all__ = [
    "DIVERGENCES",
    "JSD_CONVENTIONS",
    "forward_kl",
    "generalized_jsd",
    "reverse_kl",
    "skew_kl",
    "skew_reverse_kl",
    "token_divergence",
    "topk_divergence",
]

JSD_CONVENTIONS = ("trl", "gkd", "trl_legacy", "trl_logspace")
_JSD_KERNELS = {"trl": _dv.jsd_trl, "gkd": _dv.jsd_gkd, "trl_legacy": _dv.jsd_trl_legacy,
                "trl_logspace": _dv.jsd_trl_logspace}
DIVERGENCES = ("forward_kl", "reverse_kl", "generalized_jsd", "skew_kl", "skew_reverse_kl")
TAILS = ("renorm", "bucket")


# -- boundary checks shared by every public function ------------------------------------------

def _selection(mask, labels, ignore_index, lead, vocab, func):
    """The bool mask over the leading axes (None: all positions), from mask and/or labels."""
    if not isinstance(ignore_index, numbers.Integral) or isinstance(ignore_index, bool):
        raise param_error("ignore_index", func, "an int", repr(ignore_index), TypeError)
    if labels is None:
        return check_mask(mask, lead, func)
    return check_labels(labels, lead, vocab, func, ignore_index=int(ignore_index), mask=mask)[1]


def _kernel_for(divergence, beta, alpha, convention, func, beta_name="beta"):
    """Validate the divergence's own hyperparameter and return (kernel, weight)."""
    if divergence == "forward_kl":
        return _dv.forward_kl, None
    if divergence == "reverse_kl":
        return _dv.reverse_kl, None
    if divergence == "generalized_jsd":
        conv = check_choice(convention, "convention", func, JSD_CONVENTIONS)
        return _JSD_KERNELS[conv], check_unit_interval(beta, beta_name, func)
    if divergence == "skew_kl":
        return _dv.skew_kl, check_fraction(alpha, "alpha", func)
    return _dv.skew_reverse_kl, check_fraction(alpha, "alpha", func)


def _reduce_rows(z_s, lead, sel, reduction, n_classes, temperature, t2_scale, func):
    """The reduction factor, the gradient scale and the selected row indices (None: all)."""
    check_choice(reduction, "reduction", func, REDUCTIONS)
    count = int(np.prod(lead, dtype=np.int64)) if sel is None else int(sel.sum())
    factor = reduction_factor(reduction, count, lead, n_classes)
    t2 = temperature * temperature if t2_scale else 1.0
    rows = None if sel is None else np.flatnonzero(sel)
    return factor, t2, rows, factor * t2 / temperature


def _pairwise(kernel, w, z_s, z_t, func, temperature, mask, labels, ignore_index, reduction,
              t2_scale):
    temperature = check_temperature(temperature, func)
    zs = as_float_array(z_s, "z_s", func, check_finite=False)
    zt = as_float_array(z_t, "z_t", func, check_finite=False)
    check_same_shape(zs, zt, "z_s", "z_t", func)
    dtype = common_float_dtype(zs, zt)
    zs, zt = zs.astype(dtype, copy=False), zt.astype(dtype, copy=False)
    check_logit_range(zs, temperature, "z_s", func)  # finite, and far from overflow in z / T
    check_logit_range(zt, temperature, "z_t", func)
    t2_scale = check_bool(t2_scale, "t2_scale", func)
    lead, vocab = zs.shape[:-1], zs.shape[-1]
    sel = _selection(mask, labels, ignore_index, lead, vocab, func)
    factor, t2, rows, gscale = _reduce_rows(zs, lead, sel, reduction, vocab, temperature,
                                            t2_scale, func)
    losses, grad = _dv.full(zs.reshape(-1, vocab), zt.reshape(-1, vocab), kernel, w,
                            temperature, rows, gscale)
    return LossGrad(float(losses.sum(dtype=np.float64) * factor * t2), grad.reshape(zs.shape))


# -- the public losses ---------------------------------------------------------------------------

def forward_kl(z_s, z_t, *, temperature=1.0, mask=None, labels=None, ignore_index=-100,
               reduction="batchmean", t2_scale=True):
    r"""Forward KL per token, :math:`KL(p_t \| q_s)`: mass-covering distillation.

    .. math::

        \ell_m = \sum_v p_v (\log p_v - \log q_v), \qquad
        L = T^2 \, \frac{1}{M} \sum_{m \in \text{mask}} \ell_m, \qquad
        \frac{\partial L}{\partial z_{s,m}} = \frac{T}{M} (q_m - p_m)

    with :math:`p = \mathrm{softmax}(z_t / T)`, :math:`q = \mathrm{softmax}(z_s / T)` per
    position, M the number of selected positions (``reduction="batchmean"``; the T² and T become
    1 and 1/T with ``t2_scale=False``). Hinton et al. (2015), §2, applied per token (Kim & Rush
    2016, "Sequence-Level Knowledge Distillation", Eq. 4 word-level KD). PyTorch twin:
    ``F.kl_div(F.log_softmax(zs/T, -1), F.log_softmax(zt/T, -1), reduction="none",
    log_target=True).sum(-1)[mask].mean() * T**2``; TRL ``generalized_jsd_loss(beta=0)``;
    DistiLLM ``forward_kl`` is the cross-entropy :math:`-\sum p \log q` (this + H(p)).

    Parameters
    ----------
    z_s : array_like of shape (..., V)
        Student logits; the gradient is with respect to these.
    z_t : array_like of shape (..., V)
        Teacher logits (constants).
    temperature : float, default 1.0
        T in [1e-6, 1e6], applied to both.
    mask : ndarray of bool of shape (...,), optional
        Positions to include.
    labels : array_like of int of shape (...,), optional
        Token labels; positions equal to ``ignore_index`` are excluded (combined with ``mask``).
    ignore_index : int, default -100
    reduction : {"batchmean", "sum", "mean", "sequence_mean"}, default "batchmean"
    t2_scale : bool, default True
        Multiply by T².

    Returns
    -------
    LossGrad
        ``loss`` (float) and ``grad`` (ndarray of shape (..., V), dtype of the inputs).

    Examples
    --------
    >>> import numpy as np
    >>> z_s = np.array([[[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]]])    # (N, L, V) = (1, 2, 3)
    >>> z_t = np.array([[[2.0, 1.0, 0.0], [9.0, 9.0, 9.0]]])
    >>> loss, grad = forward_kl(z_s, z_t, labels=[[2, -100]])   # second token ignored
    >>> round(loss, 4), np.round(grad[0, 1], 4)
    (1.1504, array([0., 0., 0.]))
    """
    return _pairwise(_dv.forward_kl, None, z_s, z_t, "forward_kl", temperature, mask, labels,
                     ignore_index, reduction, t2_scale)


def reverse_kl(z_s, z_t, *, temperature=1.0, mask=None, labels=None, ignore_index=-100,
               reduction="batchmean", t2_scale=True):
    r"""Reverse KL per token, :math:`KL(q_s \| p_t)`: mode-seeking distillation (MiniLLM).

    .. math::

        \ell_m = \sum_v q_v (\log q_v - \log p_v), \qquad
        L = T^2 \, \frac{1}{M} \sum_{m} \ell_m, \qquad
        \frac{\partial L}{\partial z_{s,m,v}} = \frac{T}{M}\, q_v (\log q_v - \log p_v - \ell_m)

    Gu et al. (2024), "MiniLLM", §2.1 (their objective is this divergence at the sequence level;
    the per-token full-vocabulary term is the "single-step" part of their gradient, §2.2).
    PyTorch twin: ``F.kl_div(F.log_softmax(zt/T, -1), F.log_softmax(zs/T, -1),
    reduction="none", log_target=True).sum(-1)[mask].mean() * T**2``; TRL
    ``generalized_jsd_loss(beta=1)``; DistiLLM ``reverse_kl``.

    Parameters
    ----------
    z_s, z_t : array_like of shape (..., V)
        Student and teacher logits.
    temperature, mask, labels, ignore_index, reduction, t2_scale
        As in :func:`forward_kl`.

    Returns
    -------
    LossGrad
        ``loss`` and ``grad`` of shape (..., V).

    Examples
    --------
    >>> import numpy as np
    >>> loss, grad = reverse_kl([[0.0, 1.0, 2.0]], [[2.0, 1.0, 0.0]], temperature=2.0)
    >>> round(loss, 4), np.round(grad, 4)
    (1.2806, array([[-0.492 , -0.1967,  0.6887]]))
    """
    return _pairwise(_dv.reverse_kl, None, z_s, z_t, "reverse_kl", temperature, mask, labels,
                     ignore_index, reduction, t2_scale)


def generalized_jsd(z_s, z_t, *, beta=0.5, convention="trl", temperature=1.0, mask=None,
                    labels=None, ignore_index=-100, reduction="batchmean", t2_scale=True):
    r"""Generalized Jensen-Shannon divergence per token (GKD, Agarwal et al. 2024, Eq. 1).

    .. math::

        m = \beta p + (1-\beta) q, \qquad
        \ell_m = \beta\, KL(p \| m) + (1-\beta)\, KL(q \| m), \qquad
        \frac{\partial \ell_m}{\partial z_{s,v}} = \frac{1-\beta}{T}\, q_v
            \big(\log q_v - \log m_v - KL(q \| m)\big)

    reduced as in :func:`forward_kl` (times T² unless ``t2_scale=False``). As
    :math:`\beta \to 0`, :math:`\ell / \beta \to KL(p \| q)`; as :math:`\beta \to 1`,
    :math:`\ell / (1-\beta) \to KL(q \| p)` (Huszár 2015); β = 0.5 is the usual JSD.

    ``convention`` (TRL's ``GKDTrainer.generalized_jsd_loss`` changed twice):

    * ``"trl"`` (default; TRL since PR #3043, March 2025): Eq. 1 for 0 < β < 1, and the
      *unscaled* forward KL at β = 0 and reverse KL at β = 1 (so the loss jumps at the ends).
    * ``"gkd"``: Eq. 1 everywhere, continuous, 0 at β = 0 and β = 1.
    * ``"trl_legacy"`` (TRL before PR #3043): :math:`m = \beta q + (1-\beta) p`, same weights,
      so reverse KL at β = 0 and forward KL at β = 1, continuous; equal to DistiLLM/MiniLLM
      ``js_distance(lam=beta)`` and to ``"gkd"``'s mixture with the weights swapped at 1 - β.
    * ``"trl_logspace"`` (the first GKDTrainer): log-probabilities interpolated instead of
      probabilities, ``log m = beta log q + (1 - beta) log p``, which works out to
      :math:`\beta^2 KL(p \| q) + (1-\beta)^2 KL(q \| p)`: reverse KL at β = 0, forward KL at
      β = 1, scaled by β² and (1 − β)².

    PyTorch twin (``"trl"``, 0 < β < 1): ``lm = torch.logsumexp(torch.stack([lq +
    math.log1p(-beta), lp + math.log(beta)]), 0)``; ``(beta * F.kl_div(lm, lp, reduction="none",
    log_target=True) + (1 - beta) * F.kl_div(lm, lq, reduction="none",
    log_target=True)).sum(-1)[mask].mean()`` with ``lq, lp = log_softmax(zs/T), log_softmax(zt/T)``.

    Parameters
    ----------
    z_s, z_t : array_like of shape (..., V)
        Student and teacher logits.
    beta : float in [0, 1], default 0.5
        Weight of the teacher in the mixture (TRL ``GKDConfig.beta``, default 0.5).
    convention : {"trl", "gkd", "trl_legacy", "trl_logspace"}, default "trl"
    temperature, mask, labels, ignore_index, reduction, t2_scale
        As in :func:`forward_kl`.

    Returns
    -------
    LossGrad
        ``loss`` and ``grad`` of shape (..., V).

    Examples
    --------
    >>> import numpy as np
    >>> z_s, z_t = [[0.0, 1.0, 2.0]], [[2.0, 1.0, 0.0]]
    >>> round(generalized_jsd(z_s, z_t, beta=0.5).loss, 4)
    0.2476
    >>> [round(generalized_jsd(z_s, z_t, beta=b).loss, 4) for b in (0.0, 1e-3, 1.0)]
    [1.1504, 0.0011, 1.1504]
    """
    kernel, w = _kernel_for("generalized_jsd", beta, None, convention, "generalized_jsd")
    return _pairwise(kernel, w, z_s, z_t, "generalized_jsd", temperature, mask, labels,
                     ignore_index, reduction, t2_scale)


def skew_kl(z_s, z_t, *, alpha=0.1, temperature=1.0, mask=None, labels=None, ignore_index=-100,
            reduction="batchmean", t2_scale=True):
    r"""Skew KL per token (DistiLLM's α-SKL): the teacher against a skewed student.

    .. math::

        \tilde q = \alpha p + (1-\alpha) q, \qquad \ell_m = KL(p \| \tilde q), \qquad
        \frac{\partial \ell_m}{\partial z_{s,v}} = \frac{1-\alpha}{T}\, q_v
            \Big(\sum_u \frac{q_u p_u}{\tilde q_u} - \frac{p_v}{\tilde q_v}\Big)

    Ko et al. (2024), "DistiLLM: Towards Streamlined Distillation for Large Language Models",
    §3 (α-SKL), and the authors' ``distillm/losses.py``. Reduced as in :func:`forward_kl`.
    α = 0 is the forward KL; mixing α of the teacher into the
    student bounds :math:`p / \tilde q \le 1 / \alpha`, which keeps the gradient bounded where the
    student puts no mass. PyTorch twin: ``F.kl_div(torch.log(alpha * p + (1 - alpha) * q), p,
    reduction="none").sum(-1)[mask].mean()``. DistiLLM's ``skewed_forward_kl(lam=alpha)``
    returns the cross-entropy :math:`-\sum p \log \tilde q` (this + H(p); same gradient),
    with T = 1 and no T².

    Parameters
    ----------
    z_s, z_t : array_like of shape (..., V)
        Student and teacher logits.
    alpha : float in [0, 1), default 0.1
        Weight of the teacher in the skewed student (DistiLLM's ``skew_alpha``, default 0.1).
    temperature, mask, labels, ignore_index, reduction, t2_scale
        As in :func:`forward_kl`.

    Returns
    -------
    LossGrad
        ``loss`` and ``grad`` of shape (..., V).

    Examples
    --------
    >>> import numpy as np
    >>> z_s, z_t = [[0.0, 1.0, 2.0]], [[2.0, 1.0, 0.0]]
    >>> round(skew_kl(z_s, z_t, alpha=0.0).loss, 4), round(skew_kl(z_s, z_t, alpha=0.1).loss, 4)
    (1.1504, 0.8299)
    """
    kernel, w = _kernel_for("skew_kl", None, alpha, None, "skew_kl")
    return _pairwise(kernel, w, z_s, z_t, "skew_kl", temperature, mask, labels, ignore_index,
                     reduction, t2_scale)


def skew_reverse_kl(z_s, z_t, *, alpha=0.1, temperature=1.0, mask=None, labels=None,
                    ignore_index=-100, reduction="batchmean", t2_scale=True):
    r"""Skew reverse KL per token (DistiLLM's α-SRKL): the student against a skewed teacher.

    .. math::

        \tilde p = (1-\alpha) p + \alpha q, \qquad \ell_m = KL(q \| \tilde p), \qquad
        \frac{\partial \ell_m}{\partial z_{s,v}} = \frac{1}{T} q_v (g_v - \textstyle\sum_u q_u g_u),
        \quad g = \log \frac{q}{\tilde p} - \alpha \frac{q}{\tilde p}

    Ko et al. (2024), "DistiLLM", §3 (α-SRKL). Reduced as in :func:`forward_kl`.
    α = 0 is the reverse KL. PyTorch twin: ``F.kl_div(
    torch.log((1 - alpha) * p + alpha * q), q, reduction="none").sum(-1)[mask].mean()``;
    DistiLLM ``skewed_reverse_kl(lam=alpha)`` (T = 1, no T²).

    Parameters
    ----------
    z_s, z_t : array_like of shape (..., V)
        Student and teacher logits.
    alpha : float in [0, 1), default 0.1
        Weight of the student in the skewed teacher.
    temperature, mask, labels, ignore_index, reduction, t2_scale
        As in :func:`forward_kl`.

    Returns
    -------
    LossGrad
        ``loss`` and ``grad`` of shape (..., V).

    Examples
    --------
    >>> import numpy as np
    >>> z_s, z_t = [[0.0, 1.0, 2.0]], [[2.0, 1.0, 0.0]]
    >>> round(skew_reverse_kl(z_s, z_t, alpha=0.1).loss, 4)
    0.8299
    """
    kernel, w = _kernel_for("skew_reverse_kl", None, alpha, None, "skew_reverse_kl")
    return _pairwise(kernel, w, z_s, z_t, "skew_reverse_kl", temperature, mask, labels,
                     ignore_index, reduction, t2_scale)


def token_divergence(z_s, z_t, *, divergence="forward_kl", beta=0.5, alpha=0.1,
                     convention="trl", temperature=1.0, mask=None, labels=None,
                     ignore_index=-100, reduction="batchmean", t2_scale=True):
    r"""Any of the token-level divergences, chosen by name (for loops and configs).

    .. math::

        L = T^2 \frac{1}{M} \sum_m D(p_m, q_m), \qquad
        \frac{\partial L}{\partial z_s} \text{ as in the named function}

    Parameters
    ----------
    z_s, z_t : array_like of shape (..., V)
    divergence : {"forward_kl", "reverse_kl", "generalized_jsd", "skew_kl", "skew_reverse_kl"}
    beta, convention : used by "generalized_jsd" only.
    alpha : used by "skew_kl" and "skew_reverse_kl" only.
    temperature, mask, labels, ignore_index, reduction, t2_scale
        As in :func:`forward_kl`.

    Returns
    -------
    LossGrad
        ``loss`` and ``grad`` of shape (..., V).

    Examples
    --------
    >>> round(token_divergence([[0.0, 1.0]], [[1.0, 0.0]], divergence="reverse_kl").loss, 4)
    0.4621
    """
    func = "token_divergence"
    kernel, w = _kernel_for(check_choice(divergence, "divergence", func, DIVERGENCES), beta,
                            alpha, convention, func)
    return _pairwise(kernel, w, z_s, z_t, func, temperature, mask, labels, ignore_index,
                     reduction, t2_scale)


def topk_divergence(z_s, topk_values, topk_indices, *, tail="renorm", divergence="forward_kl",
                    beta=0.5, alpha=0.1, convention="trl", temperature=1.0, mask=None,
                    labels=None, ignore_index=-100, reduction="batchmean", t2_scale=True):
    r"""Distil from the teacher's stored top-k per token (values + indices), with a named tail.

    .. math::

        \text{renorm:}\ \hat p = \mathrm{softmax}(t / T),\ \hat q = \mathrm{softmax}(z_{s,I} / T)
            \text{ over the K stored tokens } I; \qquad
        \text{bucket:}\ \hat p = (e^{t_1}, \dots, e^{t_K}, 1 - \textstyle\sum_k e^{t_k}),\
            \hat q = (q_{I_1}, \dots, q_{I_K}, 1 - \textstyle\sum_k q_{I_k})

    .. math::

        \ell_m = D(\hat p, \hat q), \qquad
        \frac{\partial \ell_m}{\partial z_{s,v}} = \frac{1}{T}\Big(\hat G_v
            - q_v \sum_b \hat G_b\Big), \quad
        \hat G_v = \begin{cases} \partial \ell / \partial \log \hat q_b & v = I_b \\
            q_v\, \hat G_{\text{tail}} / \hat q_{\text{tail}} & v \notin I \text{ (bucket)}
            \end{cases}

    (renorm: q and the sum run over the K tokens, the other V - K logits get zero gradient.)
    For the forward KL the bucket gradient is :math:`(q - \tilde p)/T`, where
    :math:`\tilde p` is the teacher's top-k probabilities plus its tail mass spread over the
    other tokens in proportion to the student. The reduction is as in :func:`forward_kl`, with
    ``"mean"`` dividing by M·K (renorm) or M·(K + 1) (bucket), the outcomes actually summed.

    * ``tail="renorm"``: both distributions renormalised over the stored tokens, as TRL's
      ``DistillationTrainer`` top-k mode and ms-swift gather then ``log_softmax``. ``topk_values``
      may be logits or log-probabilities (a per-row shift does not matter).
    * ``tail="bucket"``: one extra outcome for "any other token"; no mass is discarded.
      ``topk_values`` must be the teacher's *log-probabilities at temperature T* over the full
      vocabulary, log softmax(z_t / T) at the stored tokens (their exponentials sum to <= 1). The
      temperature is applied to the student only. A tail of exactly 0 is floored at the
      smallest normal number of the dtype.

    Parameters
    ----------
    z_s : array_like of shape (..., V)
        Student logits.
    topk_values : array_like of shape (..., K)
        Teacher logits or log-probabilities of the stored tokens (see ``tail``).
    topk_indices : array_like of int of shape (..., K)
        Their token indices, distinct within a position, in [0, V).
    tail : {"renorm", "bucket"}, default "renorm"
    divergence : str, default "forward_kl"
        One of :data:`DIVERGENCES`; ``beta``, ``alpha`` and ``convention`` as in
        :func:`token_divergence`.
    temperature, mask, labels, ignore_index, reduction, t2_scale
        As in :func:`forward_kl`.

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
    temperature = check_temperature(temperature, func)
    zs = as_float_array(z_s, "z_s", func, check_finite=False)
    vals = as_float_array(topk_values, "topk_values", func, check_finite=False)
    dtype = common_float_dtype(zs, vals)
    zs, vals = zs.astype(dtype, copy=False), vals.astype(dtype, copy=False)
    check_logit_range(zs, temperature, "z_s", func)
    check_logit_range(vals, temperature, "topk_values", func)
    lead, vocab = zs.shape[:-1], zs.shape[-1]
    if vals.shape[:-1] != lead or not 1 <= vals.shape[-1] <= vocab:
        raise param_error("topk_values", func, f"an array of shape {lead + ('K',)} with "
                          f"1 <= K <= V = {vocab}", f"shape {vals.shape}")
    k = vals.shape[-1]
    idx = _topk_indices(topk_indices, vals.shape, vocab, func)
    tail = check_choice(tail, "tail", func, TAILS)
    kernel, w = _kernel_for(check_choice(divergence, "divergence", func, DIVERGENCES), beta,
                            alpha, convention, func)
    t2_scale = check_bool(t2_scale, "t2_scale", func)
    sel = _selection(mask, labels, ignore_index, lead, vocab, func)
    n_out = k if tail == "renorm" else k + 1
    factor, t2, rows, gscale = _reduce_rows(zs, lead, sel, reduction, n_out, temperature,
                                            t2_scale, func)
    zs2, vals2, idx2 = zs.reshape(-1, vocab), vals.reshape(-1, k), idx.reshape(-1, k)
    if tail == "renorm":
        zs_k = np.take_along_axis(zs2, idx2, axis=-1)  # (R, K)
        losses, grad_k = _dv.full(zs_k, vals2, kernel, w, temperature, rows, gscale)
        grad = np.zeros_like(zs2)  # (R, V); the tokens outside the top-k get no gradient
        np.put_along_axis(grad, idx2, grad_k, axis=-1)
    else:
        losses, grad = _dv.bucket(zs2, _tail_bins(vals2, func), idx2, kernel, w, temperature,
                                  rows, gscale)
    return LossGrad(float(losses.sum(dtype=np.float64) * factor * t2), grad.reshape(zs.shape))


def _topk_indices(indices, shape, vocab, func):
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
    idx = idx.astype(np.intp, copy=False)
    if idx.min() < 0 or idx.max() >= vocab:
        raise param_error("topk_indices", func, f"token indices in [0, {vocab})",
                          f"values in [{idx.min()}, {idx.max()}]")
    if shape[-1] > 1 and (np.diff(np.sort(idx, axis=-1), axis=-1) == 0).any():
        raise param_error("topk_indices", func, "distinct indices within each position",
                          "a repeated index")
    return idx


def _tail_bins(lp_k, func):
    """Teacher bins (R, K + 1): the stored log-probabilities and log of the tail mass."""
    top = lp_k.max(axis=-1)
    lse = top + np.log(np.exp(lp_k - top[:, None]).sum(axis=-1))  # log of the stored mass
    if (lse > 1e-3).any():
        raise param_error("topk_values", func, "log-probabilities whose exponentials sum to at "
                          "most 1 per position (tail='bucket')",
                          f"a stored mass of {float(np.exp(lse.max())):.6g}")
    tail = -np.expm1(np.minimum(lse, 0.0))  # 1 - stored mass, without cancellation
    bins = np.empty((lp_k.shape[0], lp_k.shape[1] + 1), dtype=lp_k.dtype)
    bins[:, :-1] = lp_k
    bins[:, -1] = np.log(np.maximum(tail, np.finfo(lp_k.dtype).tiny))
    return bins
