"""Choose every default of ``minikd lm`` on the validation names, never on the test names.

The validation names are carved from the training side of the split (minikd.experiments.names);
the runs here use seeds 100 and 101, the reported job uses seeds 0, 1, 2. The script prints
Markdown tables; its committed output is ``docs/scripts/select_lm_output.md``:

    python docs/scripts/select_lm.py --part teacher  > teacher.md    # slow: ~15 min of CPU
    python docs/scripts/select_lm.py --part students > students.md   # ~5 min of CPU

Part "teacher" trains the candidate teachers (the recipe's epochs and batch fixed; learning rate
and dropout varied) and keeps the one with the lowest validation NLL. Part "students", with the
shipped teacher: (1) each student's Adam learning rate, per loss, at the default budget;
(2) T and alpha for forward KL; (3) the budget, with the learning rates re-tuned per budget,
to show how the gain changes with longer training.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict, replace

import numpy as np

from minikd._threads import blas_threads
from minikd.experiments.lm import LMSetup, train_student
from minikd.experiments.lm_teacher import TEACHER, load_teacher, mean_nll, train_teacher
from minikd.experiments.names import load_names_data
from minikd.experiments.parallel import map_runs

SEEDS = (100, 101)  # not the reported seeds (0, 1, 2)
LRS = (1e-3, 2.5e-3, 5e-3, 1e-2, 2e-2)  # 1e-3: Adam's usual default
METHODS = ("scratch", "forward_kl", "reverse_kl", "generalized_jsd")
TEMPERATURES = (1.0, 2.0, 4.0)
ALPHAS = (0.5, 1.0)
BUDGETS = (1, 2, 4)  # epochs
TEACHERS = [dict(epochs=10, lr=2e-3, dropout=0.0), dict(epochs=10, lr=2e-3, dropout=0.1),
            dict(epochs=10, lr=2e-3, dropout=0.25), dict(epochs=10, lr=3e-3, dropout=0.1),
            dict(epochs=20, lr=2e-3, dropout=0.1)]

_DATA = {}


def data():
    """The names data, loaded once per process (the workers load their own copy)."""
    if "d" not in _DATA:
        _DATA["d"] = load_names_data(context=TEACHER.context)
    return _DATA["d"]


def teacher_logits():
    if "z" not in _DATA:
        teacher, _ = load_teacher()
        with blas_threads(1):
            _DATA["z"] = teacher.logits(data().X_train)
    return _DATA["z"]


def val_run(method, seed, setup):
    """Validation NLL of one student (a task of map_runs)."""
    z_t = None if method == "scratch" else teacher_logits()
    with blas_threads(1):
        student, _ = train_student(method, seed, setup, data(), z_t)
        return mean_nll(student, data().X_val, data().y_val)


def teacher_run(overrides, save_dir):
    recipe = replace(TEACHER, **overrides)
    teacher, history = train_teacher(data(), recipe)
    if save_dir:  # the winner can be shipped without training it again
        name = "_".join(f"{k}{v:g}" for k, v in sorted(overrides.items()))
        teacher.save(os.path.join(save_dir, f"teacher_{name}.npz"))
    return history["val_nll"]


def grid(cells, jobs):
    """{cell: [val NLL per seed]} for cells (method, setup)."""
    tasks = [(m, s, setup) for m, setup in cells for s in SEEDS]
    out = iter(map_runs(val_run, tasks, jobs=jobs))
    return {cell: [next(out) for _ in SEEDS] for cell in cells}


def fmt(values):
    return f"{np.mean(values):.4f}" + (f" ± {np.std(values, ddof=1):.4f}" if len(values) > 1
                                        else "")


def part_teacher(jobs, save_dir=None):
    print("## Teacher (validation NLL, nats/char, after each epoch; the recipe's seed)\n")
    print(f"k={TEACHER.context}, d={TEACHER.embed_dim}, h={TEACHER.hidden}, batch "
          f"{TEACHER.batch_size}, Adam with cosine decay over the epochs, seed {TEACHER.seed}\n")
    curves = map_runs(teacher_run, [(t, save_dir) for t in TEACHERS], jobs=jobs)
    print("| epochs | lr | dropout | val NLL after each epoch | final |")
    print("|---|---|---|---|---|")
    for t, c in zip(TEACHERS, curves, strict=True):
        t = {**asdict(TEACHER), **t}
        print(f"| {t['epochs']} | {t['lr']:g} | {t['dropout']:g} | "
              f"{' '.join(f'{v:.3f}' for v in c)} | {c[-1]:.4f} |")
    best = min(range(len(TEACHERS)), key=lambda i: curves[i][-1])
    print(f"\nlowest validation NLL: {TEACHERS[best]}\n")


def best_lr(results, method, epochs):
    return min(LRS, key=lambda lr: np.mean(results[method, lr, epochs]))


def part_students(jobs):
    base = LMSetup()
    print(f"## Students (validation NLL, nats/char, mean ± std over seeds {SEEDS})\n")
    print(f"k={base.context}, d={base.embed_dim}, h={base.hidden}, batch {base.batch_size}; "
          f"distilled at T = 1, alpha = 1, JSD beta = {base.beta:g} unless stated\n")
    cells = [(m, replace(base, epochs=e, lr=lr, scratch_lr=lr, temperature=1.0, alpha=1.0))
             for e in BUDGETS for m in METHODS for lr in LRS
             if e == BUDGETS[0] or m in ("scratch", "forward_kl")]
    found = grid(cells, jobs)
    results = {(m, s.lr, s.epochs): v for (m, s), v in found.items()}
    print(f"### (1) learning rate, {BUDGETS[0]} epoch\n")
    print("| student | " + " | ".join(f"lr {lr:g}" for lr in LRS) + " | best |")
    print("|---" * (len(LRS) + 2) + "|")
    for m in METHODS:
        print(f"| {m} | " + " | ".join(fmt(results[m, lr, BUDGETS[0]]) for lr in LRS)
              + f" | {best_lr(results, m, BUDGETS[0]):g} |")
    lr_s, lr_d = best_lr(results, "scratch", 1), best_lr(results, "forward_kl", 1)
    print(f"\n### (2) temperature and alpha, forward KL at lr {lr_d:g}\n")
    cells = [("forward_kl", replace(base, epochs=BUDGETS[0], lr=lr_d, temperature=t, alpha=a))
             for t in TEMPERATURES for a in ALPHAS]
    found = grid(cells, jobs)
    scratch = results["scratch", lr_s, BUDGETS[0]]
    print("| T | alpha | val NLL | gain over tuned scratch |")
    print("|---|---|---|---|")
    for (_, s), v in found.items():
        gain = np.subtract(scratch, v)
        print(f"| {s.temperature:g} | {s.alpha:g} | {fmt(v)} | {fmt(gain)} |")
    print("\n### (3) budget: gain of forward KL (T = 1, alpha = 1) over scratch, each at its "
          "best learning rate for that budget\n")
    print("| epochs | scratch lr | scratch | forward KL lr | forward KL | gain | gain over "
          f"scratch at lr {LRS[0]:g} (untuned) |")
    print("|---|---|---|---|---|---|---|")
    for e in BUDGETS:
        ls, ld = best_lr(results, "scratch", e), best_lr(results, "forward_kl", e)
        s, d = results["scratch", ls, e], results["forward_kl", ld, e]
        untuned = results["scratch", LRS[0], e]
        print(f"| {e} | {ls:g} | {fmt(s)} | {ld:g} | {fmt(d)} | {fmt(np.subtract(s, d))} | "
              f"{fmt(np.subtract(untuned, d))} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("teacher", "students"), required=True)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--save-dir", help="part teacher: save every candidate teacher there")
    args = parser.parse_args()
    if args.part == "teacher":
        part_teacher(args.jobs, args.save_dir)
    else:
        part_students(args.jobs)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
