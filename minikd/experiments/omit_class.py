r"""Hinton et al. (2015), §3: dark knowledge about a class the transfer set never shows, and
three ways to shift that class's output bias afterwards (``minikd omit-class``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from .._threads import limits_blas_threads
from .._validation import check_fraction, check_int, param_error
from . import data as _data
from .data import load_dataset
from .parallel import map_runs
from .progress import progress_bar
from .seed_runs import (
    mean_std,
    n_classes,
    train_distilled,
    train_scratch,
    train_teacher,
)
from .setup import DistillSetup

__all__ = ["OMIT_RULES", "OmitSetup", "omit_seed", "run_omit_class"]



@dataclass(frozen=True)
class OmitSetup:
    r"""The knobs of :func:`run_omit_class`; the defaults are the ``minikd omit-class`` defaults.

    Attributes
    ----------
    dataset : {"digits", "mnist1d", "idx"}
    data_dir : str or None
    n_train : int or None
    omit : int
        The class never shown in the transfer set (Hinton et al. used the digit 3).
    seeds, first_seed : int
    teacher_hidden, student_hidden : tuple of int
    teacher_dropout : float
    teacher_epochs, epochs : int
    lr, batch_size : float, int
    temperature, alpha : float
        Hinton et al. used T = 20 on MNIST. ``alpha = 1`` (soft targets only) by default: hard
        labels of the other classes would push the omitted class's logit down on every example.
    val_fraction : float
        Share of the training split held out (with labels) to choose the validation shift; the
        teacher and the student train on the rest.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    n_train: int | None = None
    omit: int = 3
    seeds: int = 5
    first_seed: int = 0
    teacher_hidden: tuple = (256, 256)
    teacher_dropout: float = 0.3
    teacher_epochs: int = 60
    student_hidden: tuple = (64,)
    epochs: int = 100
    lr: float = 3e-3
    batch_size: int = 64
    temperature: float = 20.0
    alpha: float = 1.0
    val_fraction: float = 0.2

    def checked(self):
        """Return self after checking every field (ValueError/TypeError naming the field)."""
        func = "OmitSetup"
        base = DistillSetup(
            dataset=self.dataset, data_dir=self.data_dir, n_train=self.n_train,
            seeds=self.seeds, first_seed=self.first_seed, teacher_hidden=self.teacher_hidden,
            teacher_dropout=self.teacher_dropout, teacher_epochs=self.teacher_epochs,
            student_hidden=self.student_hidden, epochs=self.epochs, lr=self.lr,
            batch_size=self.batch_size, temperature=self.temperature, alpha=self.alpha)
        base.checked()
        check_int(self.omit, "omit", func, low=0)
        check_fraction(self.val_fraction, "val_fraction", func, closed_low=False)
        return self

    def as_distill_setup(self):
        return DistillSetup(
            dataset=self.dataset, data_dir=self.data_dir, n_train=self.n_train,
            seeds=self.seeds, first_seed=self.first_seed, teacher_hidden=self.teacher_hidden,
            teacher_dropout=self.teacher_dropout, teacher_epochs=self.teacher_epochs,
            student_hidden=self.student_hidden, epochs=self.epochs, lr=self.lr,
            batch_size=self.batch_size, temperature=self.temperature, alpha=self.alpha,
            weight_decay=0.0)


_SHIFT_GRID = np.round(np.arange(-5.0, 20.0 + 1e-9, 0.05), 2)  # candidate bias shifts


def _acc_after_shift(logits, y, c, shifts):
    """Overall accuracy of ``logits`` with ``shifts[k]`` added to column c, for each k.

    Returns an ndarray of shape (K,).
    """
    others = np.delete(logits, c, axis=1)  # (N, C-1)
    best_other = others.max(axis=1)  # (N,)
    arg_other = np.delete(np.arange(logits.shape[1]), c)[others.argmax(axis=1)]  # (N,)
    pred_c = (logits[:, c][None, :] + shifts[:, None]) > best_other[None, :]  # (K, N)
    correct = np.where(pred_c, y[None, :] == c, (arg_other == y)[None, :])  # (K, N)
    return correct.mean(axis=1)


def _best_shift(logits, y, c):
    """The shift on the grid that maximises overall accuracy (the smallest |shift| on ties)."""
    acc = _acc_after_shift(logits, y, c, _SHIFT_GRID)
    best = np.flatnonzero(acc == acc.max())
    return float(_SHIFT_GRID[best[np.argmin(np.abs(_SHIFT_GRID[best]))]])


def _prior_shift(logits, c, prior, iters=60):
    r"""The shift b with which the share of rows predicted as class c equals ``prior``.

    Uses no labels: the share grows monotonically with b, so bisection finds it.
    """
    others = np.delete(logits, c, axis=1).max(axis=1)  # (N,)
    margin = others - logits[:, c]  # class c wins once b > margin
    lo, hi = float(margin.min()) - 1.0, float(margin.max()) + 1.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if np.mean(margin < mid) < prior:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _class_acc(logits, y, c, shift=0.0):
    z = logits.copy()
    z[:, c] += shift
    pred = z.argmax(axis=1)
    return float(np.mean(pred[y == c] == c)), float(np.mean(pred == y))


OMIT_RULES = ("none", "test_optimised", "validation", "class_prior")


