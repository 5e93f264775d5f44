r"""The main job of ``minikd distill``: a teacher, a plain and a regularised scratch student and a
distilled student on each seed, and the seed's temperature table.

Everything here returns plain data (dicts, lists, floats); printing, JSON and plots live in
:mod:`minikd.cli` and :mod:`minikd.plots`. Nothing here prints except the trainers' progress
lines (``verbose``). Sweeps over settings are in :mod:`minikd.sweeps`, Hinton's omitted-class
experiment in :mod:`minikd.omit_class`, the gradient self-check in :mod:`minikd.selfcheck`.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from .._validation import (
    as_float_array,
    check_int,
    check_positive,
    check_temperature,
    check_unit_interval,
    param_error,
)
from ..losses.softmax import softmax
from ..nn.mlp import MLP
from ..nn.optim import Adam, AdamW
from ..training.distiller import DEFAULT_BETA, distill
from ..training.loop import fit

__all__ = [
    "DATASETS",
    "FAMILIES",
    "FEATURE_LOSSES",
    "FITNETS_BETA",
    "RELATION_LOSSES",
    "DistillSetup",
    "load_dataset",
    "run_distill",
    "temperature_table",
]


# -- temperature ------------------------------------------------------------------------------

def temperature_table(logits, temperatures=(1.0, 2.0, 4.0, 20.0)):
    r"""The softmax of one logit vector at several temperatures, one row per temperature.

    .. math::

        P_{k,i} = \frac{\exp(z_i / T_k)}{\sum_j \exp(z_j / T_k)}

    Parameters
    ----------
    logits : array_like of shape (C,)
        One logit vector.
    temperatures : sequence of float, length K
        Each T > 0.

    Returns
    -------
    ndarray of shape (K, C)
        Row k is ``softmax(logits, temperature=temperatures[k])``.

    Examples
    --------
    >>> np.round(temperature_table([2.0, 1.0, 0.0], [1.0, 4.0]), 3)
    array([[0.665, 0.245, 0.09 ],
           [0.419, 0.326, 0.254]])
    """
    z = as_float_array(logits, "logits", "temperature_table", ndim=1)
    ts = list(temperatures) if np.ndim(temperatures) else [temperatures]
    if not ts:
        raise param_error("temperatures", "temperature_table", "a non-empty list of floats",
                          "an empty list")
    ts = [check_temperature(t, "temperature_table", "temperatures") for t in ts]
    return np.stack([softmax(z, temperature=t) for t in ts])  # (K, C)


# -- data ---------------------------------------------------------------------------------------

DATASETS = ("mnist1d", "digits", "idx")


def load_dataset(name="mnist1d", *, data_dir=None, n_train=None, rng=0):
    """Train and test arrays for an experiment, standardised with the training statistics.

    Parameters
    ----------
    name : {"mnist1d", "digits", "idx"}
        ``"mnist1d"``: :func:`minikd.data.make_mnist1d` with its fixed default dataset (seed 42,
        4000 train / 1000 test); ``"digits"``: the shipped UCI 8x8 digits, split 70 / 30
        (stratified, seeded by ``rng``); ``"idx"``: MNIST or Fashion-MNIST IDX files in
        ``data_dir`` (their own train/test split).
    data_dir : str, optional
        Folder of the IDX files (``name="idx"`` only).
    n_train : int, optional
        Keep only the first ``n_train`` training rows (a quick IDX run).
    rng : int
        Seeds the digits split.

    Returns
    -------
    minikd.data.Split
        ``X_train`` (N, D) float32, ``y_train`` (N,), ``X_test`` (M, D), ``y_test`` (M,).
    """
    from . import data

    func = "load_dataset"
    if name not in DATASETS:
        raise param_error("name", func, f"one of {DATASETS}", repr(name))
    if name == "mnist1d":
        split = data.make_mnist1d(rng=42)
    elif name == "digits":
        X, y = data.load_digits()
        split = data.train_val_split(X, y, val_fraction=0.3, rng=rng)
    else:
        if data_dir is None:
            raise param_error("data_dir", func, "the folder of the IDX files for name='idx'",
                              "None")
        X_train, y_train = data.load_mnist(data_dir, kind="train")
        X_test, y_test = data.load_mnist(data_dir, kind="test")
        split = data.Split(X_train, y_train, X_test, y_test)
    X_train, y_train, X_test, y_test = split
    if n_train is not None:
        X_train, y_train = X_train[:n_train], y_train[:n_train]
    X_train, X_test = data.standardize(X_train, X_test)
    return data.Split(X_train.astype(np.float32), y_train, X_test.astype(np.float32), y_test)


# -- the main job: teacher, scratch students, distilled student ------------------------------

FAMILIES = ("response", "feature", "relation")
FEATURE_LOSSES = ("fitnets", "cosine", "at")  # methods of minikd.distill, by family
RELATION_LOSSES = ("rkd", "sp", "pkt")
# FitNets' library weight (100, tuned for CIFAR ResNets) lets the hint term swamp the KD term on
# these small MLPs (with plain SGD at lr 0.05 it zeroed the students' ReLUs in the trainer's
# measurements); on MNIST-1D, 10 gave +6.0 ± 1.1 points over scratch against +4.8 ± 1.4 at 100
# (docs/results.md).
FITNETS_BETA = 10.0


@dataclass(frozen=True)
class DistillSetup:
    r"""The knobs of :func:`run_distill`; the defaults are the ``minikd distill`` defaults.

    Every student (plain scratch, regularised scratch, distilled) gets the same architecture,
    initialisation (per seed), optimizer, learning rate, batch size and number of epochs: the
    only differences are the weight decay of the regularised one and the soft targets of the
    distilled one.

    Why these defaults (MNIST-1D, 5 seeds, one BLAS thread; ``docs/results.md`` and
    ``docs/scripts/measure_mnist1d_kd.py``): a teacher trained *without* dropout memorises its
    training set, its soft targets there are nearly one-hot, and the gain drops to noise
    (+0.3 ± 1.1 points); with dropout 0.5 it is +2 to +5. Sixty teacher epochs (71 % test
    accuracy) teach as well as 150 (75 %) at 40 % of the cost. A 64-unit student gains more
    than a 32-unit one (+3.8 ± 0.7 against +1.4 to +3.0) and trains in 100 epochs.
    T = 4 and alpha = 0.9 (Hinton's and RepDistiller's usual values) sit on a plateau: T in
    1..4 and alpha in 0.5..1 all gave +2 to +3 for the 32-unit student. The regularised
    scratch student's weight decay 0.3 is the best of {0.01, 0.03, 0.1, 0.3} *for the scratch
    student*, so its row is a deliberately strong baseline.

    Attributes
    ----------
    dataset : {"mnist1d", "digits", "idx"}
    data_dir : str or None
        IDX folder for ``dataset="idx"``.
    n_train : int or None
        Use only the first ``n_train`` training rows.
    seeds : int
        Number of seeds S; seed ``first_seed + s`` trains a fresh teacher and fresh students.
    first_seed : int
    teacher_hidden, student_hidden : tuple of int
        Hidden widths; the input and output widths come from the data.
    teacher_dropout : float
        Dropout after each hidden layer of the teacher (a teacher that memorises its training
        set gives over-confident soft targets on it and teaches little).
    teacher_epochs, epochs : int
        Epochs of the teacher and of every student.
    lr, batch_size : float, int
        Adam's learning rate and the mini-batch size, for all models.
    weight_decay : float
        Decoupled weight decay (AdamW) of the regularised scratch student.
    family : {"response", "feature", "relation"}
    temperature, alpha : float
        The soft term: ``alpha * kd_loss(T) + (1 - alpha) * cross_entropy``.
    beta : float or None
        Weight of the feature or relation term added to the response blend; None takes the
        weight the libraries use for that loss (the trainer's ``DEFAULT_BETA``: cosine 1,
        AT 1000, RKD 1 with 25 / 50 inside, SP 3000, PKT 30000), since the terms' natural
        scales differ by orders of magnitude; FitNets gets 10, not the libraries' 100, which
        lets the hint term swamp the KD term on these small networks (:data:`FITNETS_BETA`).
    feature_loss : {"fitnets", "cosine", "at"}
        FitNets hint through a learned linear regressor, DistilBERT's cosine loss, attention
        transfer (the last two need equal student and teacher widths).
    relation_loss : {"pkt", "sp", "rkd"}
        Probabilistic knowledge transfer (the default), similarity-preserving, or RKD
        (25 distance + 50 angle; slow: the angle term costs O(B³) per batch).
    """

    dataset: str = "mnist1d"
    data_dir: str | None = None
    n_train: int | None = None
    seeds: int = 5
    first_seed: int = 0
    teacher_hidden: tuple = (256, 256)
    teacher_dropout: float = 0.5
    teacher_epochs: int = 60
    student_hidden: tuple = (64,)
    epochs: int = 100
    lr: float = 3e-3
    batch_size: int = 128
    weight_decay: float = 0.3
    family: str = "response"
    temperature: float = 4.0
    alpha: float = 0.9
    beta: float | None = None
    feature_loss: str = "fitnets"
    relation_loss: str = "pkt"

    def checked(self):
        """Return self after checking every field (ValueError/TypeError naming the field)."""
        func = "DistillSetup"
        for name in ("seeds", "teacher_epochs", "epochs", "batch_size"):
            check_int(getattr(self, name), name, func, low=1)
        check_int(self.first_seed, "first_seed", func, low=0)
        if self.n_train is not None:
            check_int(self.n_train, "n_train", func, low=2)
        for name in ("teacher_hidden", "student_hidden"):
            widths = getattr(self, name)
            if not isinstance(widths, (tuple, list)) or not widths:
                raise param_error(name, func, "a non-empty tuple of ints", repr(widths),
                                  TypeError)
            for w in widths:
                check_int(w, name, func, low=1)
        if self.dataset not in DATASETS:
            raise param_error("dataset", func, f"one of {DATASETS}", repr(self.dataset))
        if self.family not in FAMILIES:
            raise param_error("family", func, f"one of {FAMILIES}", repr(self.family))
        if self.feature_loss not in FEATURE_LOSSES:
            raise param_error("feature_loss", func, f"one of {FEATURE_LOSSES}",
                              repr(self.feature_loss))
        if self.relation_loss not in RELATION_LOSSES:
            raise param_error("relation_loss", func, f"one of {RELATION_LOSSES}",
                              repr(self.relation_loss))
        check_temperature(self.temperature, func)
        check_positive(self.lr, "lr", func)
        check_unit_interval(self.alpha, "alpha", func)
        check_unit_interval(self.teacher_dropout, "teacher_dropout", func)
        if self.teacher_dropout >= 1.0:
            raise param_error("teacher_dropout", func, "a float in the range [0, 1)",
                              repr(self.teacher_dropout))
        for name in ("weight_decay", "beta"):
            v = getattr(self, name)
            if v is None and name == "beta":
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 \
                    or not np.isfinite(v):
                raise param_error(name, func, "a float in the range [0, inf)", repr(v))
        return self

    @property
    def method(self):
        """The loss added to the response blend: "kd" (none) or a feature/relation loss."""
        return {"response": "kd", "feature": self.feature_loss,
                "relation": self.relation_loss}[self.family]

    @property
    def term_weight(self):
        """The weight of the feature or relation term actually used (``beta`` or its default)."""
        if self.beta is not None:
            return float(self.beta)
        if self.method == "fitnets":
            return FITNETS_BETA
        return DEFAULT_BETA[self.method]


def _accuracy(model, X, y):
    return float(np.mean(model.predict(X) == y))


def _agreement(model, teacher_pred, X):
    return float(np.mean(model.predict(X) == teacher_pred))


def _seconds_per_sample(model, X, repeats=5):
    """Best-of-``repeats`` wall time of ``model.predict`` on X, divided by the rows of X."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(X)
        best = min(best, time.perf_counter() - start)
    return best / X.shape[0]


