"""The golden cases: small fixed inputs for every loss and every library preset.

:func:`golden_cases` lists them without their outputs (``name``, ``function``, ``inputs``,
``params``, ``grad_wrt``); :func:`minikd.verify.vectors.golden_vectors` computes the outputs.
The inputs are small enough to check by hand; the first ones (``Z_S``, ``Z_T``, ``Y``) are those
of the KD-across-libraries table in ``docs/verify.md``, whose values were also computed
independently of minikd (``tests/test_conventions.py``).
"""

from __future__ import annotations

import inspect

import numpy as np

from ..losses.softmax import log_softmax
from .conventions import CONVENTIONS
from .selfcheck import LOSSES

__all__ = ["F_S", "F_T", "M_S", "M_T", "Y", "Z_S", "Z_T", "golden_cases", "student_teacher_names"]

# Logits (N, C) = (2, 3) and labels.
Z_S = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
Z_T = [[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]]
Y = [2, 0]
# Token logits (N, L, V) = (2, 3, 4) with padding and ignored labels.
TOKENS_S = [[[0.5, -1.0, 2.0, 0.0], [1.5, 0.25, -0.5, 1.0], [0.0, 0.0, 3.0, -2.0]],
            [[-1.0, 2.5, 0.5, 0.75], [2.0, 1.0, 0.0, -1.0], [0.3, 0.1, -0.2, 0.4]]]
TOKENS_T = [[[1.0, -0.5, 1.5, 0.5], [0.5, 1.0, -1.0, 2.0], [0.2, 0.4, 2.0, -1.0]],
            [[0.0, 2.0, 1.0, 0.0], [1.0, 2.0, 0.5, -0.5], [-0.3, 0.6, 0.1, 0.2]]]
TOKENS_MASK = [[True, True, False], [True, True, True]]
TOKENS_Y = [[2, -100, 3], [1, 0, -100]]
# The top-2 teacher tokens per position, stored as logits (renorm) or log-probabilities (bucket).
TOPK_INDICES = [[[2, 0], [3, 0], [2, 1]], [[1, 2], [1, 0], [1, 3]]]
# Features (N, F) = (3, 2) student and (3, 3) teacher; maps (N, C, H, W) = (2, 2, 2, 2).
F_S = [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0]]
F_T = [[1.0, 0.0, -0.5], [0.25, 1.0, 1.5], [-1.0, 0.5, 2.0]]
M_S = [[[[0.5, -1.0], [0.0, 2.0]], [[1.0, 0.5], [-0.5, 0.25]]],
       [[[0.0, 1.5], [1.0, -1.0]], [[2.0, 0.0], [0.5, 0.75]]]]
M_T = [[[[1.0, 0.0], [0.5, 1.5]], [[-0.5, 1.0], [0.25, 2.0]]],
       [[[0.5, 0.5], [2.0, 0.0]], [[1.0, -1.5], [0.0, 1.0]]]]


def student_teacher_names(function):
    """The names of a loss's student and teacher parameters: its first two, after any
    ``convention`` (the token and relation losses' names are being unified, so they are read
    from the signature, never typed here)."""
    params = [p for p in inspect.signature(LOSSES[function]).parameters if p != "convention"]
    return params[0], params[1]


def case(name, function, student, teacher, params=None, **more_inputs):
    """A golden case; the gradient is with respect to the student (the first input)."""
    s, t = student_teacher_names(function)
    return {"name": name, "function": function,
            "inputs": {s: student, t: teacher, **more_inputs}, "params": params or {},
            "grad_wrt": s}


def golden_cases():
    """The golden cases without their outputs: name, function, inputs, params, grad_wrt.

    Returns
    -------
    list of dict
    """
    cases = [
        case("cross_entropy", "cross_entropy", Z_S, Y),
        case("cross_entropy/sum", "cross_entropy", Z_S, Y, {"reduction": "sum"}),
        case("cross_entropy/tokens-ignore_index", "cross_entropy", TOKENS_S, TOKENS_Y),
    ]
    for T in (1.0, 4.0):
        cases += [
            case(f"soft_cross_entropy/T={T:g}", "soft_cross_entropy", Z_S, Z_T,
                 {"temperature": T}),
            case(f"kl_divergence/T={T:g}", "kl_divergence", Z_S, Z_T, {"temperature": T}),
            case(f"kd_loss/T={T:g}", "kd_loss", Z_S, Z_T, {"temperature": T}),
        ]
    cases += [
        case("kl_divergence/mean", "kl_divergence", Z_S, Z_T,
             {"temperature": 2.0, "reduction": "mean"}),
        case("kd_loss/sum", "kd_loss", Z_S, Z_T, {"temperature": 4.0, "reduction": "sum"}),
        case("kd_loss/mean", "kd_loss", Z_S, Z_T, {"temperature": 4.0, "reduction": "mean"}),
        case("kd_loss/tokens-mask", "kd_loss", TOKENS_S, TOKENS_T, {"temperature": 2.0},
             mask=TOKENS_MASK),
        case("distillation_loss/T=4-alpha=0.9", "distillation_loss", Z_S, Z_T,
             {"temperature": 4.0, "alpha": 0.9}, labels=Y),
        case("distillation_loss/alpha=1-no-labels", "distillation_loss", Z_S, Z_T,
             {"temperature": 4.0, "alpha": 1.0}, labels=None),
        case("distillation_loss/tokens-ignore_index", "distillation_loss", TOKENS_S, TOKENS_T,
             {"temperature": 2.0, "alpha": 0.5}, labels=TOKENS_Y),
        case("dkd_loss/defaults", "dkd_loss", Z_S, Z_T, labels=Y),
        case("dkd_loss/T=1-alpha=1-beta=2", "dkd_loss", Z_S, Z_T,
             {"alpha": 1.0, "beta": 2.0, "temperature": 1.0}, labels=Y),
        case("dkd_loss/two-classes", "dkd_loss", [[0.5, -1.0], [2.0, 1.0]],
             [[1.0, 0.0], [-0.5, 0.5]], labels=[0, 1]),
    ]
    for name in CONVENTIONS["kd"]:
        cases.append(case(f"kd_loss_as/{name}/T=4-alpha=0.9", "kd_loss_as", Z_S, Z_T,
                          {"convention": name, "temperature": 4.0, "alpha": 0.9}, labels=Y))
        cases.append(case(f"kd_loss_as/{name}/T=4-soft-only", "kd_loss_as", Z_S, Z_T,
                          {"convention": name, "temperature": 4.0, "alpha": 1.0}))
    cases.append(case("kd_loss_as/hf_distilbert/tokens", "kd_loss_as", TOKENS_S, TOKENS_T,
                      {"convention": "hf_distilbert", "temperature": 2.0, "alpha": 0.5},
                      labels=TOKENS_Y, mask=TOKENS_MASK))
    return cases + feature_cases() + token_cases()


