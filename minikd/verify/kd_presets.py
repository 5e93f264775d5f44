"""The KD-loss presets of :mod:`minikd.conventions`: one kernel per library (private).

Each kernel gets validated float arrays ``s``, ``t`` of shape (N, C) ((..., C) for HF and
TextBrewer), labels or None, T > 0, alpha in [0, 1], a mask (HF only) and the caller's name,
and returns a :class:`minikd.LossGrad`. Its docstring quotes the library's code. ``PRESETS`` maps
each name to ``(kernel, (library, source, formula, weights, note))``.
"""

from __future__ import annotations

import numpy as np

from .._validation import param_error
from ..losses.reduction import LossGrad
from ..losses.response import (
    cross_entropy,
    distillation_loss,
    kd_loss,
    kl_divergence,
    soft_cross_entropy,
)
from ..losses.softmax import softmax, softmax_vjp

KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): KLDivergence clips both inputs to [1e-7, 1]

RD = "HobbitLong/RepDistiller@b84f547c"
MD = "megvii-research/mdistiller@a08d46f1"
TD = "yoshitomo-matsubara/torchdistill@3e4373c4"
KL = "SforAiDl/KD_Lib@a94d2360"
ANY_RANK = ("hf_distilbert", "textbrewer")  # the presets that take (..., C) logits


def _blend(alpha, soft, hard):
    """alpha * soft + (1 - alpha) * hard for two LossGrads (hard may be None when alpha == 1)."""
    if hard is None or alpha == 1.0:
        return LossGrad(alpha * soft.loss, soft.grad * soft.grad.dtype.type(alpha))
    grad = soft.grad * soft.grad.dtype.type(alpha)
    grad += hard.grad * hard.grad.dtype.type(1.0 - alpha)
    return LossGrad(alpha * soft.loss + (1.0 - alpha) * hard.loss, grad)


def _hard(s, labels, alpha, func):
    """The hard cross-entropy at T = 1 (mean over the batch), or None when its weight is 0."""
    if alpha == 1.0 and labels is None:
        return None
    if labels is None:
        raise param_error("labels", func, "an integer array of class indices (labels may be "
                          "None only when alpha == 1)", f"None with alpha={alpha!r}")
    return cross_entropy(s, labels, ignore_index=None)


# ---------------------------------------------------------------- KD presets (private kernels)
# Each kernel gets validated float arrays s, t (N, C) (HF and TextBrewer: (..., C)), labels or
# None, T > 0, alpha in [0, 1], and a mask (HF only). The docstring quotes the library.

def _kd_batchmean_t2(s, t, labels, T, alpha, mask, func):
    """RepDistiller ``DistillKL`` / mdistiller ``kd_loss``: batchmean KL times T².

    RepDistiller ``distiller_zoo/KD.py``:
    ``F.kl_div(F.log_softmax(y_s/T, dim=1), F.softmax(y_t/T, dim=1), size_average=False)
    * (T**2) / y_s.shape[0]``; ``helper/loops.py``: ``loss = gamma * loss_cls + alpha * loss_div``.
    mdistiller ``mdistiller/distillers/KD.py``:
    ``F.kl_div(log_pred_student, pred_teacher, reduction="none").sum(1).mean() * T**2``;
    ``loss = CE_WEIGHT * CE + KD_WEIGHT * loss_kd``.
    """
    return distillation_loss(s, t, labels, temperature=T, alpha=alpha, ignore_index=None)


def _kd_torchdistill(s, t, labels, T, alpha, mask, func):
    """torchdistill ``KDLoss``: the blend, except the bare KL when its alpha is 0 or no targets.

    torchdistill ``torchdistill/losses/mid_level.py`` (``KDLoss(nn.KLDivLoss)``, reduction
    ``"batchmean"``)::

        soft_loss = super().forward(torch.log_softmax(student_logits / T, dim=1),
                                    torch.softmax(teacher_logits / T, dim=1))
        if self.alpha is None or self.alpha == 0 or targets is None:
            return soft_loss
        hard_loss = self.cross_entropy_loss(student_logits, targets)
        return self.alpha * hard_loss + self.beta * (self.temperature ** 2) * soft_loss

    with ``beta = 1 - alpha``. torchdistill's ``alpha`` is the *hard* weight: minikd's
    ``alpha`` is its ``beta``, and its quirk fires at minikd ``alpha == 1`` or ``labels=None``:
    then the result has neither :math:`T^2` nor the weight.
    """
    if labels is None or alpha == 1.0:
        return kl_divergence(s, t, temperature=T)
    return distillation_loss(s, t, labels, temperature=T, alpha=alpha, ignore_index=None)


