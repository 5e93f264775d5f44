r"""The main job of ``minikd distill``: a teacher, a plain and a regularised scratch student and a
distilled student on each seed, the seeds in parallel processes.

Everything here returns plain data (dicts, lists, floats); printing, JSON and plots live in
:mod:`minikd.cli`, :mod:`minikd.experiments.report` and :mod:`minikd.experiments.plots`. Nothing
here prints except one progress bar on a terminal (``verbose``). The knobs are in
:mod:`minikd.experiments.setup`, one seed's training in :mod:`minikd.experiments.seed_runs`.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict

import numpy as np

from .._threads import limits_blas_threads
from .._validation import as_float_array, param_error
from ..nn.mlp import MLP
from .data import DATASETS, load_dataset
from .parallel import map_runs
from .progress import progress_bar
from .seed_runs import (
    accuracy,
    agreement,
    mean_std,
    n_classes,
    seconds_per_sample,
    train_distilled,
    train_scratch,
    train_teacher,
)
from .setup import (
    FAMILIES,
    FEATURE_LOSSES,
    FITNETS_BETA,
    RELATION_LOSSES,
    DistillSetup,
    resolve_setup,
    seed_range,
)
from .temperature import temperature_table

__all__ = [
    "DATASETS",
    "FAMILIES",
    "FEATURE_LOSSES",
    "FITNETS_BETA",
    "RELATION_LOSSES",
    "STUDENTS",
    "DistillSetup",
    "load_dataset",
    "run_distill",
    "run_seed",
    "saved_model_names",
    "temperature_table",
]


STUDENTS = ("scratch", "scratch_wd", "distilled")


@limits_blas_threads
def run_distill(setup=None, *, verbose=True, save_dir=None, jobs=None, backend="loky",
                scheduler=None, data=None, teacher_logits=None, data_name=None, **overrides):
    r"""Train a teacher, a scratch student, a regularised scratch student and a distilled student
    on each of ``setup.seeds`` seeds, and summarise.

    .. math::

        \text{gain}_s = \text{acc}(\text{distilled}_s) - \text{acc}(\text{scratch}_s), \qquad
        \text{kept} = \frac{\overline{\text{acc}}(\text{distilled})}
                           {\overline{\text{acc}}(\text{teacher})}

    The scratch and distilled students of one seed start from the same initial weights and see
    the same mini-batch order, so their difference is a paired comparison.

    Parameters
    ----------
    setup : DistillSetup, optional
        The knobs; defaults to ``DistillSetup()``.
    verbose : bool, default True
        A progress bar on stderr when it is a terminal: finished seeds, time left, the last
        seed done (:func:`minikd.experiments.progress.progress_bar`); the trainers print no
        per-epoch lines.
    save_dir : str, optional
        Save every model there (``teacher_seed0.npz``, ``distilled_seed0.npz``, ...).
    jobs : int, optional
        Seeds trained at once, each in its own process with one BLAS thread; default: the
        cores this process may use. The results do not depend on it (each seed's randomness
        comes from the seed alone). In this process (``jobs=1``) BLAS uses the enclosing
        :func:`minikd.training.blas_threads` block's thread count, else one thread.
    backend : {"loky", "dask", "ray"}, default "loky"
        joblib's backend for the seeds (:func:`minikd.experiments.parallel.map_runs`).
    scheduler : str, optional
        The cluster's address for ``backend="dask"`` or ``"ray"``.
    data : minikd.Split, optional
        Your own train/test arrays (e.g. from :func:`minikd.experiments.userdata.load_user_data`)
        instead of ``setup.dataset``; ``data_name`` names them in the result.
    teacher_logits : tuple (train (N, C), test (M, C) or None), optional
        A teacher's logits on ``data``'s training rows (and test rows), from any framework: no
        teacher is trained, every seed's student is distilled from them (``family="response"``
        only). The teacher's row shows its test accuracy from the test logits, or None
        without them; the students' agreement likewise.
    **overrides
        Fields of :class:`DistillSetup` to replace.

    Returns
    -------
    dict
        ``setup``, ``data`` (sizes), ``per_seed`` (accuracy and agreement of every model per
        seed), ``summary`` (mean and std of each), ``gain`` (over plain and regularised scratch:
        mean, std, per-seed values, wins), ``models`` (sizes, parameters, bytes, seconds per
        sample), ``triple`` (smaller, faster, kept), ``curves`` (test accuracy per epoch, per
        seed, per model) and ``seconds`` (wall time).
    """
    setup = resolve_setup(setup, overrides)
    start = time.perf_counter()
    if data is None:
        data = load_dataset(setup.dataset, data_dir=setup.data_dir, n_train=setup.n_train)
    teacher_logits = _check_given_logits(teacher_logits, data, setup)
    seeds = list(seed_range(setup))
    # Workers print nothing (verbose=False): the progress is this process's one bar.
    with progress_bar(len(seeds), enabled=verbose, desc="distill", unit="seed") as step:
        runs = map_runs(run_seed, [(setup, data, seed, False, teacher_logits) for seed in seeds],
                        jobs=jobs, backend=backend, scheduler=scheduler,
                        on_done=lambda i, _: step(f"seed {seeds[i]}"))
    per_seed = [record for record, _, _ in runs]
    curves = {name: [curve[name] for _, curve, _ in runs] for name in ("teacher", *STUDENTS)}
    # Inference time is measured here, after training, one model at a time: a worker's
    # timing would include its neighbours' load.
    timing = {"teacher": [], "student": []}
    for (record, _, models) in runs:
        if "teacher" in models:
            timing["teacher"].append(seconds_per_sample(models["teacher"], data.X_test))
        timing["student"].append(seconds_per_sample(models["distilled"], data.X_test))
        if save_dir is not None:
            _save_models(save_dir, record["seed"], models)
    teacher, student = runs[-1][2].get("teacher"), runs[-1][2]["scratch"]
    result = _summarise(setup, per_seed, curves, timing, teacher and teacher.sizes,
                        student.sizes, data.X_train.shape[0], data.X_test.shape[0],
                        time.perf_counter() - start)
    if data_name is not None:
        result["data"]["source"] = data_name  # given data: named instead of setup.dataset
    if teacher_logits is not None:
        result["teacher_source"] = "given logits"
    return result


def _check_given_logits(teacher_logits, data, setup):
    """``(train (N, C), test (M, C) or None)`` checked against ``data``, or None."""
    func = "run_distill"
    if teacher_logits is None:
        return None
    if setup.family != "response":
        raise param_error("teacher_logits", func, "None with family "
                          f"{setup.family!r} (it needs the teacher network's hidden layers)",
                          "given logits")
    if not isinstance(teacher_logits, tuple):
        teacher_logits = (teacher_logits, None)
    if len(teacher_logits) != 2:
        raise param_error("teacher_logits", func, "a pair (train logits, test logits or None)",
                          f"a tuple of {len(teacher_logits)}", TypeError)
    c = n_classes(data)
    out = []
    for part, z, rows in (("train", teacher_logits[0], data.X_train.shape[0]),
                          ("test", teacher_logits[1], data.X_test.shape[0])):
        if z is None and part == "test":
            out.append(None)
            continue
        z = as_float_array(z, f"teacher_logits ({part})", func, ndim=2)
        if z.shape != (rows, c):
            raise param_error(f"teacher_logits ({part})", func, f"shape ({rows}, {c}): one row "
                              f"of {c} classes per {part} row", f"shape {z.shape}")
        out.append(z)
    return tuple(out)


def run_seed(setup, data, seed, verbose=False, teacher_logits=None):
    """Train one seed's teacher and students; returns its record, its curves and its models.

    ``record``: the test accuracy of every model and the students' agreement with the teacher;
    ``curves``: test accuracy per epoch of every model; ``models``: name -> trained MLP. With
    ``teacher_logits`` (train, test or None) no teacher is trained: its accuracy and the
    agreement come from the test logits (None without them), its curve is empty.
    """
    if teacher_logits is None:
        teacher, test_curve = train_teacher(setup, data, seed, verbose)
        curves = {"teacher": test_curve}
        teacher_pred = teacher.predict(data.X_test)
        models = {"teacher": teacher}
    else:
        teacher, curves, models = None, {"teacher": []}, {}
        z_test = teacher_logits[1]
        teacher_pred = None if z_test is None else z_test.argmax(axis=1)  # (M,)
    record = {"seed": seed, "teacher": {"acc": None if teacher_pred is None else
                                        float(np.mean(teacher_pred == data.y_test))}}
    for name in STUDENTS:
        if name == "distilled":
            student, test_curve = train_distilled(
                setup, data, teacher, seed, verbose,
                teacher_logits=None if teacher_logits is None else teacher_logits[0])
        else:
            wd = setup.weight_decay if name == "scratch_wd" else 0.0
            student, test_curve = train_scratch(setup, data, seed, wd, verbose, name)
        curves[name] = test_curve
        record[name] = {"acc": accuracy(student, data.X_test, data.y_test),
                        "agreement": None if teacher_pred is None else
                        agreement(student, teacher_pred, data.X_test)}
        models[name] = student
    return record, curves, models


def _model_file(name, seed):
    return f"{name}_seed{seed}.npz"


def saved_model_names(setup):
    """The file names ``run_distill(setup, save_dir=...)`` writes in its folder."""
    return [_model_file(name, seed) for seed in seed_range(setup)
            for name in ("teacher", *STUDENTS)]


def _save_models(save_dir, seed, models):
    os.makedirs(save_dir, exist_ok=True)
    for name, model in models.items():
        model.save(os.path.join(save_dir, _model_file(name, seed)))


def _summarise(setup, per_seed, curves, timing, t_sizes, s_sizes, n_train, n_test, seconds):
    summary = {name: mean_std([r[name]["acc"] for r in per_seed])
               for name in ("teacher", *STUDENTS)}
    for name in STUDENTS:
        summary[name]["agreement"] = mean_std([r[name]["agreement"] for r in per_seed])
    gain = {}
    for base in ("scratch", "scratch_wd"):
        diffs = [r["distilled"]["acc"] - r[base]["acc"] for r in per_seed]
        gain[f"vs_{base}"] = {**mean_std(diffs), "per_seed": diffs,
                              "wins": int(sum(v > 0 for v in diffs)), "seeds": len(diffs)}
    student = MLP(s_sizes, rng=0)
    s_time = float(np.median(timing["student"]))
    models = {
        "teacher": {"sizes": None, "n_params": None, "nbytes": None, "seconds_per_sample": None},
        "student": {"sizes": s_sizes, "n_params": student.n_params, "nbytes": student.nbytes,
                    "seconds_per_sample": s_time},
    }
    # DistilBERT's wording (Sanh et al. 2019, §1): "40% smaller, 60% faster, retains 97%".
    triple = dict.fromkeys(("smaller", "size_ratio", "faster", "kept"))
    if t_sizes is not None:  # a teacher trained here (not known only by its logits)
        teacher = MLP(t_sizes, dropout=setup.teacher_dropout, rng=0)  # parameters and bytes
        t_time = float(np.median(timing["teacher"]))
        models["teacher"] = {"sizes": t_sizes, "n_params": teacher.n_params,
                             "nbytes": teacher.nbytes, "seconds_per_sample": t_time}
        triple.update(smaller=1.0 - student.n_params / teacher.n_params,
                      size_ratio=teacher.n_params / student.n_params,
                      faster=t_time / s_time - 1.0)
    if summary["teacher"]["mean"] is not None:
        triple["kept"] = summary["distilled"]["mean"] / summary["teacher"]["mean"]
    # The verdict the issue asks for: is the mean gain larger than the seed-to-seed spread?
    spread = max(summary["scratch"]["std"], summary["distilled"]["std"],
                 gain["vs_scratch"]["std"])
    verdict = {"spread": spread, "gain_exceeds_spread": gain["vs_scratch"]["mean"] > spread}
    return {"setup": asdict(setup), "data": {"n_train": n_train, "n_test": n_test,
                                             "n_features": s_sizes[0],
                                             "n_classes": s_sizes[-1]},
            "per_seed": per_seed, "summary": summary, "gain": gain, "models": models,
            "term_weight": setup.term_weight if setup.family != "response" else 0.0,
            "triple": triple, "verdict": verdict, "curves": curves, "seconds": seconds}
