r"""The gradient self-check behind ``minikd gradcheck``, and the registry of minikd's losses.

:data:`LOSSES` names every public loss of minikd (the functions a vectors file may name);
:data:`SELF_CHECKS` says, for each of them and for every library preset, how to build random
float64 inputs and how to scale the finite-difference step. :func:`gradcheck_losses` runs each
entry through :func:`minikd.gradcheck.check_gradient`. Nothing is discovered: a loss that is
exported but not registered here fails ``tests/test_selfcheck.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import numpy as np

from .._validation import check_positive, check_temperature
from ..losses import (
    attention_transfer_loss,
    cosine_loss,
    cross_entropy,
    distillation_loss,
    dkd_loss,
    forward_kl,
    generalized_jsd,
    hint_loss,
    kd_loss,
    kl_divergence,
    pkt_loss,
    reverse_kl,
    rkd_angle_loss,
    rkd_distance_loss,
    skew_kl,
    skew_reverse_kl,
    soft_cross_entropy,
    sp_loss,
    token_divergence,
    topk_divergence,
)
from . import gradcheck
from .conventions import CONVENTIONS, at_loss_as, kd_loss_as, rkd_loss_as

__all__ = ["GRADCHECK_TEMPERATURES", "LOSSES", "SELF_CHECKS", "SelfCheck", "gradcheck_losses"]

GRADCHECK_TEMPERATURES = (0.5, 1.0, 4.0, 20.0)

LOSSES = {f.__name__: f for f in (
    cross_entropy, soft_cross_entropy, kl_divergence, kd_loss, distillation_loss, dkd_loss,
    hint_loss, cosine_loss, attention_transfer_loss,
    rkd_distance_loss, rkd_angle_loss, sp_loss, pkt_loss,
    forward_kl, reverse_kl, generalized_jsd, skew_kl, skew_reverse_kl, token_divergence,
    topk_divergence,
    kd_loss_as, at_loss_as, rkd_loss_as,
)}
"""dict: the public losses of minikd, ``name -> function``; each returns a ``LossGrad``."""


class SelfCheck(NamedTuple):
    """One entry of the self-check: which loss, on which inputs, with which step.

    Attributes
    ----------
    name : str
        Row name, e.g. ``"kd_loss"`` or ``"kd_loss_as/keras"``.
    function : callable
        Called as ``function(*args, **kwargs)``; returns a ``LossGrad`` whose ``grad`` is the
        gradient with respect to ``args[0]``, the student's input.
    inputs : callable
        ``inputs(rng) -> (args, kwargs)``: random float64 inputs (``temperature`` excluded).
    step_scale : callable or None
        ``step_scale(T)``: the absolute part of the finite-difference step at temperature T
        (T for a loss of z / T; min(T, 1) for a blend with a hard term at T = 1). None for a
        loss without a temperature: it is checked once, with scale 1.
    """

    name: str
    function: Callable
    inputs: Callable
    step_scale: Callable | None


def soft(T):
    """A loss of z / T: the step grows with T."""
    return T


def blend(T):
    """A soft term at T plus a hard term at T = 1: the smaller scale."""
    return min(T, 1.0)


# ---------------------------------------------------------------- inputs: rng -> (args, kwargs)
N, C, L, K = 4, 5, 3, 3  # batch, classes, tokens per sequence, teacher top-k


def logit_pair(rng, shape=(N, C)):
    return (3.0 * rng.standard_normal(shape), 3.0 * rng.standard_normal(shape)), {}


def logits_labels(rng):
    return (3.0 * rng.standard_normal((N, C)), rng.integers(0, C, N)), {}


def logit_pair_labels(rng):
    (z_s, z_t), _ = logit_pair(rng)
    return (z_s, z_t, rng.integers(0, C, N)), {}


def token_labels(rng):
    """(N, L) token labels with about one in four ignored (-100)."""
    return np.where(rng.random((N, L)) < 0.25, -100, rng.integers(0, C, (N, L)))


def token_pair(rng, **hyper):
    """(N, L, C) token logits, labels with ignored positions, and a mask."""
    args, _ = logit_pair(rng, (N, L, C))
    mask = rng.random((N, L)) < 0.8
    mask[0, 0] = True
    return args, {"labels": token_labels(rng), "mask": mask, **hyper}


def token_topk(rng):
    z_s, z_t = (3.0 * rng.standard_normal((N, L, C)) for _ in range(2))
    idx = np.argsort(-z_t, axis=-1)[..., :K]  # (N, L, K) the teacher's top-k classes
    return (z_s, np.take_along_axis(z_t, idx, -1), idx), {"labels": token_labels(rng)}


def features(rng, f_s=C, f_t=C + 1):
    return (rng.standard_normal((N, f_s)), rng.standard_normal((N, f_t))), {}


def maps(rng, c_t=2):
    return (rng.standard_normal((N, 3, 4, 4)), rng.standard_normal((N, c_t, 4, 4))), {}


def preset_inputs(convention, rng):
    """kd_loss_as inputs: (N, C) logits and labels, alpha = 0.9; HF DistilBERT gets tokens."""
    if convention == "hf_distilbert":
        args, kw = token_pair(rng)
        return args + (kw["labels"],), {"mask": kw["mask"], "alpha": 0.9}
    return logit_pair_labels(rng)[0], {"alpha": 0.9}


SELF_CHECKS = (
    SelfCheck("cross_entropy", cross_entropy, logits_labels, None),
    SelfCheck("soft_cross_entropy", soft_cross_entropy, logit_pair, soft),
    SelfCheck("kl_divergence", kl_divergence, logit_pair, soft),
    SelfCheck("kd_loss", kd_loss, logit_pair, soft),
    SelfCheck("distillation_loss", distillation_loss, logit_pair_labels, blend),
    SelfCheck("dkd_loss", dkd_loss, logit_pair_labels, soft),
    SelfCheck("hint_loss", hint_loss, partial(features, f_t=C), None),
    SelfCheck("cosine_loss", cosine_loss, partial(features, f_t=C), None),
    SelfCheck("attention_transfer_loss", attention_transfer_loss, maps, None),
    SelfCheck("rkd_distance_loss", rkd_distance_loss, features, None),
    SelfCheck("rkd_angle_loss", rkd_angle_loss, features, None),
    SelfCheck("sp_loss", sp_loss, features, None),
    SelfCheck("pkt_loss", pkt_loss, features, None),
    SelfCheck("forward_kl", forward_kl, token_pair, soft),
    SelfCheck("reverse_kl", reverse_kl, token_pair, soft),
    SelfCheck("generalized_jsd", generalized_jsd, partial(token_pair, beta=0.3), soft),
    SelfCheck("skew_kl", skew_kl, partial(token_pair, alpha=0.3), soft),
    SelfCheck("skew_reverse_kl", skew_reverse_kl, partial(token_pair, alpha=0.3), soft),
    SelfCheck("token_divergence", token_divergence,
              partial(token_pair, divergence="generalized_jsd", beta=0.7), soft),
    SelfCheck("topk_divergence", topk_divergence, token_topk, soft),
    *(SelfCheck(f"kd_loss_as/{name}", partial(kd_loss_as, name), partial(preset_inputs, name),
                blend) for name in CONVENTIONS["kd"]),
    *(SelfCheck(f"at_loss_as/{name}", partial(at_loss_as, name),
                partial(maps, c_t=3 if name == "kd_lib" else 2), None)
      for name in CONVENTIONS["at"]),
    *(SelfCheck(f"rkd_loss_as/{name}", partial(rkd_loss_as, name), features, None)
      for name in CONVENTIONS["rkd"]),
)
"""tuple of SelfCheck: every loss of :data:`LOSSES`, and every preset of
:data:`minikd.CONVENTIONS`, in the order ``minikd gradcheck`` prints them."""


# ---------------------------------------------------------------- the run

def gradcheck_losses(*, temperatures=GRADCHECK_TEMPERATURES, tol=1e-5, rng=None, checks=None):
    r"""Run every registered loss through :func:`minikd.gradcheck.check_gradient` in float64.

    .. math::

        \text{error} = \frac{\max_i |g^{\text{closed form}}_i - g^{\text{FD}}_i|}
                            {\max(\|g^{\text{closed form}}\|_\infty, \|g^{\text{FD}}\|_\infty)}
        \le \text{tol}

    A loss with a temperature is checked at each temperature, with the finite-difference step
    scaled by its entry's ``step_scale(T)``; the others once. A loss that raises on its
    registered inputs is a failure, reported with the error.

    Parameters
    ----------
    temperatures : sequence of float, default (0.5, 1, 4, 20)
    tol : float, default 1e-5
        Largest acceptable normwise error.
    rng : int, numpy.random.Generator or None
    checks : sequence of SelfCheck, optional
        Defaults to :data:`SELF_CHECKS`.

    Returns
    -------
    list of dict
        One row per (entry, temperature): ``loss``, ``temperature`` (None when the loss has
        none), ``status`` ("pass" or "FAIL"), ``error`` (float or None), ``detail``.
    """
    func = "gradcheck_losses"
    rng = np.random.default_rng(rng)
    ts = [check_temperature(t, func, "temperatures") for t in temperatures]
    tol = check_positive(tol, "tol", func)
    rows = []
    for check in SELF_CHECKS if checks is None else checks:
        for T in (ts if check.step_scale is not None else [None]):
            rows.append(_check_one(check, T, tol, rng))
    return rows


def _check_one(check, T, tol, rng):
    args, kwargs = check.inputs(rng)
    scale = 1.0
    if T is not None:
        kwargs, scale = {**kwargs, "temperature": T}, check.step_scale(T)
    row = {"loss": check.name, "temperature": T}
    try:
        grad = check.function(*args, **kwargs).grad

        def f(x):
            return check.function(x, *args[1:], **kwargs).loss

        result = gradcheck.check_gradient(f, args[0], grad, scale=scale, tol=tol)
    except (ArithmeticError, ValueError, TypeError) as err:
        return {**row, "status": "FAIL", "error": None,
                "detail": f"{check.name}: raised {type(err).__name__}: {err}"}
    return {**row, "status": "pass" if result.ok else "FAIL", "error": result.error,
            "detail": "" if result.ok else result.report(check.name)}
