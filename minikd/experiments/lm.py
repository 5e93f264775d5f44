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

Each student gets its test NLL in nats (and bits) per character, its paired gain over the
scratch student of its seed, and sampled names. Runs go through ``map_runs``, each seeded by its
own seed on one BLAS thread, so the numbers do not depend on ``jobs``. Every default was chosen
on the validation names with other seeds (``docs/scripts/select_lm.py``).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace

from .._threads import blas_threads, limits_blas_threads
from .._validation import (
    check_choice,
    check_int,
    check_positive,
    check_temperature,
    check_unit_interval,
    param_error,
)
from ..nn.char_lm import CharLM
from . import lm_teacher
from .lm_report import summarise
from .lm_students import DIVERGENCES, TUNED_LR, run_student, sample_names, train_student
from .lm_teacher import load_teacher, mean_nll, params_sha256, train_teacher
from .names import load_names_data
from .parallel import map_runs
from .progress import progress_bar

__all__ = ["DIVERGENCES", "TUNED_LR", "LMSetup", "run_lm", "train_student"]


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
    lr, scratch_lr : float or None
        Adam's learning rate of every distilled student, and of the scratch student; None (the
        default) gives each student its own, tuned on the validation names (:data:`TUNED_LR`).
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
    lr: float | None = None
    scratch_lr: float | None = None
    methods: tuple = ("forward_kl", "reverse_kl", "generalized_jsd")
    temperature: float = 1.0
    alpha: float = 1.0
    beta: float = 0.5
    n_samples: int = 500
    train_names: int | None = None
    teacher: str | None = None
    train_teacher: bool = False

    def learning_rate(self, method):
        """The learning rate of the student trained with ``method`` ("scratch" or a
        divergence): ``scratch_lr`` or ``lr`` when set, else :data:`TUNED_LR`."""
        given = self.scratch_lr if method == "scratch" else self.lr
        return TUNED_LR[method] if given is None else float(given)

    @property
    def lrs_tuned(self):
        """Whether :data:`TUNED_LR` was tuned for this student, budget and objective."""
        default = LMSetup()
        return tuple(self.hidden) == default.hidden and all(
            getattr(self, k) == getattr(default, k) for k in
            ("context", "embed_dim", "epochs", "batch_size", "temperature", "alpha", "beta"))

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
        for name in ("lr", "scratch_lr"):
            if getattr(self, name) is not None:
                check_positive(getattr(self, name), name, func)
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


@limits_blas_threads
def run_lm(setup=None, *, jobs=None, backend="loky", verbose=False, teacher_out=None,
           progress=False, **overrides):
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
    progress : bool, default False
        A progress bar on stderr when it is a terminal, counting finished student runs.
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
                    samples=sample_names(teacher, setup.n_samples, setup.first_seed),
                    config=teacher.config, n_params=teacher.n_params)
    methods = ("scratch", *setup.methods)
    seeds = range(setup.first_seed, setup.first_seed + setup.seeds)
    tasks = [(m, s, setup, data, teacher_logits) for s in seeds for m in methods]
    with progress_bar(len(tasks), enabled=progress, desc="lm") as step:
        runs = map_runs(run_student, tasks, jobs=jobs, backend=backend,
                        on_done=lambda i, _: step(f"seed {tasks[i][1]} {tasks[i][0]}"))
    student = CharLM(setup.context, setup.embed_dim, tuple(setup.hidden), rng=0)
    return summarise(setup, data, info, runs, methods, student.n_params,
                     time.perf_counter() - start)
