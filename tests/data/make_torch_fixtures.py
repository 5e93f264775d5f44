"""Compute every minikd loss with PyTorch, independently, and write tests/data/torch_fixtures.json.

Each loss is written here with PyTorch's own ops (``F.kl_div``, ``F.log_softmax``,
``F.cross_entropy``, ``nn.MSELoss``, ...) the way the libraries cited in ``minikd.CONVENTIONS``
(repository@commit) write it, on fixed seeded inputs, in float64; the gradient comes from
autograd. minikd is not called: the file is a second, independent implementation that
``tests/test_torch_fixtures.py`` compares minikd against (without torch), to 1e-9 relative
(normwise for gradients).

    pip install torch==2.13.0          # the CPU build
    python tests/data/make_torch_fixtures.py            # writes tests/data/torch_fixtures.json
    python tests/data/make_torch_fixtures.py --seed 7 --out /tmp/f.json

The file has minikd's vectors format (``minikd.vectors``, ``docs/verify.md``) plus
``torch_version`` and ``seed``. ``build(seed)`` is imported by the live test, which runs the same
comparison on fresh random inputs where torch is installed.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "torch_fixtures.json"
DEFAULT_SEED = 20261128
FORMAT, FORMAT_VERSION = "minikd-vectors", 1  # the schema of minikd.vectors
sys.path.insert(0, str(HERE.parent.parent))  # the repo root: minikd's writer and parameter names
from minikd.verify.vectors_schema import PARAMETER_RENAMES  # noqa: E402


def _t(x):
    return torch.tensor(np.asarray(x), dtype=torch.float64)


# ---------------------------------------------------------------- response-based (losses.py)
# Rows of (..., C) logits are flattened to (M, C) and selected as HF DistilBERT does
# (torch.masked_select by the mask, and labels != ignore_index for the label-taking losses);
# then PyTorch's own reduction: KLDivLoss 'batchmean' / 'sum' / 'mean' (= / (M C)).

def _rows(x, keep):
    c = x.shape[-1]
    x = x.reshape(-1, c)
    return x if keep is None else x[keep.reshape(-1)]


def _keep(shape, mask=None, labels=None, ignore_index=-100):
    keep = torch.ones(shape, dtype=torch.bool)
    if mask is not None:
        keep &= torch.as_tensor(np.asarray(mask))
    if labels is not None and ignore_index is not None:
        keep &= torch.as_tensor(np.asarray(labels)) != ignore_index
    return keep


def _kl(s_rows, t_rows, T, reduction):
    """nn.KLDivLoss(reduction)(F.log_softmax(z_s / T, -1), F.softmax(z_t / T, -1))."""
    if s_rows.shape[0] == 0:
        return s_rows.sum() * 0.0
    return F.kl_div(F.log_softmax(s_rows / T, dim=-1), F.softmax(t_rows / T, dim=-1),
                    reduction=reduction)


def _ce(z_rows, y_rows, reduction):
    """F.cross_entropy; minikd's 'mean' (divide by M C) is 'sum' / numel."""
    if z_rows.shape[0] == 0:
        return z_rows.sum() * 0.0
    if reduction == "batchmean":
        return F.cross_entropy(z_rows, y_rows)
    total = F.cross_entropy(z_rows, y_rows, reduction="sum")
    return total if reduction == "sum" else total / z_rows.numel()


def t_cross_entropy(logits, labels, mask=None, ignore_index=-100, reduction="batchmean"):
    keep = _keep(logits.shape[:-1], mask, labels, ignore_index)
    y = torch.as_tensor(np.asarray(labels)).reshape(-1)[keep.reshape(-1)]
    return _ce(_rows(logits, keep), y, reduction)


def t_kl_divergence(student_logits, teacher_logits, temperature=1.0, mask=None,
                    reduction="batchmean"):
    keep = _keep(student_logits.shape[:-1], mask)
    return _kl(_rows(student_logits, keep), _rows(teacher_logits, keep), temperature, reduction)


def t_kd_loss(student_logits, teacher_logits, temperature=4.0, mask=None, reduction="batchmean"):
    # RepDistiller DistillKL: F.kl_div(log_softmax(y_s/T), softmax(y_t/T), 'sum') * T**2 / B
    return t_kl_divergence(student_logits, teacher_logits, temperature, mask,
                           reduction) * temperature ** 2


def t_soft_cross_entropy(student_logits, teacher_logits, temperature=1.0, mask=None,
                         reduction="batchmean"):
    # TextBrewer kd_ce_loss: -(p_T * F.log_softmax(logits_S / T, dim=-1)).sum(dim=-1).mean()
    keep = _keep(student_logits.shape[:-1], mask)
    s, t = _rows(student_logits, keep), _rows(teacher_logits, keep)
    rows = -(F.softmax(t / temperature, dim=-1)
             * F.log_softmax(s / temperature, dim=-1)).sum(dim=-1)
    return _reduce_rows(rows, reduction, s.shape[-1])


def _reduce_rows(rows, reduction, c):
    if rows.numel() == 0:
        return rows.sum()
    if reduction == "batchmean":
        return rows.mean()
    return rows.sum() if reduction == "sum" else rows.sum() / (rows.numel() * c)


def t_distillation_loss(student_logits, teacher_logits, labels, temperature=4.0, alpha=0.9,
                        mask=None, ignore_index=-100, reduction="batchmean"):
    # attention-transfer utils.distillation: alpha * KD + (1 - alpha) * CE, at the same rows
    keep = _keep(student_logits.shape[:-1], mask, labels, ignore_index)
    kd = t_kd_loss(student_logits, teacher_logits, temperature, keep, reduction)
    if labels is None or alpha == 1.0:
        return alpha * kd
    y = torch.as_tensor(np.asarray(labels)).reshape(-1)[keep.reshape(-1)]
    return alpha * kd + (1 - alpha) * _ce(_rows(student_logits, keep), y, reduction)


