"""Choose the defaults of ``minikd distill`` (:class:`minikd.experiments.setup.DistillSetup`) on
validation data only: never on the test split, never on the reported seeds.

The validation rows are carved from MNIST-1D's *training* split (4000 rows,
``make_mnist1d(rng=42)``) by :func:`minikd.experiments.data.train_val_split` (stratified,
``--val-fraction`` 0.2 by default, drawn from the run's seed, so the spread over seeds includes
the split's variation); the models train on the rest, standardised with its own statistics.
The 1000 test rows are never used. The seeds are 100-104 (the reported job uses 0-4).

Each knob is varied alone around the current defaults (one knob at a time; the others at their
defaults), and every configuration is scored by validation accuracy:

* ``weight_decay``: the regularised scratch student (AdamW);
* ``teacher_dropout``, ``teacher_epochs``, ``temperature``, ``alpha``, FitNets ``beta``, and the
  students' ``lr``, ``batch_size`` and ``epochs``: the distilled student (for the last three the
  scratch student of the same setting is shown too; the teacher keeps lr 3e-3 and batch 128);
* ``student_hidden``: the distilled student's gain over a scratch student of the same width (a
  wider student is simply more accurate; the width is the size budget, its score the gain).

Rule: the default changes only if the best value beats the default by more than the seeds' spread
(the standard deviation over seeds of the paired difference, each seed comparing the two values
on the same split, teacher and initial weights); otherwise it stays and the table says so.

    python docs/scripts/select_defaults.py --jobs 2 --out docs/scripts/select_defaults_output.md

Runs are independent processes with one BLAS thread each
(:func:`minikd.experiments.parallel.map_runs`): first every seed's teachers, then every student.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's minikd

from minikd.experiments.data import Split, make_mnist1d, standardize, train_val_split  # noqa: E402
from minikd.experiments.parallel import map_runs  # noqa: E402
from minikd.experiments.seed_runs import (  # noqa: E402
    accuracy,
    train_distilled,
    train_scratch,
    train_teacher,
)
from minikd.experiments.setup import FITNETS_BETA, DistillSetup  # noqa: E402

SEEDS = (100, 101, 102, 103, 104)  # the reported job uses 0-4
BASE = DistillSetup()
# knob -> (values, scored model); the default is always one of the values.
GRID = {
    "weight_decay": ((0.01, 0.03, 0.1, 0.3, 1.0), "scratch_wd"),
    "teacher_dropout": ((0.0, 0.25, 0.5), "distilled"),
    "teacher_epochs": ((30, 60, 120), "distilled"),
    "student_hidden": (((32,), (64,)), "gain"),
    "temperature": ((1.0, 2.0, 4.0, 8.0), "distilled"),
    "alpha": ((0.5, 0.9, 1.0), "distilled"),
    "beta": ((1.0, 10.0, 100.0), "distilled"),  # FitNets (family "feature")
    "lr": ((1e-3, 3e-3, 1e-2), "distilled"),
    "batch_size": ((64, 128, 256), "distilled"),
    "epochs": ((50, 100, 200), "distilled"),
}
DEFAULTS = {"beta": FITNETS_BETA, **{k: getattr(BASE, k) for k in GRID if k != "beta"}}
TEACHER_KNOBS = ("teacher_dropout", "teacher_epochs", "lr", "batch_size")  # change the teacher
BUDGET_KNOBS = ("teacher_epochs", "epochs", "student_hidden")  # time or size, not just accuracy


def validation_split(seed, val_fraction):
    """MNIST-1D's training rows split into fit / validation (stratified, drawn from ``seed``),
    standardised with the fit part's statistics. The Split's second pair is the validation part."""
    full = make_mnist1d(rng=42)  # the job's dataset; its test rows are not used here
    X_fit, y_fit, X_val, y_val = train_val_split(full.X_train, full.y_train,
                                                 val_fraction=val_fraction, rng=seed)
    X_fit, X_val = standardize(X_fit, X_val)
    return Split(X_fit.astype(np.float32), y_fit, X_val.astype(np.float32), y_val)


def teacher_run(setup, seed, val_fraction):
    """One seed's teacher; returns it and its validation accuracy."""
    data = validation_split(seed, val_fraction)
    teacher, _ = train_teacher(setup, data, seed, False)
    return teacher, accuracy(teacher, data.X_test, data.y_test)


