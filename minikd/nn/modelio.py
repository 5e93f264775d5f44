"""The MLP's model file: an ``.npz`` archive, its format version and the checks on load.

Private: :meth:`minikd.MLP.save` and :meth:`minikd.MLP.load` are the public face. A file holds
``format_version``, the architecture (``sizes``, ``activation``, ``dropout``, ``dtype``) and
the parameter arrays ``W1``, ``b1``, ... . It is written atomically (a temporary file in the
same folder, then ``os.replace``) and read with ``allow_pickle=False``; every problem with a file
becomes a ValueError that names the file.
"""

from __future__ import annotations

import os
import tempfile
import zipfile

import numpy as np

from .._validation import param_error

FORMAT_VERSION = 1
_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
_META_KEYS = ("format_version", "sizes", "activation", "dropout", "dtype")


def check_path(path, func):
    """``path`` if it is a str or os.PathLike, else a TypeError naming ``func``."""
    if not isinstance(path, (str, os.PathLike)):
        raise param_error("path", func, "a str or os.PathLike", repr(path), TypeError)
    return path


def write_model(model, path):
    """Write ``model`` (an MLP) to ``path`` (already checked), atomically."""
    arrays = {
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "sizes": np.array(model.sizes, np.int64),
        "activation": np.array(model.activation),
        "dropout": np.array(model.dropout, np.float64),
        "dtype": np.array(model.dtype.name),
        **model.params,
    }
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_model(cls, path, rng):
    """The ``cls`` (MLP) stored in ``path`` (already checked), its dropout Generator from ``rng``.

    Every problem with the file raises a ValueError naming the file and the problem.
    """

    def bad(problem):
        return ValueError(f"Cannot load an MLP from '{os.fspath(path)}': {problem}.")

    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError as err:
        raise bad("no such file") from err
    except ValueError as err:  # neither .npz nor .npy: numpy would try to unpickle it
        raise bad(f"not an .npz file ({err})") from err
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise bad(f"truncated or corrupt ({type(err).__name__}: {err})") from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise bad("it is a single .npy array, not an .npz archive")
    data = {}
    with npz:
        for key in npz.files:
            try:
                data[key] = npz[key]
            except ValueError as err:
                if "Object arrays" in str(err):
                    raise bad(f"array '{key}' is an object array, which minikd never "
                              "writes and will not unpickle") from err
                raise bad(f"array '{key}' is corrupt ({err})") from err
            except Exception as err:  # zlib/zipfile/CRC errors on damaged members
                raise bad(f"array '{key}' is truncated or corrupt "
                          f"({type(err).__name__}: {err})") from err
    for key, arr in data.items():
        if arr.dtype.kind == "O":
            raise bad(f"array '{key}' is an object array")
    missing = [k for k in _META_KEYS if k not in data]
    if missing:
        raise bad(f"missing key(s) {missing}")
    version = data["format_version"]
    if version.shape != () or version.dtype.kind not in "iu":
        raise bad("'format_version' is not an integer scalar")
    if int(version) != FORMAT_VERSION:
        raise bad(f"format version {int(version)}, but this minikd reads version "
                  f"{FORMAT_VERSION}")
    try:
        sizes = data["sizes"]
        if sizes.ndim != 1 or sizes.dtype.kind not in "iu":
            raise ValueError("'sizes' is not a 1-D integer array")
        dtype_name = str(data["dtype"][()])
        if dtype_name not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype_name!r}")
    except (ValueError, TypeError) as err:
        raise bad(f"inconsistent architecture ({err})") from err
    # The stored arrays must fit sizes before the model allocates its own: a corrupt sizes
    # such as [3, 2**40, 2] would otherwise ask for terabytes (MemoryError).
    shapes = {}
    for k in range(1, sizes.size):
        shapes[f"W{k}"] = (int(sizes[k - 1]), int(sizes[k]))
        shapes[f"b{k}"] = (int(sizes[k]),)
    if shapes:
        extra = sorted(set(data) - set(_META_KEYS) - set(shapes))
        missing = sorted(set(shapes) - set(data))
        if missing or extra:
            raise bad(f"parameter arrays do not match sizes {sizes.tolist()}: missing "
                      f"{missing}, unexpected {extra}")
        for key, shape in shapes.items():
            if data[key].shape != shape:
                raise bad(f"array '{key}' has shape {data[key].shape}; sizes "
                          f"{sizes.tolist()} need {shape}")
    try:
        model = cls([int(s) for s in sizes], activation=str(data["activation"][()]),
                    dropout=float(data["dropout"]), dtype=_DTYPES[dtype_name], rng=rng)
    except (ValueError, TypeError) as err:
        raise bad(f"inconsistent architecture ({err})") from err
    expected = set(_META_KEYS) | set(model.params)
    extra = sorted(set(data) - expected)
    missing = sorted(set(model.params) - set(data))
    if missing or extra:
        raise bad(f"parameter arrays do not match sizes {list(model.sizes)}: missing "
                  f"{missing}, unexpected {extra}")
    for key, ref in model.params.items():
        arr = data[key]
        if arr.shape != ref.shape or arr.dtype != ref.dtype:
            raise bad(f"array '{key}' has shape {arr.shape} and dtype {arr.dtype}; sizes "
                      f"{list(model.sizes)} and dtype {dtype_name} need {ref.shape} and "
                      f"{ref.dtype}")
        if not np.isfinite(arr).all():
            raise bad(f"array '{key}' holds NaN or inf")
        model.params[key] = arr  # np.load returned a fresh array we own
    return model
