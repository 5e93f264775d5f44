r"""A character-level language model: the previous K characters predict the next one.

Bengio et al. (2003), "A Neural Probabilistic Language Model", §2 (and Karpathy's "makemore"
MLP): each of the K context tokens is looked up in a shared embedding table, the K embeddings
are concatenated, one or more hidden layers follow, and a last linear layer gives V logits:

.. math::

    x = [E_{i_1}; \dots; E_{i_K}] \in \mathbb R^{K D}, \quad
    a_l = \tilde h_{l-1} W_l + b_l, \quad h_l = \sigma(a_l), \quad \tilde h_l = h_l \odot m_l,
    \quad z = \tilde h_{L-1} W_L + b_L

with :math:`\tilde h_0 = x` and :math:`m_l` the dropout masks (training mode only). The model is
composed from the layer pairs of :mod:`minikd.nn.layers` and :mod:`minikd.nn.embedding`; its
backward runs their backwards in reverse order, so every gradient is one already checked by
finite differences. Shape letters: N rows, K context, D embedding width, H hidden, V vocabulary.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int, check_unit_interval, param_error
from ..losses.softmax import softmax
from . import char_lm_io
from .embedding import embedding_backward, embedding_forward
from .layers import (
    dropout_backward,
    dropout_forward,
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
    tanh_backward,
    tanh_forward,
)

__all__ = ["CharLM"]

ACTIVATIONS = {"tanh": (tanh_forward, tanh_backward), "relu": (relu_forward, relu_backward)}
# Kaiming's gain for each activation: W ~ N(0, gain^2 / fan_in) keeps the activations' scale.
_GAIN = {"tanh": 5.0 / 3.0, "relu": 2.0 ** 0.5}
_CHUNK = 8192  # rows per forward pass in logits(): bounds memory on a whole split


class CharLM:
    r"""Bengio-2003 / makemore MLP language model over a vocabulary of V tokens.

    .. math::

        z = \mathrm{MLP}\big([E_{i_1}; \dots; E_{i_K}]\big), \qquad
        \bar E = \mathrm{scatter\_add}_i\big(\bar x\big), \;
        \bar W_l = \tilde h_{l-1}^\top \bar a_l, \;
        \bar a_l = \big((\bar a_{l+1} W_{l+1}^\top) \odot m_l\big) \odot \sigma'(a_l)

    Parameters
    ----------
    context : int, default 8
        K, the number of previous tokens the model sees.
    embed_dim : int, default 8
        D, the width of each token's embedding.
    hidden : sequence of int, default (32,)
        Hidden widths H_1, ..., H_{L-1} (at least one).
    vocab : int, default 27
        V; token 0 is the boundary token ("." before and after a name) by minikd's convention.
    activation : {"tanh", "relu"}, default "tanh"
    dropout : float in [0, 1), default 0.0
        After each hidden activation, in training mode only.
    dtype : {numpy.float32, numpy.float64}, default float32
    rng : int, numpy.random.Generator or None
        Seeds the initialisation and then the dropout masks.

    Attributes
    ----------
    params : dict of str to ndarray
        ``"E"`` (V, D), ``"W1"`` (K·D, H_1), ``"b1"`` (H_1,), ..., ``"WL"`` (H_{L-1}, V),
        ``"bL"`` (V,). E ~ N(0, 1); hidden W ~ N(0, gain² / fan_in) with Kaiming's gain (5/3 for
        tanh, √2 for ReLU); the last W scaled by 0.1 so the first predictions are nearly uniform
        (initial loss ≈ log V, as in makemore); biases 0.

    Examples
    --------
    >>> import numpy as np
    >>> model = CharLM(context=3, embed_dim=2, hidden=(4,), rng=0)
    >>> logits, cache = model.forward(np.array([[0, 0, 5], [0, 5, 1]]))
    >>> logits.shape, model.n_params
    ((2, 27), 217)
    >>> grads = model.backward(np.ones_like(logits), cache)
    >>> sorted(grads) == sorted(model.params)
    True
    """

    def __init__(self, context=8, embed_dim=8, hidden=(32,), *, vocab=27, activation="tanh",
                 dropout=0.0, dtype=np.float32, rng=None):
        func = "CharLM"
        self.context = check_int(context, "context", func, low=1)
        self.embed_dim = check_int(embed_dim, "embed_dim", func, low=1)
        self.vocab = check_int(vocab, "vocab", func, low=2)
        if not isinstance(hidden, (tuple, list)) or not hidden:
            raise param_error("hidden", func, "a non-empty tuple of ints", repr(hidden),
                              TypeError)
        self.hidden = tuple(check_int(h, "hidden", func, low=1) for h in hidden)
        if activation not in ACTIVATIONS:
            raise param_error("activation", func, f"one of {tuple(ACTIVATIONS)}",
                              repr(activation))
        self.activation = activation
        self.dropout = check_unit_interval(dropout, "dropout", func)
        if self.dropout == 1.0:
            raise param_error("dropout", func, "a float in the range [0, 1)", repr(dropout))
        if dtype not in (np.float32, np.float64):
            raise param_error("dtype", func, "numpy.float32 or numpy.float64", repr(dtype),
                              TypeError)
        self.dtype = np.dtype(dtype)
        self.rng = np.random.default_rng(rng)
        params = {}
        shapes = self.param_shapes(self.context, self.embed_dim, self.hidden, self.vocab)
        for key, shape in shapes.items():
            if key == "E":
                params[key] = self.rng.standard_normal(shape)  # (V, D)
            elif key[0] == "W":  # (fan_in, fan_out); the last layer's scaled by 0.1
                W = self.rng.standard_normal(shape) * _GAIN[activation] / shape[0] ** 0.5
                params[key] = W * 0.1 if key == f"W{self.n_layers}" else W
            else:
                params[key] = np.zeros(shape)
        self.params = {k: v.astype(self.dtype) for k, v in params.items()}

    @property
    def n_layers(self):
        """L, the number of linear layers (hidden layers + the output layer)."""
        return len(self.hidden) + 1

    @property
    def n_params(self):
        """Number of scalar parameters."""
        return int(sum(p.size for p in self.params.values()))

    @property
    def config(self):
        """The constructor's keyword arguments (without rng): enough to rebuild the model."""
        return {"context": self.context, "embed_dim": self.embed_dim, "hidden": self.hidden,
                "vocab": self.vocab, "activation": self.activation, "dropout": self.dropout,
                "dtype": self.dtype.name}

    def check_contexts(self, contexts, func):
        """``contexts`` as an int64 array of shape (N, K) with tokens in [0, V), or raise."""
        try:
            arr = np.asarray(contexts)
        except (ValueError, TypeError) as err:  # a ragged nested list
            raise param_error("contexts", func, "a rectangular integer array",
                              type(contexts).__name__, TypeError) from err
        if arr.dtype.kind not in "iu":
            raise param_error("contexts", func, "an integer array of token indices",
                              f"dtype {arr.dtype}", TypeError)
        if arr.ndim != 2 or arr.shape[1] != self.context:
            raise param_error("contexts", func, f"an array of shape (N, {self.context})",
                              f"shape {arr.shape}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.vocab):
            raise param_error("contexts", func, f"token indices in [0, {self.vocab})",
                              f"values in [{int(arr.min())}, {int(arr.max())}]")
        return arr.astype(np.int64, copy=False)

    def forward(self, contexts, *, train=False):
        r"""Logits of the next token for each context row, and the cache for :meth:`backward`.

        Parameters
        ----------
        contexts : array_like of int of shape (N, K)
            The K previous tokens of each row, oldest first.
        train : bool, default False
            Apply dropout (drawn from the model's Generator).

        Returns
        -------
        logits : ndarray of shape (N, V)
        cache : tuple
            Everything :meth:`backward` needs.
        """
        idx = self.check_contexts(contexts, "CharLM.forward")
        act_forward = ACTIVATIONS[self.activation][0]
        emb, emb_cache = embedding_forward(idx, self.params["E"])  # (N, K, D)
        h = emb.reshape(idx.shape[0], self.context * self.embed_dim)  # (N, K·D): concatenated
        layers = []
        for l in range(1, self.n_layers):
            a, lin_cache = linear_forward(h, self.params[f"W{l}"], self.params[f"b{l}"])  # (N, H)
            h, act_cache = act_forward(a)  # (N, H)
            h, drop_cache = dropout_forward(h, p=self.dropout, train=train, rng=self.rng)
            layers.append((lin_cache, act_cache, drop_cache))
        L = self.n_layers
        logits, out_cache = linear_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        return logits, (emb_cache, layers, out_cache)  # logits (N, V)

    def backward(self, dlogits, cache):
        r"""Gradients of every parameter from the upstream gradient of the logits.

        Parameters
        ----------
        dlogits : array_like of shape (N, V)
            :math:`\partial L / \partial z`, e.g. a loss's ``grad``.
        cache : tuple
            From :meth:`forward`.

        Returns
        -------
        grads : dict of str to ndarray
            Same keys and shapes as ``params``.
        """
        emb_cache, layers, out_cache = cache
        act_backward = ACTIVATIONS[self.activation][1]
        L = self.n_layers
        grads = {}
        dh, grads[f"W{L}"], grads[f"b{L}"] = linear_backward(dlogits, out_cache)  # (N, H)
        for l in range(L - 1, 0, -1):
            lin_cache, act_cache, drop_cache = layers[l - 1]
            da = act_backward(dropout_backward(dh, drop_cache), act_cache)  # (N, H_l)
            dh, grads[f"W{l}"], grads[f"b{l}"] = linear_backward(da, lin_cache)
        demb = dh.reshape(dh.shape[0], self.context, self.embed_dim)  # (N, K, D)
        grads["E"] = embedding_backward(demb, emb_cache)  # (V, D)
        return grads

    def logits(self, contexts):
        """Evaluation-mode logits of shape (N, V), computed in chunks of 8192 rows."""
        idx = self.check_contexts(contexts, "CharLM.logits")
        out = np.empty((idx.shape[0], self.vocab), dtype=self.dtype)  # (N, V)
        for start in range(0, idx.shape[0], _CHUNK):
            out[start:start + _CHUNK] = self.forward(idx[start:start + _CHUNK])[0]
        return out

    def sample(self, n, *, max_len=30, temperature=1.0, boundary=0, rng=None):
        r"""Draw ``n`` sequences token by token, :math:`i_t \sim \mathrm{softmax}(z_t / T)`.

        Each sequence starts from a context of K boundary tokens and ends when the model draws
        the boundary token (not included) or after ``max_len`` tokens.

        Parameters
        ----------
        n, max_len : int
            Number of sequences, and the longest (default 30).
        temperature : float, default 1.0
            1 samples the model's own distribution.
        boundary : int, default 0
        rng : int, numpy.random.Generator or None

        Returns
        -------
        list of list of int
            The tokens of each sequence, boundary excluded.
        """
        func = "CharLM.sample"
        n = check_int(n, "n", func, low=0)
        max_len = check_int(max_len, "max_len", func, low=1)
        boundary = check_int(boundary, "boundary", func, low=0, high=self.vocab - 1)
        rng = np.random.default_rng(rng)
        if n == 0:
            return []
        ctx = np.full((n, self.context), boundary, dtype=np.int64)  # (n, K)
        out = np.full((n, max_len), boundary, dtype=np.int64)  # (n, max_len)
        alive = np.ones(n, dtype=bool)
        for t in range(max_len):
            p = softmax(self.forward(ctx)[0], temperature=temperature)  # (n, V)
            u = rng.random(n)  # (n,): inverse-CDF draw from each row
            tok = np.minimum((p.cumsum(axis=1) < u[:, None]).sum(axis=1), self.vocab - 1)
            tok = np.where(alive, tok, boundary)
            out[:, t] = tok
            alive &= tok != boundary
            ctx = np.concatenate([ctx[:, 1:], tok[:, None]], axis=1)
            if not alive.any():
                break
        return [_until(row, boundary) for row in out]

    def save(self, path):
        """Write the model to an ``.npz`` file atomically (:mod:`minikd.nn.char_lm_io`)."""
        char_lm_io.write_char_lm(self, path)

    @classmethod
    def load(cls, path, *, rng=None):
        """The model stored by :meth:`save` (``allow_pickle=False``; a ValueError naming the
        file for anything wrong with it). ``rng`` seeds its dropout Generator."""
        return char_lm_io.read_char_lm(cls, path, rng=rng)

    @staticmethod
    def param_shapes(context, embed_dim, hidden, vocab):
        """The parameters' shapes: E (V, D), then W_l (fan_in, fan_out) and b_l (fan_out,)."""
        widths = [int(context) * int(embed_dim), *map(int, hidden), int(vocab)]
        shapes = {"E": (int(vocab), int(embed_dim))}
        for l in range(1, len(widths)):
            shapes[f"W{l}"], shapes[f"b{l}"] = (widths[l - 1], widths[l]), (widths[l],)
        return shapes


def _until(row, boundary):
    """The tokens of ``row`` before its first ``boundary`` (all of them if there is none)."""
    stop = np.flatnonzero(row == boundary)
    return row[: stop[0] if stop.size else row.size].tolist()