def t_dkd_loss(student_logits, teacher_logits, labels, alpha=1.0, beta=8.0, temperature=4.0):
    # mdistiller mdistiller/distillers/DKD.py, dkd_loss, verbatim in structure
    target = torch.as_tensor(np.asarray(labels))
    logits_student, logits_teacher = student_logits, teacher_logits
    gt_mask = torch.zeros_like(logits_student).scatter_(1, target.unsqueeze(1), 1).bool()
    other_mask = torch.ones_like(logits_student).scatter_(1, target.unsqueeze(1), 0).bool()
    pred_student = F.softmax(logits_student / temperature, dim=1)
    pred_teacher = F.softmax(logits_teacher / temperature, dim=1)

    def cat_mask(t, mask1, mask2):
        t1 = (t * mask1).sum(dim=1, keepdims=True)
        t2 = (t * mask2).sum(1, keepdims=True)
        return torch.cat([t1, t2], dim=1)

    pred_student = cat_mask(pred_student, gt_mask, other_mask)
    pred_teacher = cat_mask(pred_teacher, gt_mask, other_mask)
    log_pred_student = torch.log(pred_student)
    tckd_loss = (F.kl_div(log_pred_student, pred_teacher, reduction="sum")
                 * (temperature ** 2) / target.shape[0])
    pred_teacher_part2 = F.softmax(logits_teacher / temperature - 1000.0 * gt_mask, dim=1)
    log_pred_student_part2 = F.log_softmax(logits_student / temperature - 1000.0 * gt_mask,
                                           dim=1)
    nckd_loss = (F.kl_div(log_pred_student_part2, pred_teacher_part2, reduction="sum")
                 * (temperature ** 2) / target.shape[0])
    return alpha * tckd_loss + beta * nckd_loss


# ---------------------------------------------------------------- KD presets (conventions.py)
# minikd's alpha is the soft weight; each library's own knob is noted.

def _y(labels):
    return torch.as_tensor(np.asarray(labels))


def kd_repdistiller(y_s, y_t, labels, T, alpha):
    # distiller_zoo/KD.py DistillKL; helper/loops.py: gamma * loss_cls + alpha * loss_div
    p_s = F.log_softmax(y_s / T, dim=1)
    p_t = F.softmax(y_t / T, dim=1)
    loss_div = F.kl_div(p_s, p_t, reduction="sum") * (T ** 2) / y_s.shape[0]
    if labels is None:
        return alpha * loss_div
    return (1 - alpha) * F.cross_entropy(y_s, _y(labels)) + alpha * loss_div


def kd_mdistiller(logits_student, logits_teacher, labels, T, alpha):
    log_pred_student = F.log_softmax(logits_student / T, dim=1)
    pred_teacher = F.softmax(logits_teacher / T, dim=1)
    loss_kd = F.kl_div(log_pred_student, pred_teacher, reduction="none").sum(1).mean() * T ** 2
    if labels is None:
        return alpha * loss_kd
    return (1 - alpha) * F.cross_entropy(logits_student, _y(labels)) + alpha * loss_kd


def kd_torchdistill(student_logits, teacher_logits, labels, T, alpha):
    # torchdistill KDLoss(nn.KLDivLoss), reduction='batchmean'; its alpha = 1 - minikd alpha
    td_alpha, td_beta = 1 - alpha, alpha
    soft_loss = nn.KLDivLoss(reduction="batchmean")(torch.log_softmax(student_logits / T, dim=1),
                                                    torch.softmax(teacher_logits / T, dim=1))
    if td_alpha is None or td_alpha == 0 or labels is None:
        return soft_loss
    hard_loss = nn.CrossEntropyLoss(reduction="mean")(student_logits, _y(labels))
    return td_alpha * hard_loss + td_beta * (T ** 2) * soft_loss


def kd_textbrewer(logits_S, logits_T, labels, T, alpha):
    p_T = F.softmax(logits_T / T, dim=-1)
    kd = -(p_T * F.log_softmax(logits_S / T, dim=-1)).sum(dim=-1).mean()
    if labels is None:
        return alpha * kd
    return alpha * kd + (1 - alpha) * F.cross_entropy(logits_S, _y(labels))


def kd_kd_lib(y_pred_student, y_pred_teacher, labels, T, alpha):
    # KD_Lib VanillaKD.calculate_kd_loss with loss_fn=nn.MSELoss(); distil_weight = alpha
    soft_teacher_out = F.softmax(y_pred_teacher / T, dim=1)
    soft_student_out = F.softmax(y_pred_student / T, dim=1)
    loss = alpha * T * T * nn.MSELoss()(soft_teacher_out, soft_student_out)
    if labels is not None:
        loss = loss + (1 - alpha) * F.cross_entropy(y_pred_student, _y(labels))
    return loss


