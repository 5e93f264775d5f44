"""Per-epoch training records (:class:`History`) and the progress line printed for each."""

from __future__ import annotations

import numpy as np

__all__ = ["History", "format_record"]


class History:
    """Per-epoch training records: a list of dicts, with column access.

    ``history.records[e]`` is the record of epoch e + 1 (``{"epoch": 1, "loss": ..., ...}``);
    ``history["loss"]`` is the column ``[r["loss"] for r in records]`` (None where a record
    lacks the key); ``history[-1]`` (an int) is a record.

    Examples
    --------
    >>> h = History([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}])
    >>> h["loss"], len(h), h.columns
    ([0.5, 0.25], 2, ['epoch', 'loss'])
    """

    def __init__(self, records=None):
        self.records = list(records) if records is not None else []

    def append(self, record):
        """Add one epoch's record (a dict)."""
        self.records.append(dict(record))

    @property
    def columns(self):
        """Every key that appears in some record, in first-seen order."""
        seen = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            return self.records[key]  # history[-1]: the last epoch's record
        if key not in self.columns:
            raise KeyError(f"History has no column {key!r}; columns are {self.columns}")
        return [r.get(key) for r in self.records]

    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __repr__(self):
        return f"History({len(self.records)} epochs, columns={self.columns})"


def format_record(label, record, epochs):
    """One progress line: ``label epoch e/E  key value  ...  1.23s``."""
    parts = [f"{label} epoch {record['epoch']}/{epochs}"]
    for key, value in record.items():
        if key in ("epoch", "time"):
            continue
        if isinstance(value, float):
            parts.append(f"{key} {value:.4g}" if key == "lr" else f"{key} {value:.4f}")
        else:
            parts.append(f"{key} {value}")
    parts.append(f"{record['time']:.2f}s")
    return "  ".join(parts)
