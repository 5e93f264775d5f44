r"""Distillation settings compared against shared teachers and scratch students: the family
comparison and the temperature x alpha sweep (``minikd sweep``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace

import numpy as np

from .._threads import limits_blas_threads
from .._validation import check_temperature, check_unit_interval, param_error
from .data import load_dataset
from .parallel import map_runs
from .progress import progress_bar
from .seed_runs import (
    accuracy,
    agreement,
    mean_std,
    train_distilled,
    train_scratch,
    train_teacher,
)
from .setup import resolve_setup, seed_range

__all__ = ["baseline_run", "run_sweep", "run_variants", "variant_run"]


def baseline_run(setup, data, seed):
    """One seed's teacher and scratch students: the teacher and the test accuracy of each."""
    teacher, _ = train_teacher(setup, data, seed, False)
    acc = {"teacher": accuracy(teacher, data.X_test, data.y_test)}
    for name, wd in (("scratch", 0.0), ("scratch_wd", setup.weight_decay)):
        student, _ = train_scratch(setup, data, seed, wd, False, name)
        acc[name] = accuracy(student, data.X_test, data.y_test)
    return teacher, acc


def variant_run(setup, variant, data, teacher, seed):
    """One cell: the seed's student distilled from ``teacher`` with ``variant``'s fields;
    its test accuracy and its agreement with the teacher."""
    student, _ = train_distilled(replace(setup, **variant), data, teacher, seed, False,
                                 name=f"distilled {variant}")
    return (accuracy(student, data.X_test, data.y_test),
            agreement(student, teacher.predict(data.X_test), data.X_test))


def _label(variant):
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in variant.items())


@limits_blas_threads
def run_variants(setup=None, variants=(), *, verbose=True, jobs=None, backend="loky",
                 scheduler=None, **overrides):
    r"""Compare several distillation settings against shared teachers and scratch students.

    .. math::

        \text{gain}_{v,s} = \text{acc}(\text{distilled}_{v,s}) - \text{acc}(\text{scratch}_s)

    Each seed trains one teacher, one plain and one weight-decayed scratch student; then one
    distilled student per variant, all from the same initial weights. A temperature sweep and
    the family comparison are both lists of variants.

    Parameters
    ----------
    setup : DistillSetup, optional
    variants : sequence of dict
        Each a set of :class:`DistillSetup` fields to change for the distilled student
        (``{"temperature": 2.0}``, ``{"family": "relation", "relation_loss": "sp"}``, ...).
        Only distillation fields may change: ``family``, ``temperature``, ``alpha``, ``beta``,
        ``feature_loss``, ``relation_loss``.
    verbose : bool, default True
        A progress bar on stderr when it is a terminal, counting finished runs (a seed's
        teacher and scratch students, then each (seed, variant) cell).
    jobs : int, optional
        Runs at once, each in its own process with one BLAS thread; default: the cores. First
        the seeds' teachers and scratch students, then every (seed, variant) cell with its
        seed's teacher. The results do not depend on it.
    backend : {"loky", "dask", "ray"}, default "loky"
        joblib's backend (:func:`minikd.experiments.parallel.map_runs`).
    scheduler : str, optional
        The cluster's address for ``backend="dask"`` or ``"ray"``.
    **overrides
        Fields of :class:`DistillSetup` to replace for every model.

    Returns
    -------
    dict
        ``setup``, ``baseline`` (teacher, scratch, scratch_wd: mean and std of accuracy),
        ``variants`` (per variant: ``overrides``, ``acc``, ``agreement``, ``gain_vs_scratch``,
        ``gain_vs_scratch_wd``, each mean/std, plus ``wins``), ``seconds``.
    """
    setup = resolve_setup(setup, overrides)
    allowed = {"family", "temperature", "alpha", "beta", "feature_loss", "relation_loss"}
    variants = [dict(v) for v in variants]
    if not variants:
        raise param_error("variants", "run_variants", "a non-empty list of dicts", "[]")
    for v in variants:
        bad = set(v) - allowed
        if bad:
            raise param_error("variants", "run_variants", f"dicts with keys in {sorted(allowed)}",
                              f"key {sorted(bad)[0]!r}")
        replace(setup, **v).checked()
    start = time.perf_counter()
    data = load_dataset(setup.dataset, data_dir=setup.data_dir, n_train=setup.n_train)
    seeds = list(seed_range(setup))
    cells = [(s, k) for s in range(len(seeds)) for k in range(len(variants))]
    par = {"jobs": jobs, "backend": backend, "scheduler": scheduler}
    with progress_bar(len(seeds) + len(cells), enabled=verbose, desc="sweep") as step:
        bases = map_runs(baseline_run, [(setup, data, seed) for seed in seeds], **par,
                         on_done=lambda i, _: step(f"seed {seeds[i]} teacher, scratch"))
        runs = map_runs(variant_run, [(setup, variants[k], data, bases[s][0], seeds[s])
                                      for s, k in cells], **par,
                        on_done=lambda i, _: step(f"seed {seeds[cells[i][0]]} "
                                                  f"{_label(variants[cells[i][1]])}"))
    base = {name: [acc[name] for _, acc in bases] for name in ("teacher", "scratch",
                                                                 "scratch_wd")}
    n_var = len(variants)  # cells are seed-major: cell s * n_var + k is (seed s, variant k)
    acc = [[runs[s * n_var + k][0] for s in range(len(seeds))] for k in range(n_var)]
    agree = [[runs[s * n_var + k][1] for s in range(len(seeds))] for k in range(n_var)]
    out = []
    for k, v in enumerate(variants):
        a = np.array(acc[k])
        row = {"overrides": v, "acc": mean_std(a), "agreement": mean_std(agree[k])}
        for name in ("scratch", "scratch_wd"):
            diff = a - np.array(base[name])
            row[f"gain_vs_{name}"] = {**mean_std(diff), "wins": int(np.sum(diff > 0))}
        out.append(row)
    return {"setup": asdict(setup), "baseline": {k: mean_std(v) for k, v in base.items()},
            "variants": out, "seconds": time.perf_counter() - start}


