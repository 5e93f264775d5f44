r"""The KD-loss presets: the soft/hard blend as nine libraries compute it.

:data:`KD_PRESETS` records each library's blend as a :class:`Convention`: its code as written, the
repository, commit and file it was read from, the weights' mapping, and the kernel in
:mod:`minikd.verify.presets.kd_kernels` that computes it.
"""

from __future__ import annotations

from .convention import KD_LIB, MDISTILLER, REPDISTILLER, TORCHDISTILL, Convention, by_name
from .kd_kernels import (
    KERAS_EPSILON,
    kd_batchmean_t2,
    kd_hf_distilbert,
    kd_keras,
    kd_keras_2020,
    kd_kldivloss_mean,
    kd_mse_probabilities,
    kd_textbrewer,
    kd_torchdistill,
)

__all__ = ["KD_PRESETS", "KERAS_EPSILON", "TOKEN_PRESETS"]

TOKEN_PRESETS = ("hf_distilbert", "textbrewer")  # the presets that take (..., C) logits


# ---------------------------------------------------------------- the records

KD_PRESETS = by_name(
    Convention(
        "kd", "repdistiller", "RepDistiller DistillKL",
        f"{REPDISTILLER} distiller_zoo/KD.py, helper/loops.py",
        "F.kl_div(F.log_softmax(y_s/T, dim=1), F.softmax(y_t/T, dim=1), size_average=False)"
        " * T**2 / B",
        "-a alpha = alpha, -r gamma = 1 - alpha",
        "minikd's default: batchmean KL times T².", kd_batchmean_t2),
    Convention(
        "kd", "mdistiller", "mdistiller KD / kd_loss",
        f"{MDISTILLER} mdistiller/distillers/KD.py",
        'F.kl_div(log_pred_student, pred_teacher, reduction="none").sum(1).mean() * T**2',
        "KD_WEIGHT = alpha, CE_WEIGHT = 1 - alpha",
        "Same numbers as RepDistiller.", kd_batchmean_t2),
    Convention(
        "kd", "torchdistill", "torchdistill KDLoss",
        f"{TORCHDISTILL} torchdistill/losses/mid_level.py",
        "KLDivLoss('batchmean')(log_softmax(z_s/T), softmax(z_t/T)); if alpha == 0 or targets is "
        "None: return it bare; else alpha*CE + beta*T**2*KL",
        "torchdistill alpha = 1 - alpha (hard weight), beta = alpha",
        "Quirk: alpha == 1 (its alpha == 0) or labels=None gives the bare KL: no T², no weight.",
        kd_torchdistill),
    Convention(
        "kd", "textbrewer", "TextBrewer kd_ce_loss",
        "airaria/TextBrewer@2c105fa6 src/textbrewer/losses.py",
        "-(F.softmax(z_t/T, -1) * F.log_softmax(z_s/T, -1)).sum(-1).mean()",
        "kd_loss_weight = alpha, hard_label_weight = 1 - alpha",
        "Soft cross-entropy (KL + teacher entropy), no T²: same gradient as the bare KL.",
        kd_textbrewer),
    Convention(
        "kd", "kd_lib", "KD_Lib VanillaKD",
        f"{KD_LIB} KD_Lib/KD/vision/vanilla/vanilla_kd.py",
        "(1 - w) * F.cross_entropy(z_s, y) + w * T * T * nn.MSELoss()(F.softmax(z_t/T, 1), "
        "F.softmax(z_s/T, 1))",
        "distil_weight w = alpha",
        "Mean squared error of the probabilities (over N·C), times T²: not a KL at all.",
        kd_mse_probabilities),
    Convention(
        "kd", "hf_distilbert", "HF DistilBERT Distiller",
        "huggingface/transformers@7f51f558 examples/research_projects/distillation/distiller.py",
        "KLDivLoss('batchmean')(log_softmax(s_slct/T, -1), softmax(t_slct/T, -1)) * T**2 over "
        "the rows selected by the attention mask",
        "alpha_ce = alpha, alpha_mlm = 1 - alpha (CE with ignore_index=-100)",
        "batchmean over selected token rows, not over sequences.", kd_hf_distilbert),
    Convention(
        "kd", "pytorch_kldivloss_mean", "nn.KLDivLoss() default reduction='mean'",
        "haitongli/knowledge-distillation-pytorch@9937528f model/net.py (loss_fn_kd)",
        "nn.KLDivLoss()(F.log_softmax(z_s/T, 1), F.softmax(z_t/T, 1)) * (alpha*T*T) + "
        "F.cross_entropy(z_s, y) * (1 - alpha)",
        "alpha = alpha",
        "Divides by N·C instead of N: the soft term is C times smaller.", kd_kldivloss_mean),
    Convention(
        "kd", "keras", "Keras example Distiller",
        "keras-team/keras-io@501fb4cb examples/vision/knowledge_distillation.py",
        "alpha*SparseCCE(y, z_s) + (1-alpha)*KLDivergence()(softmax(z_t/T), softmax(z_s/T)) "
        "* T**2",
        "Keras alpha = 1 - alpha (hard weight)",
        "KL of probabilities clipped to [1e-7, 1]; T² since keras-io PR #870.", kd_keras),
    Convention(
        "kd", "keras_2020", "Keras example Distiller (2020)",
        "keras-team/keras-io@1da2fdef examples/vision/knowledge_distillation.py",
        "alpha*SparseCCE(y, z_s) + (1-alpha)*KLDivergence()(softmax(z_t/T), softmax(z_s/T))",
        "Keras alpha = 1 - alpha (hard weight)",
        "As 'keras' without T² (keras-io #869: omitted on purpose).", kd_keras_2020),
)
"""dict: ``KD_PRESETS[name] -> Convention`` for :func:`minikd.kd_loss_as`."""
