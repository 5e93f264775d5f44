"""Measure distillation's gain over a scratch student on MNIST-1D, to choose the CLI defaults.

Uses minikd's own pieces (``minikd.data.make_mnist1d``, ``minikd.MLP``, ``minikd.fit``,
``minikd.AdamW``) and, for the distilled student, ``minikd.Distiller`` (what ``minikd.distill``
runs): Hinton et al.'s (2015) blend, alpha on the soft term (T² inside it), 1 - alpha on the hard
cross-entropy, plus the feature or relation term of ``--method`` with its library weight. Both
students get the same initialisation, optimizer, learning rate, epochs, weight decay and
mini-batch seed: only the loss differs.

    OPENBLAS_NUM_THREADS=1 python docs/scripts/measure_mnist1d_kd.py --seeds 5

prints one JSON line per configuration: mean ± std over seeds of the teacher's, the scratch
student's and the distilled student's test accuracy (%), the gain, on how many seeds distillation
won, and CPU seconds per model (one BLAS thread; wall time on a busy machine means little).
Lists after ``--T``, ``--alpha``, ``--wd``, ``--lr``, ``--epochs`` are swept (all combinations);
one teacher per seed is trained once and reused across the sweep.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np

from minikd import MLP, AdamW, Distiller, fit
from minikd.experiments.data import make_mnist1d, standardize

_TEACHERS = {}  # seed -> (trained teacher, test accuracy, CPU seconds): reused across the sweep


def run(cfg, seed, data):
    X, y, Xt, yt = data
    if seed not in _TEACHERS:
        t0 = time.process_time()
        teacher = MLP([X.shape[1], *cfg["teacher"], 10], dropout=cfg["teacher_dropout"],
                      rng=seed)
        fit(teacher, X, y, epochs=cfg["teacher_epochs"], batch_size=cfg["batch"], rng=seed,
            optimizer=AdamW(teacher.params, lr=cfg["teacher_lr"], weight_decay=0.0),
            verbose=False)
        _TEACHERS[seed] = (teacher, float(np.mean(teacher.predict(Xt) == yt)),
                           time.process_time() - t0)
    teacher, acc_t, t_teacher = _TEACHERS[seed]
    out = {"teacher": acc_t, "t_teacher": t_teacher}
    for name in ("scratch", "distilled"):
        t1 = time.process_time()
        student = MLP([X.shape[1], *cfg["student"], 10], rng=1000 + seed)  # same init for both
        if name == "scratch":
            fit(student, X, y, epochs=cfg["epochs"], batch_size=cfg["batch"], rng=seed,
                optimizer=AdamW(student.params, lr=cfg["lr"], weight_decay=cfg["wd"]),
                verbose=False)
        else:
            # minikd.distill with our own optimizer; the Distiller's params include the FitNets
            # regressors, which the optimizer must update too.
            gen = np.random.default_rng(seed)
            d = Distiller(teacher, student, X, y, method=cfg["method"], temperature=cfg["T"],
                          alpha=cfg["alpha"], rng=gen)
            d.train(epochs=cfg["epochs"], batch_size=cfg["batch"], rng=gen, verbose=False,
                    optimizer=AdamW(d.params, lr=cfg["lr"], weight_decay=cfg["wd"]))
        out[name] = float(np.mean(student.predict(Xt) == yt))
        out[f"t_{name}"] = time.process_time() - t1
    out["gain"] = out["distilled"] - out["scratch"]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--data-seed", type=int, default=42)
    p.add_argument("--teacher", type=int, nargs="+", default=[256, 256])
    p.add_argument("--teacher-dropout", type=float, default=0.5)
    p.add_argument("--teacher-epochs", type=int, default=60)
    p.add_argument("--teacher-lr", type=float, default=3e-3)
    p.add_argument("--student", type=int, nargs="+", default=[32])
    p.add_argument("--epochs", type=int, nargs="+", default=[100])
    p.add_argument("--lr", type=float, nargs="+", default=[3e-3])
    p.add_argument("--wd", type=float, nargs="+", default=[0.0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--T", type=float, nargs="+", default=[4.0])
    p.add_argument("--alpha", type=float, nargs="+", default=[0.9])
    p.add_argument("--method", nargs="+", default=["kd"],
                   help="minikd.distill's method: kd, fitnets, at, sp, rkd, pkt, cosine")
    p.add_argument("--standardize", action="store_true",
                   help="per-feature standardisation with the training statistics")
    p.add_argument("-v", action="store_true", help="also print every seed")
    a = p.parse_args(argv)
    data = make_mnist1d(rng=a.data_seed)
    if a.standardize:
        X, y, Xt, yt = data
        X, Xt = standardize(X, Xt)
        data = (X, y, Xt, yt)
    base = {"teacher": a.teacher, "teacher_dropout": a.teacher_dropout,
            "teacher_epochs": a.teacher_epochs, "teacher_lr": a.teacher_lr,
            "student": a.student, "batch": a.batch, "standardize": a.standardize}
    for method, epochs, lr, wd, T, alpha in itertools.product(a.method, a.epochs, a.lr, a.wd,
                                                              a.T, a.alpha):
        cfg = {**base, "method": method, "epochs": epochs, "lr": lr, "wd": wd, "T": T,
               "alpha": alpha}
        rows = [run(cfg, s, data) for s in range(a.seeds)]
        if a.v:
            for r in rows:
                print(json.dumps({k: round(v, 4) for k, v in r.items()}))
        summary = {k: [round(100 * float(np.mean([r[k] for r in rows])), 1),
                       round(100 * float(np.std([r[k] for r in rows])), 1)]
                   for k in ("teacher", "scratch", "distilled", "gain")}
        summary["wins"] = f"{sum(r['gain'] > 0 for r in rows)}/{len(rows)}"
        summary["cpu_s"] = {k[2:]: round(float(np.mean([r[k] for r in rows])), 2)
                            for k in ("t_teacher", "t_scratch", "t_distilled")}
        print(json.dumps({"cfg": cfg, **summary}), flush=True)


if __name__ == "__main__":
    main()
