r"""Distillation settings compared against shared teachers and scratch students: the family
comparison and the temperature x alpha sweep (``minikd sweep``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace

import numpy as np

from .._validation import check_temperature, check_unit_interval, param_error
from .data import load_dataset
from .seed_runs import (
    accuracy,
    agreement,
    mean_std,
    train_distilled,
    train_scratch,
    train_teacher,
)
from .setup import resolve_setup, seed_range

__all__ = ["run_sweep", "run_variants"]



def run_variants(setup=None, variants=(), *, verbose=True, **overrides):
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
    base = {"teacher": [], "scratch": [], "scratch_wd": []}
    acc = [[] for _ in variants]
    agree = [[] for _ in variants]
    for seed in seed_range(setup):
        teacher, _ = train_teacher(setup, data, seed, verbose)
        teacher_pred = teacher.predict(data.X_test)
        base["teacher"].append(accuracy(teacher, data.X_test, data.y_test))
        for name, wd in (("scratch", 0.0), ("scratch_wd", setup.weight_decay)):
            student, _ = train_scratch(setup, data, seed, wd, verbose, name)
            base[name].append(accuracy(student, data.X_test, data.y_test))
        for k, v in enumerate(variants):
            student, _ = train_distilled(replace(setup, **v), data, teacher, seed, verbose,
                                          name=f"distilled {v}")
            acc[k].append(accuracy(student, data.X_test, data.y_test))
            agree[k].append(agreement(student, teacher_pred, data.X_test))
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
              verbose=True, **overrides):
    """The distilled student's gain over scratch on a temperature x alpha grid.

    Parameters
    ----------
    setup : DistillSetup, optional
    temperatures : sequence of float, length K
    alphas : sequence of float, length A
    verbose : bool, default True
    **overrides
        Fields of :class:`DistillSetup` to replace.

    Returns
    -------
    dict
        :func:`run_variants`'s result plus ``temperatures``, ``alphas`` and ``gain`` /
        ``gain_std`` / ``gain_wd`` (nested lists of shape (K, A), accuracy points as fractions).
    """
    ts = [check_temperature(t, "run_sweep", "temperatures") for t in temperatures]
    al = [check_unit_interval(a, "alphas", "run_sweep") for a in alphas]
    if not ts or not al:
        raise param_error("temperatures" if not ts else "alphas", "run_sweep",
                          "a non-empty list", "an empty one")
    grid = [{"temperature": t, "alpha": a} for t in ts for a in al]
    result = run_variants(setup, grid, verbose=verbose, **overrides)
    shape = (len(ts), len(al))
    for key, src, field in (("gain", "gain_vs_scratch", "mean"),
                            ("gain_std", "gain_vs_scratch", "std"),
                            ("gain_wd", "gain_vs_scratch_wd", "mean")):
        vals = np.array([row[src][field] for row in result["variants"]]).reshape(shape)
        result[key] = vals.tolist()
    result["temperatures"], result["alphas"] = ts, al
    return result
