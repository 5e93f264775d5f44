r"""The distillation trainer: a frozen teacher, a student, and any blend of the three families.

The objective is RepDistiller's blend (``helper/loops.py``):

.. math::

    L = \gamma\, \mathrm{CE}(z_s, y) + \alpha\, \mathrm{KD}_T(z_s, z_t)
        + \beta \sum_{(i, j) \in \text{pairs}} F(h^s_i, h^t_j)

with ``KD`` = :func:`minikd.kd_loss` (:math:`T^2 \cdot` batchmean KL, Hinton et al. 2015, §2),
``CE`` = :func:`minikd.cross_entropy` at T = 1, and ``F`` one feature- or relation-based loss
comparing student hidden layer i with teacher hidden layer j. Its gradient flows into the
student in two places (``docs/derivations/distill_objective.md``):

.. math::

    \bar z_s = \gamma\, \bar z^{\mathrm{CE}} + \alpha\, \bar z^{\mathrm{KD}}, \qquad
    \bar h^s_i = \beta \sum_{j:\,(i,j)} \frac{\partial F(h^s_i, h^t_j)}{\partial h^s_i}
    \quad (\text{``dhidden``})

and, for FitNets, into the regressor that maps :math:`h^s_i` to the teacher's width, whose
parameters train beside the student's. The default is the simple form ``alpha = 0.9`` and
``gamma = 1 - alpha``; without labels the CE term is dropped (soft targets alone can teach).

The teacher is frozen: its logits and the hidden layers the loss needs are computed **once**
for the whole transfer set, in evaluation mode, when the :class:`Distiller` is built, and
gathered per mini-batch afterwards. Training reuses :func:`minikd.train_loop` (its non-finite
guard, ``rng`` reproducibility, progress lines and :class:`minikd.History`).
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import (
    as_labels,
    check_nonnegative,
    check_temperature,
    check_unit_interval,
    logit_limit,
    param_error,
)
from ..losses.features import (
    attention_transfer_loss,
    cosine_loss,
    hint_loss,
)
from ..losses.relations import pkt_loss, rkd_angle_loss, rkd_distance_loss, sp_loss
from ..losses.response import cross_entropy, kd_loss
from ..nn.layers import linear_backward, linear_forward
from ..nn.mlp import MLP
from ..nn.optim import SGD
from ..nn.regressor import init_regressor
from .loop import train_loop

__all__ = ["DEFAULT_BETA", "METHODS", "Distiller", "distill"]

METHODS = ("kd", "fitnets", "at", "sp", "rkd", "pkt", "cosine")
# RepDistiller's scripts/run_cifar_distill.sh (and mdistiller's configs); cosine: HF README.
DEFAULT_BETA = {"kd": 0.0, "fitnets": 100.0, "at": 1000.0, "sp": 3000.0, "rkd": 1.0,
                "pkt": 30000.0, "cosine": 1.0}
RKD_WEIGHTS = (25.0, 50.0)  # w_d, w_a inside the RKD term (RepDistiller, mdistiller)
_TEACHER_CHUNK = 4096


def _feature_term(method, h_s, h_t):
    """``F(h_s, h_t)`` and dF/dh_s for the non-FitNets methods, on one layer pair."""
    if method == "at":  # an MLP layer is one channel over H positions
        loss, grad = attention_transfer_loss(h_s[:, None, :], h_t[:, None, :])
        return loss, grad[:, 0, :]
    if method == "rkd":
        w_d, w_a = RKD_WEIGHTS
        angle = rkd_angle_loss(h_s, h_t)
        if h_s.shape[0] < 2:
            # A one-row mini-batch (the remainder when N % batch_size == 1) has no pair: the
            # distance term is 0 with a zero gradient there (rkd_distance_loss refuses N = 1).
            return w_a * angle.loss, w_a * angle.grad
        dist = rkd_distance_loss(h_s, h_t)
        return w_d * dist.loss + w_a * angle.loss, w_d * dist.grad + w_a * angle.grad
    fn = {"sp": sp_loss, "pkt": pkt_loss, "cosine": cosine_loss}[method]
    return fn(h_s, h_t)


class Distiller:
    r"""Distil ``student`` from a frozen ``teacher`` on a transfer set: the objective and its step.

    .. math::

        L = \gamma\,\mathrm{CE}(z_s, y) + \alpha\,\mathrm{KD}_T(z_s, z_t)
            + \beta\sum_{(i,j)} F(h^s_i, h^t_j), \qquad
        \bar z_s = \gamma\,\tfrac{1}{B}(p_s - e_y) + \alpha\,\tfrac{T}{B}(p^T_s - p^T_t),
        \quad \bar h^s_i = \beta \sum_j \partial F / \partial h^s_i

    Use :func:`distill` for the one-call version; this class exposes the pieces that tests and
    experiments need: :attr:`params` (the student's arrays plus the FitNets regressors, the
    dict the optimizer updates), :meth:`step` (loss terms and gradients of one mini-batch) and
    :meth:`train`.

    Parameters
    ----------
    teacher : MLP
        Trained teacher; never modified. Its logits and the needed hidden layers of ``X`` are
        computed once, here, in evaluation mode (no dropout).
    student : MLP
        Trained in place. Same input width D and number of classes C as the teacher.
    X : array_like of shape (N, D)
        Transfer set. Converted once to the student's dtype.
    y : array_like of int of shape (N,), optional
        Labels. Without them the CE term is dropped and only soft targets (and the feature
        term) teach.
    method : {"kd", "fitnets", "at", "sp", "rkd", "pkt", "cosine"}, default "kd"
        The feature- or relation-based term F: FitNets hint through a learned linear regressor
        (:func:`minikd.hint_loss`), attention transfer over hidden units
        (:func:`minikd.attention_transfer_loss` on ``(N, 1, H)``; needs equal widths),
        :func:`minikd.sp_loss`, RKD (``25 · rkd_distance_loss + 50 · rkd_angle_loss``),
        :func:`minikd.pkt_loss`, DistilBERT's :func:`minikd.cosine_loss` (equal widths).
        "kd" has no feature term. A one-row mini-batch has no pair of rows: its RKD distance
        term is 0 with a zero gradient (sp, pkt and the RKD angle are already 0 or constant
        there, see their docstrings).
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
        FitNets 100, AT 1000, SP 3000, RKD 1, PKT 30000; cosine 1). See ``docs/loss_scales.md``.
    rng : int, numpy.random.Generator or None
        Initialises the FitNets regressors (PyTorch ``nn.Linear`` style).

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
                 temperature=4.0, alpha=0.9, gamma=None, beta=None, rng=None):
        func = "Distiller"
        for name, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, MLP):
                raise param_error(name, func, "an MLP", type(model).__name__, TypeError)
        if teacher.sizes[0] != student.sizes[0] or teacher.sizes[-1] != student.sizes[-1]:
            raise param_error("student", func, f"an MLP with the teacher's input width "
                              f"{teacher.sizes[0]} and {teacher.sizes[-1]} classes",
                              f"sizes {list(student.sizes)}")
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
        self.pairs = [] if method == "kd" else self._check_layers(layers, func)

        # The frozen teacher, once for the whole transfer set.
        needed = sorted({j for _, j in self.pairs})
        logits, hidden = [], {j: [] for j in needed}
        for start in range(0, n, _TEACHER_CHUNK):
            z, cache = teacher.forward_unchecked(self.X[start:start + _TEACHER_CHUNK]
                                        .astype(teacher.dtype, copy=False), False)
            logits.append(z)
            for j in needed:
                hidden[j].append(cache.hidden[j])
        dtype = student.dtype
        self.teacher_logits = np.concatenate(logits).astype(dtype, copy=False)  # (N, C)
        self.teacher_hidden = {j: np.concatenate(h).astype(dtype, copy=False)
                               for j, h in hidden.items()}  # {j: (N, H_j)}
        self.teacher_pred = self.teacher_logits.argmax(axis=1)  # (N,)

        self.params = dict(student.params)  # the same arrays: updates reach the student
        if method == "fitnets":
            gen = np.random.default_rng(rng)
            for k, (i, j) in enumerate(self.pairs):
                reg = init_regressor(student.sizes[i + 1], teacher.sizes[j + 1], rng=gen,
                                     dtype=dtype)
                self.params[f"reg{k}.W"], self.params[f"reg{k}.b"] = reg["W"], reg["b"]

    def _check_layers(self, layers, func):
        n_s, n_t = len(self.student.sizes) - 2, len(self.teacher.sizes) - 2
        if n_s < 1 or n_t < 1:
            raise param_error("method", func, "'kd' when the student or the teacher has no "
                              "hidden layer", repr(self.method))
        if layers is None:
            layers = [(-1, -1)]
        try:
            pairs = [tuple(p) for p in layers]
        except TypeError as err:
            raise param_error("layers", func, "a sequence of (student layer, teacher layer) "
                              "pairs", repr(layers), TypeError) from err
        if not pairs:
            raise param_error("layers", func, "at least one (student, teacher) pair", "[]")
        out = []
        for p in pairs:
            if len(p) != 2 or not all(isinstance(v, (int, np.integer))
                                      and not isinstance(v, (bool, np.bool_)) for v in p):
                raise param_error("layers", func, "pairs of ints (student layer, teacher layer)",
                                  repr(p), TypeError)
            i, j = int(p[0]), int(p[1])
            if not (-n_s <= i < n_s and -n_t <= j < n_t):
                raise param_error("layers", func, f"hidden-layer indices in [-{n_s}, {n_s}) for "
                                  f"the student and [-{n_t}, {n_t}) for the teacher", repr(p))
            i, j = i % n_s, j % n_t
            h_s, h_t = self.student.sizes[i + 1], self.teacher.sizes[j + 1]
            if self.method in ("at", "cosine") and h_s != h_t:
                raise param_error("layers", func, f"pairs of equal widths for method "
                                  f"{self.method!r}", f"({i}, {j}) with widths {h_s} and {h_t}")
            out.append((i, j))
        return out

    # -- the objective ------------------------------------------------------------------------

    def step(self, idx, *, train=True):
        r"""Loss terms and gradients of one mini-batch: the ``step`` of :func:`minikd.train_loop`.

        Parameters
        ----------
        idx : ndarray of int of shape (B,)
            Rows of the transfer set.
        train : bool, default True
            Student in training mode (dropout on). Gradient checks use False.

        Returns
        -------
        terms : dict of str to float
            ``"loss"`` (the blended objective), ``"ce"`` (with labels), ``"kd"`` (alpha > 0),
            the method's term under its name (e.g. ``"sp"``), ``"train_acc"`` (with labels) and
            ``"agree"`` (fraction of rows where the student's and the teacher's argmax agree).
            Unweighted terms; ``loss`` carries the weights.
        grads : dict of str to ndarray
            Keyed like :attr:`params`.
        """
        xb = self.X[idx]  # (B, D)
        z, cache = self.student.forward_unchecked(xb, train)  # (B, C)
        if not np.abs(z).max() <= logit_limit(z.dtype, self.temperature) or not all(
                np.isfinite(cache.hidden[i]).all() for i, _ in self.pairs):
            return {"loss": math.nan}, {}  # train_loop turns this into NonFiniteLossError
        terms, total = {}, 0.0
        dz = np.zeros_like(z)
        if self.y is not None:
            yb = self.y[idx]
            if self.gamma > 0:
                ce, dce = cross_entropy(z, yb)
                terms["ce"], total = ce, total + self.gamma * ce
                dz += self.gamma * dce
        if self.alpha > 0:
            kd, dkd = kd_loss(z, self.teacher_logits[idx], temperature=self.temperature)
            terms["kd"], total = kd, total + self.alpha * kd
            dz += self.alpha * dkd
        grads_extra, dhidden = {}, {}
        if self.pairs:
            feat = 0.0
            for k, (i, j) in enumerate(self.pairs):
                h_s, h_t = cache.hidden[i], self.teacher_hidden[j][idx]  # (B, H_s), (B, H_t)
                if self.method == "fitnets":
                    w, b = self.params[f"reg{k}.W"], self.params[f"reg{k}.b"]
                    r, rcache = linear_forward(h_s, w, b)  # (B, H_t): the regressor
                    loss, dr = hint_loss(r, h_t)
                    dh, dw, db = linear_backward(dr * self.beta, rcache)
                    grads_extra[f"reg{k}.W"], grads_extra[f"reg{k}.b"] = dw, db
                else:
                    loss, dh = _feature_term(self.method, h_s, h_t)
                    dh = dh * self.beta
                feat += loss
                dhidden[i] = dhidden[i] + dh if i in dhidden else dh
            terms[self.method], total = feat, total + self.beta * feat
        grads = self.student.backward_unchecked(dz, cache, {i: g.astype(z.dtype, copy=False)
                                                   for i, g in dhidden.items()})
        grads.update(grads_extra)
        pred = z.argmax(axis=1)  # (B,)
        if self.y is not None:
            terms["train_acc"] = float(np.mean(pred == self.y[idx]))
        terms["agree"] = float(np.mean(pred == self.teacher_pred[idx]))
        return {"loss": total, **terms}, grads

    # -- training -----------------------------------------------------------------------------

    def train(self, *, epochs=10, batch_size=64, optimizer=None, X_val=None, y_val=None,
              rng=None, schedule=None, clip_norm=None, verbose=True, label="distill"):
        """Train the student (and the regressors) with :func:`minikd.train_loop`.

        Parameters are those of :func:`distill`. Returns the :class:`minikd.History`.
        """
        func = "distill"
        evaluate = None
        if X_val is not None:
            X_val = self.student.check_input(X_val, func)
            # The teacher's predictions on the validation set, once.
            t_val = np.concatenate([
                self.teacher.forward_unchecked(X_val[s:s + _TEACHER_CHUNK]
                                      .astype(self.teacher.dtype, copy=False), False)[0]
                for s in range(0, X_val.shape[0], _TEACHER_CHUNK)]).argmax(axis=1)
            if y_val is not None:
                y_val = as_labels(y_val, (X_val.shape[0],), self.student.sizes[-1], func,
                                  name="y_val")

            def evaluate(epoch):
                pred = self.student.logits_unchecked(X_val).argmax(axis=1)
                out = {"val_agree": float(np.mean(pred == t_val))}
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
                          clip_norm=clip_norm, verbose=verbose, label=label)


