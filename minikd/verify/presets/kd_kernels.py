r"""The KD-loss presets' kernels: the soft/hard blend as nine libraries compute it.

Each kernel takes checked arguments, ``(student_logits, teacher_logits, labels, *, temperature,
alpha, mask)``: float arrays of one dtype and shape (N, C) ((..., C) for the token presets),
int64 labels in [0, C) (HF DistilBERT: or -100) or None, T > 0, alpha in [0, 1] (minikd's: the
weight of the soft term), and the attention mask (HF DistilBERT only, else None). Each returns a
:class:`minikd.LossGrad` and quotes the library's code in its docstring;
:data:`minikd.verify.presets.kd.KD_PRESETS` records each one as a :class:`Convention`.
"""

from __future__ import annotations

import numpy as np

from ...losses.reduction import LossGrad
from ...losses.response_kernels import (
    cross_entropy_kernel,
    kd_loss_kernel,
    kl_divergence_kernel,
    soft_cross_entropy_kernel,
)
from ...losses.softmax import softmax_kernel

__all__ = [
    "KERAS_EPSILON",
    "blend",
    "hard_term",
    "kd_batchmean_t2",
    "kd_hf_distilbert",
    "kd_keras",
    "kd_keras_2020",
    "kd_kldivloss_mean",
    "kd_mse_probabilities",
    "kd_textbrewer",
    "kd_torchdistill",
    "keras_kl_divergence",
]

KERAS_EPSILON = 1e-7  # keras.backend.epsilon(): KLDivergence clips both inputs to [1e-7, 1]
HF_IGNORE_INDEX = -100  # CrossEntropyLoss(ignore_index=-100) of the DistilBERT MLM term


def blend(alpha, soft, hard):
    """``alpha * soft + (1 - alpha) * hard`` of two LossGrads; ``hard`` is None when alpha == 1."""
    if alpha == 1.0:
        return LossGrad(soft.loss, soft.grad)
    return LossGrad(alpha * soft.loss + (1 - alpha) * hard.loss,
                    alpha * soft.grad + (1 - alpha) * hard.grad)


def hard_term(student_logits, labels, alpha):
    """The hard cross-entropy at T = 1, mean over the batch; None when its weight 1 - alpha is 0."""
    return None if alpha == 1.0 else cross_entropy_kernel(student_logits, labels)


# ---------------------------------------------------------------- the kernels

def kd_batchmean_t2(student_logits, teacher_logits, labels, *, temperature, alpha, mask=None):
    """RepDistiller ``DistillKL`` / mdistiller ``kd_loss``: batchmean KL times T².

    RepDistiller ``distiller_zoo/KD.py`` and ``helper/loops.py``::

        loss = F.kl_div(p_s, p_t, size_average=False) * (self.T**2) / y_s.shape[0]
        loss = opt.gamma * loss_cls + opt.alpha * loss_div + opt.beta * loss_kd

    mdistiller ``mdistiller/distillers/KD.py``::

        loss_kd = F.kl_div(log_pred_student, pred_teacher, reduction="none").sum(1).mean()
        loss_kd *= temperature**2
        loss_ce = self.ce_loss_weight * F.cross_entropy(logits_student, target)
        loss_kd = self.kd_loss_weight * kd_loss(logits_student, logits_teacher, self.temperature)
    """
    soft = kd_loss_kernel(student_logits, teacher_logits, temperature=temperature)  # T² KL / N
    return blend(alpha, soft, hard_term(student_logits, labels, alpha))