def kd_hf_distilbert(s_logits, t_logits, labels, T, alpha, mask=None):
    # distiller.py: masked_select by the attention mask, KLDivLoss('batchmean') * T**2;
    # alpha_mlm * CrossEntropyLoss(ignore_index=-100)
    if mask is None:
        mask = np.ones(s_logits.shape[:-1], dtype=bool)
    m = torch.as_tensor(np.asarray(mask)).unsqueeze(-1).expand_as(s_logits)
    s_slct = torch.masked_select(s_logits, m).view(-1, s_logits.size(-1))
    t_slct = torch.masked_select(t_logits, m).view(-1, s_logits.size(-1))
    loss_ce = nn.KLDivLoss(reduction="batchmean")(F.log_softmax(s_slct / T, dim=-1),
                                                  F.softmax(t_slct / T, dim=-1)) * T ** 2
    loss = alpha * loss_ce
    if labels is not None and alpha != 1.0:
        lm = nn.CrossEntropyLoss(ignore_index=-100)
        loss = loss + (1 - alpha) * lm(s_logits.view(-1, s_logits.size(-1)),
                                       _y(labels).view(-1))
    return loss


def kd_kldivloss_mean(outputs, teacher_outputs, labels, T, alpha):
    # haitongli/knowledge-distillation-pytorch model/net.py loss_fn_kd
    kd = nn.KLDivLoss()(F.log_softmax(outputs / T, dim=1),
                        F.softmax(teacher_outputs / T, dim=1)) * (alpha * T * T)
    if labels is None:
        return kd
    return kd + F.cross_entropy(outputs, _y(labels)) * (1. - alpha)


def _keras_kld(y_true, y_pred):
    # keras.losses.KLDivergence(): clip both to [epsilon, 1], sum over the last axis, mean
    y_true = torch.clamp(y_true, 1e-7, 1)
    y_pred = torch.clamp(y_pred, 1e-7, 1)
    return (y_true * torch.log(y_true / y_pred)).sum(dim=-1).mean()


def _kd_keras(student, teacher, labels, T, alpha, t2):
    k_alpha = 1 - alpha  # Keras' alpha weighs the student (hard) loss
    dist = _keras_kld(F.softmax(teacher / T, dim=1), F.softmax(student / T, dim=1))
    if t2:
        dist = dist * T ** 2
    if labels is None:
        return (1 - k_alpha) * dist
    return k_alpha * F.cross_entropy(student, _y(labels)) + (1 - k_alpha) * dist


KD_PRESETS = {
    "repdistiller": kd_repdistiller,
    "mdistiller": kd_mdistiller,
    "torchdistill": kd_torchdistill,
    "textbrewer": kd_textbrewer,
    "kd_lib": kd_kd_lib,
    "hf_distilbert": kd_hf_distilbert,
    "pytorch_kldivloss_mean": kd_kldivloss_mean,
    "keras": lambda s, t, y, T, a: _kd_keras(s, t, y, T, a, True),
    "keras_2020": lambda s, t, y, T, a: _kd_keras(s, t, y, T, a, False),
}


def t_kd_loss_as(student_logits, teacher_logits, labels=None, convention="repdistiller",
                 temperature=4.0, alpha=1.0, mask=None):
    fn = KD_PRESETS[convention]
    if mask is not None:
        return fn(student_logits, teacher_logits, labels, temperature, alpha, mask=mask)
    return fn(student_logits, teacher_logits, labels, temperature, alpha)


# ---------------------------------------------------------------- features (features.py)

def t_hint_loss(student_features, teacher_features):
    # RepDistiller distiller_zoo/FitNet.py HintLoss: nn.MSELoss()(f_s, f_t)
    return nn.MSELoss()(student_features, teacher_features)


def t_cosine_loss(student_hidden, teacher_hidden):
    # HF DistilBERT distiller.py: nn.CosineEmbeddingLoss(reduction="mean"), target = ones
    target = student_hidden.new(student_hidden.size(0)).fill_(1)
    return nn.CosineEmbeddingLoss(reduction="mean")(student_hidden, teacher_hidden, target)


def _at_code(f, p):
    # RepDistiller distiller_zoo/AT.py: F.normalize(f.pow(self.p).mean(1).view(f.size(0), -1))
    return F.normalize(f.pow(p).mean(1).view(f.size(0), -1))


def t_attention_transfer_loss(student_maps, teacher_maps, p=2, mode="code"):
    if mode == "code":
        # RepDistiller at_loss: (self.at(f_s) - self.at(f_t)).pow(2).mean()
        return (_at_code(student_maps, p) - _at_code(teacher_maps, p)).pow(2).mean()
    # torchdistill ATLoss(mode='paper'): normalize(f.pow(2).sum(1).flatten(1)),
    # torch.norm(at_s - at_t, dim=1).sum() / batch_size
    at_s = F.normalize(student_maps.pow(p).sum(1).flatten(1))
    at_t = F.normalize(teacher_maps.pow(p).sum(1).flatten(1))
    return torch.norm(at_s - at_t, dim=1).sum() / student_maps.shape[0]


# ---------------------------------------------------------------- relations (relations.py)

def _pdist(e, squared=False, eps=1e-12):
    # RepDistiller distiller_zoo/RKD.py RKDLoss.pdist (= lenscloth/RKD metric/utils.py)
    e_square = e.pow(2).sum(dim=1)
    prod = e @ e.t()
    res = (e_square.unsqueeze(1) + e_square.unsqueeze(0) - 2 * prod).clamp(min=eps)
    if not squared:
        res = res.sqrt()
    res = res.clone()
    res[range(len(e)), range(len(e))] = 0
    return res


def t_rkd_distance_loss(s, t):
    student, teacher = s.view(s.shape[0], -1), t.view(t.shape[0], -1)
    with torch.no_grad():
        t_d = _pdist(teacher, squared=False)
        mean_td = t_d[t_d > 0].mean()
        t_d = t_d / mean_td
    d = _pdist(student, squared=False)
    mean_d = d[d > 0].mean()
    d = d / mean_d
    return F.smooth_l1_loss(d, t_d)


