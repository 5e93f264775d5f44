r"""Time minikd's distillation training step against PyTorch eager and against the BLAS ceiling.

One run, one process, for each student shape (784-800-800-10 and 784-30-30-10 at batch 128,
64-16-10 at batch 64, 784-800-800-10 at batch 256 too) and the teacher 784-1200-1200-10 forward
pass. Every column trains one epoch of K mini-batches of B rows, gathered from a transfer set of
K B rows in a shuffled order (K >= 8, chosen per shape so that an epoch lasts about 0.2 s), and
reports seconds per step, the epoch's time over K:

1. **train** (``"kind": "train step"`` rows): the step as :func:`minikd.distill` runs it, by
   calling ``Distiller.train(epochs=1)`` on a prebuilt :class:`minikd.Distiller` (method "kd",
   T = 4, alpha = 0.9, gamma = 1 - alpha, teacher logits cached at build): the data and
   hyper-parameters were checked once, at build; per batch :func:`minikd.train_loop` gathers the
   rows, calls ``Distiller.step`` (the student's ``forward_unchecked``, ``cross_entropy_kernel``,
   ``kd_loss_kernel``, ``backward_unchecked``, the accuracy terms), checks the loss terms and
   steps ``minikd.SGD`` with momentum.
2. **api** (``"kind": "api step"`` rows): the same step written with the public per-call
   functions, each checking its arguments: ``MLP.forward(x[idx], train=True)``,
   ``distillation_loss`` against the cached teacher logits, ``MLP.backward``, ``SGD.step``.
3. **torch**: the same step in PyTorch eager (``nn.Linear``/``ReLU``, ``kl_div`` plus
   ``cross_entropy``, ``torch.optim.SGD`` with momentum, the same gathers), with the same thread
   count. Skipped when torch is absent.
4. **bare**: the same step in bare NumPy: no checks, no caches, no loss value, no finiteness
   test. Not minikd: a yardstick for what minikd's structure costs.
5. **matmul**: the matrix products alone, as NumPy does them: per layer the forward ``x @ W``,
   ``dW = x.T @ dout`` and ``dx = dout @ W.T`` (not for the first layer: no step needs the
   gradient of the input). This is the ceiling a NumPy step can approach.

The columns are timed round-robin, block after block, so that a change in the machine's load hits
them alike; every number is the median over ``--repeats`` blocks (after a warm-up), and the ratios
are medians of per-block ratios, with their range. It also times the parts of the train step (in
an instrumented run of its own), and ``distillation_loss`` value and gradient at (256, 10)
against the same formula in bare NumPy.

Run it::

    python bench/train_step.py --threads 1
    python bench/train_step.py --threads 2 --json > bench-2.json

``--threads N`` sets ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` before NumPy
is imported (so it must be given on the command line; when this file is imported as a module the
thread count is limited with threadpoolctl), calls ``torch.set_num_threads`` and is the
``blas_threads`` of ``Distiller.train``.

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
from types import SimpleNamespace


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
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

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
EPOCH_BLOCKS = 4  # an epoch of K steps lasts about this many blocks (one call per block)
MIN_STEPS_PER_EPOCH = 8
# "cpu" counts only this process's CPU time: on a busy machine it approximates an idle one's wall
# time, but only with one thread (with more it adds the threads' times up).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
SETTLE_SECONDS = 0.15  # pause before each timed block when several threads run

ENV_VARS = (*_THREAD_VARS, "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# --------------------------------------------------------------------------- the problem


def make_problem(sizes, batch, n_batches, dtype=np.float32, seed=0):
    """A transfer set of ``n_batches * batch`` rows, its labels, a teacher and its logits, and
    one epoch's mini-batches: the permutation :func:`minikd.train_loop` draws with ``rng=seed``."""
    rng = np.random.default_rng(seed)
    n = n_batches * batch
    x = rng.standard_normal((n, sizes[0])).astype(dtype)  # (N, D)
    labels = rng.integers(0, sizes[-1], size=n)  # (N,)
    teacher = MLP([sizes[0], 64, sizes[-1]], dtype=dtype, rng=seed + 1)
    order = np.random.default_rng(seed).permutation(n)  # train_loop's first epoch
    return SimpleNamespace(
        sizes=tuple(sizes), batch=batch, n_batches=n_batches, dtype=np.dtype(dtype), seed=seed,
        x=x, labels=labels, teacher=teacher, teacher_logits=teacher.forward(x)[0],  # (N, C)
        batches=np.split(order, n_batches),  # K arrays of B row indices
    )


def _student(problem):
    return MLP(list(problem.sizes), activation="relu", dropout=0.0, dtype=problem.dtype,
               rng=problem.seed)