def _kd_textbrewer(s, t, labels, T, alpha, mask, func):
    """TextBrewer ``kd_ce_loss`` (``kd_loss_type='ce'``, the default): soft CE, no T².

    TextBrewer ``src/textbrewer/losses.py``:
    ``p_T = F.softmax(logits_T / temperature, dim=-1)``;
    ``loss = -(p_T * F.log_softmax(logits_S / temperature, dim=-1)).sum(dim=-1).mean()``;
    ``distiller_general.py``: ``total_loss = kd_loss * kd_loss_weight
    + sum(hard losses) * hard_label_weight``.
    """
    soft = soft_cross_entropy(s, t, temperature=T)
    return _blend(alpha, soft, _hard(s, labels, alpha, func))


def _kd_kd_lib(s, t, labels, T, alpha, mask, func):
    r"""KD_Lib ``VanillaKD``: the mean squared error of the *probabilities*, times T².

    KD_Lib ``KD_Lib/KD/vision/vanilla/vanilla_kd.py`` (``loss_fn=nn.MSELoss()`` by default)::

        soft_teacher_out = F.softmax(y_pred_teacher / self.temp, dim=1)
        soft_student_out = F.softmax(y_pred_student / self.temp, dim=1)
        loss = (1 - self.distil_weight) * F.cross_entropy(y_pred_student, y_true)
        loss += (self.distil_weight * self.temp * self.temp) * self.loss_fn(
            soft_teacher_out, soft_student_out)

    Soft term and gradient (p = softmax(z/T), the MSE is a mean over the N·C entries):

    .. math::

        S = \frac{T^2}{N C} \sum_{n,c} (p_{s,nc} - p_{t,nc})^2, \qquad
        \frac{\partial S}{\partial z_s} = \mathrm{softmax\_vjp}\Big(
            \frac{2 T^2}{N C} (p_s - p_t),\; p_s,\; T\Big)
    """
    p_s = softmax(s, temperature=T)  # (N, C)
    p_t = softmax(t, temperature=T)  # (N, C)
    diff = p_s - p_t  # (N, C)
    scale = T * T / diff.size
    loss = float(scale * np.sum(diff * diff, dtype=np.float64))
    dz = softmax_vjp(diff * diff.dtype.type(2.0 * scale), p_s, temperature=T)  # (N, C)
    return _blend(alpha, LossGrad(loss, dz), _hard(s, labels, alpha, func))


def _kd_hf_distilbert(s, t, labels, T, alpha, mask, func):
    """HF DistilBERT ``Distiller.step``: batchmean KL over the selected token rows, times T².

    huggingface/transformers ``examples/research_projects/distillation/distiller.py``::

        s_logits_slct = torch.masked_select(s_logits, mask).view(-1, s_logits.size(-1))
        loss_ce = self.ce_loss_fct(nn.functional.log_softmax(s_logits_slct / self.temperature,
                                   dim=-1), nn.functional.softmax(t_logits_slct / ..., dim=-1)
                                   ) * (self.temperature) ** 2     # KLDivLoss("batchmean")
        loss = self.alpha_ce * loss_ce
        loss_mlm = self.lm_loss_fct(s_logits.view(-1, s_logits.size(-1)), lm_labels.view(-1))
        loss += self.alpha_mlm * loss_mlm                  # CrossEntropyLoss(ignore_index=-100)

    ``mask`` is the attention mask (True on real tokens); the hard term skips the labels equal
    to -100, independently of ``mask``. Where PyTorch gives 0/0 = NaN for no selected row,
    minikd gives 0.
    """
    soft = kd_loss(s, t, temperature=T, mask=mask)
    if alpha == 1.0 and labels is None:
        return _blend(alpha, soft, None)
    if labels is None:
        raise param_error("labels", func, "an integer array of class indices (labels may be "
                          "None only when alpha == 1)", f"None with alpha={alpha!r}")
    return _blend(alpha, soft, cross_entropy(s, labels, ignore_index=-100))


