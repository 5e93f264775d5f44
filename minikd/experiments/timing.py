"""Timing on a shared machine, and the facts that say which machine a timing comes from.

:func:`seconds_per_call` times functions in interleaved blocks, so that a change of load touches
every function alike, and reports the median per call; ``clock="cpu"`` counts this process's CPU
time instead of wall time. :func:`describe_machine` gives the CPU, cores, OS, load average and
library versions that belong beside any quoted time.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time

import numpy as np

from .._validation import check_choice
from ..nn.onnx_export import import_optional
from .parallel import default_jobs

__all__ = ["CLOCKS", "describe_machine", "load_average", "seconds_per_call"]

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def seconds_per_call(fns, *, repeats=7, block_seconds=0.02, clock="wall"):
    """Median time of one call of each function, measured in interleaved blocks.

    Each function is calibrated to a wall-clock block of at least ``block_seconds``; then
    ``repeats`` rounds time one block of every function in turn, garbage collection off inside
    a block.
    ``clock="cpu"`` counts this process's CPU time instead of wall time: with one thread, on a
    busy machine, that approximates an idle machine's wall time. Returns one median per function.
    """
    now = CLOCKS[check_choice(clock, "clock", "seconds_per_call", tuple(CLOCKS))]

    def block(fn, n, now=now):
        gc.disable()
        try:
            start = now()
            for _ in range(n):
                fn()
            return now() - start
        finally:
            gc.enable()

    counts = []
    for fn in fns:
        fn()  # warm-up
        n = 1
        while block(fn, n, time.perf_counter) < block_seconds:  # blocks are wall-clock long
            n *= 2
        counts.append(n)
    times = [[block(fn, n) / n for fn, n in zip(fns, counts, strict=True)]
             for _ in range(repeats)]
    return [statistics.median(t) for t in zip(*times, strict=True)]


def describe_machine(threads=1):
    """The machine line's facts: CPU model (as ``lscpu`` names it), cores this process may
    use, OS, load average, and the versions of Python, NumPy and onnxruntime."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    ort = import_optional("onnxruntime", "describe_machine")
    return {"cpu": cpu, "cores": default_jobs(), "arch": platform.machine(),
            "system": f"{platform.system()} {platform.release()}", "load_average": load_average(),
            "python": platform.python_version(), "numpy": np.__version__,
            "onnxruntime": ort.__version__, "threads": threads}


def load_average():
    """The 1-minute load average (None where the OS does not tell)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None