def current_blas_threads():
    """The largest thread count of the BLAS libraries this process has loaded."""
    return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


# --------------------------------------------------------------------------- one epoch each


def train_epoch(problem, threads=None):
    """One epoch as :func:`minikd.distill` runs it: ``Distiller.train(epochs=1)``.

    The Distiller (the checks, the teacher's logits) is built here, once, as ``distill`` does
    before its first epoch; ``threads`` is its ``blas_threads`` (default: the current count).
    """
    student = _student(problem)
    distiller = minikd.Distiller(problem.teacher, student, problem.x, problem.labels,
                                 temperature=TEMPERATURE, alpha=ALPHA)  # gamma = 1 - alpha
    opt = SGD(distiller.params, lr=LR, momentum=MOMENTUM)
    n_threads = current_blas_threads() if threads is None else threads

    def epoch():
        distiller.train(epochs=1, batch_size=problem.batch, optimizer=opt, rng=problem.seed,
                        verbose=False, blas_threads=n_threads)

    epoch.params = student.params  # so a test can check that it takes the api epoch's steps
    epoch.distiller, epoch.optimizer = distiller, opt
    return epoch


def api_epoch(problem):
    """One epoch of the step written with the public per-call functions (each checks)."""
    model = _student(problem)
    opt = SGD(model.params, lr=LR, momentum=MOMENTUM)
    x, teacher_logits, labels = problem.x, problem.teacher_logits, problem.labels

    def epoch():
        for idx in problem.batches:
            logits, cache = model.forward(x[idx], train=True)
            _, dlogits = minikd.distillation_loss(logits, teacher_logits[idx], labels[idx],
                                                  temperature=TEMPERATURE, alpha=ALPHA)
            opt.step(model.backward(dlogits, cache))

    epoch.params = model.params
    return epoch


def bare_epoch(problem):
    """The same epoch in bare NumPy: no validation, no caches, no loss value, no finiteness test.

    Not minikd: a yardstick for what minikd's structure (checks, the cache object, the
    optimizer's all-or-nothing update, the loss value and its generality) costs on top of the
    arithmetic. Same equations as minikd (teacher softmax recomputed every step).
    """
    model = _student(problem)
    weights = [model.params[f"W{k}"] for k in range(1, len(problem.sizes))]
    biases = [model.params[f"b{k}"] for k in range(1, len(problem.sizes))]
    velocities = [np.zeros_like(p) for p in weights + biases]
    t, a, rows, n = TEMPERATURE, ALPHA, np.arange(problem.batch), problem.batch

    def step(x, teacher_logits, labels):
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
        dz = (a * t / n) * (p_s - p_t) + ((1 - a) / n) * p_1  # (N, C)
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

    def epoch():
        for idx in problem.batches:
            step(problem.x[idx], problem.teacher_logits[idx], problem.labels[idx])

    epoch.params = model.params
    return epoch


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


def matmul_epoch(problem):
    """The products of one epoch's K steps."""
    products = matmul_ceiling(problem.sizes, problem.batch, problem.dtype, seed=problem.seed)

    def epoch():
        for _ in range(problem.n_batches):
            products()

    return epoch


def train_step_parts(problem, threads=None, epochs=3):
    """Seconds per step in each call of the train step, measured inside ``Distiller.train``.

    The student's ``forward_unchecked`` and ``backward_unchecked``, the two loss kernels and the
    optimizer's ``step`` are wrapped with the clock for this instrumented run (the first three
    as attributes of this student and optimizer, the kernels under their names in the module
    of ``Distiller.step``, restored afterwards); ``rest`` is the epoch's time over K minus those:
    the gathers, the gradient blend, the accuracy terms and ``train_loop``'s guards and
    bookkeeping (and the wrappers' own cost, a few tenths of a microsecond each). Wall clock
    always: the CPU-time clock is a system call of about a microsecond, which would be counted
    ten times a step.
    """
    clock = time.perf_counter
    epoch = train_epoch(problem, threads)
    student, opt = epoch.distiller.student, epoch.optimizer
    spent = {"forward": 0.0, "loss": 0.0, "backward": 0.0, "optimizer": 0.0}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t0 = clock()
            out = fn(*args, **kwargs)
            spent[name] += clock() - t0
            return out
        return wrapper

    module = sys.modules[minikd.Distiller.step.__module__]  # where the step finds the kernels
    kernels = {"cross_entropy_kernel": module.cross_entropy_kernel,
               "kd_loss_kernel": module.kd_loss_kernel}
    student.forward_unchecked = timed("forward", student.forward_unchecked)
    student.backward_unchecked = timed("backward", student.backward_unchecked)
    opt.step = timed("optimizer", opt.step)
    for name, kernel in kernels.items():
        setattr(module, name, timed("loss", kernel))
    try:
        epoch()  # warm-up
        spent.update(dict.fromkeys(spent, 0.0))
        t0 = clock()
        for _ in range(epochs):
            epoch()
        total = clock() - t0
    finally:
        for name, kernel in kernels.items():
            setattr(module, name, kernel)
    n_steps = epochs * problem.n_batches
    parts = {name: seconds / n_steps for name, seconds in spent.items()}
    parts["rest"] = total / n_steps - sum(parts.values())
    return parts


