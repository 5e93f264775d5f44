r"""IDX files (MNIST, Fashion-MNIST): the loaders behind :func:`minikd.data.load_idx` and
:func:`minikd.data.load_mnist` (a private module; use them from :mod:`minikd.data`).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from .._validation import memory_limit, param_error

__all__ = ["load_idx", "load_mnist"]

# IDX type byte -> big-endian dtype (LeCun et al., the MNIST page: "THE IDX FILE FORMAT").
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_idx(path):
    r"""Read one IDX file (gzipped or not) into an array.

    The format: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, each dimension as a big-endian
    uint32, then the values in C order, big-endian. A file starting with the gzip magic
    ``1f 8b`` is decompressed first, whatever its name.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    ndarray of the stored shape, in the stored type (native byte order)

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        For a bad magic number, an unknown type byte, a broken gzip stream, or a data section
        shorter or longer than the header says. The message names the file.

    Examples
    --------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> _ = open(f, "wb").write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> load_idx(f)
    array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_idx: no such file: {path}")
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    try:
        # the header is read and checked before any data: a small file cannot make the loader
        # inflate, or allocate, more than its header declares (and the memory holds)
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
            shape, dtype = _read_header(f, path)
            expected = math.prod(shape) * dtype.itemsize  # exact: Python ints never wrap
            if expected > memory_limit():
                raise ValueError(f"load_idx: {path} declares shape {shape}, "
                                 f"{expected / 2**30:,.1f} GiB: more than this machine's "
                                 f"memory.")
            blob = f.read(expected + 1)  # one byte more shows a data section that is too long
    except (OSError, EOFError, zlib.error) as err:  # zlib.error: corrupt deflate data
        if not gzipped:
            raise
        raise ValueError(f"load_idx: {path} looks gzipped but cannot be decompressed "
                         f"({err}).") from err
    if len(blob) != expected:
        what = "truncated" if len(blob) < expected else "longer than its header says"
        raise ValueError(f"load_idx: {path} is {what}: shape {shape} needs {expected} data "
                         f"bytes, found {'more' if len(blob) > expected else len(blob)}.")
    data = np.frombuffer(blob, dtype).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _read_header(f, path):
    """(shape, big-endian dtype) from the open IDX file ``f``, positioned at the data."""
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise ValueError(f"load_idx: {path} is not an IDX file: bad magic number "
                         f"{head.hex() or 'empty'} (expected 0000 followed by type and ndim).")
    code, ndim = head[2], head[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"load_idx: {path} has unknown IDX type byte 0x{code:02x}.")
    dims = f.read(4 * ndim)
    if ndim == 0 or len(dims) < 4 * ndim:
        raise ValueError(f"load_idx: {path} has a truncated header ({4 + len(dims)} bytes for "
                         f"{ndim} dimensions).")
    shape = tuple(int(d) for d in np.frombuffer(dims, ">u4"))
    return shape, np.dtype(_IDX_TYPES[code])


def _find_idx(folder, stem):
    names = [f"{stem}-ubyte", f"{stem}-ubyte.gz", f"{stem.replace('-idx', '.idx')}-ubyte",
             f"{stem.replace('-idx', '.idx')}-ubyte.gz"]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"load_mnist: none of {', '.join(names)} found in {folder}")


def load_mnist(folder, *, kind="train"):
    r"""Load MNIST or Fashion-MNIST from the standard IDX files in a folder you name.

    Looks for ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` (``kind="train"``)
    or ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (``kind="test"``), each
    optionally ending in ``.gz`` (the ``.idx3-ubyte`` spelling is accepted too).

    Parameters
    ----------
    folder : str or os.PathLike
        Folder holding the files.
    kind : {"train", "test"}
        Which split.

    Returns
    -------
    X : ndarray of shape (N, rows * cols), float32
        Pixels / 255, in [0, 1], each image flattened row-major.
    y : ndarray of shape (N,), int64
        Labels 0..9.

    Raises
    ------
    FileNotFoundError
        If the folder or a file is missing.
    ValueError
        If a file is malformed (see :func:`load_idx`), the images are not a 3-D uint8 array,
        the labels not a 1-D uint8 array of values 0..9, or their counts differ.
    """
    func = "load_mnist"
    if kind not in ("train", "test"):
        raise param_error("kind", func, "'train' or 'test'", repr(kind))
    if not isinstance(folder, (str, os.PathLike)):
        raise param_error("folder", func, "a path (str or os.PathLike) to the folder of the "
                          "IDX files", repr(folder)[:60], TypeError)
    folder = Path(folder)
    if folder.is_file():
        raise ValueError(f"load_mnist: {folder} is a file; expected the folder that holds "
                         f"{'train' if kind == 'train' else 't10k'}-images-idx3-ubyte and "
                         f"its labels file (gzipped or not).")
    if not folder.is_dir():
        raise FileNotFoundError(f"load_mnist: no such folder: {folder}")
    prefix = "train" if kind == "train" else "t10k"
    images_path = _find_idx(folder, f"{prefix}-images-idx3")
    labels_path = _find_idx(folder, f"{prefix}-labels-idx1")
    images, labels = load_idx(images_path), load_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"load_mnist: {images_path} must hold a 3-D uint8 array (images, rows, "
                         f"cols). Got {images.ndim}-D {images.dtype}.")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"load_mnist: {labels_path} must hold a 1-D uint8 array. "
                         f"Got {labels.ndim}-D {labels.dtype}.")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"load_mnist: {images_path} has {images.shape[0]} images but "
                         f"{labels_path} has {labels.shape[0]} labels.")
    if labels.size and labels.max() > 9:
        raise ValueError(f"load_mnist: {labels_path} holds label {int(labels.max())}; "
                         "expected 0..9.")
    X = images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)
    return X, labels.astype(np.int64)
