r"""The job of ``minikd lm``: a character language model distilled, against one trained from
scratch, on the US Census 1990 names.

One teacher (shipped, or trained by ``train_teacher=True``) scores every training context once;
its logits are cached. Then, on each seed, students of one small size are trained for the same
number of Adam steps, from the same initial weights and through the same mini-batches:

* ``scratch``: cross-entropy on the next character, :math:`-\log q_{y}`;
* ``forward_kl``: :math:`\alpha\, T^2 KL(p_t \| q_s) + (1 - \alpha)\, \mathrm{CE}` per character
  (Hinton et al. 2015, §2; word-level KD of Kim & Rush 2016, Eq. 4);
* ``reverse_kl``: the same with :math:`KL(q_s \| p_t)` (MiniLLM, Gu et al. 2024);
* ``generalized_jsd``: the same with GKD's generalized JSD at β (Agarwal et al. 2024, Eq. 1).

Each student is scored by its test NLL in nats per character (and bits: nats / ln 2), its paired
gain over the scratch student of the same seed, and names sampled from it (their mean length and
the share not in the training names). Runs go through :func:`~minikd.experiments.parallel.map_runs`;
each is seeded by its own seed and runs on one BLAS thread, so the numbers do not depend on
``jobs``. Every default was chosen on the validation names, with seeds other than the reported
ones (``docs/scripts/select_lm.py``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from .._threads import blas_threads
from .._validation import (
    check_choice,
    check_int,
    check_positive,
    check_temperature,
    check_unit_interval,
    logit_limit,
    param_error,
)
from ..losses import cross_entropy, forward_kl, generalized_jsd, reverse_kl
from ..nn import Adam, CosineSchedule
from ..nn.char_lm import CharLM
from ..training import train_loop
from . import lm_teacher
from .lm_report import summarise
from .lm_teacher import guarded_forward, load_teacher, mean_nll, params_sha256, train_teacher
from .names import BOUNDARY, decode, load_names_data
from .parallel import map_runs

__all__ = ["DIVERGENCES", "LMSetup", "run_lm", "train_student"]

DIVERGENCES = {"forward_kl": forward_kl, "reverse_kl": reverse_kl,
               "generalized_jsd": generalized_jsd}


@dataclass(frozen=True)
class LMSetup:
    r"""The knobs of :func:`run_lm`; the defaults are the ``minikd lm`` defaults.

    Attributes
    ----------
    seeds, first_seed : int
        Seeds ``first_seed .. first_seed + seeds - 1``; each seeds the students' initial weights,
        their mini-batch order and the sampling (shared by every student of the seed).
    context, embed_dim : int
        The students' K and D.
    hidden : tuple of int
        The students' hidden widths.
    epochs, batch_size : int
        The budget of every student: ``epochs`` passes over the training characters in
        mini-batches of ``batch_size`` (Adam, cosine decay over the epochs).
    lr, scratch_lr : float
        Adam's learning rate of the distilled students and of the scratch student, each tuned
        on the validation names for its own loss.
    methods : tuple of str
        Divergences of the distilled students, from :data:`DIVERGENCES`.
    temperature, alpha, beta : float
        T, the weight of the soft term, and the JSD's β.
    n_samples : int
        Names sampled per model (mean length, novelty); the table shows the first few.
    train_names : int or None
        Train on the first ``train_names`` training names only (a quick run); None: all.
    teacher : str or None
        A teacher file (``CharLM.save``); None is the shipped one.
    train_teacher : bool
        Train a fresh teacher by :data:`~minikd.experiments.lm_teacher.TEACHER` instead.
    """

    seeds: int = 3
    first_seed: int = 0
    context: int = 8
    embed_dim: int = 8
    hidden: tuple = (32,)
    epochs: int = 1
    batch_size: int = 256
    lr: float = 1e-2
    scratch_lr: float = 1e-2
    methods: tuple = ("forward_kl", "reverse_kl", "generalized_jsd")
    temperature: float = 1.0
    alpha: float = 1.0
    beta: float = 0.5
    n_samples: int = 500
    train_names: int | None = None
    teacher: str | None = None
    train_teacher: bool = False

    def checked(self):
        """Return self after checking every field (ValueError/TypeError naming the field)."""
        func = "LMSetup"
        for name in ("seeds", "context", "embed_dim", "epochs", "batch_size"):
            check_int(getattr(self, name), name, func, low=1)
        check_int(self.first_seed, "first_seed", func, low=0)
        check_int(self.n_samples, "n_samples", func, low=0)
        if self.train_names is not None:
            check_int(self.train_names, "train_names", func, low=1)
        if not isinstance(self.hidden, (tuple, list)) or not self.hidden:
            raise param_error("hidden", func, "a non-empty tuple of ints", repr(self.hidden),
                              TypeError)
        for h in self.hidden:
            check_int(h, "hidden", func, low=1)
        if not isinstance(self.methods, (tuple, list)):
            raise param_error("methods", func, "a tuple of str", repr(self.methods), TypeError)
        for m in self.methods:
            check_choice(m, "methods", func, tuple(DIVERGENCES))
        check_positive(self.lr, "lr", func)
        check_positive(self.scratch_lr, "scratch_lr", func)
        check_temperature(self.temperature, func)
        check_unit_interval(self.alpha, "alpha", func)
        check_unit_interval(self.beta, "beta", func)
        if not isinstance(self.train_teacher, bool):
            raise param_error("train_teacher", func, "a bool", repr(self.train_teacher),
                              TypeError)
        if self.teacher is not None and (self.train_teacher
                                         or not isinstance(self.teacher, (str, os.PathLike))):
            raise param_error("teacher", func, "None with train_teacher=True, else None or a "
                              "path", repr(self.teacher), TypeError)
        return self


def _streams(seed):
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
    init, order, _ = _streams(seed)
    student = CharLM(setup.context, setup.embed_dim, tuple(setup.hidden),
                     rng=np.random.default_rng(init))
    X = data.X_train[:, data.X_train.shape[1] - setup.context:]  # (M, K)
    y, z_t = data.y_train, teacher_logits
    T, alpha = setup.temperature, setup.alpha
    limit = logit_limit(student.dtype, T)  # the strictest of T and 1 (the CE)
    extra = {"beta": setup.beta} if method == "generalized_jsd" else {}

    def step(idx):
        z_s, cache = guarded_forward(student, X[idx], limit)  # (B, V)
        if z_s is None:  # diverged: train_loop's NonFiniteLossError names the step
            return {"loss": math.nan}, {}
        if method == "scratch":
            ce, dce = cross_entropy(z_s, y[idx])
            return {"loss": ce}, student.backward(dce, cache)
        # TODO(kernel): forward_kl_kernel / reverse_kl_kernel / generalized_jsd_kernel
        soft, dsoft = DIVERGENCES[method](z_s, z_t[idx], temperature=T, **extra)
        if alpha == 1.0:  # no hard term: the cross-entropy would cost a fifth of the step
            return {"loss": soft}, student.backward(dsoft, cache)
        ce, dce = cross_entropy(z_s, y[idx])
        loss = alpha * soft + (1 - alpha) * ce
        dz = alpha * dsoft + (1 - alpha) * dce  # (B, V)
        return {"loss": loss, "soft": soft, "ce": ce}, student.backward(dz, cache)

    lr = setup.scratch_lr if method == "scratch" else setup.lr
    history = train_loop(student.params, Adam(student.params, lr=lr), X.shape[0], step,
                         epochs=setup.epochs, batch_size=setup.batch_size,
                         rng=np.random.default_rng(order),
                         schedule=CosineSchedule(lr, total=setup.epochs), verbose=False,
                         label=f"seed {seed} {method}")
    return student, history


def _sample_names(model, n, seed):
    """``n`` names sampled from ``model`` with the seed's sampling stream."""
    rng = np.random.default_rng(_streams(seed)[2])
    return [decode(tokens) for tokens in model.sample(n, boundary=BOUNDARY, rng=rng)]