def feature_cases():
    """Feature, attention and relation losses, and their presets."""
    f_t2 = [row[:2] for row in F_T]  # (3, 2): the student's width, for hint and cosine
    cases = [
        case("hint_loss", "hint_loss", F_S, f_t2),
        case("cosine_loss", "cosine_loss", F_S, f_t2),
        case("cosine_loss/zero-row", "cosine_loss", [[0.0, 0.0], [1.0, 2.0]],
             [[1.0, 1.0], [2.0, -1.0]]),
        case("attention_transfer_loss/code", "attention_transfer_loss", M_S, M_T),
        case("attention_transfer_loss/paper", "attention_transfer_loss", M_S, M_T,
             {"mode": "paper"}),
        case("attention_transfer_loss/code-teacher-3-channels", "attention_transfer_loss", M_S,
             [m + [m[0]] for m in M_T]),
    ]
    for fn in ("rkd_distance_loss", "rkd_angle_loss", "sp_loss", "pkt_loss"):
        cases.append(case(fn, fn, F_S, F_T))
    for name in CONVENTIONS["at"]:
        cases.append(case(f"at_loss_as/{name}", "at_loss_as", M_S, M_T, {"convention": name}))
    for name in CONVENTIONS["rkd"]:
        cases.append(case(f"rkd_loss_as/{name}", "rkd_loss_as", F_S, F_T, {"convention": name}))
    return cases


def token_cases():
    """Token-level divergences over (N, L, V) logits, with labels (-100 = ignored) and a mask."""
    tt, idx = np.asarray(TOKENS_T), np.asarray(TOPK_INDICES)
    log_p = log_softmax(tt)  # (N, L, V) at T = 1
    cases = [
        case("forward_kl", "forward_kl", TOKENS_S, TOKENS_T, labels=TOKENS_Y),
        case("forward_kl/T=2-mask", "forward_kl", TOKENS_S, TOKENS_T, {"temperature": 2.0},
             mask=TOKENS_MASK),
        case("reverse_kl", "reverse_kl", TOKENS_S, TOKENS_T, labels=TOKENS_Y),
        case("reverse_kl/T=2-no-T2", "reverse_kl", TOKENS_S, TOKENS_T,
             {"temperature": 2.0, "t2_scale": False}, labels=TOKENS_Y),
        case("skew_kl/alpha=0.1", "skew_kl", TOKENS_S, TOKENS_T, {"alpha": 0.1},
             labels=TOKENS_Y),
        case("skew_reverse_kl/alpha=0.1", "skew_reverse_kl", TOKENS_S, TOKENS_T,
             {"alpha": 0.1}, labels=TOKENS_Y),
        case("token_divergence/reverse_kl-sum", "token_divergence", TOKENS_S, TOKENS_T,
             {"divergence": "reverse_kl", "reduction": "sum"}, labels=TOKENS_Y),
        case("topk_divergence/renorm", "topk_divergence", TOKENS_S,
             np.take_along_axis(tt, idx, -1).tolist(), {"tail": "renorm"},
             topk_indices=TOPK_INDICES, labels=TOKENS_Y),
        case("topk_divergence/bucket", "topk_divergence", TOKENS_S,
             np.take_along_axis(log_p, idx, -1).tolist(), {"tail": "bucket"},
             topk_indices=TOPK_INDICES, labels=TOKENS_Y),
    ]
    for conv in ("trl", "gkd", "trl_legacy", "trl_logspace"):
        for beta in (0.3, 0.5):
            cases.append(case(f"generalized_jsd/{conv}-beta={beta:g}", "generalized_jsd",
                              TOKENS_S, TOKENS_T,
                              {"beta": beta, "convention": conv, "t2_scale": False},
                              labels=TOKENS_Y))
    return cases