def _mean_std(values):
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0}


STUDENTS = ("scratch", "scratch_wd", "distilled")


def run_distill(setup=None, *, verbose=True, save_dir=None, **overrides):
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
        One progress line per epoch on stderr.
    save_dir : str, optional
        Save every model there (``teacher_seed0.npz``, ``distilled_seed0.npz``, ...).
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
    setup = _resolve(setup, overrides)
    start = time.perf_counter()
    data = load_dataset(setup.dataset, data_dir=setup.data_dir, n_train=setup.n_train)
    per_seed, curves = [], {name: [] for name in ("teacher", *STUDENTS)}
    timing = {"teacher": [], "student": []}
    for seed in _seeds(setup):
        teacher, hist = _train_teacher(setup, data, seed, verbose)
        curves["teacher"].append(hist["val_acc"])
        teacher_pred = teacher.predict(data.X_test)
        record = {"seed": seed, "teacher": {"acc": _accuracy(teacher, data.X_test,
                                                             data.y_test)}}
        students = {}
        for name in STUDENTS:
            if name == "distilled":
                student, hist = _train_distilled(setup, data, teacher, seed, verbose)
            else:
                wd = setup.weight_decay if name == "scratch_wd" else 0.0
                student, hist = _train_scratch(setup, data, seed, wd, verbose, name)
            curves[name].append(hist["val_acc"])
            record[name] = {"acc": _accuracy(student, data.X_test, data.y_test),
                            "agreement": _agreement(student, teacher_pred, data.X_test)}
            students[name] = student
        per_seed.append(record)
        timing["teacher"].append(_seconds_per_sample(teacher, data.X_test))
        timing["student"].append(_seconds_per_sample(students["distilled"], data.X_test))
        if save_dir is not None:
            _save_models(save_dir, seed, {"teacher": teacher, **students})
    return _summarise(setup, per_seed, curves, timing, teacher.sizes, students["scratch"].sizes,
                      data.X_train.shape[0], data.X_test.shape[0], time.perf_counter() - start)