def student_run(setup, kind, seed, teacher, val_fraction):
    """One student (``kind``: "scratch", "scratch_wd" or "distilled"); its validation accuracy."""
    data = validation_split(seed, val_fraction)
    if kind == "distilled":
        student, _ = train_distilled(setup, data, teacher, seed, False)
    else:
        wd = setup.weight_decay if kind == "scratch_wd" else 0.0
        student, _ = train_scratch(setup, data, seed, wd, False, kind)
    return accuracy(student, data.X_test, data.y_test)


def knob_setup(knob, value):
    """The default setup with one knob changed (``beta`` means FitNets' weight)."""
    if knob == "beta":
        return replace(BASE, family="feature", feature_loss="fitnets", beta=value)
    return replace(BASE, **{knob: value})


def models_for(knob, value):
    """The (kind, setup) pairs a knob's value needs."""
    setup = knob_setup(knob, value)
    if knob == "weight_decay":
        return [("scratch_wd", setup)]
    if knob in ("student_hidden", "lr", "batch_size", "epochs"):
        return [("scratch", setup), ("distilled", setup)]
    return [("distilled", setup)]


def teacher_key(setup):
    return (setup.teacher_dropout, setup.teacher_epochs, setup.lr, setup.batch_size)


def mean_std(a):
    a = np.asarray(a, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1))


def pct(a):
    m, s = mean_std(100 * np.asarray(a))
    return f"{m:.1f} ± {s:.1f}"


