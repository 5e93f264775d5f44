r"""Time minikd's distillation training step against PyTorch eager and against the BLAS ceiling.

One run, one process, for each student shape (784-800-800-10 and 784-30-30-10 at batch 128,
64-16-10 at batch 64, 784-800-800-10 at batch 256 too) and the teacher 784-1200-1200-10 forward
pass:

1. **minikd**: the KD training step through the public API only -- ``MLP.forward(x, train=True)``,
   ``distillation_loss`` against precomputed teacher logits, ``MLP.backward``, and an SGD step with
   momentum (``minikd.optim.SGD``).
2. **torch**: the same step in PyTorch eager (``nn.Linear``/``ReLU``, ``kl_div`` plus
   ``cross_entropy``, ``torch.optim.SGD`` with momentum), with the same thread count. Skipped when
   torch is absent.
3. **matmul**: the matrix products alone, as NumPy does them: per layer the forward ``x @ W``,
   ``dW = x.T @ dout`` and ``dx = dout @ W.T`` (not for the first layer: no step needs the
   gradient of the input). This is the ceiling a NumPy step can approach.

The three are timed round-robin, block after block, so that a change in the machine's load hits
them alike; every number is the median over ``--repeats`` blocks (after a warm-up), and the ratios
are medians of per-block ratios, with their range.

Run it::

    python bench/train_step.py --threads 1
    python bench/train_step.py --threads 2 --json > bench-2.json

``--threads N`` sets ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` before NumPy
is imported (so it must be given on the command line; when this file is imported as a module the
thread count is limited with threadpoolctl if it is installed) and calls ``torch.set_num_threads``.

Some machines set ``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) to work around old OpenBLAS
bugs; they can select a slower kernel. The script prints them and the kernel OpenBLAS chose; to
measure without them, unset both in that command alone::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/train_step.py --threads 1
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import textwrap
import time


def _threads_from_argv(argv):
    """The value of ``--threads`` in ``argv``, or None; read before NumPy is imported."""
    for i, arg in enumerate(argv):
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
    return None


_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

if __name__ == "__main__":
    # BLAS libraries read their thread count once, when they are loaded: set it before numpy.
    _n = _threads_from_argv(sys.argv[1:])
    if _n is not None and _n.isdigit() and int(_n) > 0:
        for _var in _THREAD_VARS:
            os.environ[_var] = _n
    # Make the worktree's minikd importable when run as `python bench/train_step.py`.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import minikd  # noqa: E402
from minikd.nn.mlp import MLP  # noqa: E402
from minikd.nn.optim import SGD  # noqa: E402

# (name, layer sizes, batch) of the students, and the teacher whose forward pass is timed. The
# issue's three shapes, and the large one at batch 256 too: on two threads the products split
# across the cores while the elementwise work does not, so the batch moves the products' share.
STUDENTS = (
    ("784-800-800-10", (784, 800, 800, 10), 128),
    ("784-30-30-10", (784, 30, 30, 10), 128),
    ("64-16-10", (64, 16, 10), 64),
    ("784-800-800-10", (784, 800, 800, 10), 256),
)
TEACHER = ("784-1200-1200-10", (784, 1200, 1200, 10), 128)

TEMPERATURE = 4.0
ALPHA = 0.9
LR = 0.01
MOMENTUM = 0.9
BLOCK_SECONDS = 0.05  # each timed block runs about this long; the median is over blocks
# "cpu" counts only this process's CPU time: on a busy machine it approximates an idle one's wall
# time, but only with one thread (with more it adds the threads' times up).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
SETTLE_SECONDS = 0.15  # pause before each timed block when several threads run

ENV_VARS = (*_THREAD_VARS, "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# --------------------------------------------------------------------------- the three steps


def _inputs(sizes, batch, dtype, seed=0):
    """Deterministic inputs, teacher logits and labels for one shape."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0])).astype(dtype)  # (N, D)
    teacher_logits = (3.0 * rng.standard_normal((batch, sizes[-1]))).astype(dtype)  # (N, C)
    labels = rng.integers(0, sizes[-1], size=batch)  # (N,)
    return x, teacher_logits, labels


def minikd_step(sizes, batch, dtype=np.float32, seed=0):
    """A closure running one minikd KD training step through the public API, and its model."""
    x, teacher_logits, labels = _inputs(sizes, batch, dtype, seed)
    model = MLP(list(sizes), activation="relu", dropout=0.0, dtype=dtype, rng=seed)
    opt = SGD(model.params, lr=LR, momentum=MOMENTUM)

    def step():
        logits, cache = model.forward(x, train=True)
        _, dlogits = minikd.distillation_loss(
            logits, teacher_logits, labels, temperature=TEMPERATURE, alpha=ALPHA
        )
        opt.step(model.backward(dlogits, cache))

    step.model = model  # so a test can check that the steps really train
    return step


