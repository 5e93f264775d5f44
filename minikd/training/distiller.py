r"""The distillation trainer: a frozen teacher, a student, and any blend of the three families.

:class:`Distiller` holds the objective, RepDistiller's blend (``helper/loops.py``) of
cross-entropy, Hinton's KD term and a feature or relation term
(:mod:`minikd.training.feature_terms`), and its per-mini-batch step; :func:`distill` is the
one-call version. How the gradient reaches the student: ``docs/derivations/distill_objective.md``.

The teacher is frozen: its logits and the hidden layers the loss needs are computed **once**
for the whole transfer set, in evaluation mode, when the :class:`Distiller` is built, and
gathered per mini-batch afterwards. The transfer set, labels and hyper-parameters are checked
there too, once; each mini-batch then runs the student's unchecked forward and backward and the
loss kernels. Training reuses :func:`minikd.train_loop` (its non-finite guard, ``rng``
reproducibility, progress lines, BLAS thread limit and :class:`minikd.History`). The step, the
objective on one mini-batch, is :mod:`minikd.training.objective`'s; the teacher's checks and
targets are :mod:`minikd.training.teacher`'s.
"""

from __future__ import annotations

import numpy as np

from .._threads import blas_threads as limit_blas_threads
from .._threads import resolve_blas_threads
from .._validation import (
    as_labels,
    check_nonnegative,
    check_temperature,
    check_unit_interval,
    param_error,
)
from ..nn.optim import SGD
from ..nn.regressor import init_regressor
from .feature_terms import DEFAULT_BETA, METHODS, check_layers
from .loop import train_loop
from .objective import DistillationObjective
from .teacher import check_teacher, teacher_pass, teacher_targets

__all__ = ["DEFAULT_BETA", "METHODS", "Distiller", "distill"]


