r"""The attention-transfer presets: Zagoruyko & Komodakis (2017) as five libraries compute it.

Each kernel takes checked maps ``(student_maps, teacher_maps)``: float arrays of one dtype and
shape (N, C_s, H, W) and (N, C_t, H, W), same N and spatial size ("kd_lib": same C too), and
returns a :class:`minikd.LossGrad`; its docstring quotes the library's code. The loss weights
(β = 1000) are outside the libraries' loss modules and are not applied.
:data:`AT_PRESETS` records each one as a :class:`Convention`.
"""

from __future__ import annotations

from ...losses.features import attention_transfer_loss
from ...losses.reduction import LossGrad
from .convention import KD_LIB, MDISTILLER, REPDISTILLER, TORCHDISTILL, Convention, by_name

__all__ = ["AT_PRESETS"]


def at_code(student_maps, teacher_maps):
    """RepDistiller / mdistiller / attention-transfer ``at_loss``; torchdistill ``mode='code'``.

    RepDistiller ``distiller_zoo/AT.py`` (= szagoruyko/attention-transfer ``utils.py``)::

        def at_loss(self, f_s, f_t):
            return (self.at(f_s) - self.at(f_t)).pow(2).mean()
        def at(self, f):
            return F.normalize(f.pow(self.p).mean(1).view(f.size(0), -1))

    RepDistiller and mdistiller first average-pool the larger map to the smaller spatial size
    (``F.adaptive_avg_pool2d``); here the sizes must be equal.
    """
    return attention_transfer_loss(student_maps, teacher_maps, p=2, mode="code")


def at_paper(student_maps, teacher_maps):
    """torchdistill ``ATLoss(mode='paper')``: eq. 2 of the paper, a non-squared norm.

    torchdistill ``torchdistill/losses/mid_level.py``::

        def attention_transfer_paper(feature_map):
            return normalize(feature_map.pow(2).sum(1).flatten(1))
        def compute_at_loss_paper(self, student_feature_map, teacher_feature_map):
            ...
            return torch.norm(at_student - at_teacher, dim=1).sum()
        return at_loss / batch_size if self.mode == 'paper' else at_loss
    """
    return attention_transfer_loss(student_maps, teacher_maps, p=2, mode="paper")


def at_whole_map(student_maps, teacher_maps):
    """KD_Lib ``ATLoss`` (``norm_type=2``): the whole map normalised, **no** channel reduction.

    KD_Lib ``KD_Lib/KD/vision/attention/loss_metric.py``, for one layer::

        def single_at_loss(self, activation):
            return F.normalize(activation.pow(self.p).view(activation.size(0), -1))
        loss += (xS - xT).pow(self.p).mean()

    That is the "code" loss on the maps seen as one channel of C·H rows: reshaping
    (N, C, H, W) to (N, 1, C·H, W) makes the channel mean the identity. Student and teacher
    need the same channel count. (An earlier KD_Lib commit, ``8d248234``, had ``.mean(1)`` as
    well, which is "repdistiller".)
    """
    n = student_maps.shape[0]
    one_channel = (n, 1, -1) + student_maps.shape[3:]  # (N, 1, C·H, W)
    loss, grad = attention_transfer_loss(student_maps.reshape(one_channel),
                                         teacher_maps.reshape(one_channel), p=2, mode="code")
    return LossGrad(loss, grad.reshape(student_maps.shape))


AT_PRESETS = by_name(
    Convention(
        "at", "repdistiller", "RepDistiller Attention", f"{REPDISTILLER} distiller_zoo/AT.py",
        "(F.normalize(f_s.pow(2).mean(1).view(N, -1)) - F.normalize(f_t.pow(2).mean(1)"
        ".view(N, -1))).pow(2).mean()",
        "beta = 1000 outside the loss (scripts/run_cifar_distill.sh)",
        "Channel mean of f², L2-normalised per sample, mean of squared differences.", at_code),
    Convention(
        "at", "mdistiller", "mdistiller AT / at_loss", f"{MDISTILLER} mdistiller/distillers/AT.py",
        "(_at(f_s) - _at(f_t)).pow(2).mean(), "
        "_at(f) = F.normalize(f.pow(p).mean(1).reshape(N, -1))",
        "FEAT_WEIGHT = 1000 outside the loss",
        "Same numbers as RepDistiller.", at_code),
    Convention(
        "at", "torchdistill_code", "torchdistill ATLoss(mode='code')",
        f"{TORCHDISTILL} torchdistill/losses/mid_level.py",
        "(normalize(f_s.pow(2).mean(1).flatten(1)) - normalize(f_t...)).pow(2).mean()",
        "factor = 1000 in the sample config",
        "Same numbers as RepDistiller (no pooling to the smaller map).", at_code),
    Convention(
        "at", "torchdistill_paper", "torchdistill ATLoss(mode='paper')",
        f"{TORCHDISTILL} torchdistill/losses/mid_level.py",
        "sum_b ||normalize(f_s.pow(2).sum(1).flatten(1)) - normalize(...)||_2 / N",
        "factor set by the config",
        "The paper's eq. 2: non-squared L2 distance per sample, mean over the batch.", at_paper),
    Convention(
        "at", "kd_lib", "KD_Lib ATLoss", f"{KD_LIB} KD_Lib/KD/vision/attention/loss_metric.py",
        "(F.normalize(f_s.pow(2).view(N, -1)) - F.normalize(f_t.pow(2).view(N, -1)))"
        ".pow(2).mean()",
        "Attention: (1 - w) * T * CE(z_s / T, y) + w * ATLoss",
        "No channel reduction: C_s must equal C_t; the mean runs over C·H·W.", at_whole_map),
)
"""dict: ``AT_PRESETS[name] -> Convention`` for :func:`minikd.at_loss_as`."""
