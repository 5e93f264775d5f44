"""``--plot FILE.png``: checked before any work (matplotlib present, the file writable), drawn
after it."""

from __future__ import annotations

import sys

from .common import EXIT_OK, UsageError
from .outputs import check_output_file

__all__ = ["check_plot", "draw_plot"]


def check_plot(args):
    """Refuse ``--plot`` at once when matplotlib is missing or the file cannot be written."""
    if not getattr(args, "plot", None):
        return
    from ..experiments import plots

    try:
        plots.require_matplotlib()
    except ImportError as err:
        raise UsageError(f"minikd {args.command}: error: --plot needs matplotlib ({err})") \
            from None
    check_output_file(args, "plot")


def draw_plot(args, draw, *data):
    """Draw with matplotlib when ``--plot`` was given (already checked by :func:`check_plot`)."""
    if not getattr(args, "plot", None):
        return EXIT_OK
    draw(*data, path=args.plot)
    if not (getattr(args, "quiet", False) or getattr(args, "json", False)):
        print(f"wrote {args.plot}", file=sys.stderr)
    return EXIT_OK