def _kd_kldivloss_mean(s, t, labels, T, alpha, mask, func):
    """``nn.KLDivLoss()`` with its default ``reduction='mean'``: KL summed, divided by N·C, × T².

    haitongli/knowledge-distillation-pytorch ``model/net.py`` (``loss_fn_kd``), and
    Teacher-free-Knowledge-Distillation, facebookresearch/deit (``numel()``)::

        KD_loss = nn.KLDivLoss()(F.log_softmax(outputs/T, dim=1),
                                 F.softmax(teacher_outputs/T, dim=1)) * (alpha * T * T) + \\
                  F.cross_entropy(outputs, labels) * (1. - alpha)

    The soft term is C times smaller than the batchmean one.
    """
    soft = kd_loss(s, t, temperature=T, reduction="mean")
    return _blend(alpha, soft, _hard(s, labels, alpha, func))


def _keras_kld(s, t, T, func):
    r"""T²-free ``keras.losses.KLDivergence()(softmax(t/T), softmax(s/T))`` and its gradient.

    .. math::

        S = \frac{1}{N} \sum_{n,c} \bar p_{t,nc} \log \frac{\bar p_{t,nc}}{\bar p_{s,nc}},
        \quad \bar p = \mathrm{clip}(p, 10^{-7}, 1), \qquad
        \frac{\partial S}{\partial p_{s,nc}} = -\frac{1}{N}
            \frac{\bar p_{t,nc}}{p_{s,nc}}\, [p_{s,nc} \ge 10^{-7}]

    then through the softmax with :func:`minikd.softmax_vjp`. Where nothing is clipped the
    gradient is :math:`(p_s - p_t) / (N T)`, the KL's.
    """
    p_s = softmax(s, temperature=T)  # (N, C)
    p_t = softmax(t, temperature=T)  # (N, C)
    eps = p_s.dtype.type(KERAS_EPSILON)
    cs = np.clip(p_s, eps, 1.0)
    ct = np.clip(p_t, eps, 1.0)
    n = s.shape[0]
    loss = float(np.sum(ct * np.log(ct / cs), dtype=np.float64) / n)
    dp = np.where(p_s >= eps, -ct / cs, 0.0).astype(p_s.dtype) / p_s.dtype.type(n)  # (N, C)
    return LossGrad(loss, softmax_vjp(dp, p_s, temperature=T))


def _kd_keras(s, t, labels, T, alpha, mask, func):
    """The Keras example ``Distiller`` (after keras-io PR #870): clipped KL times T².

    keras-team/keras-io ``examples/vision/knowledge_distillation.py``::

        distillation_loss = self.distillation_loss_fn(        # keras.losses.KLDivergence()
            tf.nn.softmax(teacher_predictions / self.temperature, axis=1),
            tf.nn.softmax(student_predictions / self.temperature, axis=1),
        ) * self.temperature**2
        loss = self.alpha * student_loss + (1 - self.alpha) * distillation_loss

    ``KLDivergence`` clips both distributions to ``[1e-7, 1]`` and averages over the batch;
    ``student_loss`` is ``SparseCategoricalCrossentropy(from_logits=True)``. Keras' ``alpha`` is
    the hard weight: it is ``1 - alpha`` here.
    """
    soft = _keras_kld(s, t, T, func)
    soft = LossGrad(T * T * soft.loss, soft.grad * soft.grad.dtype.type(T * T))
    return _blend(alpha, soft, _hard(s, labels, alpha, func))


def _kd_keras_2020(s, t, labels, T, alpha, mask, func):
    """The Keras example as first published (2020, before keras-io #869/#870): no T².

    keras-team/keras-io ``examples/vision/knowledge_distillation.py`` (2020 version)::

        distillation_loss = self.distillation_loss_fn(
            tf.nn.softmax(teacher_predictions / self.temperature, axis=1),
            tf.nn.softmax(student_predictions / self.temperature, axis=1),
        )
        loss = self.alpha * student_loss + (1 - self.alpha) * distillation_loss
    """
    return _blend(alpha, _keras_kld(s, t, T, func), _hard(s, labels, alpha, func))