def bare_numpy_step(sizes, batch, dtype=np.float32, seed=0):
    """The same step in bare NumPy: no validation, no caches, no finiteness check.

    Not minikd: a yardstick for what minikd's public API (boundary checks, the cache object,
    the optimizer's all-or-nothing update, the loss's generality) costs on top of the
    arithmetic. Same equations as minikd (teacher softmax recomputed every step).
    """
    x, teacher_logits, labels = _inputs(sizes, batch, dtype, seed)
    model = MLP(list(sizes), activation="relu", dropout=0.0, dtype=dtype, rng=seed)
    weights = [model.params[f"W{k}"] for k in range(1, len(sizes))]
    biases = [model.params[f"b{k}"] for k in range(1, len(sizes))]
    velocities = [np.zeros_like(p) for p in weights + biases]
    t, a, rows = TEMPERATURE, ALPHA, np.arange(batch)

    def step():
        hs = [x]
        for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
            h = hs[-1] @ w  # (N, H_k)
            h += b
            if k < len(weights) - 1:
                np.maximum(h, 0, out=h)
            hs.append(h)
        z = hs.pop()  # (N, C)
        p_t = np.exp((teacher_logits - teacher_logits.max(1, keepdims=True)) / t)
        p_t /= p_t.sum(1, keepdims=True)
        shifted = z - z.max(1, keepdims=True)
        p_s = np.exp(shifted / t)
        p_s /= p_s.sum(1, keepdims=True)
        p_1 = np.exp(shifted)
        p_1 /= p_1.sum(1, keepdims=True)
        p_1[rows, labels] -= 1
        dz = (a * t / batch) * (p_s - p_t) + ((1 - a) / batch) * p_1  # (N, C)
        dws, dbs = [], []
        for k in range(len(weights) - 1, -1, -1):
            dws.append(hs[k].T @ dz)
            dbs.append(dz.sum(0))
            if k:
                dz = dz @ weights[k].T
                dz *= hs[k] > 0
        for p, v, g in zip(weights + biases, velocities, dws[::-1] + dbs[::-1], strict=True):
            v *= MOMENTUM
            v += g
            p -= LR * v

    step.params = model.params  # so a test can check it takes minikd's step
    return step


def minikd_step_parts(sizes, batch, n_steps, dtype=np.float32, seed=0, clock=time.perf_counter):
    """Seconds per step spent in forward, loss, backward and the optimizer (medians)."""
    x, teacher_logits, labels = _inputs(sizes, batch, dtype, seed)
    model = MLP(list(sizes), activation="relu", dropout=0.0, dtype=dtype, rng=seed)
    opt = SGD(model.params, lr=LR, momentum=MOMENTUM)
    parts = {"forward": [], "loss": [], "backward": [], "optimizer": []}
    for _ in range(n_steps):
        t0 = clock()
        logits, cache = model.forward(x, train=True)
        t1 = clock()
        _, dlogits = minikd.distillation_loss(
            logits, teacher_logits, labels, temperature=TEMPERATURE, alpha=ALPHA
        )
        t2 = clock()
        grads = model.backward(dlogits, cache)
        t3 = clock()
        opt.step(grads)
        t4 = clock()
        for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[name].append(seconds)
    return {name: statistics.median(v) for name, v in parts.items()}


def minikd_teacher_forward(sizes, batch, dtype=np.float32, seed=0):
    x, _, _ = _inputs(sizes, batch, dtype, seed)
    model = MLP(list(sizes), activation="relu", dropout=0.0, dtype=dtype, rng=seed)

    def forward():
        model.forward(x, train=False)

    return forward


