"""Time the token-level losses on (N·L, V) = (4096, 32000) float32 logits, against baselines
measured in the same run: one ``np.exp`` over the array (a single pass that allocates its
output) and ``minikd.losses.softmax.log_softmax_kernel`` over it.

    python bench/tokens.py            # full size, about a minute
    python bench/tokens.py --rows 512 # quicker

Prints best-of-``--repeat`` wall times and each loss's ratio to an ``np.exp`` pass re-measured
just before it (on a shared machine the load drifts between cases). Each loss computes its
value and its gradient (the whole ``LossGrad``), with a random mask over 80 % of the positions
and without; the mask is given as labels with ``ignore_index`` as Hugging Face does.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from minikd.losses import tokens
from minikd.losses.softmax import log_softmax_kernel


def best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096, help="N·L positions (default 4096)")
    parser.add_argument("--vocab", type=int, default=32000, help="V (default 32000)")
    parser.add_argument("--k", type=int, default=64, help="stored top-k (default 64)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    shape = (args.rows, args.vocab)
    z_s = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    z_t = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    labels = rng.integers(0, args.vocab, args.rows)
    labels[rng.random(args.rows) < 0.2] = -100
    lp_t = log_softmax_kernel(z_t / 2.0)
    idx = np.argpartition(-z_t, args.k, axis=-1)[:, :args.k]
    top_lp = np.take_along_axis(lp_t, idx, axis=-1)
    top_z = np.take_along_axis(z_t, idx, axis=-1)

    t_exp = best_time(lambda: np.exp(z_s), args.repeat)
    t_lsm = best_time(lambda: log_softmax_kernel(z_s / 2.0), args.repeat)
    print(f"(N·L, V) = {shape}, float32, T = 2, best of {args.repeat}")
    print(f"baseline np.exp(z)            {t_exp * 1e3:8.1f} ms")
    print(f"baseline log_softmax_kernel(z/T) {t_lsm * 1e3:8.1f} ms")
    print("each ratio uses the np.exp baseline re-measured just before that loss (the machine's "
          "load drifts)")
    print(f"{'loss (value + gradient)':34s} {'ms':>8s} {'/ exp':>7s}")

    cases = [
        ("forward_kl", lambda **kw: tokens.forward_kl(z_s, z_t, **kw)),
        ("reverse_kl", lambda **kw: tokens.reverse_kl(z_s, z_t, **kw)),
        ("generalized_jsd beta=0.5", lambda **kw: tokens.generalized_jsd(z_s, z_t, beta=0.5, **kw)),
        ("skew_kl alpha=0.1", lambda **kw: tokens.skew_kl(z_s, z_t, alpha=0.1, **kw)),
        ("skew_reverse_kl alpha=0.1", lambda **kw: tokens.skew_reverse_kl(z_s, z_t, **kw)),
        (f"topk renorm k={args.k}", lambda **kw: tokens.topk_divergence(z_s, top_z, idx, **kw)),
        (f"topk bucket k={args.k}",
         lambda **kw: tokens.topk_divergence(z_s, top_lp, idx, tail="bucket", **kw)),
    ]
    for name, fn in cases:
        for tag, kw in (("", {}), (" +labels", {"labels": labels})):
            base = best_time(lambda: np.exp(z_s), args.repeat)
            t = best_time(lambda fn=fn, kw=kw: fn(temperature=2.0, **kw), args.repeat)
            print(f"{name + tag:34s} {t * 1e3:8.1f} {t / base:7.2f}")


if __name__ == "__main__":
    main()