def minikd_teacher_forward(sizes, batch, dtype=np.float32, seed=0):
    x = np.random.default_rng(seed).standard_normal((batch, sizes[0])).astype(dtype)
    model = MLP(list(sizes), activation="relu", dropout=0.0, dtype=dtype, rng=seed)

    def forward():
        model.forward(x, train=False)

    return forward


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


def torch_epoch(torch, problem):
    """The same epoch in PyTorch eager: gather, forward, loss, backward, SGD with momentum."""
    x = torch.from_numpy(problem.x.astype(np.float32))
    teacher_logits = torch.from_numpy(problem.teacher_logits.astype(np.float32))
    labels = torch.from_numpy(problem.labels)
    batches = [torch.from_numpy(idx) for idx in problem.batches]
    model = _torch_mlp(torch, problem.sizes, problem.seed)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def epoch():
        for idx in batches:
            opt.zero_grad(set_to_none=True)
            torch_kd_loss(torch, model(x[idx]), teacher_logits[idx], labels[idx]).backward()
            opt.step()

    return epoch


def torch_teacher_forward(torch, sizes, batch, seed=0):
    x = np.random.default_rng(seed).standard_normal((batch, sizes[0])).astype(np.float32)
    x = torch.from_numpy(x)
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


def bare_distillation_loss(z_s, z_t, labels, temperature, alpha):
    """``distillation_loss``'s value and gradient in bare NumPy: its formula, no checks."""
    t, n, rows = temperature, z_s.shape[0], np.arange(z_s.shape[0])

    def log_softmax(z):
        shifted = z - z.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

    log_p_s, log_p_t, log_p = log_softmax(z_s / t), log_softmax(z_t / t), log_softmax(z_s)
    p_s, p_t, p = np.exp(log_p_s), np.exp(log_p_t), np.exp(log_p)
    kl = (p_t * (log_p_t - log_p_s)).sum()
    ce = -log_p[rows, labels].sum()
    p[rows, labels] -= 1
    loss = float(alpha * t * t * kl + (1 - alpha) * ce) / n
    return loss, (alpha * t * (p_s - p_t) + (1 - alpha) * p) / n  # (N, C)


def loss_timing(n=256, c=10, dtype=np.float32, repeats=9, seed=0, clock=time.perf_counter,
                block_seconds=0.02):
    """``distillation_loss`` value and gradient on (n, c) logits against the same formula in
    bare NumPy, timed round-robin: microseconds (medians) and the ratio public / bare."""
    rng = np.random.default_rng(seed)
    z_s = (3.0 * rng.standard_normal((n, c))).astype(dtype)  # (N, C)
    z_t = (3.0 * rng.standard_normal((n, c))).astype(dtype)  # (N, C)
    y = rng.integers(0, c, size=n)  # (N,)
    samples = time_round_robin({
        "public": lambda: minikd.distillation_loss(z_s, z_t, y, temperature=TEMPERATURE,
                                                   alpha=ALPHA),
        "bare": lambda: bare_distillation_loss(z_s, z_t, y, TEMPERATURE, ALPHA),
    }, repeats, block_seconds, clock)
    return {"public_us": 1e6 * statistics.median(samples["public"]),
            "bare_us": 1e6 * statistics.median(samples["bare"]),
            # > 1: the public function is slower than the bare formula
            "public_over_bare": _ratio_stats(samples["bare"], samples["public"])}


# --------------------------------------------------------------------------- environment