def t_rkd_angle_loss(s, t):
    student, teacher = s.view(s.shape[0], -1), t.view(t.shape[0], -1)
    with torch.no_grad():
        td = (teacher.unsqueeze(0) - teacher.unsqueeze(1))
        norm_td = F.normalize(td, p=2, dim=2)
        t_angle = torch.bmm(norm_td, norm_td.transpose(1, 2)).view(-1)
    sd = (student.unsqueeze(0) - student.unsqueeze(1))
    norm_sd = F.normalize(sd, p=2, dim=2)
    s_angle = torch.bmm(norm_sd, norm_sd.transpose(1, 2)).view(-1)
    return F.smooth_l1_loss(s_angle, t_angle)


def t_sp_loss(s, t):
    # RepDistiller distiller_zoo/SP.py Similarity.similarity_loss
    bsz = s.shape[0]
    f_s, f_t = s.view(bsz, -1), t.view(bsz, -1)
    G_s = torch.nn.functional.normalize(torch.mm(f_s, torch.t(f_s)))
    G_t = torch.nn.functional.normalize(torch.mm(f_t, torch.t(f_t)))
    G_diff = G_t - G_s
    return (G_diff * G_diff).view(-1, 1).sum(0)[0] / (bsz * bsz)


def t_pkt_loss(s, t, eps=0.0000001):
    # RepDistiller distiller_zoo/PKT.py cosine_similarity_loss (passalis/probabilistic_kt)
    output_net, target_net = s, t
    output_net_norm = torch.sqrt(torch.sum(output_net ** 2, dim=1, keepdim=True))
    output_net = output_net / (output_net_norm + eps)
    output_net = torch.where(output_net != output_net, torch.zeros_like(output_net), output_net)
    target_net_norm = torch.sqrt(torch.sum(target_net ** 2, dim=1, keepdim=True))
    target_net = target_net / (target_net_norm + eps)
    target_net = torch.where(target_net != target_net, torch.zeros_like(target_net), target_net)
    model_similarity = torch.mm(output_net, output_net.transpose(0, 1))
    target_similarity = torch.mm(target_net, target_net.transpose(0, 1))
    model_similarity = (model_similarity + 1.0) / 2.0
    target_similarity = (target_similarity + 1.0) / 2.0
    model_similarity = model_similarity / torch.sum(model_similarity, dim=1, keepdim=True)
    target_similarity = target_similarity / torch.sum(target_similarity, dim=1, keepdim=True)
    return torch.mean(target_similarity * torch.log((target_similarity + eps)
                                                    / (model_similarity + eps)))


# ---------------------------------------------------------------- AT and RKD presets

def _at_kd_lib(teacher_output, student_output, p=2):
    # KD_Lib ATLoss.single_at_loss / forward for one layer (SforAiDl/KD_Lib@a94d2360)
    def single_at_loss(activation):
        return F.normalize(activation.pow(p).view(activation.size(0), -1))

    return (single_at_loss(student_output) - single_at_loss(teacher_output)).pow(p).mean()


def t_at_loss_as(student_maps, teacher_maps, convention="repdistiller"):
    if convention == "kd_lib":
        return _at_kd_lib(teacher_maps, student_maps)
    mode = "paper" if convention == "torchdistill_paper" else "code"
    return t_attention_transfer_loss(student_maps, teacher_maps, 2, mode)


def _kd_lib_pairwise_distance(output):
    # KD_Lib KD_Lib/KD/vision/RKD/loss_metric.py pairwaise_distance
    output_squared = output.pow(2).sum(dim=1)
    product = torch.matmul(output, output.t())
    result = output_squared.unsqueeze(0) + output_squared.unsqueeze(1) - 2 * product
    result = result.clamp(min=1e-10)
    result = result.sqrt()
    result = result.clone()
    result[range(len(output)), range(len(output))] = 0
    return result


def _kd_lib_rkd(teacher, student, dist_ratio=0.5, angle_ratio=0.5):
    # KD_Lib RKDLoss.forward: angle_loss(...) * angle_ratio + distance_loss(...) * dist_ratio
    with torch.no_grad():
        t = teacher.unsqueeze(0) - teacher.unsqueeze(1)
        t = F.normalize(t, p=2, dim=2)
        t = torch.bmm(t, t.transpose(1, 2)).view(-1)
    s = student.unsqueeze(0) - student.unsqueeze(1)
    s = F.normalize(s, p=2, dim=2)
    s = torch.bmm(s, s.transpose(1, 2)).view(-1)
    angle = F.smooth_l1_loss(s, t)
    with torch.no_grad():
        td = _kd_lib_pairwise_distance(teacher)
        t_mean = td[td > 0].mean()
        td = td / (t_mean + 1e-7)
    sd = _kd_lib_pairwise_distance(student)
    s_mean = sd[sd > 0].mean()
    sd = sd / (s_mean + 1e-7)
    distance = F.smooth_l1_loss(sd, td)
    return angle * angle_ratio + distance * dist_ratio


RKD_WEIGHTS = {"repdistiller": (25.0, 50.0), "mdistiller": (25.0, 50.0),
               "rkd_author": (1.0, 2.0), "torchdistill": (1.0, 2.0)}


def t_rkd_loss_as(student_features, teacher_features, convention="repdistiller"):
    s, t = student_features, teacher_features
    if convention == "kd_lib":
        return _kd_lib_rkd(t, s)
    w_d, w_a = RKD_WEIGHTS[convention]
    return w_d * t_rkd_distance_loss(s, t) + w_a * t_rkd_angle_loss(s, t)


