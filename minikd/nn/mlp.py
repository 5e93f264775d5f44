r"""A multilayer perceptron with hand-written backprop, and its model files (``_modelio.py``).

``MLP([D, H_1, ..., H_{L-1}, C])`` has L linear layers; every layer but the last is followed by
the activation (ReLU or tanh) and, in training mode, by inverted dropout:

.. math::

    h_0 = x, \quad a_k = \tilde h_{k-1} W_k + b_k, \quad h_k = \sigma(a_k), \quad
    \tilde h_k = h_k \odot m_k, \quad z = \tilde h_{L-1} W_L + b_L

The equations of each step and of its backward pass are those of :mod:`minikd.layers`; the
model runs them on arrays it already trusts, in place where the buffer is its own, so a training
step allocates little (``docs/derivations/backprop.md``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import (
    as_float_array,
    check_logit_range,
    check_temperature,
    check_unit_interval,
    param_error,
)
from ..losses.softmax import softmax_kernel
from . import modelio as _modelio
from .layers import _dropout_mask
from .modelio import FORMAT_VERSION  # re-exported: minikd.mlp.FORMAT_VERSION

__all__ = ["MLP", "ForwardCache", "FORMAT_VERSION"]

_ACTIVATIONS = ("relu", "tanh")
_PREDICT_CHUNK = 8192  # rows per forward pass in predict: bounds memory on large X


class ForwardCache(NamedTuple):
    r"""What :meth:`MLP.forward` keeps for :meth:`MLP.backward` (a NamedTuple: one is built at
    every training step, and a NamedTuple is several times cheaper to build than a dataclass).

    Attributes
    ----------
    inputs : list of ndarray
        ``inputs[k]`` is the input of linear layer k+1: the batch x (N, D) for k = 0, then the
        (dropped-out) hidden activations (N, H_k).
    hidden : list of ndarray
        ``hidden[i]`` is hidden layer i's activation :math:`h_{i+1} = \sigma(a_{i+1})` of shape
        (N, H_i), *before* dropout, i = 0 .. len(sizes) - 3. Feature and relation distillation
        read these.
    masks : list of (ndarray or None)
        The scaled dropout mask of each hidden layer (None when dropout was off).
    """

    inputs: list
    hidden: list
    masks: list


class MLP:
    r"""Multilayer perceptron: linear layers with ReLU or tanh between them.

    .. math::

        a_k = \tilde h_{k-1} W_k + b_k,\; h_k = \sigma(a_k),\; \tilde h_k = h_k \odot m_k;
        \qquad
        \bar W_k = \tilde h_{k-1}^\top \bar a_k,\; \bar b_k = \mathbf 1^\top \bar a_k,\;
        \bar h_{k-1} = (\bar a_k W_k^\top) \odot m_{k-1} + \bar h^{\text{extra}}_{k-1},\;
        \bar a_{k-1} = \bar h_{k-1} \odot \sigma'(a_{k-1})

    with :math:`\tilde h_0 = x`, :math:`z = a_L` (logits, no activation) and
    :math:`\bar h^{\text{extra}}` the optional ``dhidden`` gradients.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``[D, H_1, ..., C]``, at least two entries, each >= 1.
    activation : {"relu", "tanh"}, default "relu"
    dropout : float, default 0.0
        Drop probability in [0, 1) after each hidden activation, in training mode only.
        (No dropout on the input.)
    dtype : {numpy.float32, numpy.float64}, default float32
        Dtype of the parameters and of all computation.
    rng : int, numpy.random.Generator or None
        Seeds the initialisation and the model's own dropout Generator, so that training runs
        are reproducible.

    Attributes
    ----------
    params : dict of str to ndarray
        ``"W1"`` (D, H_1), ``"b1"`` (H_1,), ..., ``"WL"`` (H_{L-1}, C), ``"bL"`` (C,).
        W has shape (H_in, H_out) so a layer is ``x @ W + b``. He initialisation
        :math:`W \sim \mathcal N(0, 2 / H_\text{in})` for ReLU (He et al. 2015, §2.2), Glorot
        :math:`W \sim U(\pm\sqrt{6 / (H_\text{in} + H_\text{out})})` for tanh (Glorot & Bengio
        2010, eq. 16); biases 0.

    Examples
    --------
    >>> import numpy as np
    >>> model = MLP([4, 8, 3], rng=0)
    >>> logits, cache = model.forward(np.ones((2, 4), np.float32))
    >>> logits.shape, cache.hidden[0].shape, model.n_params
    ((2, 3), (2, 8), 67)
    >>> grads = model.backward(np.ones_like(logits), cache)
    >>> sorted(grads) == sorted(model.params)
    True
    """

    def __init__(self, sizes, *, activation="relu", dropout=0.0, dtype=np.float32, rng=None):
        func = "MLP"
        self.sizes = _check_sizes(sizes, func)
        if activation not in _ACTIVATIONS:
            raise param_error("activation", func, f"one of {_ACTIVATIONS}", repr(activation))
        self.activation = activation
        self.dropout = check_unit_interval(dropout, "dropout", func)
        if self.dropout == 1.0:
            raise param_error("dropout", func, "a float in the range [0, 1)", repr(dropout))
        self.dtype = _check_dtype(dtype, func)
        rng = np.random.default_rng(rng)
        self.params = {}
        for k in range(1, len(self.sizes)):
            fan_in, fan_out = self.sizes[k - 1], self.sizes[k]
            if activation == "relu":
                W = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
            else:
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                W = rng.uniform(-limit, limit, (fan_in, fan_out))
            self.params[f"W{k}"] = W.astype(self.dtype)
            self.params[f"b{k}"] = np.zeros(fan_out, self.dtype)
        self._dropout_rng = np.random.default_rng(rng.integers(2**63))
        self._keys = [(f"W{k}", f"b{k}") for k in range(1, len(self.sizes))]
        # ReLU's zeros per hidden layer k (see forward_unchecked), made once
        self._zeros = {k: np.zeros(self.sizes[k], self.dtype) for k in range(1, len(self.sizes))}

    # -- description ------------------------------------------------------------------------

    @property
    def n_layers(self):
        """Number of linear layers L = len(sizes) - 1."""
        return len(self.sizes) - 1

    @property
    def n_params(self):
        """Total number of scalar parameters."""
        return int(sum(p.size for p in self.params.values()))

    @property
    def nbytes(self):
        """Model size in bytes: the parameter arrays' ``nbytes`` summed."""
        return int(sum(p.nbytes for p in self.params.values()))

    def __repr__(self):
        return (f"MLP({list(self.sizes)}, activation={self.activation!r}, "
                f"dropout={self.dropout}, dtype={self.dtype.name})")

    # -- forward and backward ---------------------------------------------------------------

    def forward(self, x, *, train=False):
        r"""Logits of a batch, and the cache that :meth:`backward` needs.

        Parameters
        ----------
        x : array_like of shape (N, D)
            Converted to the model's dtype.
        train : bool, default False
            Apply dropout (drawn from the model's own Generator).

        Returns
        -------
        logits : ndarray of shape (N, C)
        cache : ForwardCache
            ``cache.hidden[i]`` is hidden layer i's activation (N, H_i), before dropout.
        """
        x = self.check_input(x, "MLP.forward")
        if not isinstance(train, (bool, np.bool_)):
            raise param_error("train", "MLP.forward", "a bool", repr(train), TypeError)
        return self.forward_unchecked(x, bool(train))

    def forward_unchecked(self, x, train=False):
        """Forward pass on a trusted (N, D) array of the model's dtype."""
        p = self.params
        n_layers = len(self.sizes) - 1
        drop = train and self.dropout > 0.0
        inputs, hidden, masks = [], [], []
        h = x
        for k, (w_key, b_key) in enumerate(self._keys, start=1):
            inputs.append(h)
            a = h @ p[w_key]  # (N, H_k)
            a += p[b_key]
            if k == n_layers:
                return a, ForwardCache(inputs, hidden, masks)
            if self.activation == "relu":
                # against a row of zeros, not the scalar 0: NumPy 2.4's maximum takes a
                # 2.5x slower loop when one operand is a scalar (39 vs 16 us at 128 x 800)
                np.maximum(a, self._zeros[k], out=a)
            else:
                np.tanh(a, out=a)
            hidden.append(a)
            if drop:
                m = _dropout_mask(a.shape, self.dropout, self.dtype, self._dropout_rng)
                masks.append(m)
                h = a * m  # a new array: hidden[i] stays the pre-dropout activation
            else:
                masks.append(None)
                h = a
        raise AssertionError("unreachable")  # pragma: no cover

    def backward(self, dlogits, cache, *, dhidden=None):
        r"""Gradients of every parameter, from the gradient on the logits (and on hidden layers).

        Parameters
        ----------
        dlogits : array_like of shape (N, C)
            :math:`\partial L / \partial z`.
        cache : ForwardCache
            From :meth:`forward` on the same batch.
        dhidden : dict of int to array_like of shape (N, H_i), optional
            Extra upstream gradient :math:`\partial L / \partial h_i` on ``cache.hidden[i]``
            (the pre-dropout activation), added to what flows down from the layer above:
            this is how a feature or relation loss on a hidden layer reaches the weights below.

        Returns
        -------
        grads : dict of str to ndarray
            Keyed exactly like :attr:`params`, each shaped like its parameter. Fresh arrays.
        """
        func = "MLP.backward"
        if not isinstance(cache, ForwardCache) or len(cache.inputs) != self.n_layers:
            raise param_error("cache", func, f"the ForwardCache of this model's forward "
                              f"({self.n_layers} layers)", type(cache).__name__, TypeError)
        n = cache.inputs[0].shape[0]
        dlogits = self._check_grad(dlogits, "dlogits", (n, self.sizes[-1]), func)
        if dhidden is not None:
            if not isinstance(dhidden, dict):
                raise param_error("dhidden", func, "a dict mapping hidden-layer index to array",
                                  type(dhidden).__name__, TypeError)
            n_hidden = self.n_layers - 1
            checked = {}
            for i, g in dhidden.items():
                if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) \
                        or not 0 <= i < n_hidden:
                    raise param_error("dhidden", func, f"keys that are hidden-layer indices in "
                                      f"[0, {n_hidden})", f"key {i!r}")
                checked[int(i)] = self._check_grad(g, f"dhidden[{i}]", (n, self.sizes[i + 1]),
                                                   func)
            dhidden = checked
        return self.backward_unchecked(dlogits, cache, dhidden)

    def backward_unchecked(self, dlogits, cache, dhidden=None):
        """Backward pass on trusted arrays; ``dlogits`` and ``dhidden`` are not modified."""
        p = self.params
        grads = {}
        dz = dlogits  # (N, C): gradient on the current layer's pre-activation a_k
        for k in range(len(self.sizes) - 1, 0, -1):
            w_key, b_key = self._keys[k - 1]
            grads[w_key] = cache.inputs[k - 1].T @ dz  # (H_{k-1}, H_k)
            grads[b_key] = np.add.reduce(dz, axis=0)  # (H_k,) column sums
            if k == 1:
                break  # nobody needs dL/dx
            i = k - 2  # index of the hidden layer below
            dh = dz @ p[w_key].T  # (N, H_i), a fresh array we may overwrite
            if cache.masks[i] is not None:
                dh *= cache.masks[i]
            if dhidden and i in dhidden:
                dh += dhidden[i]
            h = cache.hidden[i]
            if self.activation == "relu":
                np.multiply(dh, h > 0, out=dh)
            else:
                dh *= 1 - h * h
            dz = dh
        return {key: grads[key] for key in p}

    # -- prediction ---------------------------------------------------------------------------

    def logits_unchecked(self, x):
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
        return self.logits_unchecked(self.check_input(x, "MLP.predict")).argmax(axis=1)

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
        z = self.logits_unchecked(self.check_input(x, func))  # (N, C)
        check_logit_range(z, t, "x (the logits it gives)", func)
        return softmax_kernel(z / t)

    # -- checks -----------------------------------------------------------------------------

    def check_input(self, x, func):
        x = as_float_array(x, "x", func, ndim=2, dtype=self.dtype)
        if x.shape[1] != self.sizes[0]:
            raise param_error("x", func, f"an array of shape (N, {self.sizes[0]})",
                              f"shape {x.shape}")
        return x

    def _check_grad(self, g, name, shape, func):
        g = as_float_array(g, name, func, ndim=2, dtype=self.dtype)
        if g.shape != shape:
            raise param_error(name, func, f"an array of shape {shape}", f"shape {g.shape}")
        return g

    # -- model files --------------------------------------------------------------------------

    def save(self, path):
        """Write the model to an ``.npz`` file, atomically.

        The file holds ``format_version``, the architecture (``sizes``, ``activation``,
        ``dropout``, ``dtype``) and the parameter arrays. It is written to a temporary file in
        the same folder and then moved over ``path`` with ``os.replace``, so an interrupted save
        leaves any previous file intact. The name is used as given (no ``.npz`` is appended).

        Parameters
        ----------
        path : str or os.PathLike
        """
        _modelio.write_model(self, _modelio.check_path(path, "MLP.save"))

    @classmethod
    def load(cls, path, *, rng=None):
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
        rng : int, numpy.random.Generator or None
            Seeds the loaded model's dropout Generator (its state is not stored in the file).

        Returns
        -------
        MLP

        Raises
        ------
        ValueError
            Naming the file and the problem, when it is missing, truncated or not an ``.npz``,
            has another format version, lacks a key or has an unexpected one, holds object
            arrays, or its arrays disagree with its architecture.
        """
        return _modelio.read_model(cls, _modelio.check_path(path, "MLP.load"), rng)


def _check_sizes(sizes, func):
    expected = "a sequence of at least two positive integers"
    try:
        items = list(sizes)
    except TypeError as err:
        raise param_error("sizes", func, expected, repr(sizes), TypeError) from err
    if len(items) < 2:
        raise param_error("sizes", func, expected, repr(items))
    for s in items:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise param_error("sizes", func, expected, repr(items), TypeError)
        if s < 1:
            raise param_error("sizes", func, expected, repr(items))
    return tuple(int(s) for s in items)


def _check_dtype(dtype, func):
    try:
        dt = np.dtype(dtype)
    except TypeError as err:
        raise param_error("dtype", func, "numpy.float32 or numpy.float64", repr(dtype),
                          TypeError) from err
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise param_error("dtype", func, "numpy.float32 or numpy.float64", repr(dtype))
    return dt