def blas_info():
    """The BLAS and OpenMP libraries loaded in this process and their thread counts."""
    return [
        {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
        | {"library": os.path.basename(lib.get("filepath", ""))}
        for lib in threadpool_info()
    ]


def _import_torch():
    try:
        import torch
    except (ImportError, OSError):  # absent, or a build whose shared libraries do not load
        return None
    return torch


# --------------------------------------------------------------------------- the run


def steps_per_epoch(sizes, batch, dtype, epoch_seconds, clock=time.perf_counter):
    """K such that an epoch of K api steps lasts about ``epoch_seconds`` (at least 8).

    Long enough that a train epoch's once-per-call costs (``Distiller.train``'s checks, the
    BLAS limit set through threadpoolctl, about 0.3 ms) are spread over many steps, as in real
    training, where they are paid once per ``distill`` call.
    """
    epoch = api_epoch(make_problem(sizes, batch, 2, dtype))
    epoch()  # warm-up
    t0 = clock()
    epoch()
    step = max((clock() - t0) / 2, 1e-7)
    return max(MIN_STEPS_PER_EPOCH, round(epoch_seconds / step))


def run(threads=None, repeats=9, use_torch=True, dtype=np.float32, students=STUDENTS,
        teacher=TEACHER, block_seconds=BLOCK_SECONDS, clock="wall", traps=False,
        settle_seconds=None):
    """Run the whole benchmark in this process and return its numbers as a dict."""
    clock_name, clock = clock, CLOCKS[clock]
    if settle_seconds is None:  # one thread has no worker threads to wait for
        settle_seconds = 0.0 if threads == 1 else SETTLE_SECONDS
    torch = _import_torch() if use_torch else None
    limiter = None if threads is None else threadpool_limits(limits=threads)
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
        n_batches = steps_per_epoch(sizes, batch, dtype, EPOCH_BLOCKS * block_seconds, clock)
        problem = make_problem(sizes, batch, n_batches, dtype)
        fns = {"train": train_epoch(problem, threads), "api": api_epoch(problem),
               "matmul": matmul_epoch(problem), "bare": bare_epoch(problem)}
        if torch is not None:
            fns["torch"] = torch_epoch(torch, problem)
        samples = time_round_robin(fns, repeats, block_seconds, clock, settle_seconds)
        per_step = {impl: [s / n_batches for s in v] for impl, v in samples.items()}
        parts = train_step_parts(problem, threads)
        for kind, ours in (("train step", "train"), ("api step", "api")):
            row = _summarise(name, kind, batch, per_step, ours)
            row["steps_per_epoch"] = n_batches
            if ours == "train":
                row["parts_s"] = parts
            result["shapes"].append(row)
    if teacher is not None:
        name, sizes, batch = teacher
        fns = {
            "minikd": minikd_teacher_forward(sizes, batch, dtype),
            "matmul": matmul_ceiling(sizes, batch, dtype, backward=False),
        }
        if torch is not None:
            fns["torch"] = torch_teacher_forward(torch, sizes, batch)
        samples = time_round_robin(fns, repeats, block_seconds, clock, settle_seconds)
        result["shapes"].append(_summarise(name, "teacher forward", batch, samples, "minikd"))
    result["loss_256x10"] = {
        dtype_name: loss_timing(dtype=np.dtype(dtype_name).type, repeats=repeats, clock=clock,
                                block_seconds=min(0.02, block_seconds))
        for dtype_name in ("float32", "float64")
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
        "float32 step": api_epoch(make_problem(sizes, batch, 1, np.float32)),
        "float64 step": api_epoch(make_problem(sizes, batch, 1, np.float64)),
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


def _summarise(name, kind, batch, samples, ours):
    """One table row: ``ours`` (minikd's column for this row) against the others."""
    samples = {"minikd": samples[ours]} | {impl: s for impl, s in samples.items()
                                           if impl in ("torch", "bare", "matmul")}
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
        "train step: as minikd.distill runs it (checks once, kernels per batch). api step: "
        "written with the public per-call functions (each checks). minikd/torch: minikd's "
        "throughput over PyTorch's (same step, same threads). % of matmul: the matrix "
        "products' share of minikd's step time (the ceiling's time over minikd's). bare: the "
        "same step in NumPy without minikd's checks (a yardstick, not minikd). Ranges are over "
        "the timed blocks.", width=100)]
    lines += ["", "where the train step's time goes (microseconds per step in an instrumented "
              "epoch; rest: the step minus the timed calls):"]
    for row in result["shapes"]:
        if "parts_s" in row:
            parts = row["parts_s"]
            total = sum(parts.values())
            lines.append(f"  {row['shape']:<15} N {row['batch']:<4} " + "  ".join(
                f"{k} {1e6 * v:.0f} ({100 * v / total:.0f}%)" for k, v in parts.items()))
    lines += ["", _loss_text(result["loss_256x10"])]
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
    lines += ["", _loss_text(result["loss_256x10"], code="`")]
    return "\n".join(lines)


def _loss_text(loss, code=""):
    """One line: the public loss against the bare formula, per dtype."""
    return f"{code}distillation_loss{code} value and gradient at (256, 10): " + "; ".join(
        f"{dtype} {r['public_us']:.0f} us, the bare NumPy formula {r['bare_us']:.0f} us "
        f"(public / bare {_range_text(r['public_over_bare'])})" for dtype, r in loss.items())


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