# ---------------------------------------------------------------- tokens (tokens.py)
# TRL GKDTrainer.generalized_jsd_loss (three versions), DistiLLM distillm/losses.py. Per token,
# then selected by labels != -100 and/or the mask, then TRL's reduction (batchmean = per token
# mean over the selected positions); T² applied on top when minikd's t2_scale is on.

def _trl_jsd(student_logits, teacher_logits, beta, temperature, version):
    student_logits = student_logits / temperature
    teacher_logits = teacher_logits / temperature
    student_log_probs = F.log_softmax(student_logits, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits, dim=-1)
    if version == "trl_logspace":  # the first GKDTrainer
        interpolated_log_probs = beta * student_log_probs + (1 - beta) * teacher_log_probs
        kl_teacher = F.kl_div(interpolated_log_probs, teacher_log_probs, reduction="none",
                              log_target=True)
        kl_student = F.kl_div(interpolated_log_probs, student_log_probs, reduction="none",
                              log_target=True)
        return beta * kl_teacher + (1 - beta) * kl_student
    if version == "trl" and beta == 0:
        return F.kl_div(student_log_probs, teacher_log_probs, reduction="none", log_target=True)
    if version == "trl" and beta == 1:
        return F.kl_div(teacher_log_probs, student_log_probs, reduction="none", log_target=True)
    b = torch.tensor(beta, dtype=student_log_probs.dtype)
    if version == "trl":  # since TRL PR #3043: m = beta p + (1 - beta) q
        parts = [student_log_probs + torch.log(1 - b), teacher_log_probs + torch.log(b)]
    elif version == "trl_legacy":  # before it: m = beta q + (1 - beta) p
        parts = [student_log_probs + torch.log(b), teacher_log_probs + torch.log(1 - b)]
    else:  # "gkd": Eq. 1 everywhere, m = beta p + (1 - beta) q, no special ends
        if beta == 0:
            parts = [student_log_probs]
        elif beta == 1:
            parts = [teacher_log_probs]
        else:
            parts = [student_log_probs + torch.log(1 - b), teacher_log_probs + torch.log(b)]
    mixture_log_probs = torch.logsumexp(torch.stack(parts), dim=0)
    kl_teacher = F.kl_div(mixture_log_probs, teacher_log_probs, reduction="none",
                          log_target=True)
    kl_student = F.kl_div(mixture_log_probs, student_log_probs, reduction="none",
                          log_target=True)
    return beta * kl_teacher + (1 - beta) * kl_student


def _distillm(logits, teacher_logits, kind, lam):
    # DistiLLM distillm/losses.py, per token (before the label mask); float64 here
    teacher_probs = F.softmax(teacher_logits, dim=-1)
    student_probs = F.softmax(logits, dim=-1)
    if kind == "skew_kl":  # skewed_forward_kl: the cross-entropy form, -sum p log m
        mixed_logprobs = torch.log(lam * teacher_probs + (1 - lam) * student_probs)
        x = torch.sum(teacher_probs * mixed_logprobs, dim=-1)
        # minikd's skew_kl is the KL: add back the teacher entropy (a constant)
        return -x + torch.sum(teacher_probs * F.log_softmax(teacher_logits, dim=-1), dim=-1)
    # skewed_reverse_kl
    mixed_logprobs = torch.log((1 - lam) * teacher_probs + lam * student_probs)
    student_logprobs = F.log_softmax(logits, dim=-1)
    prod_probs = student_probs * mixed_logprobs
    prod_probs = prod_probs - student_probs * student_logprobs
    return -torch.sum(prod_probs, dim=-1)


def _token_reduce(per_token, shape, mask, labels, ignore_index, reduction, n_out):
    keep = _keep(shape, mask, labels, ignore_index)
    sel = per_token.reshape(-1)[keep.reshape(-1)]
    count = int(keep.sum())
    if reduction == "sum":
        return sel.sum()
    if reduction == "sequence_mean":  # torch's 'batchmean' on an (N, L, V) tensor
        return sel.sum() / shape[0]
    if count == 0:
        return sel.sum() * 0.0
    return sel.sum() / (count if reduction == "batchmean" else count * n_out)


def _token(per_token_fn, z_s, z_t, temperature, mask, labels, ignore_index, reduction,
           t2_scale):
    per_token = per_token_fn(z_s, z_t, temperature)  # (..., )
    loss = _token_reduce(per_token, z_s.shape[:-1], mask, labels, ignore_index, reduction,
                         z_s.shape[-1])
    return loss * temperature ** 2 if t2_scale else loss


def t_forward_kl(z_s, z_t, temperature=1.0, mask=None, labels=None, ignore_index=-100,
                 reduction="batchmean", t2_scale=True):
    return _token(lambda s, t, T: _trl_jsd(s, t, 0.0, T, "trl").sum(-1), z_s, z_t,
                  temperature, mask, labels, ignore_index, reduction, t2_scale)


def t_reverse_kl(z_s, z_t, temperature=1.0, mask=None, labels=None, ignore_index=-100,
                 reduction="batchmean", t2_scale=True):
    return _token(lambda s, t, T: _trl_jsd(s, t, 1.0, T, "trl").sum(-1), z_s, z_t,
                  temperature, mask, labels, ignore_index, reduction, t2_scale)


def t_generalized_jsd(z_s, z_t, beta=0.5, convention="trl", temperature=1.0, mask=None,
                      labels=None, ignore_index=-100, reduction="batchmean", t2_scale=True):
    return _token(lambda s, t, T: _trl_jsd(s, t, beta, T, convention).sum(-1), z_s, z_t,
                  temperature, mask, labels, ignore_index, reduction, t2_scale)