def kd_torchdistill(student_logits, teacher_logits, labels, *, temperature, alpha, mask=None):
    """torchdistill ``KDLoss``: the blend, except the bare KL when its alpha is 0 or no targets.

    torchdistill ``torchdistill/losses/mid_level.py`` (``KDLoss(nn.KLDivLoss)``, reduction
    ``"batchmean"``, ``self.beta = 1 - alpha``)::

        soft_loss = super().forward(torch.log_softmax(student_logits / self.temperature, dim=1),
                                    torch.softmax(teacher_logits / self.temperature, dim=1))
        if self.alpha is None or self.alpha == 0 or targets is None:
            return soft_loss
        hard_loss = self.cross_entropy_loss(student_logits, targets)
        return self.alpha * hard_loss + self.beta * (self.temperature ** 2) * soft_loss

    torchdistill's ``alpha`` is the *hard* weight: minikd's ``alpha`` is its ``beta``, and its
    quirk fires at minikd ``alpha == 1`` or ``labels=None``: then the result has neither
    :math:`T^2` nor the weight.
    """
    if labels is None or alpha == 1.0:  # its alpha == 0 or targets is None
        return kl_divergence_kernel(student_logits, teacher_logits, temperature=temperature)
    return kd_batchmean_t2(student_logits, teacher_logits, labels, temperature=temperature,
                           alpha=alpha)


def kd_textbrewer(student_logits, teacher_logits, labels, *, temperature, alpha, mask=None):
    """TextBrewer ``kd_ce_loss`` (``kd_loss_type='ce'``, the default): soft CE, no T².

    TextBrewer ``src/textbrewer/losses.py`` and ``distiller_general.py``::

        p_T = F.softmax(beta_logits_T, dim=-1)          # beta_logits_T = logits_T / temperature
        loss = -(p_T * F.log_softmax(beta_logits_S, dim=-1)).sum(dim=-1).mean()
        total_loss += total_kd_loss * self.d_config.kd_loss_weight
        total_loss += total_hl_loss * self.d_config.hard_label_weight
    """
    soft = soft_cross_entropy_kernel(student_logits, teacher_logits, temperature=temperature)
    return blend(alpha, soft, hard_term(student_logits, labels, alpha))


def kd_mse_probabilities(student_logits, teacher_logits, labels, *, temperature, alpha,
                         mask=None):
    r"""KD_Lib ``VanillaKD``: the mean squared error of the *probabilities*, times T².

    KD_Lib ``KD_Lib/KD/vision/vanilla/vanilla_kd.py`` (``loss_fn=nn.MSELoss()`` by default)::

        soft_teacher_out = F.softmax(y_pred_teacher / self.temp, dim=1)
        soft_student_out = F.softmax(y_pred_student / self.temp, dim=1)
        loss = (1 - self.distil_weight) * F.cross_entropy(y_pred_student, y_true)
        loss += (self.distil_weight * self.temp * self.temp) * self.loss_fn(
            soft_teacher_out, soft_student_out)

    The soft term and its gradient (the MSE is a mean over the N·C entries), the second through
    the softmax Jacobian, :math:`\partial z = p \odot (\partial p - \langle p, \partial p
    \rangle) / T`:

    .. math::

        S = \frac{T^2}{N C} \sum_{n,c} (p^T_{s,nc} - p^T_{t,nc})^2, \qquad
        \frac{\partial S}{\partial p^T_s} = \frac{2 T^2}{N C} (p^T_s - p^T_t)
    """
    T = temperature
    p_s = softmax_kernel(student_logits / T)  # (N, C)
    p_t = softmax_kernel(teacher_logits / T)  # (N, C)
    diff = p_s - p_t  # (N, C)
    loss = T**2 * float(np.mean(diff**2, dtype=np.float64))
    dp = 2 * T**2 * diff / diff.size  # d S / d p_s, (N, C)
    dz = p_s * (dp - (p_s * dp).sum(axis=-1, keepdims=True)) / T  # softmax VJP, (N, C)
    return blend(alpha, LossGrad(loss, dz), hard_term(student_logits, labels, alpha))


