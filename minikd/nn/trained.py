r"""What a trained network offers beyond its forward and backward pass: its predictions
(``predict``, ``predict_proba``, ``logits_unchecked``) and its files (``save``, ``load``,
``to_onnx``).

:class:`TrainedModelMixin` is a base of :class:`minikd.MLP`; its methods use the model's
``check_input``, ``forward_unchecked``, ``params`` and ``dtype`` and nothing else. The file
format is :mod:`minikd.nn.modelio`, the ONNX graph :mod:`minikd.nn.onnx_export`.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_logit_range, check_rng, check_temperature
from ..losses.softmax import softmax_kernel
from . import mlp_checks as checks
from . import modelio

__all__ = ["TrainedModelMixin"]

_PREDICT_CHUNK = 8192  # rows per forward pass in predict: bounds memory on large X


class TrainedModelMixin:
    """Predictions and model files of a network with ``check_input`` and ``forward_unchecked``
    (the methods of :class:`minikd.MLP` documented there)."""

    # -- prediction ---------------------------------------------------------------------------

    def logits_unchecked(self, x):
        """The logits of a checked (N, D) array, in eval mode, in chunks of 8192 rows."""
        if x.shape[0] <= _PREDICT_CHUNK:
            return self.forward_unchecked(x, False)[0]
        return np.concatenate([self.forward_unchecked(x[s:s + _PREDICT_CHUNK], False)[0]
                               for s in range(0, x.shape[0], _PREDICT_CHUNK)])

    def predict(self, x):
        """Predicted class of each row: ``argmax(logits)``, shape (N,), int64.

        Parameters
        ----------
        x : array_like of shape (N, D)
        """
        return self._logits(x, "MLP.predict").argmax(axis=1)

    def predict_proba(self, x, *, temperature=1.0):
        r"""Class probabilities :math:`\mathrm{softmax}(z / T)`, shape (N, C).

        Parameters
        ----------
        x : array_like of shape (N, D)
        temperature : float, default 1.0
            T in [1e-6, 1e6]; T > 1 gives the softened targets of Hinton et al. (2015), §2.
        """
        func = "MLP.predict_proba"
        t = check_temperature(temperature, func)
        z = self._logits(x, func)  # (N, C)
        check_logit_range(z, t, "x (the logits it gives)", func)
        return softmax_kernel(z / t)

    def _logits(self, x, func):
        x = self.check_input(x, func)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
            z = self.logits_unchecked(x)
        checks.check_finite_outputs(x, [z], func, params=self.params)
        return z

    # -- model files --------------------------------------------------------------------------

    def save(self, path):
        """Write the model to ``path``, an ``.npz`` file, atomically (used as given: no ``.npz``
        is appended). An interrupted save leaves any previous file intact; the temporary files
        of killed saves are removed by the next save to the folder (:mod:`minikd.nn.modelio`).
        """
        modelio.write_model(self, modelio.check_path(path, "MLP.save"))

    @classmethod
    def load(cls, path, *, rng=None):
        """Read a model written by :meth:`save`, checking the archive before reading its data.

        ``rng`` (an int, a Generator or None) seeds the loaded model's dropout Generator, whose
        state is not stored. Every problem with the file (missing, not an ``.npz`` and what it
        is, truncated, another format version, missing or unexpected members, object arrays,
        arrays that disagree with the architecture or do not fit in memory, NaN or inf) is a
        ValueError naming the file and the problem.
        """
        return modelio.read_model(cls, modelio.check_path(path, "MLP.load"),
                                  check_rng(rng, "MLP.load"))

    def to_onnx(self, path, *, opset=None, softmax_temperature=None):
        r"""Write the model as an ONNX graph, atomically: ``MatMul`` + ``Add`` and ``Relu`` or
        ``Tanh`` per layer (:math:`a_k = h_{k-1} W_k + b_k`), no dropout, a dynamic batch axis,
        the sizes and the minikd version in the metadata; ``onnx.checker`` passes before it is
        written. With ``softmax_temperature`` T a second output holds softmax(logits / T), as
        :meth:`predict_proba`. onnxruntime runs it to :meth:`forward`'s logits (normwise error
        <= 1e-5 in float32). Needs ``pip install 'minikd[onnx]'``; see
        :func:`minikd.nn.onnx_export.export_onnx`, which this calls. Returns ``path``.
        """
        from .onnx_export import DEFAULT_OPSET, export_onnx  # onnx_export imports this module

        return export_onnx(self, path, opset=DEFAULT_OPSET if opset is None else opset,
                           softmax_temperature=softmax_temperature)
