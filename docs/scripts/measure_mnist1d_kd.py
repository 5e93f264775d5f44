"""Measure distillation's gain over a scratch student on MNIST-1D, to choose the CLI defaults.

Uses minikd's own pieces (``minikd.data.make_mnist1d``, ``minikd.MLP``, ``minikd.fit``,
``minikd.train_loop``, ``minikd.AdamW``) and, for the distilled student, the Hinton et al. (2015)
blend ``minikd.distillation_loss``: alpha on the soft term (T² inside it), 1 - alpha on the hard
cross-entropy. Both students get the same initialisation,
batch order, optimizer, learning rate, epochs and weight decay: the only difference is the loss.

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

from minikd import MLP, AdamW, distillation_loss, fit, train_loop
from minikd.data import make_mnist1d


def distill_student(student, X, y, teacher_logits, *, temperature, alpha, epochs, batch_size,
                    optimizer, rng):
    r"""Train ``student`` on ``minikd.distillation_loss`` (Hinton KD blend), teacher frozen.

    L = alpha T² KL(p_t^T || p_s^T) + (1 - alpha) CE(y, p_s), mean over the batch.
    """

    def step(idx):
        z, cache = student.forward(X[idx], train=True)  # (B, C)
        loss, dz = distillation_loss(z, teacher_logits[idx], y[idx], temperature=temperature,
                                     alpha=alpha)
        return {"loss": loss}, student.backward(dz, cache)

    train_loop(student.params, optimizer, X.shape[0], step, epochs=epochs, batch_size=batch_size,
               rng=rng, verbose=False)


_TEACHERS = {}  # seed -> (test accuracy, train logits, CPU seconds): reused across the sweep


def run(cfg, seed, data):
    X, y, Xt, yt = data
    if seed not in _TEACHERS:
        t0 = time.process_time()
        teacher = MLP([X.shape[1], *cfg["teacher"], 10], dropout=cfg["teacher_dropout"],
                      rng=seed)
        fit(teacher, X, y, epochs=cfg["teacher_epochs"], batch_size=cfg["batch"], rng=seed,
            optimizer=AdamW(teacher.params, lr=cfg["teacher_lr"], weight_decay=0.0),
            verbose=False)
        _TEACHERS[seed] = (float(np.mean(teacher.predict(Xt) == yt)),
                           teacher.forward(X)[0], time.process_time() - t0)
    acc_t, zt, t_teacher = _TEACHERS[seed]
    out = {"teacher": acc_t, "t_teacher": t_teacher}
    for name in ("scratch", "distilled"):
        t1 = time.process_time()
        student = MLP([X.shape[1], *cfg["student"], 10], rng=1000 + seed)  # same init for both
        opt = AdamW(student.params, lr=cfg["lr"], weight_decay=cfg["wd"])
        if name == "scratch":
            fit(student, X, y, epochs=cfg["epochs"], batch_size=cfg["batch"], rng=seed,
                optimizer=opt, verbose=False)
        else:
            distill_student(student, X, y, zt, temperature=cfg["T"], alpha=cfg["alpha"],
                            epochs=cfg["epochs"], batch_size=cfg["batch"], optimizer=opt,
                            rng=seed)
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
    p.add_argument("-v", action="store_true", help="also print every seed")
    a = p.parse_args(argv)
    data = make_mnist1d(rng=a.data_seed)
    base = {"teacher": a.teacher, "teacher_dropout": a.teacher_dropout,
            "teacher_epochs": a.teacher_epochs, "teacher_lr": a.teacher_lr,
            "student": a.student, "batch": a.batch}
    for epochs, lr, wd, T, alpha in itertools.product(a.epochs, a.lr, a.wd, a.T, a.alpha):
        cfg = {**base, "epochs": epochs, "lr": lr, "wd": wd, "T": T, "alpha": alpha}
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
