"""The model file of :class:`minikd.nn.char_lm.CharLM`: an ``.npz`` archive and its checks.

:meth:`CharLM.save` and :meth:`CharLM.load` are the public face. A file holds
``format_version``, ``config`` (the constructor's arguments, as a JSON string) and the
parameter arrays ``E``, ``W1``, ``b1``, ... . It is written atomically (a temporary file in the
same folder, then ``os.replace``) and read with ``allow_pickle=False``; every problem with a file
becomes a ValueError that names the file, found before the model allocates anything.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

__all__ = ["FORMAT_VERSION", "read_char_lm", "write_char_lm"]

FORMAT_VERSION = 1


def write_char_lm(model, path):
    """Write ``model``'s config and parameters to ``path``, atomically."""
    arrays = {"format_version": np.array(FORMAT_VERSION),
              "config": np.array(json.dumps(model.config)), **model.params}
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".charlm.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_char_lm(cls, path, *, rng=None):
    """The ``cls`` (CharLM) stored in ``path``; its dropout Generator seeded by ``rng``."""
    def bad(problem):
        return ValueError(f"Cannot load a CharLM from '{os.fspath(path)}': {problem}.")

    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except FileNotFoundError as err:
        raise bad("no such file") from err
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise bad(f"not a readable .npz file ({type(err).__name__}: {err})") from err
    if data.pop("format_version", np.array(-1)).tolist() != FORMAT_VERSION:
        raise bad(f"no format version {FORMAT_VERSION}")
    try:
        config = json.loads(str(data.pop("config")))
        config["hidden"], dtype = tuple(config["hidden"]), np.dtype(config["dtype"])
        shapes = cls.param_shapes(config["context"], config["embed_dim"], config["hidden"],
                                  config["vocab"])
    except (KeyError, TypeError, ValueError) as err:
        raise bad(f"a missing or inconsistent config ({err})") from err
    if sorted(data) != sorted(shapes):
        raise bad(f"arrays {sorted(data)}, expected {sorted(shapes)}")
    for key, shape in shapes.items():
        if data[key].shape != shape or data[key].dtype != dtype:
            raise bad(f"array '{key}' has shape {data[key].shape} and dtype {data[key].dtype}, "
                      f"expected {shape} and {dtype}")
        if not np.isfinite(data[key]).all():
            raise bad(f"array '{key}' holds NaN or inf")
    try:
        model = cls(**{**config, "dtype": dtype.type}, rng=rng)
    except (TypeError, ValueError) as err:
        raise bad(f"an inconsistent config ({err})") from err
    model.params = data  # np.load gave fresh arrays that we own
    return model