@limits_blas_threads
def run_omit_class(setup=None, *, verbose=True, jobs=None, backend="loky", scheduler=None,
                   **overrides):
    r"""Hinton et al. (2015), §3: distil with one class missing from the transfer set, then
    shift that class's output bias.

    .. math::

        z'_c = z_c + b, \qquad
        b_{\text{prior}}: \frac{1}{M}\sum_m [\arg\max_k z'_{mk} = c] = \pi_c

    For each seed (which also draws the digits' train/test split, so the spread over seeds
    includes the split's variation; MNIST-1D and IDX have one fixed split): a teacher trains on
    every class; a student is distilled from it on a transfer
    set with no example of class ``omit``; a scratch student trains on the same transfer set
    with hard labels (it can never predict the missing class). The distilled student's
    accuracy on the test examples of the missing class is reported before any shift and after
    adding b to its logit, with b chosen three ways:

    * ``test_optimised``: the b that maximises overall *test* accuracy, as the paper did
      ("+3.5 ... optimizes overall performance on the test set"); optimistic by construction;
    * ``validation``: the b that maximises accuracy on a labelled validation split;
    * ``class_prior``: the b with which the share of unlabelled validation inputs predicted as
      the class equals its share :math:`\pi_c` of the teacher's training labels (no label is
      looked at).

    Parameters
    ----------
    setup : OmitSetup, optional
    verbose : bool, default True
        A progress bar on stderr when it is a terminal, counting finished seeds.
    jobs : int, optional
        Seeds at once, each in its own process with one BLAS thread; default: the cores. The
        results do not depend on it.
    backend : {"loky", "dask", "ray"}, default "loky"
    scheduler : str, optional
        As in :func:`minikd.experiments.parallel.map_runs`.
    **overrides
        Fields of :class:`OmitSetup` to replace.

    Returns
    -------
    dict
        ``setup``, ``data`` (sizes), ``per_seed`` (per model and rule: accuracy on the class,
        overall accuracy, the shift), ``summary`` (mean and std of each), ``seconds``.
    """
    setup = setup or OmitSetup()
    if overrides:
        setup = replace(setup, **overrides)
    setup = setup.checked()
    start = time.perf_counter()
    full = load_dataset(setup.dataset, data_dir=setup.data_dir, n_train=setup.n_train,
                        rng=setup.first_seed)
    c = setup.omit
    n_class = n_classes(full)
    if c >= n_class:
        raise param_error("omit", "run_omit_class", f"a class in [0, {n_class})", repr(c))
    seeds = list(range(setup.first_seed, setup.first_seed + setup.seeds))
    with progress_bar(len(seeds), enabled=verbose, desc="omit-class", unit="seed") as step:
        per_seed = map_runs(omit_seed, [(setup, full, seed) for seed in seeds], jobs=jobs,
                            backend=backend, scheduler=scheduler,
                            on_done=lambda i, _: step(f"seed {seeds[i]}"))
    keys = ["teacher", "scratch", *(f"distilled_{r}" for r in OMIT_RULES)]
    summary = {}
    for k in keys:
        summary[k] = {m: mean_std([r[k][m] for r in per_seed])
                      for m in per_seed[0][k]}
    return {"setup": asdict(setup),
            "data": {"n_train": full.X_train.shape[0], "n_test": full.X_test.shape[0],
                     "n_test_class": int(np.sum(full.y_test == c)), "n_classes": n_class,
                     "n_features": full.X_train.shape[1]},
            "per_seed": per_seed, "summary": summary,
            "seconds": time.perf_counter() - start}


def omit_seed(setup, full, seed):
    """One seed of :func:`run_omit_class`: its teacher, its distilled and scratch students on
    the transfer set without class ``setup.omit``, and the record of every shift rule."""
    c = setup.omit
    base = setup.as_distill_setup()
    if setup.dataset == "digits":  # its train/test split is drawn from the seed
        full = load_dataset("digits", n_train=setup.n_train, rng=seed)
    X_fit, y_fit, X_val, y_val = _data.train_val_split(
        full.X_train, full.y_train, val_fraction=setup.val_fraction, rng=seed)
    fit_data = _data.Split(X_fit, y_fit, full.X_test, full.y_test)
    teacher, _ = train_teacher(base, fit_data, seed, False)
    X_tr, y_tr = _data.omit_classes(X_fit, y_fit, c)  # the transfer set: no class c
    transfer = _data.Split(X_tr, y_tr, full.X_test, full.y_test)
    # The students keep all C outputs (the test labels include class c) though c never
    # appears in their training data.
    student, _ = train_distilled(base, transfer, teacher, seed, False)
    scratch, _ = train_scratch(base, transfer, seed, 0.0, False)
    z_test = student.logits_unchecked(full.X_test)  # (M, C)
    z_val = student.logits_unchecked(X_val)
    prior = float(np.mean(y_fit == c))
    shifts = {"none": 0.0,
              "test_optimised": _best_shift(z_test, full.y_test, c),
              "validation": _best_shift(z_val, y_val, c),
              "class_prior": _prior_shift(z_val, c, prior)}
    record = {"seed": seed}
    t_class, t_all = _class_acc(teacher.logits_unchecked(full.X_test), full.y_test, c)
    record["teacher"] = {"class_acc": t_class, "acc": t_all}
    s_class, s_all = _class_acc(scratch.logits_unchecked(full.X_test), full.y_test, c)
    record["scratch"] = {"class_acc": s_class, "acc": s_all}
    for rule, b in shifts.items():
        cls, allc = _class_acc(z_test, full.y_test, c, b)
        record[f"distilled_{rule}"] = {"class_acc": cls, "acc": allc, "shift": b}
    return record