def _run_one(method, seed, setup, data, teacher_logits):
    """One student of one seed: train, score, sample (a task of map_runs)."""
    start = time.perf_counter()
    with blas_threads(1):
        student, history = train_student(method, seed, setup, data, teacher_logits)
        record = {"method": method, "seed": seed,
                  "test_nll": mean_nll(student, data.X_test, data.y_test),
                  "val_nll": mean_nll(student, data.X_val, data.y_val),
                  "train_loss": history[-1]["loss"],
                  "samples": _sample_names(student, setup.n_samples, seed)}
    record["seconds"] = time.perf_counter() - start
    return record


def _data(setup, teacher_context):
    """The names data with room for both contexts, cut to ``setup.train_names`` if given."""
    data = load_names_data(context=max(setup.context, teacher_context))
    if setup.train_names is None:
        return data
    train = data.names.train[:setup.train_names]
    m = sum(len(name) + 1 for name in train)  # the examples of those names come first
    return data._replace(X_train=data.X_train[:m], y_train=data.y_train[:m],
                         names=data.names._replace(train=train))


def _resolve(setup, overrides):
    setup = setup or LMSetup()
    if overrides:
        setup = replace(setup, **overrides)
    return setup.checked()


def run_lm(setup=None, *, jobs=None, backend="loky", verbose=False, teacher_out=None,
           **overrides):
    r"""Train the teacher's students on every seed and summarise.

    .. math::

        \text{gain}_{m,s} = \mathrm{NLL}(\text{scratch}_s) - \mathrm{NLL}(m_s)
        \quad \text{(nats per character; > 0: the distilled student is better)}

    Parameters
    ----------
    setup : LMSetup, optional
    jobs : int, optional
        Worker processes for the runs (default: the cores); the numbers do not depend on it.
    backend : {"loky", "dask", "ray"}, default "loky"
    verbose : bool, default False
        Progress of the teacher's training (``train_teacher=True``) on stderr.
    teacher_out : str, optional
        With ``train_teacher=True``: save the new teacher there (``CharLM.save``).
    **overrides
        Fields of :class:`LMSetup` to replace.

    Returns
    -------
    dict
        ``setup``, ``data`` (names and characters per split, mean name length, steps),
        ``teacher`` (source, recipe, checksum, test/val NLL, samples), ``runs`` (one record per
        student and seed), ``summary`` (per method: test NLL and bits per character mean ± std,
        gain over scratch, wins, mean sampled length, novelty, samples) and ``seconds``.
    """
    setup = _resolve(setup, overrides)
    start = time.perf_counter()
    if setup.train_teacher:
        recipe = lm_teacher.TEACHER
        data = _data(setup, recipe.context)
        teacher, history = train_teacher(data, recipe, verbose=verbose)
        info = {"source": "trained", "recipe": asdict(recipe),
                "sha256": params_sha256(teacher.params), "val_nll_per_epoch": history["val_nll"]}
        if teacher_out is not None:
            teacher.save(teacher_out)
    else:
        teacher, info = load_teacher(setup.teacher)
        data = _data(setup, teacher.context)
    with blas_threads(1):
        X_t = data.X_train[:, data.X_train.shape[1] - teacher.context:]  # (M, K_t)
        teacher_logits = teacher.logits(X_t) if setup.methods else None  # (M, V), cached
        info.update(test_nll=mean_nll(teacher, data.X_test, data.y_test),
                    val_nll=mean_nll(teacher, data.X_val, data.y_val),
                    samples=_sample_names(teacher, setup.n_samples, setup.first_seed),
                    config=teacher.config, n_params=teacher.n_params)
    methods = ("scratch", *setup.methods)
    seeds = range(setup.first_seed, setup.first_seed + setup.seeds)
    tasks = [(m, s, setup, data, teacher_logits) for s in seeds for m in methods]
    runs = map_runs(_run_one, tasks, jobs=jobs, backend=backend)
    student = CharLM(setup.context, setup.embed_dim, tuple(setup.hidden), rng=0)
    return summarise(setup, data, info, runs, methods, student.n_params,
                     time.perf_counter() - start)
