"""What every command of the ``minikd`` command line shares: exit statuses, the one-line usage
error, argument types that reject nonsense at parse time, JSON output. No math here."""

from __future__ import annotations

import argparse
import json
import math

__all__ = ["EXIT_FAIL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "Parser", "UsageError",
           "dropout_float", "finite_float", "first_line", "int_at_least", "nonneg_float",
           "nonneg_int", "open_unit_float", "positive_float", "positive_int", "print_json",
           "temperature_float", "unit_float"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A bad argument or file, found before any work; one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument gives one line (no usage block) and exit status 2."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


def _number(text, expected, accept):
    """``float(text)`` if ``accept`` holds for it, else argparse's one-line error."""
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and accept(v)):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return v


def positive_float(text):
    return _number(text, "a number > 0", lambda v: v > 0)


def nonneg_float(text):
    return _number(text, "a number >= 0", lambda v: v >= 0)


def unit_float(text):
    return _number(text, "a number in [0, 1]", lambda v: 0 <= v <= 1)


def open_unit_float(text):
    return _number(text, "a number in (0, 1)", lambda v: 0 < v < 1)


def dropout_float(text):
    return _number(text, "a number in [0, 1)", lambda v: 0 <= v < 1)


def finite_float(text):
    return _number(text, "a finite number", lambda v: True)


def temperature_float(text):
    """A temperature: minikd's range [1e-6, 1e6] (wider ones overflow in float arithmetic)."""
    return _number(text, "a temperature in [1e-6, 1e6]", lambda v: 1e-6 <= v <= 1e6)


def int_at_least(low):
    """An argparse type: an integer >= ``low``, else a one-line error."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return v
    return parse


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def first_line(err):
    """The first line of an exception's message (its type's name when it has none)."""
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def print_json(obj):
    """Strict JSON on stdout (NaN or inf would be an error: callers turn them into null)."""
    print(json.dumps(obj, indent=2, allow_nan=False))
