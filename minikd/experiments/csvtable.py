"""A CSV table of numbers with a header row and a label column, for
:func:`minikd.experiments.userdata.load_user_data`: every cell parsed on its own, so a cell that
is not a number is reported with its row (as a text editor counts them) and its column's name."""

from __future__ import annotations

import csv
import math

import numpy as np

__all__ = ["read_csv_table"]


def read_csv_table(fh, label_column, bad):
    """``{"X": (N, D), "y": (N,)}`` from a CSV with a header row and numeric cells only."""
    try:
        reader = csv.reader(line.decode("utf-8") for line in fh)
        rows = [(reader.line_num, r) for r in reader if r]  # (line number, cells), no blanks
    except (UnicodeDecodeError, csv.Error) as err:
        raise bad(f"not a UTF-8 CSV text file ({err})") from err
    if len(rows) < 2:
        raise bad("expected a header row and at least one data row")
    header = [h.strip() for h in rows[0][1]]
    if label_column is None:
        names = [h.lower() for h in header]
        col = names.index("label") if "label" in names else (
            names.index("y") if "y" in names else len(header) - 1)
    elif isinstance(label_column, str) and label_column in header:
        col = header.index(label_column)
    elif isinstance(label_column, str) and label_column.lstrip("-").isdigit():
        return _table(rows, header, int(label_column), bad)  # an index, as text
    elif isinstance(label_column, (int, np.integer)) and -len(header) <= label_column < len(header):
        col = int(label_column) % len(header)
    else:
        raise bad(f"no label column {label_column!r} (the header has {header})")
    return _table(rows, header, col, bad)


def _table(rows, header, col, bad):
    """The numeric table of ``rows`` ((line, cells), header first) split into features and
    column ``col``."""
    if not -len(header) <= col < len(header):
        raise bad(f"no label column {col} (the header has {len(header)} columns)")
    if len(header) < 2:
        raise bad("expected at least one feature column besides the label column")
    table = np.empty((len(rows) - 1, len(header)))
    for k, (i, row) in enumerate(rows[1:]):  # i: the line number a text editor shows
        if len(row) != len(header):
            raise bad(f"row {i} has {len(row)} cells, the header {len(header)}")
        for j, cell in enumerate(row):
            try:
                table[k, j] = v = float(cell)
            except ValueError:
                raise bad(f"row {i}, column '{header[j]}': {cell!r} is not a number (numeric "
                          "cells only)") from None
            if not math.isfinite(v):
                raise bad(f"row {i}, column '{header[j]}': {cell!r} is not a finite number")
    return {"X": np.delete(table, col, axis=1), "y": table[:, col]}