def _resolve(setup, overrides):
    setup = setup or DistillSetup()
    if overrides:
        setup = replace(setup, **overrides)
    return setup.checked()


def _seeds(setup):
    return range(setup.first_seed, setup.first_seed + setup.seeds)


def _streams(seed):
    """Independent random streams of one seed: teacher init, teacher order, student init and
    student order. Every student of a seed uses the same two student streams (paired runs)."""
    ss = np.random.SeedSequence(seed).spawn(4)
    return [int(np.random.default_rng(s).integers(2**63)) for s in ss]


def _n_classes(data):
    return int(max(data.y_train.max(), data.y_test.max())) + 1


def _train_teacher(setup, data, seed, verbose):
    t_init, t_order, _, _ = _streams(seed)
    sizes = [data.X_train.shape[1], *setup.teacher_hidden, _n_classes(data)]
    teacher = MLP(sizes, dropout=setup.teacher_dropout, rng=t_init)
    hist = fit(teacher, data.X_train, data.y_train, epochs=setup.teacher_epochs,
               batch_size=setup.batch_size, optimizer=Adam(teacher.params, lr=setup.lr),
               X_val=data.X_test, y_val=data.y_test, rng=t_order, verbose=verbose,
               label=f"seed {seed} teacher")
    return teacher, hist