PRESETS = {
    "repdistiller": (_kd_batchmean_t2, (
        "RepDistiller DistillKL", f"{RD} distiller_zoo/KD.py, "
        "helper/loops.py",
        "F.kl_div(F.log_softmax(y_s/T, dim=1), F.softmax(y_t/T, dim=1), size_average=False)"
        " * T**2 / B",
        "-a alpha = alpha, -r gamma = 1 - alpha",
        "minikd's default: batchmean KL times T².")),
    "mdistiller": (_kd_batchmean_t2, (
        "mdistiller KD / kd_loss", f"{MD} mdistiller/distillers/KD.py",
        'F.kl_div(log_pred_student, pred_teacher, reduction="none").sum(1).mean() * T**2',
        "KD_WEIGHT = alpha, CE_WEIGHT = 1 - alpha",
        "Same numbers as RepDistiller.")),
    "torchdistill": (_kd_torchdistill, (
        "torchdistill KDLoss", f"{TD} torchdistill/losses/mid_level.py",
        "KLDivLoss('batchmean')(log_softmax(z_s/T), softmax(z_t/T)); if alpha == 0 or targets is "
        "None: return it bare; else alpha*CE + beta*T**2*KL",
        "torchdistill alpha = 1 - alpha (hard weight), beta = alpha",
        "Quirk: alpha == 1 (its alpha == 0) or labels=None gives the bare KL: no T², no weight.")),
    "textbrewer": (_kd_textbrewer, (
        "TextBrewer kd_ce_loss", "airaria/TextBrewer@2c105fa6 "
        "src/textbrewer/losses.py",
        "-(F.softmax(z_t/T, -1) * F.log_softmax(z_s/T, -1)).sum(-1).mean()",
        "kd_loss_weight = alpha, hard_label_weight = 1 - alpha",
        "Soft cross-entropy (KL + teacher entropy), no T²: same gradient as the bare KL.")),
    "kd_lib": (_kd_kd_lib, (
        "KD_Lib VanillaKD", f"{KL} KD_Lib/KD/vision/vanilla/vanilla_kd.py",
        "(1 - w) * F.cross_entropy(z_s, y) + w * T * T * nn.MSELoss()(F.softmax(z_t/T, 1), "
        "F.softmax(z_s/T, 1))",
        "distil_weight w = alpha",
        "Mean squared error of the probabilities (over N·C), times T²: not a KL at all.")),
    "hf_distilbert": (_kd_hf_distilbert, (
        "HF DistilBERT Distiller",
        "huggingface/transformers@7f51f558 examples/research_projects/distillation/distiller.py",
        "KLDivLoss('batchmean')(log_softmax(s_slct/T, -1), softmax(t_slct/T, -1)) * T**2 over "
        "the rows selected by the attention mask",
        "alpha_ce = alpha, alpha_mlm = 1 - alpha (CE with ignore_index=-100)",
        "batchmean over selected token rows, not over sequences.")),
    "pytorch_kldivloss_mean": (_kd_kldivloss_mean, (
        "nn.KLDivLoss() default reduction='mean'",
        "haitongli/knowledge-distillation-pytorch model/net.py (loss_fn_kd); PyTorch docs",
        "nn.KLDivLoss()(F.log_softmax(z_s/T, 1), F.softmax(z_t/T, 1)) * (alpha*T*T) + "
        "F.cross_entropy(z_s, y) * (1 - alpha)",
        "alpha = alpha",
        "Divides by N·C instead of N: the soft term is C times smaller.")),
    "keras": (_kd_keras, (
        "Keras example Distiller", "keras-team/keras-io@501fb4cb "
        "examples/vision/knowledge_distillation.py",
        "alpha*SparseCCE(y, z_s) + (1-alpha)*KLDivergence()(softmax(z_t/T), softmax(z_s/T)) "
        "* T**2",
        "Keras alpha = 1 - alpha (hard weight)",
        "KL of probabilities clipped to [1e-7, 1]; T² since keras-io PR #870.")),
    "keras_2020": (_kd_keras_2020, (
        "Keras example Distiller (2020)", "keras-team/keras-io@1da2fdef "
        "examples/vision/knowledge_distillation.py",
        "alpha*SparseCCE(y, z_s) + (1-alpha)*KLDivergence()(softmax(z_t/T), softmax(z_s/T))",
        "Keras alpha = 1 - alpha (hard weight)",
        "As 'keras' without T² (keras-io #869: omitted on purpose).")),
}

