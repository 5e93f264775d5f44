"""Reading NumPy ``.npy`` / ``.npz`` files safely: headers first, then only the data declared.

Shared by every loader of array files (:mod:`minikd.nn.modelio` for model files,
:mod:`minikd.experiments.userdata` for a user's data and teacher logits). Each ``.npy`` header
(its magic, dtype and shape) is read and checked before any data: no object arrays (nothing is
unpickled: ``allow_pickle=False``), and a member's size on disk must equal what its header
declares, so a small file cannot make a loader inflate or allocate more than it declares. Every
problem is raised through the caller's ``bad(problem) -> ValueError``, which names the file.
"""

from __future__ import annotations

import math
import zipfile

import numpy as np

__all__ = ["describe_head", "is_npz", "npy_header", "npz_headers", "read_member", "read_npy"]


def describe_head(head):
    """What a file is, from its first bytes (for "not an .npz / .npy file" messages)."""
    if not head:
        return "it is empty"
    if head.startswith(b"\x93NUMPY"):
        return "it is a single .npy array, not an .npz archive"
    if head.startswith(b"PK"):
        return "a zip archive, truncated or corrupt"
    if head.startswith(b"\x80") and len(head) > 1 and head[1] <= 5:
        return "it looks like a pickle, which minikd never reads"
    text = head.decode("utf-8", errors="replace").rstrip("\ufffd")  # a cut last character
    if text and all(c.isprintable() or c.isspace() for c in text):
        return f"it is a text file starting with {text[:30]!r}"
    return f"it starts with the bytes {head[:8]!r}"


def npy_header(f, key, size, bad):
    """``(shape, dtype)`` from the ``.npy`` header at the start of the open file ``f``, which
    holds ``size`` bytes; ``f`` is left at the data. Refuses an unreadable header, an object
    dtype and a data section whose size is not the declared one (``key`` names the array)."""
    try:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read is None:
            raise ValueError(f".npy format version {version}")
        shape, _, dtype = read(f)
    except ValueError as err:
        raise bad(f"array '{key}' has an unreadable header ({err})") from err
    if dtype.hasobject:
        raise bad(f"array '{key}' is an object array, which minikd will not unpickle")
    nbytes = math.prod(shape) * dtype.itemsize  # exact: Python ints never wrap
    if size != f.tell() + nbytes:
        raise bad(f"array '{key}' declares shape {shape} of {dtype}, {nbytes} bytes, but "
                  f"its member holds {size - f.tell()}")
    return shape, dtype


def npz_headers(archive, bad, accept=lambda key: True, expected="the documented arrays"):
    """``{key: (ZipInfo, shape, dtype)}`` from each member's ``.npy`` header of the open
    :class:`zipfile.ZipFile` ``archive``; a member whose key ``accept`` refuses, or that
    appears twice, is refused (``expected`` says what the file should hold)."""
    found = {}
    for info in archive.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else None
        if key is None or not accept(key):
            raise bad(f"unexpected member '{info.filename}' (expected {expected})")
        if key in found:
            raise bad(f"member '{info.filename}' appears twice")
        with archive.open(info) as f:
            shape, dtype = npy_header(f, key, info.file_size, bad)
        found[key] = (info, shape, dtype)
    return found


def read_member(archive, info, key, bad):
    """The array of member ``info`` (its header already checked by :func:`npz_headers`)."""
    with archive.open(info) as f:
        try:
            return np.lib.format.read_array(f, allow_pickle=False)
        except ValueError as err:
            raise bad(f"array '{key}' is corrupt ({err})") from err


def read_npy(fh, key, bad, check=lambda shape, dtype: None):
    """The array of the open ``.npy`` file ``fh``, after its header passed :func:`npy_header`
    and ``check(shape, dtype)`` (which raises to refuse it before any data is read)."""
    fh.seek(0, 2)
    size = fh.tell()
    fh.seek(0)
    shape, dtype = npy_header(fh, key, size, bad)
    check(shape, dtype)
    fh.seek(0)
    try:
        return np.lib.format.read_array(fh, allow_pickle=False)
    except ValueError as err:
        raise bad(f"array '{key}' is corrupt ({err})") from err


def is_npz(fh):
    """Whether the open binary file ``fh`` is a zip archive (an ``.npz``); ``fh`` is rewound."""
    fh.seek(0)
    ok = zipfile.is_zipfile(fh)
    fh.seek(0)
    return ok
