r"""One seed's models: its teacher, its scratch students and its distilled student.

The random streams of a seed are spawned from the seed alone (:func:`seed_streams`), so a model
trained here is the same whichever process trains it and in whatever order.

Each trainer returns its model and ``test_curve``, the accuracy on ``data.X_test`` after each
epoch: :func:`minikd.fit` and :func:`minikd.distill` watch a held-out set given as their
``X_val``/``y_val`` and record it as ``val_acc``; the jobs hand them the *test* split, only to
draw these curves. Nothing is chosen with it (the defaults were chosen on a validation split
of the training data: ``docs/scripts/select_defaults.py``).
"""

from __future__ import annotations

import time

import numpy as np

from ..nn.mlp import MLP
from ..nn.optim import Adam, AdamW
from ..training.distiller import distill
from ..training.loop import fit

__all__ = [
    "accuracy",
    "agreement",
    "mean_std",
    "n_classes",
    "new_student",
    "seconds_per_sample",
    "seed_streams",
    "train_distilled",
    "train_scratch",
    "train_teacher",
]


def accuracy(model, X, y):
    """The fraction of rows of X whose predicted class is y."""
    return float(np.mean(model.predict(X) == y))


def agreement(model, teacher_pred, X):
    """The fraction of rows of X on which the model predicts the teacher's class."""
    return float(np.mean(model.predict(X) == teacher_pred))


def seconds_per_sample(model, X, repeats=5):
    """Best-of-``repeats`` wall time of ``model.predict`` on X, divided by the rows of X."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(X)
        best = min(best, time.perf_counter() - start)
    return best / X.shape[0]


def mean_std(values):
    """Mean and sample standard deviation (0 for one value) of a list of floats; both None
    when a value is None (not measured: a teacher known only by its training logits)."""
    if any(v is None for v in values):
        return {"mean": None, "std": None}
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0}


def seed_streams(seed):
    """Independent random streams of one seed: teacher init, teacher order, student init and
    student order. Every student of a seed uses the same two student streams (paired runs)."""
    ss = np.random.SeedSequence(seed).spawn(4)
    return [int(np.random.default_rng(s).integers(2**63)) for s in ss]


def n_classes(data):
    """The number of classes of a split: one more than its largest label."""
    return int(max(data.y_train.max(), data.y_test.max())) + 1


def train_teacher(setup, data, seed, verbose):
    """The seed's teacher (``setup.teacher_hidden``, dropout, Adam) and its test accuracy per
    epoch."""
    t_init, t_order, _, _ = seed_streams(seed)
    sizes = [data.X_train.shape[1], *setup.teacher_hidden, n_classes(data)]
    teacher = MLP(sizes, dropout=setup.teacher_dropout, rng=t_init)
    hist = fit(teacher, data.X_train, data.y_train, epochs=setup.teacher_epochs,
               batch_size=setup.batch_size, optimizer=Adam(teacher.params, lr=setup.lr),
               X_val=data.X_test, y_val=data.y_test, rng=t_order, verbose=verbose,
               label=f"seed {seed} teacher")
    return teacher, hist["val_acc"]  # fit's held-out column; here the test split


def new_student(setup, data, seed):
    """The seed's untrained student: every student of a seed starts from these weights."""
    _, _, s_init, _ = seed_streams(seed)
    sizes = [data.X_train.shape[1], *setup.student_hidden, n_classes(data)]
    return MLP(sizes, rng=s_init)


def train_scratch(setup, data, seed, weight_decay, verbose, name="scratch"):
    """A student trained on the hard labels alone (AdamW when ``weight_decay`` > 0), and its
    test accuracy per epoch."""
    student = new_student(setup, data, seed)
    # Decoupled weight decay (AdamW, Loshchilov & Hutter 2019); plain Adam when it is 0.
    opt = (AdamW(student.params, lr=setup.lr, weight_decay=weight_decay) if weight_decay
           else Adam(student.params, lr=setup.lr))
    hist = fit(student, data.X_train, data.y_train, epochs=setup.epochs,
               batch_size=setup.batch_size, optimizer=opt, X_val=data.X_test,
               y_val=data.y_test, rng=seed_streams(seed)[3], verbose=verbose,
               label=f"seed {seed} {name}")
    return student, hist["val_acc"]  # the test split's column (module docstring)


def train_distilled(setup, data, teacher, seed, verbose, name="distilled",
                    teacher_logits=None):
    """A student distilled from ``teacher`` with ``setup``'s method, T, alpha and weight (or,
    with ``teacher=None``, from the given ``teacher_logits`` (N, C) of the training rows), and
    its test accuracy per epoch."""
    student = new_student(setup, data, seed)
    # Adam over the student's arrays and, for FitNets, the regressor's (a factory, so the
    # trainer hands it every parameter it trains).
    hist = distill(teacher, student, data.X_train, data.y_train, method=setup.method,
                   teacher_logits=teacher_logits,
                   temperature=setup.temperature, alpha=setup.alpha, beta=setup.term_weight,
                   epochs=setup.epochs, batch_size=setup.batch_size,
                   optimizer=lambda params: Adam(params, lr=setup.lr), X_val=data.X_test,
                   y_val=data.y_test, rng=seed_streams(seed)[3], verbose=verbose,
                   label=f"seed {seed} {name}")
    return student, hist["val_acc"]  # the test split's column (module docstring)
