"""Output arguments (``--save DIR``, ``--plot FILE``, ``--out FILE``) checked before any work:
an existing file is not overwritten without ``--force``, and a folder that cannot be written is a
one-line error at once, not after minutes of training."""

from __future__ import annotations

import os
import tempfile

from .common import UsageError

__all__ = ["check_output_dir", "check_output_file"]


def _flag(name):
    return "--" + name.replace("_", "-")


def _writable_dir(folder):
    """Whether a file can be created in ``folder`` (tried, then removed)."""
    try:
        fd, path = tempfile.mkstemp(dir=folder, prefix=".minikd-check-")
    except OSError:
        return False
    os.close(fd)
    os.unlink(path)
    return True


def check_output_file(args, name):
    """The file given as ``--<name>``: its folder exists and is writable; it does not exist
    yet, or ``--force`` was given."""
    path = getattr(args, name, None)
    if not path:
        return
    where = f"minikd {args.command}: error: {_flag(name)} {path}"
    if os.path.isdir(path):
        raise UsageError(f"{where} is a folder; expected a file name")
    if os.path.exists(path) and not getattr(args, "force", False):
        raise UsageError(f"{where} exists; remove it or add --force to overwrite it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{where}: no such folder {folder}")
    if not _writable_dir(folder):
        raise UsageError(f"{where}: cannot write in {folder}")


def check_output_dir(args, name, existing=()):
    """The folder given as ``--<name>``: creatable or writable; none of the files ``existing``
    (names inside it) is there yet, unless ``--force``."""
    folder = getattr(args, name, None)
    if not folder:
        return
    where = f"minikd {args.command}: error: {_flag(name)} {folder}"
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"{where} is a file; expected a folder")
    parent = folder if os.path.isdir(folder) else os.path.dirname(os.path.abspath(folder))
    if not os.path.isdir(parent):
        raise UsageError(f"{where}: no such folder {parent}")
    if not _writable_dir(parent):
        raise UsageError(f"{where}: cannot write in {parent}")
    clash = [f for f in existing if os.path.exists(os.path.join(folder, f))]
    if clash and not getattr(args, "force", False):
        raise UsageError(f"{where} already holds {clash[0]}"
                         f"{f' and {len(clash) - 1} more' if len(clash) > 1 else ''}; "
                         "choose another folder or add --force to overwrite")
