r"""One student of ``minikd lm``: its training (scratch or distilled), scoring and samples.

The objective per character, with the teacher's logits cached once for the whole training set:

.. math::

    L = \alpha\, D_T(z_s, z_t) + (1 - \alpha)\, \mathrm{CE}(z_s, y)

with D the forward KL :math:`T^2 KL(p_t \| q_s)` (Hinton et al. 2015, §2; word-level KD of Kim
& Rush 2016, Eq. 4), the reverse KL :math:`T^2 KL(q_s \| p_t)` (MiniLLM, Gu et al. 2024) or
GKD's generalized JSD at β (Agarwal et al. 2024, Eq. 1); the scratch student has the
cross-entropy alone. Every student of a seed starts from the same weights and sees the same
mini-batches (:func:`streams`), so two students of one seed are a paired comparison.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._threads import blas_threads
from .._validation import (
    as_float_array,
    as_labels,
    check_choice,
    check_logit_range,
    logit_limit,
    param_error,
)
from ..losses.mixtures import generalized_jsd_kernel
from ..losses.response import cross_entropy_kernel
from ..losses.tokens import forward_kl_kernel, reverse_kl_kernel
from ..nn import Adam, CosineSchedule
from ..nn.char_lm import CharLM
from ..training import train_loop
from .lm_teacher import guarded_forward, mean_nll
from .names import BOUNDARY, decode

__all__ = ["DIVERGENCES", "TUNED_LR", "run_student", "sample_names", "streams", "train_student"]

# The kernels of minikd.forward_kl, reverse_kl and generalized_jsd: their arguments are checked
# once, in train_student, not on every mini-batch.
DIVERGENCES = {"forward_kl": forward_kl_kernel, "reverse_kl": reverse_kl_kernel,
               "generalized_jsd": generalized_jsd_kernel}
# Adam's learning rate of each student, the best of 1e-3, 2.5e-3, 5e-3, 1e-2, 2e-2 for its own
# loss on the validation names at the default budget (docs/scripts/select_lm_output.md).
TUNED_LR = {"scratch": 5e-3, "forward_kl": 1e-2, "reverse_kl": 1e-2, "generalized_jsd": 2e-2}


def streams(seed):
    """Student init, mini-batch order and sampling streams of one seed (shared by every
    student of the seed: the runs are paired)."""
    return np.random.SeedSequence(seed).spawn(3)


def train_student(method, seed, setup, data, teacher_logits=None):
    r"""Train one student on ``data`` and return it with its history.

    .. math::

        L = \alpha\, D_T(z_s, z_t) + (1 - \alpha)\, \mathrm{CE}(z_s, y), \qquad
        \bar z_s = \alpha\, \partial D_T / \partial z_s + (1 - \alpha)(q_s - e_y) / B

    (``method="scratch"`` is the cross-entropy alone.)

    Parameters
    ----------
    method : {"scratch", "forward_kl", "reverse_kl", "generalized_jsd"}
    seed : int
    setup : LMSetup
    data : NamesData
    teacher_logits : ndarray of shape (M, V), optional
        The teacher's logits on ``data.X_train`` (needed unless ``method="scratch"``).

    Returns
    -------
    student : CharLM
    history : minikd.History
    """
    func = "train_student"
    check_choice(method, "method", func, ("scratch", *DIVERGENCES))
    if method != "scratch" and teacher_logits is None:
        raise param_error("teacher_logits", func, f"the teacher's logits for method={method!r}",
                          "None")
    init, order, _ = streams(seed)
    student = CharLM(setup.context, setup.embed_dim, tuple(setup.hidden),
                     rng=np.random.default_rng(init))
    X = data.X_train[:, data.X_train.shape[1] - setup.context:]  # (M, K)
    y = as_labels(data.y_train, (X.shape[0],), student.vocab, func, name="data.y_train")
    z_t = teacher_logits
    T, alpha = setup.temperature, setup.alpha
    if z_t is not None:
        z_t = as_float_array(z_t, "teacher_logits", func, ndim=2)
        if z_t.shape != (X.shape[0], student.vocab):
            raise param_error("teacher_logits", func, f"shape {(X.shape[0], student.vocab)}",
                              f"shape {z_t.shape}")
        check_logit_range(z_t, T, "teacher_logits", func)
    limit = logit_limit(student.dtype, T)  # the strictest of T and 1 (the CE)
    extra = {"beta": setup.beta} if method == "generalized_jsd" else {}

    def step(idx):
        z_s, cache = guarded_forward(student, X[idx], limit)  # (B, V)
        if z_s is None:  # diverged: train_loop's NonFiniteLossError names the step
            return {"loss": math.nan}, {}
        if method == "scratch":
            ce, dce = cross_entropy_kernel(z_s, y[idx])
            return {"loss": ce}, student.backward(dce, cache)
        soft, dsoft = DIVERGENCES[method](z_s, z_t[idx], temperature=T, **extra)
        if alpha == 1.0:  # no hard term: the cross-entropy would cost a fifth of the step
            return {"loss": soft}, student.backward(dsoft, cache)
        ce, dce = cross_entropy_kernel(z_s, y[idx])
        loss = alpha * soft + (1 - alpha) * ce
        dz = alpha * dsoft + (1 - alpha) * dce  # (B, V)
        return {"loss": loss, "soft": soft, "ce": ce}, student.backward(dz, cache)

    lr = setup.learning_rate(method)
    history = train_loop(student.params, Adam(student.params, lr=lr), X.shape[0], step,
                         epochs=setup.epochs, batch_size=setup.batch_size,
                         rng=np.random.default_rng(order),
                         schedule=CosineSchedule(lr, total=setup.epochs), verbose=False,
                         label=f"seed {seed} {method}")
    return student, history


def sample_names(model, n, seed):
    """``n`` names sampled from ``model`` with the seed's sampling stream."""
    rng = np.random.default_rng(streams(seed)[2])
    return [decode(tokens) for tokens in model.sample(n, boundary=BOUNDARY, rng=rng)]


def run_student(method, seed, setup, data, teacher_logits):
    """Train one student, score it on the validation and test names, sample names from it (a
    task of map_runs: on one BLAS thread, seeded by ``seed`` alone)."""
    start = time.perf_counter()
    with blas_threads(1):
        student, history = train_student(method, seed, setup, data, teacher_logits)
        record = {"method": method, "seed": seed,
                  "test_nll": mean_nll(student, data.X_test, data.y_test),
                  "val_nll": mean_nll(student, data.X_val, data.y_val),
                  "train_loss": history[-1]["loss"],
                  "samples": sample_names(student, setup.n_samples, seed)}
    record["seconds"] = time.perf_counter() - start
    return record