def t_skew_kl(z_s, z_t, alpha=0.1, temperature=1.0, mask=None, labels=None,
              ignore_index=-100, reduction="batchmean", t2_scale=True):
    return _token(lambda s, t, T: _distillm(s / T, t / T, "skew_kl", alpha), z_s, z_t,
                  temperature, mask, labels, ignore_index, reduction, t2_scale)


def t_skew_reverse_kl(z_s, z_t, alpha=0.1, temperature=1.0, mask=None, labels=None,
                      ignore_index=-100, reduction="batchmean", t2_scale=True):
    return _token(lambda s, t, T: _distillm(s / T, t / T, "skew_reverse_kl", alpha), z_s, z_t,
                  temperature, mask, labels, ignore_index, reduction, t2_scale)


def t_topk_divergence(z_s, topk_values, topk_indices, tail="renorm", divergence="forward_kl",
                      temperature=1.0, mask=None, labels=None, ignore_index=-100,
                      reduction="batchmean", t2_scale=True):
    """Forward KL from the stored top-k. renorm: TRL / ms-swift gather then log_softmax over the
    K tokens; bucket: the K stored teacher log-probabilities plus one tail outcome."""
    idx = torch.as_tensor(np.asarray(topk_indices))
    vals = torch.as_tensor(np.asarray(topk_values), dtype=torch.float64)
    T = temperature
    if tail == "renorm":
        lq = F.log_softmax(torch.gather(z_s, -1, idx) / T, dim=-1)
        lp = F.log_softmax(vals / T, dim=-1)
        per_token = F.kl_div(lq, lp, reduction="none", log_target=True).sum(-1)
        n_out = idx.shape[-1]
    else:
        q = F.softmax(z_s / T, dim=-1)
        q_k = torch.gather(q, -1, idx)
        lq = torch.log(torch.cat([q_k, (1 - q_k.sum(-1, keepdim=True))], dim=-1))
        p_k = torch.exp(vals)
        lp = torch.log(torch.cat([p_k, (1 - p_k.sum(-1, keepdim=True))], dim=-1))
        per_token = F.kl_div(lq, lp, reduction="none", log_target=True).sum(-1)
        n_out = idx.shape[-1] + 1
    loss = _token_reduce(per_token, z_s.shape[:-1], mask, labels, ignore_index, reduction,
                         n_out)
    return loss * T ** 2 if t2_scale else loss


def t_token_divergence(z_s, z_t, divergence="forward_kl", beta=0.5, alpha=0.1,
                       convention="trl", **kwargs):
    if divergence == "generalized_jsd":
        return t_generalized_jsd(z_s, z_t, beta=beta, convention=convention, **kwargs)
    if divergence in ("skew_kl", "skew_reverse_kl"):
        return TORCH_TOKENS[divergence](z_s, z_t, alpha=alpha, **kwargs)
    return TORCH_TOKENS[divergence](z_s, z_t, **kwargs)


TORCH_TOKENS = {
    "token_divergence": t_token_divergence,
    "forward_kl": t_forward_kl,
    "reverse_kl": t_reverse_kl,
    "generalized_jsd": t_generalized_jsd,
    "skew_kl": t_skew_kl,
    "skew_reverse_kl": t_skew_reverse_kl,
    "topk_divergence": t_topk_divergence,
}


def token_cases(rng):
    """Token-level losses on (N, L, V) = (2, 5, 11) logits with ignored labels and a mask."""
    n, length, v = 2, 5, 11
    zs = (rng.standard_normal((n, length, v)) * 2.5).tolist()
    zt_arr = rng.standard_normal((n, length, v)) * 2.5
    zt = zt_arr.tolist()
    labels = rng.integers(0, v, (n, length))
    labels[rng.random((n, length)) < 0.3] = -100
    labels[0, 0] = 3
    labels = labels.tolist()
    mask = (rng.random((n, length)) < 0.8).tolist()
    mask[0][0] = True
    pair = {"student_logits": zs, "teacher_logits": zt}
    out = []
    for T, t2 in ((1.0, False), (2.0, True), (0.7, True)):
        tag = f"T={T:g}" + ("" if t2 else "-no-T2")
        common = {"temperature": T, "t2_scale": t2}
        out += [
            _case(f"forward_kl/{tag}", "forward_kl", {**pair, "labels": labels}, common),
            _case(f"reverse_kl/{tag}", "reverse_kl", {**pair, "labels": labels}, common),
            _case(f"skew_kl/{tag}", "skew_kl", {**pair, "labels": labels},
                  {**common, "alpha": 0.1}),
            _case(f"skew_reverse_kl/{tag}", "skew_reverse_kl", {**pair, "labels": labels},
                  {**common, "alpha": 0.1}),
        ]
        for conv in ("trl", "gkd", "trl_legacy", "trl_logspace"):
            for beta in (0.0, 0.1, 0.5, 0.9, 1.0):
                if conv in ("trl_legacy", "trl_logspace") and beta in (0.0, 1.0):
                    continue  # log(0) in the library code at the ends
                out.append(_case(f"generalized_jsd/{conv}-beta={beta:g}/{tag}",
                                 "generalized_jsd", {**pair, "labels": labels},
                                 {**common, "beta": beta, "convention": conv}))
    for red in ("sum", "mean", "sequence_mean"):
        out.append(_case(f"forward_kl/mask-{red}", "forward_kl", {**pair, "mask": mask},
                         {"temperature": 2.0, "reduction": red}))
        out.append(_case(f"generalized_jsd/mask-{red}", "generalized_jsd",
                         {**pair, "mask": mask, "labels": labels},
                         {"temperature": 1.5, "reduction": red}))
    k = 4
    idx = np.argsort(-zt_arr, axis=-1)[..., :k]
    top_logits = np.take_along_axis(zt_arr, idx, axis=-1)
    for T in (1.0, 2.0):
        lp = zt_arr / T - np.log(np.exp(zt_arr / T).sum(-1, keepdims=True))
        top_lp = np.take_along_axis(lp, idx, axis=-1)
        out.append(_case(f"topk_divergence/renorm/T={T:g}", "topk_divergence",
                         {"student_logits": zs, "topk_values": top_logits.tolist(),
                          "topk_indices": idx.tolist(), "labels": labels},
                         {"tail": "renorm", "temperature": T}))
        out.append(_case(f"topk_divergence/bucket/T={T:g}", "topk_divergence",
                         {"student_logits": zs, "topk_values": top_lp.tolist(),
                          "topk_indices": idx.tolist(), "labels": labels},
                         {"tail": "bucket", "temperature": T}))
    return out


