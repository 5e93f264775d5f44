"""One progress bar per job (tqdm): finished runs out of all, their rate and the time left.

The bar goes to stderr and only when stderr is a terminal: piped or redirected output, ``-q``
and ``--json`` see nothing but the result. The job's functions call :func:`progress_bar` in the
process that collects the runs, so the bar counts runs (seeds, sweep cells) as they finish,
whichever worker trained them; the trainers in the workers print nothing.
"""

from __future__ import annotations

import contextlib
import sys

__all__ = ["progress_bar", "shows_progress"]


def shows_progress(enabled=True, stream=None):
    """Whether a bar is drawn: ``enabled`` and the stream (default stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(enabled) and isatty is not None and isatty()


@contextlib.contextmanager
def progress_bar(total, *, enabled=True, desc="", unit="run"):
    """A bar of ``total`` runs on stderr; yields ``step(label)``: one more run done, ``label``
    (e.g. ``"seed 3 distilled"``) shown as the last one finished.

    Nothing is drawn unless ``enabled`` and stderr is a terminal (:func:`shows_progress`).

    Examples
    --------
    >>> with progress_bar(2, enabled=False) as step:
    ...     step("seed 0")
    ...     step("seed 1")
    """
    if not shows_progress(enabled):
        yield lambda label: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
              leave=True) as bar:
        def step(label):
            bar.set_postfix_str(f"last: {label}", refresh=False)
            bar.update(1)

        yield step