class Distiller(DistillationObjective):
    r"""Distil ``student`` from a frozen ``teacher`` on a transfer set: the objective and its step.

    .. math::

        L = \gamma\,\mathrm{CE}(z_s, y) + \alpha\,\mathrm{KD}_T(z_s, z_t)
            + \beta\sum_{(i,j)} F(H^s_i, H^t_j), \qquad
        \bar z_s = \gamma\,\tfrac{1}{B}(p_s - e_y) + \alpha\,\tfrac{T}{B}(p^T_s - p^T_t),
        \quad \texttt{dhidden}[i] = \beta \sum_j \partial F / \partial H^s_i

    with :math:`H_i` = ``cache.hidden[i]``, hidden layer i's activation.

    Use :func:`distill` for the one-call version; this class exposes the pieces that tests and
    experiments need: :attr:`params` (the student's arrays plus the FitNets regressors, the
    dict the optimizer updates), :meth:`step` (loss terms and gradients of one mini-batch) and
    :meth:`train`.

    Parameters
    ----------
    teacher : MLP or None
        Trained teacher; never modified. Its logits and the needed hidden layers of ``X`` are
        computed once, here, in evaluation mode (no dropout). None when ``teacher_logits`` are
        given (then ``method`` must be "kd": the other terms need the teacher's hidden layers).
    student : MLP
        Trained in place. Same input width D and number of classes C as the teacher.
    X : array_like of shape (N, D)
        Transfer set. Converted once to the student's dtype.
    y : array_like of int of shape (N,), optional
        Labels. Without them the CE term is dropped and only soft targets (and the feature
        term) teach.
    method : {"kd", "fitnets", "at", "sp", "rkd", "pkt", "cosine"}, default "kd"
        The feature- or relation-based term F (:mod:`minikd.training.feature_terms`): FitNets
        hint through a learned linear regressor, attention transfer over hidden units (equal
        widths), SP, RKD (``25 · distance + 50 · angle``), PKT, DistilBERT's cosine (equal
        widths). "kd" has no feature term.
    layers : sequence of (int, int), optional
        Pairs ``(student hidden layer i, teacher hidden layer j)`` (indices into
        ``cache.hidden``; negative counts from the last). Default ``[(-1, -1)]``: last hidden
        layer with last hidden layer. Several pairs add their terms.
    temperature : float, default 4.0
        T of the KD term (RepDistiller's ``--kd_T``).
    alpha : float in [0, 1], default 0.9
        Weight of the KD term.
    gamma : float >= 0, optional
        Weight of the CE term; default ``1 - alpha``. Must be 0 or None without labels.
    beta : float >= 0, optional
        Weight of the feature term; default :data:`DEFAULT_BETA` ``[method]`` (RepDistiller's:
        FitNets 100, AT 1000, SP 3000, RKD 1, PKT 30000; cosine 1). These were tuned for CIFAR
        ResNets: on minikd's digits MLPs FitNets' 100 kills every ReLU of the student in the
        first epoch, while 10 works (``docs/loss_scales.md``).
    rng : int, numpy.random.Generator or None
        Initialises the FitNets regressors (PyTorch ``nn.Linear`` style).
    teacher_logits : array_like of shape (N, C), optional
        A teacher's logits on ``X``, computed elsewhere (any framework), with ``teacher=None``:
        they are the cache the teacher's pass would fill, so distilling from an MLP's logits
        equals distilling from that MLP. Finite; converted to the student's dtype.

    Attributes
    ----------
    params : dict of str to ndarray
        ``student.params`` (the same arrays) plus ``"reg{k}.W"`` (H_s, H_t) and ``"reg{k}.b"``
        (H_t,) for FitNets pair k.
    teacher_logits : ndarray of shape (N, C)
        The cached teacher logits (in the student's dtype).
    teacher_hidden : dict of int to ndarray of shape (N, H_j)
        The cached teacher hidden layers the loss uses.
    """

    def __init__(self, teacher, student, X, y=None, *, method="kd", layers=None,
                 temperature=4.0, alpha=0.9, gamma=None, beta=None, rng=None,
                 teacher_logits=None):
        func = "Distiller"
        check_teacher(teacher, student, teacher_logits, method, func)
        if method not in METHODS:
            raise param_error("method", func, f"one of {METHODS}", repr(method))
        self.teacher, self.student, self.method = teacher, student, method
        self.X = student.check_input(X, func)
        n = self.X.shape[0]
        self.y = None if y is None else as_labels(y, (n,), student.sizes[-1], func, name="y")
        self.temperature = check_temperature(temperature, func)
        self.alpha = check_unit_interval(alpha, "alpha", func)
        if gamma is None:
            gamma = 1.0 - self.alpha if self.y is not None else 0.0
        self.gamma = check_nonnegative(gamma, "gamma", func)
        if self.y is None and self.gamma > 0:
            raise param_error("gamma", func, "0 or None when no labels y are given (the CE "
                              "term needs labels)", repr(gamma))
        self.beta = check_nonnegative(DEFAULT_BETA[method] if beta is None else beta, "beta",
                                      func)
        self.pairs = [] if method == "kd" else check_layers(layers, method, student.sizes,
                                                              teacher.sizes, func)

        # The frozen teacher, once for the whole transfer set.
        self.teacher_logits, self.teacher_hidden = teacher_targets(
            teacher, self.X, teacher_logits, sorted({j for _, j in self.pairs}), student,
            self.temperature, method, func)  # (N, C), {j: (N, H_j)}
        self.teacher_pred = self.teacher_logits.argmax(axis=1)  # (N,)

        self.params = dict(student.params)  # the same arrays: updates reach the student
        if method == "fitnets":
            gen = np.random.default_rng(rng)
            for k, (i, j) in enumerate(self.pairs):
                reg = init_regressor(student.sizes[i + 1], teacher.sizes[j + 1], rng=gen,
                                     dtype=student.dtype)
                self.params[f"reg{k}.W"], self.params[f"reg{k}.b"] = reg["W"], reg["b"]

    # -- training -----------------------------------------------------------------------------

    def train(self, *, epochs=10, batch_size=64, optimizer=None, X_val=None, y_val=None,
              rng=None, schedule=None, clip_norm=None, verbose=True, label="distill",
              blas_threads=None):
        """Train the student (and the regressors) with :func:`minikd.train_loop`.

        Parameters are those of :func:`distill`. Returns the :class:`minikd.History`.
        """
        func = "distill"
        n_threads = resolve_blas_threads(blas_threads, func)
        evaluate = None
        if X_val is not None:
            X_val = self.student.check_input(X_val, func)
            t_val = None if self.teacher is None else \
                teacher_pass(self.teacher, X_val, [])[0].argmax(axis=1)  # (M,), once
            if y_val is not None:
                y_val = as_labels(y_val, (X_val.shape[0],), self.student.sizes[-1], func,
                                  name="y_val")

            def evaluate(epoch):
                pred = self.student.logits_unchecked(X_val).argmax(axis=1)
                out = {} if t_val is None else {"val_agree": float(np.mean(pred == t_val))}
                if y_val is not None:
                    out["val_acc"] = float(np.mean(pred == y_val))
                return out
        elif y_val is not None:
            raise param_error("X_val", func, "given when y_val is given", "None")
        if optimizer is None:
            optimizer = SGD(self.params, lr=0.05, momentum=0.9)
        elif isinstance(optimizer, type) or (callable(optimizer)
                                             and not hasattr(optimizer, "step")):
            optimizer = optimizer(self.params)  # a factory: sees the regressors too
        owned = getattr(optimizer, "params", None)
        if isinstance(owned, dict) and not set(self.params) <= set(owned):
            missing = sorted(set(self.params) - set(owned))
            raise param_error("optimizer", func, "an optimizer over Distiller.params (the "
                              "student's and the regressors' arrays), or a factory such as "
                              "lambda params: minikd.Adam(params, lr=1e-3)",
                              f"one without {missing}")
        return train_loop(self.params, optimizer, self.X.shape[0], self.step, epochs=epochs,
                          batch_size=batch_size, rng=rng, evaluate=evaluate, schedule=schedule,
                          clip_norm=clip_norm, verbose=verbose, label=label,
                          blas_threads=n_threads)