def run_sweep(setup=None, *, temperatures=(1.0, 2.0, 4.0, 8.0), alphas=(0.5, 0.9, 1.0),
              verbose=True, jobs=None, backend="loky", scheduler=None, **overrides):
    """The distilled student's gain over scratch on a temperature x alpha grid.

    Parameters
    ----------
    setup : DistillSetup, optional
    temperatures : sequence of float, length K
    alphas : sequence of float, length A
    verbose, jobs, backend, scheduler
        As in :func:`run_variants` (a progress bar; the runs in processes or on a cluster).
    **overrides
        Fields of :class:`DistillSetup` to replace.

    Returns
    -------
    dict
        :func:`run_variants`'s result plus ``temperatures``, ``alphas`` and ``gain`` /
        ``gain_std`` / ``gain_wd`` / ``gain_wd_std`` (nested lists of shape (K, A), accuracy
        points as fractions).
    """
    ts = [check_temperature(t, "run_sweep", "temperatures") for t in temperatures]
    al = [check_unit_interval(a, "alphas", "run_sweep") for a in alphas]
    if not ts or not al:
        raise param_error("temperatures" if not ts else "alphas", "run_sweep",
                          "a non-empty list", "an empty one")
    grid = [{"temperature": t, "alpha": a} for t in ts for a in al]
    result = run_variants(setup, grid, verbose=verbose, jobs=jobs, backend=backend,
                          scheduler=scheduler, **overrides)
    shape = (len(ts), len(al))
    for key, src, field in (("gain", "gain_vs_scratch", "mean"),
                            ("gain_std", "gain_vs_scratch", "std"),
                            ("gain_wd", "gain_vs_scratch_wd", "mean"),
                            ("gain_wd_std", "gain_vs_scratch_wd", "std")):
        vals = np.array([row[src][field] for row in result["variants"]]).reshape(shape)
        result[key] = vals.tolist()
    result["temperatures"], result["alphas"] = ts, al
    return result
