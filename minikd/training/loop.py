r"""The training loop: mini-batches, optimizer updates, guards, per-epoch history.

:func:`train_loop` knows nothing about models or losses. It draws a permutation of the sample
indices each epoch, hands each mini-batch's indices to a ``step`` function that returns the
batch's loss terms and gradients, and applies the optimizer. :func:`fit` is the loop with a
cross-entropy step for one :class:`~minikd.MLP`; the distillation trainer passes its own step.

One epoch, in order:

1. ``optimizer.lr = schedule(epoch - 1)`` when a schedule is given;
2. for each mini-batch ``idx`` of a fresh permutation:
   ``terms, grads = step(idx)``; refuse non-finite terms; optionally clip ``grads``;
   ``optimizer.step(grads)`` (all-or-nothing: refuses an update that would make a parameter
   non-finite, see :mod:`minikd.nn.optim`);
3. average each term over the epoch, weighted by batch size; ``evaluate(epoch)``; one record.

Validate once, then trust: :func:`train_loop`, :func:`fit` and :class:`minikd.Distiller` check
their data, labels and hyper-parameters when called; per mini-batch they call the loss kernels
(:func:`minikd.losses.response.cross_entropy_kernel`, ...) and the model's unchecked forward and
backward (scikit-learn's ``prefer_skip_nested_validation`` idea). What can still go wrong inside
a step is caught every step: a NaN or inf loss term (one ``math.isfinite`` per term; floating-
point warnings are silenced inside the steps, so this error is the one report), and an update
that would make a parameter non-finite (the optimizer's refusal). Either raises
:class:`NonFiniteLossError`, naming the epoch and step; the parameters keep their last finite
values (those before the offending step). That mini-batch under its guards is
:func:`minikd.training.guard.train_batch`.

BLAS runs on one thread during training unless told otherwise (``blas_threads=``, or an
enclosing :func:`minikd.training.blas_threads` block): see :mod:`minikd._threads`.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .._threads import blas_threads as limit_blas_threads
from .._threads import resolve_blas_threads
from .._validation import as_labels, check_bool, check_int, check_positive, param_error
from ..losses.response import cross_entropy_kernel
from ..nn.mlp import MLP
from ..nn.optim import SGD, Optimizer
from .guard import NonFiniteLossError, train_batch  # re-exported: NonFiniteLossError
from .history import History, format_record

__all__ = ["NonFiniteLossError", "fit", "train_loop"]


def _check_callable(value, name, func, optional=True):
    if value is None and optional:
        return None
    if not callable(value):
        raise param_error(name, func, "a callable" + (" or None" if optional else ""),
                          repr(value), TypeError)
    return value


def train_loop(params, optimizer, n_samples, step, *, epochs, batch_size, rng=None,
               evaluate=None, schedule=None, clip_norm=None, drop_last=False, verbose=True,
               label="train", blas_threads=None):
    r"""Run mini-batch training: permute, step, guard, update, average, evaluate, record.

    .. math::

        \theta \leftarrow \mathrm{opt}\big(\theta, \nabla_\theta L_B(\theta)\big)
        \text{ for each mini-batch } B \text{ of a fresh permutation, each epoch}

    Parameters
    ----------
    params : dict of str to ndarray
        The parameters the optimizer updates (``model.params``); checked for finiteness after
        each update when ``optimizer`` is not a minikd optimizer (ours refuse non-finite
        updates before applying them). It may merge several owners' dicts, e.g.
        ``{**student.params, "Wr": regressor}``: minikd optimizers update the arrays in place,
        so every owner sees the update.
    optimizer : object
        Has ``step(grads)`` and a settable ``lr`` (e.g. :class:`minikd.SGD`).
    n_samples : int
        Number of training samples; indices are drawn from ``range(n_samples)``.
    step : callable
        ``step(idx) -> (terms, grads)``: ``idx`` is an int64 array of shape (B,) of sample
        indices, ``terms`` a dict of str to float (the loss and anything to average over the
        epoch, e.g. ``{"loss": 0.3, "train_acc": 0.9}``), ``grads`` a dict keyed like
        ``params``. It runs with NumPy's floating-point warnings off: a NaN or inf that
        reaches a term or a gradient is reported as :class:`NonFiniteLossError` instead.
    epochs : int
        Number of passes over the data, >= 1.
    batch_size : int
        Mini-batch size B >= 1; the last batch of an epoch may be smaller unless ``drop_last``.
    rng : int, numpy.random.Generator or None
        Source of the permutations.
    evaluate : callable, optional
        ``evaluate(epoch) -> dict`` of extra metrics (e.g. validation accuracy), called after
        each epoch (``epoch`` 1-based) and merged into its record.
    schedule : callable, optional
        ``schedule(t) -> lr`` with t = completed epochs (0 first); sets ``optimizer.lr`` at the
        start of each epoch (see :class:`minikd.StepSchedule`, :class:`minikd.CosineSchedule`).
    clip_norm : float, optional
        Clip the joint gradient norm to this value each step (:func:`minikd.clip_grad_norm`).
    drop_last : bool, default False
        Skip a final batch smaller than ``batch_size``.
    verbose : bool, default True
        Print one progress line per epoch to stderr.
    label : str, default "train"
        Prefix of the progress lines and the error messages.
    blas_threads : int, optional
        BLAS threads during the loop (set with threadpoolctl, restored afterwards). Default:
        the count of an enclosing :func:`minikd.training.blas_threads` block, else 1 (these
        networks are too small for a second thread to pay, and float32 results depend on the
        count).

    Returns
    -------
    History
        One record per epoch: ``epoch``, ``lr``, the averaged terms, the evaluate metrics and
        ``time`` (seconds).

    Raises
    ------
    NonFiniteLossError
        A term is NaN or inf, or the update would make a parameter non-finite; names the epoch
        and step; the parameters keep their values from before that step.
    """
    func = "train_loop"
    if not isinstance(params, dict):
        raise param_error("params", func, "a dict of arrays", type(params).__name__, TypeError)
    if not callable(getattr(optimizer, "step", None)):
        raise param_error("optimizer", func, "an object with a step(grads) method",
                          type(optimizer).__name__, TypeError)
    n_samples = check_int(n_samples, "n_samples", func, low=1)
    step = _check_callable(step, "step", func, optional=False)
    epochs = check_int(epochs, "epochs", func, low=1)
    batch_size = check_int(batch_size, "batch_size", func, low=1)
    evaluate = _check_callable(evaluate, "evaluate", func)
    schedule = _check_callable(schedule, "schedule", func)
    if clip_norm is not None:
        clip_norm = check_positive(clip_norm, "clip_norm", func)
    if not isinstance(label, str):
        raise param_error("label", func, "a str", repr(label), TypeError)
    verbose = check_bool(verbose, "verbose", func)
    n_threads = resolve_blas_threads(blas_threads, func)
    rng = np.random.default_rng(rng)
    guard_params = not isinstance(optimizer, Optimizer)
    n_batches = n_samples // batch_size if drop_last else -(-n_samples // batch_size)
    if n_batches == 0:
        raise param_error("batch_size", func, f"at most n_samples={n_samples} when drop_last "
                          "is True", repr(batch_size))

    history = History()
    with limit_blas_threads(n_threads):
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            if schedule is not None:
                optimizer.lr = schedule(epoch - 1)
            order = rng.permutation(n_samples)  # (n_samples,) int64
            sums, seen = {}, 0
            for b in range(n_batches):
                idx = order[b * batch_size:(b + 1) * batch_size]  # (B,)
                terms = train_batch(params, optimizer, step, idx, clip_norm, guard_params,
                                    (label, epoch, b + 1, n_batches))
                for key, value in terms.items():
                    sums[key] = sums.get(key, 0.0) + value * len(idx)
                seen += len(idx)
            record = {"epoch": epoch}
            if hasattr(optimizer, "lr"):
                record["lr"] = float(optimizer.lr)
            record.update({key: total / seen for key, total in sums.items()})
            if evaluate is not None:
                record.update(evaluate(epoch))
            record["time"] = time.perf_counter() - start
            history.append(record)
            if verbose:
                print(format_record(label, record, epochs), file=sys.stderr, flush=True)
    return history


def _accuracy(model, X, y):
    """Fraction of rows of X whose predicted class is y (X already validated)."""
    return float(np.mean(model.logits_unchecked(X).argmax(axis=1) == y))


def fit(model, X, y, *, epochs, batch_size=128, optimizer=None, X_val=None, y_val=None,
        rng=None, schedule=None, clip_norm=None, verbose=True, label="fit", blas_threads=None):
    r"""Train ``model`` on ``(X, y)`` with cross-entropy: the teacher's training.

    .. math::

        L = -\frac{1}{B} \sum_{n \in B} \log \mathrm{softmax}(z_n)_{y_n}, \qquad
        \frac{\partial L}{\partial z_n} = \frac{1}{B}\,(\mathrm{softmax}(z_n) - e_{y_n})

    ``X``, ``y`` and the validation set are checked once, here; each mini-batch then runs
    ``model.forward_unchecked``, :func:`minikd.losses.response.cross_entropy_kernel` and
    ``model.backward_unchecked``.

    Parameters
    ----------
    model : MLP
        Trained in place (dropout active during training).
    X : array_like of shape (N, D)
        Converted once to the model's dtype.
    y : array_like of int of shape (N,)
        Class labels in [0, C).
    epochs : int
    batch_size : int, default 128
    optimizer : optional
        Defaults to ``SGD(model.params, lr=0.05, momentum=0.9)``.
    X_val : array_like of shape (M, D), optional
    y_val : array_like of int of shape (M,), optional
        A held-out set, both or neither, scored after each epoch (``val_acc``): a validation
        split to choose with, or a test split watched only for curves (the caller says which).
    rng : int, numpy.random.Generator or None
        Mini-batch order. (Dropout draws from the model's own Generator.)
    schedule, clip_norm, verbose, label, blas_threads
        As in :func:`train_loop` (``blas_threads``: BLAS threads while training, default 1).

    Returns
    -------
    History
        Columns ``epoch``, ``lr``, ``loss`` (mean training cross-entropy), ``train_acc``
        (accuracy on the training mini-batches as they were trained, in training mode: free to
        compute), ``val_acc`` (when a validation set is given), ``time``.

    Examples
    --------
    >>> import numpy as np
    >>> from minikd import MLP
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 2)).astype(np.float32)
    >>> y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)  # XOR of the signs
    >>> model = MLP([2, 32, 2], rng=0)
    >>> history = fit(model, X, y, epochs=30, batch_size=20, rng=0, verbose=False)
    >>> history["train_acc"][-1] > 0.9
    True
    """
    func = "fit"
    if not isinstance(model, MLP):
        raise param_error("model", func, "an MLP", type(model).__name__, TypeError)
    X = model.check_input(X, func)
    y = as_labels(y, (X.shape[0],), model.sizes[-1], func, name="y")
    if (X_val is None) != (y_val is None):
        raise param_error("y_val" if X_val is not None else "X_val", func,
                          "given together with the other of X_val, y_val", "only one of them")
    if X_val is not None:
        X_val = model.check_input(X_val, func)
        y_val = as_labels(y_val, (X_val.shape[0],), model.sizes[-1], func, name="y_val")
    n_threads = resolve_blas_threads(blas_threads, func)
    if optimizer is None:
        optimizer = SGD(model.params, lr=0.05, momentum=0.9)

    def step(idx):
        xb, yb = X[idx], y[idx]  # (B, D), (B,): one gather per batch
        logits, cache = model.forward_unchecked(xb, True)  # (B, C)
        loss, dlogits = cross_entropy_kernel(logits, yb)  # a NaN loss stops train_loop
        grads = model.backward_unchecked(dlogits, cache)
        acc = np.count_nonzero(logits.argmax(axis=1) == yb) / len(yb)
        return {"loss": loss, "train_acc": acc}, grads

    evaluate = None
    if X_val is not None:
        def evaluate(epoch):
            return {"val_acc": _accuracy(model, X_val, y_val)}

    return train_loop(model.params, optimizer, X.shape[0], step, epochs=epochs,
                      batch_size=batch_size, rng=rng, evaluate=evaluate, schedule=schedule,
                      clip_norm=clip_norm, verbose=verbose, label=label,
                      blas_threads=n_threads)
