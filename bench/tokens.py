"""Time the token-level loss kernels on (N·L, V) = (512, 32000) float32 logits (N, L = 8, 64),
against baselines measured in the same run: one ``np.exp`` over the array (a single pass that
allocates its output) and ``minikd.losses.softmax.log_softmax_kernel`` over it.

    python bench/tokens.py                # (512, 32000), about a minute
    python bench/tokens.py --rows 4096    # (4096, 32000), a larger batch

Prints best-of-``--repeat`` CPU times of this process (``time.process_time``: steadier than wall
time on a shared machine, and the same on an idle one, since NumPy's element-wise passes run on
one thread) and each loss's ratio to an ``np.exp`` pass re-measured just before it. Each row
computes a value and its gradient (the whole ``LossGrad``) with the kernel the training floor
calls per batch (``forward_kl_kernel``, ...: arguments already checked), without a mask and with
a mask over 80 % of the positions (as labels with ``ignore_index`` would give); one more row
times the public ``forward_kl``, whose checks come on top of its kernel.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from minikd.losses import mixtures, tokens, topk
from minikd.losses.softmax import log_softmax_kernel


def best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def cases(z_s, z_t, top_z, top_lp, idx, k):
    """(name, fn(**kw)) for every kernel; ``kw`` adds temperature and mask."""
    return [
        ("forward_kl", lambda **kw: tokens.forward_kl_kernel(z_s, z_t, **kw)),
        ("reverse_kl", lambda **kw: tokens.reverse_kl_kernel(z_s, z_t, **kw)),
        ("generalized_jsd beta=0.5",
         lambda **kw: mixtures.generalized_jsd_kernel(z_s, z_t, beta=0.5, **kw)),
        ("skew_kl alpha=0.1", lambda **kw: mixtures.skew_kl_kernel(z_s, z_t, alpha=0.1, **kw)),
        ("skew_reverse_kl alpha=0.1",
         lambda **kw: mixtures.skew_reverse_kl_kernel(z_s, z_t, alpha=0.1, **kw)),
        (f"topk renorm k={k}",
         lambda **kw: topk.topk_divergence_kernel(z_s, top_z, idx, **kw)),
        (f"topk bucket k={k}", lambda **kw: topk.topk_divergence_kernel(
            z_s, top_lp, idx, tail="bucket", values_kind="log_probs", **kw)),
        ("forward_kl (public: checks + kernel)",
         lambda **kw: tokens.forward_kl(z_s, z_t, **kw)),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512, help="N·L positions (default 512)")
    parser.add_argument("--vocab", type=int, default=32000, help="V (default 32000)")
    parser.add_argument("--k", type=int, default=64, help="stored top-k (default 64)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    shape = (args.rows, args.vocab)
    z_s = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    z_t = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    mask = rng.random(args.rows) >= 0.2  # 80 % of the positions, as labels != -100 would give
    lp_t = log_softmax_kernel(z_t / 2.0)
    idx = np.argpartition(-z_t, args.k, axis=-1)[:, :args.k]
    top_lp = np.take_along_axis(lp_t, idx, axis=-1)
    top_z = np.take_along_axis(z_t, idx, axis=-1)

    t_exp = best_time(lambda: np.exp(z_s), args.repeat)
    t_lsm = best_time(lambda: log_softmax_kernel(z_s / 2.0), args.repeat)
    print(f"(N·L, V) = {shape}, float32, T = 2, best of {args.repeat}, CPU time")
    print(f"baseline np.exp(z)                  {t_exp * 1e3:8.1f} ms")
    print(f"baseline log_softmax_kernel(z / T)  {t_lsm * 1e3:8.1f} ms")
    print("each ratio uses the np.exp baseline re-measured just before that loss (the machine's "
          "load drifts)")
    print(f"{'loss (value + gradient)':42s} {'ms':>8s} {'/ exp':>7s}")
    for name, fn in cases(z_s, z_t, top_z, top_lp, idx, args.k):
        for tag, kw in (("", {}), (" +mask", {"mask": mask})):
            base = best_time(lambda: np.exp(z_s), args.repeat)
            t = best_time(lambda fn=fn, kw=kw: fn(temperature=2.0, **kw), args.repeat)
            print(f"{name + tag:42s} {t * 1e3:8.1f} {t / base:7.2f}")


if __name__ == "__main__":
    main()
