"""The MLP's model file: an ``.npz`` archive, its format version, and the checks on load.

:meth:`minikd.nn.MLP.save` and :meth:`minikd.nn.MLP.load` are the public face. A file holds
``format_version``, the architecture (``sizes``, ``activation``, ``dropout``, ``dtype``) and the
parameter arrays ``W1``, ``b1``, ... .

Saving writes a temporary file ``.<name>.minikd-<host>-<pid>-<random>.tmp`` in the target's
folder and moves it over the target with ``os.replace``, so an interrupted save leaves any
previous file intact. A save that fails removes its temporary file; one killed outright (SIGKILL,
a power cut) cannot, and the next save to that folder removes it: a temporary file whose writer
no longer runs on this host, or any one older than a day.

Loading reads the archive's directory and each member's ``.npy`` header before any data: the
member names, their dtypes (no object arrays: nothing is unpickled), their declared shapes and
sizes against the stored ``sizes`` and the machine's memory; only then the arrays. Every problem
with a file becomes a ValueError that names the file and the problem.
"""

from __future__ import annotations

import math
import os
import re
import socket
import tempfile
import time
import zipfile
import zlib

import numpy as np

from .._npyfiles import describe_head, npz_headers, read_member
from .._validation import param_error
from .mlp_checks import check_finite_params, check_params

__all__ = ["FORMAT_VERSION", "check_path", "read_model", "write_model"]

FORMAT_VERSION = 1
_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
_META_KEYS = ("format_version", "sizes", "activation", "dropout", "dtype")
_META_MAX_BYTES = 1 << 16  # the architecture is a few numbers and two short strings
_PARAM_NAME = re.compile(r"[Wb][1-9][0-9]*")
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"
_TEMP_NAME = re.compile(r"\..+\.minikd-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)-[^.]*\.tmp")
_STALE_SECONDS = 24 * 3600


def check_path(path, func):
    """``path`` if it is a str or os.PathLike, else a TypeError naming ``func``."""
    if not isinstance(path, (str, os.PathLike)):
        raise param_error("path", func, "a str or os.PathLike", repr(path), TypeError)
    return path


# -- saving ---------------------------------------------------------------------------------------


def write_model(model, path):
    """Write ``model`` (an MLP) to ``path`` (already checked), atomically; a model whose params
    are not finite arrays of its shapes and dtype is refused (its file could not be loaded)."""
    check_params(model.params, model.sizes, model.dtype, "MLP.save")
    check_finite_params(model.params, "MLP.save")
    arrays = {
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "sizes": np.array(model.sizes, np.int64),
        "activation": np.array(model.activation),
        "dropout": np.array(model.dropout, np.float64),
        "dtype": np.array(model.dtype.name),
        **model.params,
    }
    folder = os.path.dirname(os.path.abspath(path))
    _remove_stale_temporary_files(folder)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix=f".{os.path.basename(path)}.minikd-{_HOST}-{os.getpid()}-",
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