def _new_student(setup, data, seed):
    _, _, s_init, _ = _streams(seed)
    sizes = [data.X_train.shape[1], *setup.student_hidden, _n_classes(data)]
    return MLP(sizes, rng=s_init)


def _train_scratch(setup, data, seed, weight_decay, verbose, name="scratch"):
    student = _new_student(setup, data, seed)
    # Decoupled weight decay (AdamW, Loshchilov & Hutter 2019); plain Adam when it is 0.
    opt = (AdamW(student.params, lr=setup.lr, weight_decay=weight_decay) if weight_decay
           else Adam(student.params, lr=setup.lr))
    hist = fit(student, data.X_train, data.y_train, epochs=setup.epochs,
               batch_size=setup.batch_size, optimizer=opt, X_val=data.X_test,
               y_val=data.y_test, rng=_streams(seed)[3], verbose=verbose,
               label=f"seed {seed} {name}")
    return student, hist


def _train_distilled(setup, data, teacher, seed, verbose, name="distilled"):
    student = _new_student(setup, data, seed)
    # Adam over the student's arrays and, for FitNets, the regressor's (a factory, so the
    # trainer hands it every parameter it trains).
    hist = distill(teacher, student, data.X_train, data.y_train, method=setup.method,
                   temperature=setup.temperature, alpha=setup.alpha, beta=setup.term_weight,
                   epochs=setup.epochs, batch_size=setup.batch_size,
                   optimizer=lambda params: Adam(params, lr=setup.lr), X_val=data.X_test,
                   y_val=data.y_test, rng=_streams(seed)[3], verbose=verbose,
                   label=f"seed {seed} {name}")
    return student, hist