def matmul_ceiling(sizes, batch, dtype=np.float32, *, backward=True, seed=0, blas="numpy"):
    """A closure running only the matrix products of one training step (or forward pass).

    ``blas="scipy"`` runs the backward products through ``scipy.linalg.blas`` instead (the
    forward stays NumPy's ``@``): a trap this script measures, because SciPy ships its own
    OpenBLAS, whose thread pool then competes with NumPy's.
    """
    rng = np.random.default_rng(seed)
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    xs = [rng.standard_normal((batch, d_in)).astype(dtype) for d_in, _ in pairs]  # (N, D_in)
    ws = [rng.standard_normal((d_in, d_out)).astype(dtype) for d_in, d_out in pairs]
    douts = [rng.standard_normal((batch, d_out)).astype(dtype) for _, d_out in pairs]  # (N, D_out)
    if blas == "scipy":
        from scipy.linalg import blas as scipy_blas

        gemm = scipy_blas.sgemm if np.dtype(dtype) == np.float32 else scipy_blas.dgemm

        # Fortran-ordered views of the C-ordered arrays, so that no argument is copied.
        def weight_grad(x, dout):
            return gemm(1.0, x.T, dout.T, trans_b=1)  # x.T @ dout, (D_in, D_out)

        def input_grad(dout, w):
            return gemm(1.0, dout.T, w.T, trans_a=1)  # dout @ w.T, (N, D_in)
    else:
        def weight_grad(x, dout):
            return x.T @ dout  # (D_in, D_out)

        def input_grad(dout, w):
            return dout @ w.T  # (N, D_in)

    def products():
        out = []
        for i, (x, w, dout) in enumerate(zip(xs, ws, douts, strict=True)):
            out.append(x @ w)  # forward, (N, D_out)
            if backward:
                out.append(weight_grad(x, dout))
                if i > 0:
                    out.append(input_grad(dout, w))  # the input layer's dx is never needed
        return out

    return products