def distill(teacher, student, X, y=None, *, method="kd", layers=None, temperature=4.0,
            alpha=0.9, gamma=None, beta=None, epochs=10, batch_size=64, optimizer=None,
            X_val=None, y_val=None, rng=None, schedule=None, clip_norm=None, verbose=True,
            label="distill", blas_threads=None, teacher_logits=None):
    r"""Distil ``student`` from a frozen ``teacher`` on the transfer set ``X``; returns the History.

    .. math::

        L = \gamma\,\mathrm{CE}(z_s, y) + \alpha\,\mathrm{KD}_T(z_s, z_t)
            + \beta\sum_{(i,j)} F(H^s_i, H^t_j), \qquad
        \bar z_s = \gamma\,\bar z^{\mathrm{CE}} + \alpha\,\bar z^{\mathrm{KD}}, \quad
        \texttt{dhidden}[i] = \beta\sum_j \partial F(H^s_i, H^t_j) / \partial H^s_i

    RepDistiller's blend (``helper/loops.py``) with the simple default ``alpha = 0.9``,
    ``gamma = 1 - alpha`` (no labels: CE dropped); KD is :func:`minikd.kd_loss` (T² · batchmean
    KL, Hinton et al. 2015, §2). The teacher's logits and hidden features are computed once.
    The student (and, for FitNets, a linear regressor per layer pair) trains in place with
    :func:`minikd.train_loop`. See :class:`Distiller` for the objective's pieces and
    ``docs/derivations/distill_objective.md`` for how its gradient flows.

    Parameters
    ----------
    teacher, student, X, y, method, layers, temperature, alpha, gamma, beta
        The objective, as in :class:`Distiller` (``teacher`` None with ``teacher_logits``;
        ``y`` optional: without labels soft targets alone teach; ``beta`` defaults to the
        library weight of ``method``).
    epochs : int, default 10
    batch_size : int, default 64
    optimizer : optimizer or callable, optional
        Default ``SGD(params, lr=0.05, momentum=0.9)``. Either an optimizer over
        :attr:`Distiller.params`, or a factory called with those params, e.g.
        ``minikd.Adam`` or ``lambda p: minikd.Adam(p, lr=1e-3)``: FitNets' regressors are
        created inside, so use a factory there (an optimizer over ``student.params`` alone is
        refused rather than silently leaving the regressors untrained).
    X_val : array_like of shape (M, D), optional
        Evaluated after each epoch: ``val_agree`` (agreement with the teacher) and, with
        ``y_val``, ``val_acc``.
    y_val : array_like of int of shape (M,), optional
    rng : int, numpy.random.Generator or None
        Seeds the regressors and the mini-batch order: the same seed gives the same run.
    schedule, clip_norm, verbose, label
        As in :func:`minikd.train_loop`.
    teacher_logits : array_like of shape (N, C), optional
        The teacher's logits on ``X`` from elsewhere, with ``teacher=None`` (``method="kd"``;
        no ``val_agree`` then). See :class:`Distiller`.
    blas_threads : int, optional
        BLAS threads for the whole call, the teacher's pass over ``X`` included (threadpoolctl;
        restored afterwards). Default: the count of an enclosing
        :func:`minikd.training.blas_threads` block, else 1.

    Returns
    -------
    History
        Per epoch: ``epoch``, ``lr``, ``loss`` (the blend), ``ce`` (with labels), ``kd``
        (alpha > 0), the method's term (e.g. ``sp``), ``train_acc`` (with labels), ``agree``
        (student vs teacher argmax on the training batches), ``val_agree`` / ``val_acc`` (with
        a validation set), ``time``.

    Raises
    ------
    NonFiniteLossError
        If the objective becomes NaN or inf (names the epoch and step; the parameters keep
        their last finite values).

    Examples
    --------
    >>> import numpy as np
    >>> from minikd import MLP, fit
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 2)).astype(np.float32)
    >>> y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    >>> teacher = MLP([2, 64, 64, 2], rng=0)
    >>> _ = fit(teacher, X, y, epochs=40, batch_size=30, rng=0, verbose=False)
    >>> student = MLP([2, 16, 2], rng=1)
    >>> history = distill(teacher, student, X, epochs=40, batch_size=30, rng=0, verbose=False)
    >>> history["agree"][-1] > 0.85   # no labels: the teacher's soft targets alone
    True
    """
    n_threads = resolve_blas_threads(blas_threads, "distill")
    gen = np.random.default_rng(rng)
    with limit_blas_threads(n_threads):  # the teacher's pass over X too
        distiller = Distiller(teacher, student, X, y, method=method, layers=layers,
                              temperature=temperature, alpha=alpha, gamma=gamma, beta=beta,
                              rng=gen, teacher_logits=teacher_logits)
        return distiller.train(epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                               X_val=X_val, y_val=y_val, rng=gen, schedule=schedule,
                               clip_norm=clip_norm, verbose=verbose, label=label,
                               blas_threads=n_threads)