def _model_file(name, seed):
    return f"{name}_seed{seed}.npz"


def saved_model_names(setup):
    """The file names ``run_distill(setup, save_dir=...)`` writes in its folder."""
    return [_model_file(name, seed) for seed in _seeds(setup) for name in ("teacher", *STUDENTS)]


def _save_models(save_dir, seed, models):
    os.makedirs(save_dir, exist_ok=True)
    for name, model in models.items():
        model.save(os.path.join(save_dir, _model_file(name, seed)))


def _summarise(setup, per_seed, curves, timing, t_sizes, s_sizes, n_train, n_test, seconds):
    summary = {name: _mean_std([r[name]["acc"] for r in per_seed])
               for name in ("teacher", *STUDENTS)}
    for name in STUDENTS:
        summary[name]["agreement"] = _mean_std([r[name]["agreement"] for r in per_seed])
    gain = {}
    for base in ("scratch", "scratch_wd"):
        diffs = [r["distilled"]["acc"] - r[base]["acc"] for r in per_seed]
        gain[f"vs_{base}"] = {**_mean_std(diffs), "per_seed": diffs,
                              "wins": int(sum(v > 0 for v in diffs)), "seeds": len(diffs)}
    teacher = MLP(t_sizes, dropout=setup.teacher_dropout, rng=0)  # for parameters and bytes
    student = MLP(s_sizes, rng=0)
    t_time = float(np.median(timing["teacher"]))
    s_time = float(np.median(timing["student"]))
    models = {
        "teacher": {"sizes": t_sizes, "n_params": teacher.n_params, "nbytes": teacher.nbytes,
                    "seconds_per_sample": t_time},
        "student": {"sizes": s_sizes, "n_params": student.n_params, "nbytes": student.nbytes,
                    "seconds_per_sample": s_time},
    }
    triple = {
        # DistilBERT's wording (Sanh et al. 2019, §1): "40% smaller, 60% faster, retains 97%".
        "smaller": 1.0 - student.n_params / teacher.n_params,
        "size_ratio": teacher.n_params / student.n_params,
        "faster": t_time / s_time - 1.0,
        "kept": summary["distilled"]["mean"] / summary["teacher"]["mean"],
    }
    # The verdict the issue asks for: is the mean gain larger than the seed-to-seed spread?
    spread = max(summary["scratch"]["std"], summary["distilled"]["std"],
                 gain["vs_scratch"]["std"])
    verdict = {"spread": spread, "gain_exceeds_spread": gain["vs_scratch"]["mean"] > spread}
    return {"setup": asdict(setup), "data": {"n_train": n_train, "n_test": n_test,
                                             "n_features": t_sizes[0],
                                             "n_classes": t_sizes[-1]},
            "per_seed": per_seed, "summary": summary, "gain": gain, "models": models,
            "term_weight": setup.term_weight if setup.family != "response" else 0.0,
            "triple": triple, "verdict": verdict, "curves": curves, "seconds": seconds}
