r"""The US Census 1990 name lists, as next-character examples for a character language model.

The shipped file ``datafiles/names/names.txt.gz`` holds 91,910 distinct names, one per line in
lower case, a-z only, 2 to 13 letters: the union of the 1990 Census lists of surnames and of
female and male first names (public domain), as distributed by the PyPI package ``names`` 0.3.0
(``datafiles/names/README.md`` has the provenance, checksums and processing). No network.

A name becomes one example per character plus one for its end, as in Bengio et al. (2003) and
Karpathy's makemore: with the boundary token "." (index 0) and K = 3, ``"ann"`` gives

======== ======
context  target
======== ======
``...``  ``a``
``..a``  ``n``
``.an``  ``n``
``ann``  ``.``
======== ======

The split is by *name*, so no test name's prefixes leak into training: a fixed shuffle (seed
:data:`SPLIT_SEED`) puts 10 % of the names in the test split, and a validation split of the same
size is carved from the other 90 %; the training split is the remaining 80 %.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from typing import NamedTuple

import numpy as np

from .._validation import check_fraction, check_int, param_error

__all__ = ["ALPHABET", "BOUNDARY", "NAMES_SHA256", "SPLIT_SEED", "VOCAB", "NameSplit",
           "NamesData", "decode", "encode", "load_names", "load_names_data", "make_examples",
           "split_names"]

ALPHABET = ".abcdefghijklmnopqrstuvwxyz"  # token i is ALPHABET[i]; "." is the boundary
BOUNDARY = 0
VOCAB = len(ALPHABET)  # 27
# sha256 of the decompressed text (robust to recompression); README.md also has the .gz's.
NAMES_SHA256 = "0d57baff45e665d1c9b7af693006f56fdb7c8e3189d08b308980e3f69fe11435"
NAMES_FILE = os.path.join(os.path.dirname(__file__), "datafiles", "names", "names.txt.gz")
SPLIT_SEED = 1990  # any fixed seed; the census year
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_TOKENS = np.zeros(256, np.int64)  # byte -> token, for make_examples
_TOKENS[np.frombuffer(ALPHABET.encode("ascii"), np.uint8)] = np.arange(VOCAB)


def load_names(path=None):
    """The shipped names as a sorted list of str (91,910 of them), checksum verified.

    Parameters
    ----------
    path : str, optional
        Another gzip file of one lower-case a-z name per line (then not checksum verified).

    Returns
    -------
    list of str
    """
    with open(path or NAMES_FILE, "rb") as f:
        text = gzip.decompress(f.read())
    if path is None and hashlib.sha256(text).hexdigest() != NAMES_SHA256:
        raise ValueError(f"The shipped name list {NAMES_FILE} does not match its recorded "
                         "sha256; the installation is damaged (reinstall minikd).")
    names = text.decode("ascii").split()
    for name in names:
        _check_name(name, "load_names", "path", "a file of lower-case a-z names, one a line")
    return names


def _check_name(name, func, param="names", expected="non-empty strings of lower-case a-z"):
    """``name`` if it is a non-empty string of a-z, else a ValueError naming ``func``."""
    if not (isinstance(name, str) and name.isascii() and name.isalpha() and name.islower()):
        raise param_error(param, func, expected, repr(name))
    return name


def encode(name):
    """The tokens of a lower-case a-z string: ``encode("ab") == [1, 2]``."""
    return [_INDEX[c] for c in name]


def decode(tokens):
    """The string of a sequence of tokens: ``decode([1, 2, 0]) == "ab."``."""
    return "".join(ALPHABET[int(t)] for t in tokens)


def make_examples(names, *, context=8):
    r"""One (context, next token) example per character of every name, plus its end.

    .. math::

        x_j = (t_{j-K}, \dots, t_{j-1}), \quad y_j = t_j, \qquad j = 1, \dots, n + 1

    with :math:`t_j` = boundary for :math:`j \le 0` and :math:`j = n + 1`.

    Parameters
    ----------
    names : sequence of str
    context : int, default 8
        K.

    Returns
    -------
    X : ndarray of int64 of shape (M, K)
    y : ndarray of int64 of shape (M,)
        M = sum of (len(name) + 1).

    Examples
    --------
    >>> X, y = make_examples(["ann"], context=3)
    >>> [decode(row) for row in X], decode(y)
    (['...', '..a', '.an', 'ann'], 'ann.')
    """
    func = "make_examples"
    K = check_int(context, "context", func, low=1)
    if not names:
        return np.zeros((0, K), np.int64), np.zeros(0, np.int64)
    # One stream with K boundaries before every name and one after the last. The targets are
    # the letters and each boundary right after a letter (a name's end); the other boundaries
    # are padding. A target's context is the K tokens before it, which never reach back into
    # the previous name. (The loop "for j in range(len(name) + 1): x = padded[j:j + K]" says
    # the same and is the tests' twin; this is 20x faster on the 92k names.)
    text = "".join("." * K + _check_name(name, func) for name in names) + "."
    tokens = _TOKENS[np.frombuffer(text.encode("ascii"), np.uint8)]  # (S,) int64
    windows = np.lib.stride_tricks.sliding_window_view(tokens, K + 1)  # (S - K, K + 1)
    target = (windows[:, K] != BOUNDARY) | (windows[:, K - 1] != BOUNDARY)  # (S - K,) bool
    return windows[target, :K], windows[target, K]  # fancy indexing copies


class NameSplit(NamedTuple):
    """Three disjoint lists of names."""

    train: list
    val: list
    test: list


def split_names(names, *, val_fraction=0.1, test_fraction=0.1, rng=SPLIT_SEED):
    """Shuffle the names once and cut them into train / validation / test.

    The test split is the first ``test_fraction`` of the shuffle; the validation split, the next
    ``val_fraction``, is carved from what is left for training.

    Returns
    -------
    NameSplit
    """
    func = "split_names"
    val_fraction = check_fraction(val_fraction, "val_fraction", func, closed_low=False)
    test_fraction = check_fraction(test_fraction, "test_fraction", func, closed_low=False)
    if val_fraction + test_fraction >= 1.0:
        raise param_error("val_fraction", func, "a float with val_fraction + test_fraction < 1",
                          repr(val_fraction))
    order = np.random.default_rng(rng).permutation(len(names))
    n_test = round(test_fraction * len(names))
    n_val = round(val_fraction * len(names))
    pick = [names[i] for i in order]
    return NameSplit(train=pick[n_test + n_val:], val=pick[n_test:n_test + n_val],
                     test=pick[:n_test])


class NamesData(NamedTuple):
    """The examples of each split and the names they came from (for sampling statistics)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    names: NameSplit


def load_names_data(*, context=8, rng=SPLIT_SEED):
    """The shipped names, split (:func:`split_names`) and made into examples.

    Returns
    -------
    NamesData
        ``X_*`` (M, K) and ``y_*`` (M,) int64 arrays of each split; about 600k / 75k / 75k rows.
    """
    split = split_names(load_names(), rng=rng)
    arrays = [a for part in split for a in make_examples(part, context=context)]
    return NamesData(*arrays, split)