def _remove_stale_temporary_files(folder):
    """Remove what killed saves left in ``folder``: temporary files whose writer process no
    longer runs on this host, or any older than a day. A running writer's file is kept."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    now = time.time()
    for entry in entries:
        m = _TEMP_NAME.fullmatch(entry.name)
        if m is None:
            continue
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > _STALE_SECONDS
            if old or (m["host"] == _HOST and not _is_running(int(m["pid"]))):
                os.unlink(entry.path)
        except OSError:  # removed meanwhile by another save, or not ours to remove
            pass


def _is_running(pid):
    """Whether process ``pid`` runs on this host (True when that cannot be told safely)."""
    if pid == os.getpid() or os.name != "posix":  # os.kill(pid, 0) would kill on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


# -- loading --------------------------------------------------------------------------------------


def read_model(cls, path, rng):
    """The ``cls`` (MLP) stored in ``path`` (already checked); ``rng`` (a Generator) seeds its
    dropout. Every problem with the file raises a ValueError naming the file and the problem."""

    def bad(problem):
        return ValueError(f"Cannot load an MLP from '{os.fspath(path)}': {problem}.")

    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            fh.seek(0)
            if not zipfile.is_zipfile(fh):
                raise bad(f"not an .npz file ({describe_head(head)}); expected an archive written "
                          "by MLP.save")
            with zipfile.ZipFile(fh) as archive:
                return _read_archive(cls, archive, rng, bad)
    except FileNotFoundError as err:
        raise bad("no such file") from err
    except IsADirectoryError as err:
        raise bad("it is a folder, not a file") from err
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as err:
        # CRC mismatch, cut or damaged compressed data, unknown compression, encryption
        raise bad(f"truncated or corrupt ({type(err).__name__}: {err})") from err
    except OSError as err:
        raise bad(f"it cannot be read ({type(err).__name__}: {err})") from err


def _headers(archive, bad):
    """{key: (ZipInfo, shape, dtype)} from each member's .npy header."""
    return npz_headers(archive, bad, lambda key: key in _META_KEYS or _PARAM_NAME.fullmatch(key),
                       f"{list(_META_KEYS)} and W1, b1, W2, ...: an MLP file")


def _read_archive(cls, archive, rng, bad):
    headers = _headers(archive, bad)
    missing = [k for k in _META_KEYS if k not in headers]
    if missing:
        raise bad(f"missing key(s) {missing}")
    for key in _META_KEYS:
        _, shape, dtype = headers[key]
        if math.prod(shape) * dtype.itemsize > _META_MAX_BYTES:
            raise bad(f"array '{key}' declares shape {shape}, too large for an architecture")
    meta = {key: read_member(archive, headers[key][0], key, bad) for key in _META_KEYS}
    version = meta["format_version"]
    if version.shape != () or version.dtype.kind not in "iu":
        raise bad("'format_version' is not an integer scalar")
    if int(version) != FORMAT_VERSION:
        raise bad(f"format version {int(version)}, but this minikd reads version "
                  f"{FORMAT_VERSION}")
    sizes, dtype_name = meta["sizes"], str(meta["dtype"][()])
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu" or sizes.size < 2 or (sizes < 1).any():
        raise bad(f"inconsistent architecture ('sizes' is {sizes.tolist()!r}, not a list of "
                  "at least two positive integers)")
    if dtype_name not in _DTYPES:
        raise bad(f"inconsistent architecture (unknown dtype {dtype_name!r})")
    dtype, sizes = _DTYPES[dtype_name], [int(s) for s in sizes]
    shapes = {}
    for k in range(1, len(sizes)):
        shapes[f"W{k}"], shapes[f"b{k}"] = (sizes[k - 1], sizes[k]), (sizes[k],)
    stored = set(headers) - set(_META_KEYS)
    missing, extra = sorted(set(shapes) - stored), sorted(stored - set(shapes))
    if missing or extra:
        raise bad(f"parameter arrays do not match sizes {sizes}: missing {missing}, "
                  f"unexpected {extra}")
    for key, shape in shapes.items():
        _, stored_shape, stored_dtype = headers[key]
        if stored_shape != shape:
            raise bad(f"array '{key}' has shape {stored_shape}; sizes {sizes} need {shape}")
        if stored_dtype != dtype:
            raise bad(f"array '{key}' has dtype {stored_dtype}; the file says {dtype_name}")
    try:  # checks the memory the parameters need before allocating them
        model = cls(sizes, activation=str(meta["activation"][()]),
                    dropout=float(meta["dropout"]), dtype=dtype, rng=rng)
    except (ValueError, TypeError) as err:
        raise bad(f"inconsistent architecture ({err})") from err
    for key in shapes:
        arr = read_member(archive, headers[key][0], key, bad)
        if not np.isfinite(arr).all():
            raise bad(f"array '{key}' holds NaN or inf")
        model.params[key] = arr  # a fresh array the model owns
    return model
