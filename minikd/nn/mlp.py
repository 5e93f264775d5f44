r"""A multilayer perceptron built from the layers' kernels, with hand-written backprop.

``MLP([D, H_1, ..., H_{L-1}, C])`` has L linear layers; every layer but the last is followed by
the activation (ReLU or tanh) and, in training mode, by inverted dropout:

.. math::

    \tilde h_0 = x, \quad a_k = \tilde h_{k-1} W_k + b_k, \quad h_k = \sigma(a_k), \quad
    \tilde h_k = h_k \odot m_k, \quad z = a_L = \tilde h_{L-1} W_L + b_L

Forward and backward call the kernels of :mod:`minikd.nn.layers` and :mod:`minikd.nn.dropout`
on arrays the model trusts (``docs/derivations/backprop.md``). Its predictions and files
(``predict``, ``predict_proba``, ``save``, ``load``, ``to_onnx``) are
:class:`minikd.nn.trained.TrainedModelMixin`'s; the model file is :mod:`minikd.nn.modelio`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import (
    as_float_array,
    check_bool,
    check_choice,
    check_fraction,
    check_rng,
    param_error,
)
from . import mlp_checks as checks
from .dropout import dropout_backward_kernel, dropout_forward_kernel
from .layers import (
    linear_backward_kernel,
    linear_forward_kernel,
    relu_backward_kernel,
    relu_forward_kernel,
    tanh_backward_kernel,
    tanh_forward_kernel,
)
from .modelio import FORMAT_VERSION  # re-exported: minikd.nn.mlp.FORMAT_VERSION
from .trained import TrainedModelMixin

__all__ = ["MLP", "ForwardCache", "FORMAT_VERSION"]

# activation name -> (forward kernel, backward kernel)
_ACTIVATIONS = {"relu": (relu_forward_kernel, relu_backward_kernel),
                "tanh": (tanh_forward_kernel, tanh_backward_kernel)}


class ForwardCache(NamedTuple):
    r"""What :meth:`MLP.forward` keeps for :meth:`MLP.backward` (built at every step: a
    NamedTuple, several times cheaper to build than a dataclass).

    Attributes
    ----------
    inputs : list of ndarray
        ``inputs[k - 1]`` is the input :math:`\tilde h_{k-1}` of linear layer k: the batch x
        (N, D) for k = 1, then the (dropped-out) hidden activations (N, H_{k-1}).
    hidden : list of ndarray
        ``hidden[k - 1]`` is hidden layer k's activation :math:`h_k = \sigma(a_k)` of shape
        (N, H_k), *before* dropout, k = 1 .. len(sizes) - 2. Feature and relation distillation
        read these.
    masks : list of (ndarray or None)
        ``masks[k - 1]``, the scaled dropout mask :math:`m_k` (None when dropout was off).
    """

    inputs: list
    hidden: list
    masks: list


class MLP(TrainedModelMixin):
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
        self.sizes = checks.check_sizes(sizes, func)
        self.activation = check_choice(activation, "activation", func, tuple(_ACTIVATIONS))
        self.dropout = check_fraction(dropout, "dropout", func)  # [0, 1)
        self.dtype = checks.check_dtype(dtype, func)
        rng = check_rng(rng, func)
        checks.check_memory(self.sizes, self.dtype, func)
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
            ``cache.hidden[k - 1]`` is hidden layer k's activation (N, H_k), before dropout.

        Raises
        ------
        ValueError
            Also when ``x`` is so large that an activation overflows to inf or NaN.
        """
        func = "MLP.forward"
        x = self.check_input(x, func)
        train = check_bool(train, "train", func)
        checks.check_memory(self.sizes, self.dtype, func, batch=x.shape[0])
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
            logits, cache = self.forward_unchecked(x, train)
        checks.check_finite_outputs(x, [*cache.hidden, logits], func, params=self.params)
        return logits, cache

    def forward_unchecked(self, x, train=False):
        """:meth:`forward` on a checked (N, D) array of the model's dtype and a bool ``train``."""
        activation_forward = _ACTIVATIONS[self.activation][0]
        n_layers = len(self.sizes) - 1
        inputs, hidden, masks = [], [], []
        h = x  # (N, D): h~_0
        for k in range(1, n_layers + 1):
            inputs.append(h)
            a, _ = linear_forward_kernel(h, self.params[f"W{k}"], self.params[f"b{k}"])  # (N, H_k)
            if k == n_layers:
                return a, ForwardCache(inputs, hidden, masks)  # z = a_L
            h, _ = activation_forward(a)  # h_k = sigma(a_k)
            hidden.append(h)
            mask = None
            if train and self.dropout > 0.0:  # h~_k = h_k * m_k
                h, mask = dropout_forward_kernel(h, p=self.dropout, train=True,
                                                 rng=self._dropout_rng)
            masks.append(mask)
        raise AssertionError("unreachable")  # pragma: no cover

    def backward(self, dlogits, cache, *, dhidden=None):
        r"""Gradients of every parameter, from the gradient on the logits (and on hidden layers).

        Parameters
        ----------
        dlogits : array_like of shape (N, C)
            :math:`\partial L / \partial z`.
        cache : ForwardCache
            From :meth:`forward` on the same batch.
        dhidden : dict of int to array_like of shape (N, H_k), optional
            ``dhidden[k - 1]`` is a feature loss's own gradient
            :math:`\partial L_\text{feat} / \partial h_k` on ``cache.hidden[k - 1]`` (the
            pre-dropout activation), added to what flows down from the layer above: this is how
            a feature or relation loss on a hidden layer reaches the weights below.

        Returns
        -------
        grads : dict of str to ndarray
            Keyed exactly like :attr:`params`, each shaped like its parameter. Fresh arrays.

        Raises
        ------
        ValueError
            Also when the gradients are so large that one overflows to inf or NaN.
        """
        func = "MLP.backward"
        checks.check_params(self.params, self.sizes, self.dtype, func)
        n = checks.check_cache(cache, self.sizes, self.dtype, func)
        dlogits = checks.check_grad(dlogits, "dlogits", (n, self.sizes[-1]), self.dtype, func)
        if dhidden is not None:
            dhidden = checks.check_dhidden(dhidden, n, self.sizes, self.dtype, func)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
            grads = self.backward_unchecked(dlogits, cache, dhidden)
        checks.check_finite_outputs(dlogits, list(grads.values()), func, params=self.params,
                             name="dlogits", where=list(grads))
        return grads

    def backward_unchecked(self, dlogits, cache, dhidden=None):
        """:meth:`backward` on checked arrays of the model's dtype; reads, never writes them."""
        activation_backward = _ACTIVATIONS[self.activation][1]
        grads = {}
        da = dlogits  # (N, C): dL/da_L = dL/dz
        for k in range(len(self.sizes) - 1, 0, -1):
            linear_cache = (cache.inputs[k - 1], self.params[f"W{k}"])
            dh, grads[f"W{k}"], grads[f"b{k}"] = linear_backward_kernel(
                da, linear_cache, input_grad=k > 1)  # dh: dL/dh~_{k-1}, (N, H_{k-1})
            if k == 1:
                break  # nobody needs dL/dx
            i = k - 2  # cache.hidden[i] = h_{k-1}, cache.masks[i] = m_{k-1}
            if cache.masks[i] is not None:
                dh = dropout_backward_kernel(dh, cache.masks[i])  # dL/dh_{k-1} through m
            if dhidden and i in dhidden:
                dh = dh + dhidden[i]  # plus the feature loss's own path to h_{k-1}
            da = activation_backward(dh, cache.hidden[i])  # dL/da_{k-1}
        return {key: grads[key] for key in self.params}

    # -- checks -----------------------------------------------------------------------------

    def check_input(self, x, func):
        """``x`` as a finite (N, D) array of the model's dtype, or a clear error naming ``func``
        (also when the model's own ``params`` were replaced by arrays of other shapes)."""
        checks.check_params(self.params, self.sizes, self.dtype, func)
        x = as_float_array(x, "x", func, ndim=2, dtype=self.dtype)
        if x.shape[1] != self.sizes[0]:
            raise param_error("x", func, f"an array of shape (N, {self.sizes[0]})",
                              f"shape {x.shape}")
        return x