def _relation(fn):
    """minikd's keywords (student_features, teacher_features) to the (s, t) of the code above."""
    return lambda student_features, teacher_features: fn(student_features, teacher_features)


TORCH = {
    **TORCH_TOKENS,
    "hint_loss": t_hint_loss,
    "cosine_loss": t_cosine_loss,
    "attention_transfer_loss": t_attention_transfer_loss,
    "rkd_distance_loss": _relation(t_rkd_distance_loss),
    "rkd_angle_loss": _relation(t_rkd_angle_loss),
    "sp_loss": _relation(t_sp_loss),
    "pkt_loss": _relation(t_pkt_loss),
    "at_loss_as": t_at_loss_as,
    "rkd_loss_as": t_rkd_loss_as,
    "cross_entropy": t_cross_entropy,
    "soft_cross_entropy": t_soft_cross_entropy,
    "kl_divergence": t_kl_divergence,
    "kd_loss": t_kd_loss,
    "distillation_loss": t_distillation_loss,
    "dkd_loss": t_dkd_loss,
    "kd_loss_as": t_kd_loss_as,
}


# ---------------------------------------------------------------- the cases

def _case(name, function, inputs, params=None, grad_wrt=None):
    return {"name": name, "function": function, "inputs": inputs, "params": params or {},
            "grad_wrt": grad_wrt or next(iter(inputs))}


def cases(rng):
    """Case specs (no outputs) on random inputs drawn from ``rng``: lists, ready for JSON."""
    def logits(*shape, scale=3.0):
        return (rng.standard_normal(shape) * scale).tolist()

    n, c = 5, 7
    zs, zt = logits(n, c), logits(n, c)
    y = rng.integers(0, c, n).tolist()
    pair = {"student_logits": zs, "teacher_logits": zt}
    ts, tt = logits(2, 4, 6), logits(2, 4, 6)
    tmask = (rng.random((2, 4)) < 0.7).tolist()
    tmask[0][0] = True
    ty = np.where(rng.random((2, 4)) < 0.3, -100, rng.integers(0, 6, (2, 4)))
    ty[0, 0] = 1
    ty = ty.tolist()
    tok = {"student_logits": ts, "teacher_logits": tt}
    out = []
    for red in ("batchmean", "sum", "mean"):
        out.append(_case(f"cross_entropy/{red}", "cross_entropy", {"logits": zs, "labels": y},
                         {"reduction": red}))
    out.append(_case("cross_entropy/tokens-mask-ignore", "cross_entropy",
                     {"logits": ts, "labels": ty, "mask": tmask}))
    for T in (0.5, 1.0, 4.0, 20.0):
        out += [
            _case(f"soft_cross_entropy/T={T:g}", "soft_cross_entropy", pair, {"temperature": T}),
            _case(f"kl_divergence/T={T:g}", "kl_divergence", pair, {"temperature": T}),
            _case(f"kd_loss/T={T:g}", "kd_loss", pair, {"temperature": T}),
            _case(f"distillation_loss/T={T:g}", "distillation_loss", {**pair, "labels": y},
                  {"temperature": T, "alpha": 0.7}),
            _case(f"dkd_loss/T={T:g}", "dkd_loss", {**pair, "labels": y},
                  {"temperature": T, "alpha": 1.0, "beta": 8.0}),
        ]
    for red in ("sum", "mean"):
        out += [
            _case(f"kd_loss/{red}", "kd_loss", pair, {"temperature": 2.0, "reduction": red}),
            _case(f"soft_cross_entropy/{red}", "soft_cross_entropy", pair,
                  {"temperature": 2.0, "reduction": red}),
            _case(f"distillation_loss/{red}", "distillation_loss", {**pair, "labels": y},
                  {"temperature": 2.0, "alpha": 0.4, "reduction": red}),
        ]
    out += [
        _case("kd_loss/tokens-mask", "kd_loss", {**tok, "mask": tmask}, {"temperature": 2.0}),
        _case("kl_divergence/tokens-mask-mean", "kl_divergence", {**tok, "mask": tmask},
              {"temperature": 3.0, "reduction": "mean"}),
        _case("soft_cross_entropy/tokens-mask", "soft_cross_entropy", {**tok, "mask": tmask},
              {"temperature": 2.0}),
        _case("distillation_loss/tokens-mask-ignore", "distillation_loss",
              {**tok, "labels": ty, "mask": tmask}, {"temperature": 2.0, "alpha": 0.5}),
        _case("distillation_loss/alpha=1-no-labels", "distillation_loss",
              {**pair, "labels": None}, {"temperature": 4.0, "alpha": 1.0}),
        _case("dkd_loss/beta=2", "dkd_loss", {**pair, "labels": y},
              {"temperature": 4.0, "alpha": 0.5, "beta": 2.0}),
    ]
    for conv in KD_PRESETS:
        for T, a in ((4.0, 0.9), (2.0, 0.5), (4.0, 1.0)):
            inputs = dict(pair) if a == 1.0 else {**pair, "labels": y}
            out.append(_case(f"kd_loss_as/{conv}/T={T:g}-alpha={a:g}", "kd_loss_as", inputs,
                             {"convention": conv, "temperature": T, "alpha": a}))
    out.append(_case("kd_loss_as/hf_distilbert/tokens", "kd_loss_as",
                     {**tok, "labels": ty, "mask": tmask},
                     {"convention": "hf_distilbert", "temperature": 2.0, "alpha": 0.5}))
    out += feature_cases(rng)
    out += token_cases(rng)
    out.append(_case("kd_loss_as/keras/clipped", "kd_loss_as",
                     {"student_logits": [[0.0, 40.0, 1.0], [2.0, -30.0, 0.5]],
                      "teacher_logits": [[30.0, 0.0, 1.0], [1.0, 0.5, -35.0]], "labels": [1, 0]},
                     {"convention": "keras", "temperature": 1.0, "alpha": 0.9}))
    return out


