r"""The teacher of ``minikd lm``: its recipe, its training, and the copy shipped with minikd.

A teacher is trained once and reused, as in practice: ``datafiles/names/teacher.npz`` was written
by ``minikd lm --train-teacher --teacher-out teacher.npz`` (:data:`TEACHER` is the recipe: seed,
budget, learning rate) and its parameters' checksum is recorded in :data:`TEACHER_SHA256`, so
the table can say which teacher it used. ``--train-teacher`` trains a fresh one by the same
recipe (float32 results can differ in the last bits between BLAS builds; the checksum says
whether yours is bit-identical).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from .._threads import blas_threads
from .._validation import (
    as_labels,
    check_int,
    check_positive,
    check_unit_interval,
    logit_limit,
    param_error,
)
from ..losses import cross_entropy
from ..losses.response import cross_entropy_kernel
from ..nn import Adam, CosineSchedule
from ..nn.char_lm import CharLM
from ..training import train_loop

__all__ = ["TEACHER", "TEACHER_FILE", "TEACHER_SHA256", "TeacherRecipe", "guarded_forward",
           "load_teacher", "mean_nll", "params_sha256", "train_teacher"]

TEACHER_FILE = os.path.join(os.path.dirname(__file__), "datafiles", "names", "teacher.npz")


@dataclass(frozen=True)
class TeacherRecipe:
    """How the teacher is built and trained (Adam, cosine decay over the epochs, cross-entropy
    on the training names only; the epochs and learning rate were chosen on the validation
    names by ``docs/scripts/select_lm.py``)."""

    context: int = 8
    embed_dim: int = 24
    hidden: tuple = (512,)
    dropout: float = 0.1
    epochs: int = 20
    lr: float = 2e-3
    batch_size: int = 256
    seed: int = 1990

    def checked(self):
        """Return self after checking every field (ValueError/TypeError naming the field)."""
        func = "TeacherRecipe"
        for name in ("context", "embed_dim", "epochs", "batch_size"):
            check_int(getattr(self, name), name, func, low=1)
        check_int(self.seed, "seed", func, low=0)
        if not isinstance(self.hidden, (tuple, list)) or not self.hidden:
            raise param_error("hidden", func, "a non-empty tuple of ints", repr(self.hidden),
                              TypeError)
        check_positive(self.lr, "lr", func)
        if check_unit_interval(self.dropout, "dropout", func) >= 1.0:
            raise param_error("dropout", func, "a float in the range [0, 1)", repr(self.dropout))
        return self


TEACHER = TeacherRecipe()
# sha256 of the shipped teacher's parameters (params_sha256), trained by TEACHER.
TEACHER_SHA256 = "bc47a8c2c3a8b6069bfded071c59875faaf908ac1b78e960c7382c48b64a1051"


def params_sha256(params):
    """sha256 over the parameters' names, dtypes, shapes and bytes (in sorted key order): a
    checksum of the model itself, unlike the .npz file's, which holds zip timestamps.

    Examples
    --------
    >>> a = {"W": np.zeros((2, 2), np.float32), "b": np.zeros(2, np.float32)}
    >>> params_sha256(a) == params_sha256({"b": a["b"], "W": a["W"]})
    True
    >>> params_sha256(a) == params_sha256({**a, "b": np.zeros(2)})  # float64: another model
    False
    """
    h = hashlib.sha256()
    for key in sorted(params):
        arr = np.ascontiguousarray(params[key])
        h.update(f"{key}:{arr.dtype.str}:{arr.shape};".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def guarded_forward(model, contexts, limit):
    """``model.forward(contexts, train=True)``, or ``(None, None)`` when training has diverged:
    a layer overflowed, or a logit is beyond ``limit`` (where the losses refuse it)."""
    try:
        with np.errstate(over="raise", invalid="raise"):
            logits, cache = model.forward(contexts, train=True)  # (B, V)
    except FloatingPointError:
        return None, None
    return (logits, cache) if np.all(np.abs(logits) <= limit) else (None, None)


def mean_nll(model, contexts, targets):
    r"""Mean negative log-likelihood in nats per character,
    :math:`-\frac1M \sum_m \log p(y_m \mid x_m)`, in evaluation mode (the last K columns of
    ``contexts`` are the model's context)."""
    logits = model.logits(contexts[:, contexts.shape[1] - model.context:])  # (M, V)
    return float(cross_entropy(logits, targets).loss)


def train_teacher(data, recipe=None, *, verbose=False):
    """Train a teacher by ``recipe`` (default :data:`TEACHER`) on ``data`` (a
    :class:`~minikd.experiments.names.NamesData` whose context is at least the recipe's), on one
    BLAS thread.

    Returns
    -------
    teacher : CharLM
    history : minikd.History
        Per epoch: ``loss`` (training cross-entropy, dropout on) and ``val_nll``.
    """
    recipe = (TEACHER if recipe is None else recipe).checked()
    init, order = np.random.SeedSequence(recipe.seed).spawn(2)
    teacher = CharLM(recipe.context, recipe.embed_dim, tuple(recipe.hidden),
                     dropout=recipe.dropout, rng=np.random.default_rng(init))
    X = data.X_train[:, data.X_train.shape[1] - recipe.context:]  # (M, K)
    y = as_labels(data.y_train, (X.shape[0],), teacher.vocab, "train_teacher",
                  name="data.y_train")
    limit = logit_limit(teacher.dtype, 1.0)

    def step(idx):
        logits, cache = guarded_forward(teacher, X[idx], limit)  # (B, V)
        if logits is None:  # diverged: train_loop's NonFiniteLossError names the step
            return {"loss": math.nan}, {}
        loss, dlogits = cross_entropy_kernel(logits, y[idx])  # (B,) labels checked above
        return {"loss": loss}, teacher.backward(dlogits, cache)

    def evaluate(epoch):
        return {"val_nll": mean_nll(teacher, data.X_val, data.y_val)}

    with blas_threads(1):
        history = train_loop(teacher.params, Adam(teacher.params, lr=recipe.lr), X.shape[0],
                             step, epochs=recipe.epochs, batch_size=recipe.batch_size,
                             rng=np.random.default_rng(order), evaluate=evaluate,
                             schedule=CosineSchedule(recipe.lr, total=recipe.epochs),
                             verbose=verbose, label="teacher")
    return teacher, history


def load_teacher(path=None):
    """The shipped teacher (checksum verified), or the CharLM saved at ``path``.

    Returns
    -------
    teacher : CharLM
    info : dict
        ``source`` ("shipped" or the path), ``sha256`` (:func:`params_sha256`) and, for the
        shipped one, ``recipe``.
    """
    teacher = CharLM.load(path or TEACHER_FILE)
    digest = params_sha256(teacher.params)
    if path is None and digest != TEACHER_SHA256:
        raise ValueError(f"The shipped teacher {TEACHER_FILE} does not match its recorded "
                         "sha256; the installation is damaged (reinstall minikd).")
    info = {"source": "shipped" if path is None else os.fspath(path), "sha256": digest}
    if path is None:
        info["recipe"] = asdict(TEACHER)
    return teacher, info