def distill(teacher, student, X, y=None, *, method="kd", layers=None, temperature=4.0,
            alpha=0.9, gamma=None, beta=None, epochs=10, batch_size=64, optimizer=None,
            X_val=None, y_val=None, rng=None, schedule=None, clip_norm=None, verbose=True,
            label="distill"):
    r"""Distil ``student`` from a frozen ``teacher`` on the transfer set ``X``; returns the History.

    .. math::

        L = \gamma\,\mathrm{CE}(z_s, y) + \alpha\,\mathrm{KD}_T(z_s, z_t)
            + \beta\sum_{(i,j)} F(h^s_i, h^t_j), \qquad
        \bar z_s = \gamma\,\bar z^{\mathrm{CE}} + \alpha\,\bar z^{\mathrm{KD}}, \quad
        \bar h^s_i = \beta\sum_j \partial F(h^s_i, h^t_j) / \partial h^s_i

    RepDistiller's blend (``helper/loops.py``) with the simple default ``alpha = 0.9``,
    ``gamma = 1 - alpha`` (no labels: CE dropped); KD is :func:`minikd.kd_loss` (T² · batchmean
    KL, Hinton et al. 2015, §2). The teacher's logits and hidden features are computed once.
    The student (and, for FitNets, a linear regressor per layer pair) trains in place with
    :func:`minikd.train_loop`. See :class:`Distiller` for the objective's pieces and
    ``docs/derivations/distill_objective.md`` for how its gradient flows.

    Parameters
    ----------
    teacher : MLP
        Trained teacher (not modified).
    student : MLP
        Student, trained in place; same input width and classes as the teacher.
    X : array_like of shape (N, D)
        Transfer set.
    y : array_like of int of shape (N,), optional
        Labels; without them soft targets alone teach.
    method : {"kd", "fitnets", "at", "sp", "rkd", "pkt", "cosine"}, default "kd"
        Feature- or relation-based term added to the KD blend (see :class:`Distiller`).
    layers : sequence of (int, int), optional
        (student hidden layer, teacher hidden layer) pairs; default ``[(-1, -1)]``.
    temperature : float, default 4.0
    alpha : float in [0, 1], default 0.9
        Weight of the KD term.
    gamma : float >= 0, optional
        Weight of the CE term; default ``1 - alpha`` (0 without labels).
    beta : float >= 0, optional
        Weight of the feature term; default the library weight of ``method``
        (FitNets 100, AT 1000, SP 3000, RKD 1 with 25/50 inside, PKT 30000, cosine 1).
        These were tuned for CIFAR ResNets: on minikd's digits MLPs FitNets' 100 kills every
        ReLU of the student in the first epoch, while 10 works (``docs/loss_scales.md``).
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
    gen = np.random.default_rng(rng)
    distiller = Distiller(teacher, student, X, y, method=method, layers=layers,
                          temperature=temperature, alpha=alpha, gamma=gamma, beta=beta, rng=gen)
    return distiller.train(epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                           X_val=X_val, y_val=y_val, rng=gen, schedule=schedule,
                           clip_norm=clip_norm, verbose=verbose, label=label)