def _torch_mlp(torch, sizes, seed):
    torch.manual_seed(seed)
    layers = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(torch.nn.Linear(d_in, d_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def torch_kd_loss(torch, logits, teacher_logits, labels):
    """minikd's ``distillation_loss`` written in PyTorch: alpha T² KL(p_t || p_s) + (1-alpha) CE."""
    f = torch.nn.functional
    t = TEMPERATURE
    soft = f.kl_div(
        f.log_softmax(logits / t, dim=1),
        f.log_softmax(teacher_logits / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return ALPHA * t * t * soft + (1.0 - ALPHA) * f.cross_entropy(logits, labels)


def torch_step(torch, sizes, batch, seed=0):
    """The same KD step in PyTorch eager: forward, loss, backward, SGD with momentum."""
    x, teacher_logits, labels = _inputs(sizes, batch, np.float32, seed)
    x, teacher_logits = torch.from_numpy(x), torch.from_numpy(teacher_logits)
    labels = torch.from_numpy(labels)
    model = _torch_mlp(torch, sizes, seed)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step():
        opt.zero_grad(set_to_none=True)
        torch_kd_loss(torch, model(x), teacher_logits, labels).backward()
        opt.step()

    return step


def torch_teacher_forward(torch, sizes, batch, seed=0):
    x = torch.from_numpy(_inputs(sizes, batch, np.float32, seed)[0])
    model = _torch_mlp(torch, sizes, seed)

    def forward():
        with torch.inference_mode():
            model(x)

    return forward


# --------------------------------------------------------------------------- timing


def _calls_per_block(fn, block_seconds, clock):
    """Warm up ``fn`` and return how many calls fill about ``block_seconds``."""
    fn()
    fn()
    t0 = clock()
    fn()
    once = max(clock() - t0, 1e-7)
    return max(1, int(block_seconds / once))


def time_round_robin(fns, repeats, block_seconds=BLOCK_SECONDS, clock=time.perf_counter,
                     settle_seconds=0.0):
    """Seconds per call of each function, as lists over ``repeats`` interleaved blocks.

    The functions take turns block by block, so a change in the machine's load hits them alike
    and their per-block ratios stay meaningful. Before each block the script sleeps
    ``settle_seconds`` and makes two untimed calls: after a switch, the other library's worker
    threads keep spinning for a while (OpenBLAS's for up to ~0.1 s, OpenMP's less) and would
    compete with this block's threads for the cores.
    """
    numbers = {name: _calls_per_block(fn, block_seconds, clock) for name, fn in fns.items()}
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if settle_seconds:
                time.sleep(settle_seconds)
            fn()
            fn()
            n = numbers[name]
            # as timeit does: a garbage collection during a block would charge one library
            # for the objects of the other (importing torch creates ~10^5 of them)
            gc.disable()
            try:
                t0 = clock()
                for _ in range(n):
                    fn()
                samples[name].append((clock() - t0) / n)
            finally:
                gc.enable()
    return samples


def _ratio_stats(num, den):
    """Median and range of per-block ratios ``den[i] / num[i]`` (a speed ratio of num over den)."""
    ratios = [d / n for n, d in zip(num, den, strict=True)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def loss_timing(n=256, c=10, dtype=np.float32, repeats=7, seed=0, clock=time.perf_counter):
    """Microseconds for ``distillation_loss`` value and gradient on (n, c) logits (median)."""
    rng = np.random.default_rng(seed)
    z_s = (3.0 * rng.standard_normal((n, c))).astype(dtype)  # (N, C)
    z_t = (3.0 * rng.standard_normal((n, c))).astype(dtype)  # (N, C)
    y = rng.integers(0, c, size=n)  # (N,)

    def loss():
        minikd.distillation_loss(z_s, z_t, y, temperature=TEMPERATURE, alpha=ALPHA)

    samples = time_round_robin({"loss": loss}, repeats, 0.02, clock)["loss"]
    return 1e6 * statistics.median(samples)


# --------------------------------------------------------------------------- environment


def blas_info():
    """The BLAS libraries loaded in this process and their thread counts (threadpoolctl if any)."""
    try:
        import threadpoolctl
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        return [
            {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            | {"library": os.path.basename(lib.get("filepath", ""))}
            for lib in threadpoolctl.threadpool_info()
        ]
    try:  # numpy >= 1.25 describes its build as a dict
        deps = np.show_config(mode="dicts")["Build Dependencies"]
        lapack = deps.get("blas", {})
        return [{"internal_api": lapack.get("name"), "version": lapack.get("version")}]
    except Exception:  # an older numpy: nothing more to say without threadpoolctl
        return [{"internal_api": "unknown (install threadpoolctl to see it)"}]


def _limit_threads(threads):
    """Limit BLAS/OpenMP threads after import (threadpoolctl); returns the limiter or None."""
    if threads is None:
        return None
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl.threadpool_limits(limits=threads)


def _import_torch():
    try:
        import torch
    except (ImportError, OSError):  # absent, or a build whose shared libraries do not load
        return None
    return torch


# --------------------------------------------------------------------------- the run


def run(threads=None, repeats=9, use_torch=True, dtype=np.float32, students=STUDENTS,
        teacher=TEACHER, block_seconds=BLOCK_SECONDS, clock="wall", traps=False,
        settle_seconds=None):
    """Run the whole benchmark in this process and return its numbers as a dict."""
    clock_name, clock = clock, CLOCKS[clock]
    if settle_seconds is None:  # one thread has no worker threads to wait for
        settle_seconds = 0.0 if threads == 1 else SETTLE_SECONDS
    torch = _import_torch() if use_torch else None
    limiter = _limit_threads(threads)
    if torch is not None and threads is not None:
        torch.set_num_threads(threads)
    load_before = os.getloadavg()
    result = {
        "meta": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__ if torch is not None else None,
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "threads_requested": threads,
            "torch_threads": torch.get_num_threads() if torch is not None else None,
            "env": {var: os.environ.get(var) for var in ENV_VARS},
            "blas": blas_info(),
            "dtype": np.dtype(dtype).name,
            "repeats": repeats,
            "clock": clock_name,
            "settle_seconds": settle_seconds,
            "loadavg_before": load_before,
        },
        "shapes": [],
    }
    for name, sizes, batch in students:
        fns = {
            "minikd": minikd_step(sizes, batch, dtype),
            "matmul": matmul_ceiling(sizes, batch, dtype),
            "bare": bare_numpy_step(sizes, batch, dtype),
        }
        if torch is not None:
            fns["torch"] = torch_step(torch, sizes, batch)
        samples = time_round_robin(fns, repeats, block_seconds, clock, settle_seconds)
        n_parts = max(20, min(2000, int(repeats * block_seconds / min(samples["minikd"]))))
        result["shapes"].append(
            _summarise(name, "train step", batch, samples)
            | {"parts_s": minikd_step_parts(sizes, batch, n_parts, dtype, clock=clock)}
        )
    if teacher is not None:
        name, sizes, batch = teacher
        fns = {
            "minikd": minikd_teacher_forward(sizes, batch, dtype),
            "matmul": matmul_ceiling(sizes, batch, dtype, backward=False),
        }
        if torch is not None:
            fns["torch"] = torch_teacher_forward(torch, sizes, batch)
        samples = time_round_robin(fns, repeats, block_seconds, clock, settle_seconds)
        result["shapes"].append(_summarise(name, "teacher forward", batch, samples))
    result["loss_256x10_us"] = {
        "float32": loss_timing(dtype=np.float32, clock=clock),
        "float64": loss_timing(dtype=np.float64, clock=clock),
    }
    if traps:
        result["traps"] = measure_traps(students[0], repeats, block_seconds, clock,
                                        settle_seconds)
    result["meta"]["loadavg_after"] = os.getloadavg()
    if limiter is not None:
        limiter.restore_original_limits()
    return result


def measure_traps(student, repeats, block_seconds=BLOCK_SECONDS, clock=time.perf_counter,
                  settle_seconds=0.0):
    """Slowdowns of two easy mistakes on one student shape, timed side by side."""
    name, sizes, batch = student
    samples = time_round_robin({
        "float32 step": minikd_step(sizes, batch, np.float32),
        "float64 step": minikd_step(sizes, batch, np.float64),
        "numpy products": matmul_ceiling(sizes, batch, np.float32),
        "scipy.linalg.blas backward products": matmul_ceiling(sizes, batch, np.float32,
                                                              blas="scipy"),
    }, repeats, block_seconds, clock, settle_seconds)
    return {
        "shape": name,
        "batch": batch,
        "seconds": {k: statistics.median(v) for k, v in samples.items()},
        # slowdown factors (> 1 means the trap is slower), median and range over blocks
        "float64_vs_float32": _ratio_stats(samples["float32 step"], samples["float64 step"]),
        "scipy_blas_vs_numpy": _ratio_stats(samples["numpy products"],
                                            samples["scipy.linalg.blas backward products"]),
    }


def _summarise(name, kind, batch, samples):
    median = {impl: statistics.median(s) for impl, s in samples.items()}
    row = {
        "shape": name,
        "kind": kind,
        "batch": batch,
        "seconds": median,
        "samples_per_s": {impl: batch / s for impl, s in median.items()},
        # Share of minikd's time that the bare matrix products would take: % of the ceiling.
        "matmul_share": _ratio_stats(samples["minikd"], samples["matmul"]),
    }
    if "torch" in samples:
        row["vs_torch"] = _ratio_stats(samples["minikd"], samples["torch"])
        if "bare" in samples:
            row["bare_vs_torch"] = _ratio_stats(samples["bare"], samples["torch"])
    return row


def _range_text(stats, scale=1.0, unit="x", fmt=".2f"):
    """'median (min-max)' of a ratio's statistics, or '-'."""
    if stats is None:
        return "-"
    lo, mid, hi = (scale * stats[k] for k in ("min", "median", "max"))
    return f"{mid:{fmt}}{unit} ({lo:{fmt}}-{hi:{fmt}})"


def format_table(result):
    """The human-readable report."""
    meta = result["meta"]
    lines = [
        f"minikd training-step benchmark  ({meta['dtype']}, median of {meta['repeats']} blocks, "
        f"{meta['clock']} clock)",
        f"python {meta['python']}, numpy {meta['numpy']}, torch {meta['torch'] or 'absent'}, "
        f"{meta['cpu_count']} CPUs, threads requested {meta['threads_requested']}, "
        f"torch threads {meta['torch_threads']}",
    ]
    for lib in meta["blas"]:
        lines.append(
            "BLAS: " + ", ".join(f"{k}={v}" for k, v in lib.items() if v not in (None, ""))
        )
    env = ", ".join(f"{k}={v}" for k, v in meta["env"].items() if v is not None) or "none set"
    lines.append(f"env: {env}")
    load = meta["loadavg_before"], meta["loadavg_after"]
    before, after = ("/".join(f"{x:.2f}" for x in avg) for avg in load)
    lines.append(f"load average (1, 5, 15 min) before {before}, after {after}")
    lines.append("")
    header = (f"{'shape':<17} {'what':<15} {'N':>4} {'minikd/s':>9} {'torch/s':>9} "
              f"{'bare/s':>9} {'matmul/s':>9} {'minikd/torch':>18} {'% of matmul':>14} "
              f"{'bare/torch':>10}")
    lines += [header, "-" * len(header)]

    def rate(sps, impl):
        return f"{sps[impl]:>9.0f}" if impl in sps else f"{'-':>9}"

    for row in result["shapes"]:
        sps = row["samples_per_s"]
        bare = row.get("bare_vs_torch")
        bare_txt = f"{bare['median']:.2f}x" if bare else "-"
        lines.append(f"{row['shape']:<17} {row['kind']:<15} {row['batch']:>4} "
                     f"{rate(sps, 'minikd')} {rate(sps, 'torch')} {rate(sps, 'bare')} "
                     f"{rate(sps, 'matmul')} {_range_text(row.get('vs_torch')):>18} "
                     f"{_range_text(row['matmul_share'], 100, '%', '.0f'):>14} "
                     f"{bare_txt:>10}")
    lines += ["", textwrap.fill(
        "minikd/torch: minikd's throughput over PyTorch's (same step, same threads). % of "
        "matmul: the matrix products' share of minikd's step time (the ceiling's time over "
        "minikd's). bare: the same step in NumPy without minikd's checks (a yardstick, not "
        "minikd). Ranges are over the timed blocks.", width=100)]
    lines += ["", "where minikd's step time goes (median microseconds per part):"]
    for row in result["shapes"]:
        if "parts_s" in row:
            parts = row["parts_s"]
            total = sum(parts.values())
            lines.append(f"  {row['shape']:<18} " + "  ".join(
                f"{k} {1e6 * v:.0f} ({100 * v / total:.0f}%)" for k, v in parts.items()))
    loss = result["loss_256x10_us"]
    lines.append("")
    lines.append(f"distillation_loss value+gradient, (256, 10) logits: "
                 f"{loss['float32']:.1f} us float32, {loss['float64']:.1f} us float64")
    traps = result.get("traps")
    if traps:
        f64, blas = traps["float64_vs_float32"], traps["scipy_blas_vs_numpy"]
        lines.append(f"traps at {traps['shape']}: float64 step {f64['median']:.2f}x slower than "
                     f"float32 ({f64['min']:.2f}-{f64['max']:.2f}); scipy.linalg.blas in the "
                     f"loop {blas['median']:.2f}x slower than numpy's @ "
                     f"({blas['min']:.2f}-{blas['max']:.2f})")
    return "\n".join(lines)


def markdown_table(result):
    """The main numbers as a Markdown table (for docs/performance.md)."""
    meta = result["meta"]
    load = "/".join(f"{x:.1f}" for x in meta["loadavg_before"])
    lines = [
        f"threads {meta['threads_requested']}, {meta['clock']} clock, median of "
        f"{meta['repeats']} blocks, load average before the run {load} (1/5/15 min)",
        "",
        "| shape | what | N | minikd samples/s | torch samples/s | minikd / torch "
        "| % of matmul ceiling | bare / torch |",
        "|---|---|---|---|---|---|---|---|",
    ]

    for row in result["shapes"]:
        sps = row["samples_per_s"]
        torch_sps = f"{sps['torch']:.0f}" if "torch" in sps else "-"
        bare = row.get("bare_vs_torch")
        bare_txt = f"{bare['median']:.2f}x" if bare else "-"
        lines.append(f"| {row['shape']} | {row['kind']} | {row['batch']} | {sps['minikd']:.0f} "
                     f"| {torch_sps} | {_range_text(row.get('vs_torch'))} "
                     f"| {_range_text(row['matmul_share'], 100, '%', '.0f')} "
                     f"| {bare_txt} |")
    loss = result["loss_256x10_us"]
    lines += ["", f"`distillation_loss` value and gradient at (256, 10): "
              f"{loss['float32']:.0f} us (float32), {loss['float64']:.0f} us (float64)"]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS/OpenMP threads for numpy and torch (default: as the "
                             "environment says)")
    parser.add_argument("--repeats", type=int, default=9, help="timed blocks per function")
    parser.add_argument("--block-seconds", type=float, default=BLOCK_SECONDS,
                        help="approximate length of one timed block")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="minikd's and the ceiling's dtype (torch stays float32)")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="wall time, or this process's CPU time (steadier on a busy "
                             "machine; meaningful with --threads 1 only)")
    parser.add_argument("--settle", type=float, default=None,
                        help="seconds to sleep before each timed block so that the other "
                             f"library's spinning threads go idle (default {SETTLE_SECONDS} "
                             "unless --threads 1)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    parser.add_argument("--traps", action="store_true",
                        help="also time two traps at the first shape: a float64 step, and "
                             "backward products through scipy.linalg.blas")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("--markdown", action="store_true",
                        help="print the main numbers as a Markdown table")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be a positive integer. Got {args.threads} instead.")
    if args.repeats < 1:
        parser.error(f"--repeats must be a positive integer. Got {args.repeats} instead.")
    result = run(threads=args.threads, repeats=args.repeats, use_torch=not args.no_torch,
                 dtype=np.dtype(args.dtype).type, block_seconds=args.block_seconds,
                 clock=args.clock, traps=args.traps, settle_seconds=args.settle)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(markdown_table(result) if args.markdown else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