def kd_hf_distilbert(student_logits, teacher_logits, labels, *, temperature, alpha, mask=None):
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
    soft = kd_loss_kernel(student_logits, teacher_logits, temperature=temperature, mask=mask)
    if alpha == 1.0:
        return blend(alpha, soft, None)
    kept = labels != HF_IGNORE_INDEX  # (...,) the MLM positions
    hard = cross_entropy_kernel(student_logits, np.where(kept, labels, 0), mask=kept)
    return blend(alpha, soft, hard)


def kd_kldivloss_mean(student_logits, teacher_logits, labels, *, temperature, alpha, mask=None):
    """``nn.KLDivLoss()`` with its default ``reduction='mean'``: KL summed, divided by N·C, × T².

    haitongli/knowledge-distillation-pytorch ``model/net.py`` (``loss_fn_kd``)::

        KD_loss = nn.KLDivLoss()(F.log_softmax(outputs/T, dim=1),
                                 F.softmax(teacher_outputs/T, dim=1)) * (alpha * T * T) + \\
                  F.cross_entropy(outputs, labels) * (1. - alpha)

    The soft term is C times smaller than the batchmean one.
    """
    soft = kd_loss_kernel(student_logits, teacher_logits, temperature=temperature,
                          reduction="mean")
    return blend(alpha, soft, hard_term(student_logits, labels, alpha))


def keras_kl_divergence(student_logits, teacher_logits, temperature):
    r"""``keras.losses.KLDivergence()(softmax(z_t / T), softmax(z_s / T))`` and its gradient.

    .. math::

        S = \frac{1}{N} \sum_{n,c} \bar p_{t,nc} \log \frac{\bar p_{t,nc}}{\bar p_{s,nc}},
        \quad \bar p = \mathrm{clip}(p^T, 10^{-7}, 1), \qquad
        \frac{\partial S}{\partial p^T_{s,nc}} = -\frac{1}{N}
            \frac{\bar p_{t,nc}}{p^T_{s,nc}}\, [p^T_{s,nc} \ge 10^{-7}]

    then through the softmax Jacobian. Where nothing is clipped the gradient is
    :math:`(p^T_s - p^T_t) / (N T)`, the KL's.
    """
    T = temperature
    p_s = softmax_kernel(student_logits / T)  # (N, C)
    p_t = softmax_kernel(teacher_logits / T)  # (N, C)
    clipped_s = np.clip(p_s, KERAS_EPSILON, 1.0)
    clipped_t = np.clip(p_t, KERAS_EPSILON, 1.0)
    n = student_logits.shape[0]
    loss = float(np.sum(clipped_t * np.log(clipped_t / clipped_s), dtype=np.float64)) / n
    dp = np.where(p_s >= KERAS_EPSILON, -clipped_t / clipped_s, 0.0) / n  # d S / d p_s, (N, C)
    dz = p_s * (dp - (p_s * dp).sum(axis=-1, keepdims=True)) / T  # softmax VJP, (N, C)
    return LossGrad(loss, dz)


def kd_keras(student_logits, teacher_logits, labels, *, temperature, alpha, mask=None):
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
    T = temperature
    kl = keras_kl_divergence(student_logits, teacher_logits, T)
    soft = LossGrad(T**2 * kl.loss, T**2 * kl.grad)
    return blend(alpha, soft, hard_term(student_logits, labels, alpha))


def kd_keras_2020(student_logits, teacher_logits, labels, *, temperature, alpha, mask=None):
    """The Keras example as first published (2020, before keras-io #869/#870): no T².

    keras-team/keras-io ``examples/vision/knowledge_distillation.py`` (2020 version)::

        distillation_loss = self.distillation_loss_fn(
            tf.nn.softmax(teacher_predictions / self.temperature, axis=1),
            tf.nn.softmax(student_predictions / self.temperature, axis=1),
        )
        loss = self.alpha * student_loss + (1 - self.alpha) * distillation_loss
    """
    soft = keras_kl_divergence(student_logits, teacher_logits, temperature)
    return blend(alpha, soft, hard_term(student_logits, labels, alpha))
