r"""The distillation objective on one mini-batch: the :meth:`Distiller.step
<minikd.Distiller.step>` that :func:`minikd.train_loop` calls.

.. math::

    L = \gamma\,\mathrm{CE}(z_s, y) + \alpha\,\mathrm{KD}_T(z_s, z_t)
        + \beta\sum_{(i,j)} F(H^s_i, H^t_j), \qquad
    \bar z_s = \gamma\,\bar z^{\mathrm{CE}} + \alpha\,\bar z^{\mathrm{KD}}, \quad
    \texttt{dhidden}[i] = \beta\sum_j \partial F(H^s_i, H^t_j) / \partial H^s_i

:class:`DistillationObjective` is a base of :class:`minikd.Distiller`, which builds what the step
reads, once (the checked transfer set ``X`` and labels ``y``, the weights, the cached teacher
logits, predictions and hidden layers, the FitNets regressors in ``params``); the step gathers a
mini-batch of them, runs the student's unchecked forward, the loss kernels and the student's
unchecked backward. How the gradient reaches the student:
``docs/derivations/distill_objective.md``.
"""

from __future__ import annotations

import numpy as np

from ..losses.response import cross_entropy_kernel, kd_loss_kernel
from .feature_terms import feature_term

__all__ = ["DistillationObjective"]


class DistillationObjective:
    """The objective's :meth:`step`, on the attributes a :class:`minikd.Distiller` builds."""

    def step(self, idx, *, train=True):
        r"""Loss terms and gradients of one mini-batch: the ``step`` of :func:`minikd.train_loop`.

        Parameters
        ----------
        idx : ndarray of int of shape (B,)
            Rows of the transfer set (trusted, like everything below: the transfer set, the
            labels and the hyper-parameters were checked when the Distiller was built).
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
        z, cache = self.student.forward_unchecked(xb, train)  # (B, C) student logits
        terms, total = {}, 0.0
        dz = np.zeros_like(z)  # (B, C): gamma dCE/dz + alpha dKD/dz
        if self.gamma > 0:
            ce, dce = cross_entropy_kernel(z, self.y[idx])  # at T = 1
            terms["ce"], total = ce, total + self.gamma * ce
            dz += self.gamma * dce
        if self.alpha > 0:
            kd, dkd = kd_loss_kernel(z, self.teacher_logits[idx], temperature=self.temperature)
            terms["kd"], total = kd, total + self.alpha * kd
            dz += self.alpha * dkd
        dhidden, grads_extra = {}, {}  # dhidden[i] = beta dF/dH_i: the feature term only
        if self.pairs:
            feat = 0.0
            for k, (i, j) in enumerate(self.pairs):
                h_s, h_t = cache.hidden[i], self.teacher_hidden[j][idx]  # (B, H_s), (B, H_t)
                if self.method == "fitnets":
                    W, b = self.params[f"reg{k}.W"], self.params[f"reg{k}.b"]
                    r = h_s @ W + b  # (B, H_t): the regressor g(H_s)
                    loss, dr = feature_term("fitnets", r, h_t)  # the hint loss F(r, H_t)
                    dr = self.beta * dr  # (B, H_t)
                    grads_extra[f"reg{k}.W"] = h_s.T @ dr  # (H_s, H_t)
                    grads_extra[f"reg{k}.b"] = dr.sum(axis=0)  # (H_t,)
                    dh = dr @ W.T  # (B, H_s)
                else:
                    loss, dh = feature_term(self.method, h_s, h_t)
                    dh = self.beta * dh  # (B, H_s)
                feat += loss
                dhidden[i] = dhidden[i] + dh if i in dhidden else dh
            terms[self.method], total = feat, total + self.beta * feat
        grads = self.student.backward_unchecked(dz, cache, dhidden)
        grads.update(grads_extra)
        pred = z.argmax(axis=1)  # (B,)
        if self.y is not None:
            terms["train_acc"] = np.count_nonzero(pred == self.y[idx]) / len(pred)
        terms["agree"] = np.count_nonzero(pred == self.teacher_pred[idx]) / len(pred)
        return {"loss": total, **terms}, grads