def feature_cases(rng):
    """Features, relations and their presets."""
    def feats(*shape):
        return rng.standard_normal(shape).tolist()

    out = []
    for shape in ((5, 6), (2, 3, 4)):
        out.append(_case(f"hint_loss/{shape}", "hint_loss",
                         {"student_features": feats(*shape), "teacher_features": feats(*shape)}))
    out.append(_case("cosine_loss", "cosine_loss",
                     {"student_hidden": feats(6, 5), "teacher_hidden": feats(6, 5)}))
    f_s, f_t, f_t3 = feats(3, 4, 3, 5), feats(3, 4, 3, 5), feats(3, 2, 3, 5)
    for mode in ("code", "paper"):
        for p in (2, 4):
            out.append(_case(f"attention_transfer_loss/{mode}-p={p}", "attention_transfer_loss",
                             {"student_maps": f_s, "teacher_maps": f_t3},
                             {"p": float(p), "mode": mode}))
    for conv in ("repdistiller", "mdistiller", "torchdistill_code", "torchdistill_paper",
                 "kd_lib"):
        out.append(_case(f"at_loss_as/{conv}", "at_loss_as",
                         {"student_maps": f_s, "teacher_maps": f_t}, {"convention": conv}))
    s, t = feats(6, 4), feats(6, 7)
    for fn in ("rkd_distance_loss", "rkd_angle_loss", "sp_loss", "pkt_loss"):
        out.append(_case(fn, fn, {"student_features": s, "teacher_features": t}))
    s_small, t_small = feats(3, 2), feats(3, 5)
    for fn in ("rkd_distance_loss", "rkd_angle_loss", "sp_loss", "pkt_loss"):
        out.append(_case(f"{fn}/N=3", fn,
                         {"student_features": s_small, "teacher_features": t_small}))
    for conv in ("repdistiller", "mdistiller", "rkd_author", "torchdistill", "kd_lib"):
        out.append(_case(f"rkd_loss_as/{conv}", "rkd_loss_as",
                         {"student_features": s, "teacher_features": t}, {"convention": conv}))
    return out


def _parameter(fn, key):
    """The twin's parameter for an input named ``key``: minikd renamed z_s, z_t, s, t to
    student_/teacher_logits and student_/teacher_features (vectors_schema.PARAMETER_RENAMES);
    files and twins may use either name."""
    params = inspect.signature(fn).parameters
    if key in params:
        return key
    return next(((old if new == key else new) for old, new in PARAMETER_RENAMES.items()
                 if key in (old, new) and (old if new == key else new) in params), key)


def compute(case):
    """The loss and its autograd gradient for one case, in float64: (float, nested list)."""
    fn = TORCH[case["function"]]
    kwargs = {}
    grad_input = None
    for k, v in case["inputs"].items():
        name = _parameter(fn, k)
        if k == case["grad_wrt"]:
            grad_input = _t(v).requires_grad_(True)
            kwargs[name] = grad_input
        elif isinstance(v, list) and np.asarray(v).dtype.kind == "f":
            kwargs[name] = _t(v)
        else:
            kwargs[name] = v
    kwargs.update(case["params"])
    loss = fn(**kwargs)
    (grad,) = torch.autograd.grad(loss, grad_input)
    return float(loss.detach()), grad.detach().numpy().astype(np.float64).tolist()


def build(seed=DEFAULT_SEED):
    """The fixtures document for inputs drawn with ``np.random.default_rng(seed)``."""
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(seed)
    out = []
    with warnings.catch_warnings():  # KLDivLoss 'mean' warns; reproducing it is the point
        warnings.filterwarnings("ignore", message="reduction: 'mean' divides")
        for case in cases(rng):
            loss, grad = compute(case)
            out.append({**case, "loss": loss, "grad": grad})
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generator": "tests/data/make_torch_fixtures.py (PyTorch autograd, float64)",
        "torch_version": torch.__version__,
        "seed": seed,
        "dtype": "float64",
        "description": "Losses written with PyTorch ops from the libraries' code (the commits in "
                       "minikd.CONVENTIONS); gradients by autograd. Call "
                       "minikd.<function>(**inputs, **params).",
        "cases": out,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    from minikd.verify.vectors import write_vectors

    doc = build(args.seed)
    write_vectors(doc, args.out)
    print(f"wrote {len(doc['cases'])} cases (torch {doc['torch_version']}, seed {args.seed}) "
          f"to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