def fmt(value):
    return str(value[0]) if isinstance(value, tuple) else f"{value:g}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: cores)")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--out", help="write the Markdown there (atomically) instead of stdout")
    p.add_argument("--append", action="store_true", help="append to --out's text")
    p.add_argument("--around", nargs="+", default=[], metavar="FIELD=VALUE",
                   help="select around these values instead of DistillSetup()'s defaults")
    a = p.parse_args(argv)
    global BASE, DEFAULTS
    for item in a.around:
        field, value = item.split("=")
        BASE = replace(BASE, **{field: type(getattr(BASE, field))(value)})
    DEFAULTS = {"beta": FITNETS_BETA, **{k: getattr(BASE, k) for k in GRID if k != "beta"}}
    start = time.perf_counter()

    # Every distinct model, trained once: a config shared by several knobs (the defaults) is
    # one run.
    wanted = {(kind, setup, seed) for knob, (values, _) in GRID.items() for v in values
              for kind, setup in models_for(knob, v) for seed in SEEDS}
    t_keys = sorted({(teacher_key(s), seed) for kind, s, seed in wanted if kind == "distilled"})
    t_setups = {key: replace(BASE, teacher_dropout=key[0], teacher_epochs=key[1], lr=key[2],
                             batch_size=key[3]) for key, _ in t_keys}
    t_out = map_runs(teacher_run, [(t_setups[key], seed, a.val_fraction) for key, seed in t_keys],
                     jobs=a.jobs)
    teachers = {k: t for k, (t, _) in zip(t_keys, t_out, strict=True)}
    t_acc = {k: acc for k, (_, acc) in zip(t_keys, t_out, strict=True)}
    runs = sorted(wanted, key=repr)
    s_out = map_runs(student_run, [(s, kind, seed, teachers.get((teacher_key(s), seed)),
                                    a.val_fraction) for kind, s, seed in runs], jobs=a.jobs)
    acc = dict(zip(runs, s_out, strict=True))
    seconds = time.perf_counter() - start

    def scores(knob, value, kind):
        setup = knob_setup(knob, value)
        return np.array([acc[(kind, setup, seed)] for seed in SEEDS])

    def score(knob, value):
        kind = GRID[knob][1]
        if kind == "gain":
            return scores(knob, value, "distilled") - scores(knob, value, "scratch")
        return scores(knob, value, kind)

    around = f" --around {' '.join(a.around)}" if a.around else ""
    out = [f"### Around the defaults{' with ' + ', '.join(a.around) if a.around else ''}", "",
           f"Output of `python docs/scripts/select_defaults.py --jobs {a.jobs}{around}` "
           f"({time.strftime('%Y-%m-%d')}; {platform.machine()}, {os.cpu_count()} cores shared "
           f"with other jobs, load average {os.getloadavg()[0]:.1f} at the end; "
           f"{seconds / 60:.1f} min wall time).", "",
           f"Data: MNIST-1D's 4000 training rows, split by `train_val_split` into "
           f"{100 - 100 * a.val_fraction:.0f} % fit / {100 * a.val_fraction:.0f} % validation "
           f"(stratified, drawn from each seed); the test rows are not used. "
           f"Seeds {SEEDS[0]}-{SEEDS[-1]} (the reported job uses 0-4). "
           "Each knob varied alone, the others at the defaults (teacher "
           f"{BASE.teacher_hidden}, {BASE.teacher_epochs} epochs; students "
           f"{BASE.student_hidden}, {BASE.epochs} epochs; Adam lr {BASE.lr:g}, batch "
           f"{BASE.batch_size}); lr and batch_size change every model, epochs the students "
           "only.", "",
           "Validation accuracy (%), mean ± std over seeds; Δ: paired difference from the "
           "default value (points), mean ± std over seeds, and on how many seeds the value "
           "beat the default. Rule: change the default only if the best value's Δ exceeds its "
           "std (the seeds' spread).", "",
           "| knob | value | scored | val acc (%) | Δ vs default | wins | note |",
           "|---|---|---|---|---|---|---|"]
    decisions = []
    for knob, (values, kind) in GRID.items():
        default = DEFAULTS[knob]
        base = score(knob, default)
        best, best_d = default, 0.0
        for v in values:
            s = score(knob, v)
            d = 100 * (s - base)
            dm, ds = mean_std(d)
            note = []
            if v == default:
                note.append("**default**")
            if knob in TEACHER_KNOBS:
                key = teacher_key(knob_setup(knob, v))
                note.append(f"teacher {pct([t_acc[(key, seed)] for seed in SEEDS])}")
            if knob in ("student_hidden", "lr", "batch_size", "epochs"):
                note.append(f"scratch {pct(scores(knob, v, 'scratch'))}")
            if kind == "gain":
                note.append(f"distilled {pct(scores(knob, v, 'distilled'))}")
            label = {"scratch_wd": "scratch + wd", "gain": "gain"}.get(kind, kind)
            wins = "" if v == default else f"{int(np.sum(d > 0))}/{len(SEEDS)}"
            delta = "" if v == default else f"{dm:+.2f} ± {ds:.2f}"
            out.append(f"| {knob} | {fmt(v)} | {label} | {pct(s)} | {delta} | {wins} | "
                       f"{', '.join(note)} |")
            if v != default and dm > best_d:
                best, best_d, best_s = v, dm, ds
        if best == default:
            decisions.append(f"- `{knob}`: the default {fmt(default)} is best on validation: kept.")
        elif best_d > best_s and knob in BUDGET_KNOBS:
            decisions.append(f"- `{knob}`: {fmt(best)} beats the default {fmt(default)} by "
                             f"{best_d:+.2f} ± {best_s:.2f} points, more than the spread, but "
                             f"it is a budget (time or size): the rule allows the change, "
                             f"the job's time budget decides.")
        elif best_d > best_s:
            decisions.append(f"- `{knob}`: {fmt(best)} beats the default {fmt(default)} by "
                             f"{best_d:+.2f} ± {best_s:.2f} points, more than the spread: "
                             f"change it.")
        else:
            decisions.append(f"- `{knob}`: {fmt(best)} is ahead of the default {fmt(default)} by "
                             f"{best_d:+.2f} ± {best_s:.2f} points, within the spread: kept.")
    out += ["", "Decisions by the rule:", "", *decisions]
    text = "\n".join(out) + "\n"
    if a.out is None:
        sys.stdout.write(text)
        return
    if a.append:
        with open(a.out, encoding="utf-8") as f:
            text = f.read() + "\n" + text
    tmp = f"{a.out}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
