r"""The experiments behind the ``minikd`` command: temperature tables, the gradient self-check,
the main distillation job and Hinton's omitted-class experiment.

Everything here returns plain data (dicts, lists, floats); printing, JSON and plots live in
:mod:`minikd.cli` and :mod:`minikd.plots`. Nothing here prints except through the ``progress``
callback a caller passes in.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from . import gradcheck as _gc
from ._validation import (
    as_float_array,
    check_positive,
    check_temperature,
    check_unit_interval,
    param_error,
)
from .distill import DEFAULT_BETA, distill
from .mlp import MLP
from .optim import Adam, AdamW
from .softmax import softmax
from .train import fit

__all__ = [
    "GRADCHECK_TEMPERATURES",
    "discover_losses",
    "gradcheck_losses",
    "temperature_table",
]

GRADCHECK_TEMPERATURES = (0.5, 1.0, 4.0, 20.0)


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


# -- gradient self-check ----------------------------------------------------------------------

_EXTRA_LOSS_NAMES = ("cross_entropy", "soft_cross_entropy", "kl_divergence")


def _returns_lossgrad(fn):
    """Whether the numpydoc Returns section of ``fn`` names ``LossGrad``."""
    doc = inspect.getdoc(fn) or ""
    if "Returns" not in doc:
        return False
    section = doc.split("Returns", 1)[1].split("Examples", 1)[0]
    return "LossGrad" in section


def discover_losses():
    """Every public loss that ``minikd`` exports at the time of the call.

    A loss is a public top-level function whose docstring says it returns a ``LossGrad``, or
    whose name ends in ``_loss`` or ``_divergence`` or is ``cross_entropy``. Discovery instead
    of a fixed list means a loss added later is checked (or reported as skipped) without anyone
    editing this file.

    Returns
    -------
    dict of str to callable, sorted by name
    """
    import minikd

    found = {}
    for name in sorted(dir(minikd)):
        obj = getattr(minikd, name, None)
        if name.startswith("_") or not inspect.isfunction(obj):
            continue
        if name.endswith("_as"):  # convention presets (conventions.py) take a library name
            continue  # first; tests/test_conventions.py checks their gradients per preset
        if (name.endswith(("_loss", "_divergence")) or name in _EXTRA_LOSS_NAMES
                or _returns_lossgrad(obj)):
            found[name] = obj
    return found


def _grad_of(result):
    """The gradient with respect to the first (student) input of a LossGrad-like result."""
    grad = getattr(result, "grad", None)
    if grad is None:  # losses with several gradients name them; the student's comes first
        arrays = [v for v in result[1:] if isinstance(v, np.ndarray)]
        grad = arrays[0] if arrays else None
    return grad


def _array_for(pname, shape, n_classes, rng, role, k=3):
    """A random float64 input (or labels/mask/indices) for a parameter, chosen by its name."""
    lead = shape[:-1]
    low = pname.lower()
    if low in ("labels", "targets", "target", "y"):
        return rng.integers(0, n_classes, size=lead)
    if "mask" in low:
        m = rng.random(lead) < 0.7
        m.reshape(-1)[0] = True
        return m
    if "indices" in low:  # distinct class indices per position, e.g. a teacher's top-k
        keys = rng.random(lead + (n_classes,))
        return np.argsort(keys, axis=-1)[..., :k]
    if "values" in low:
        return 3.0 * rng.standard_normal(lead + (k,))
    if "map" in low:  # attention maps (N, C, H, W)
        return rng.standard_normal((shape[0], 3, 4, 4))
    is_logits = "logit" in low or low in ("z_s", "z_t", "zs", "zt")
    x = (3.0 if is_logits else 1.0) * rng.standard_normal(shape)
    if role == "teacher" and not is_logits:
        x += 0.5 * rng.standard_normal(shape)
    return x


def _input_shapes(n, c):
    # Token-level losses want (N, L, C); try the plain batch first.
    return [(n, c), (n, 3, c)]


def _required_params(fn):
    sig = inspect.signature(fn)
    req = [p for p in sig.parameters.values()
           if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return req, sig


def _build_call(fn, shape, n_classes, rng):
    req, sig = _required_params(fn)
    args = []
    for i, p in enumerate(req):
        role = "student" if i == 0 else "teacher"
        args.append(_array_for(p.name, shape, n_classes, rng, role))
    # Optional positional labels (distillation_loss accepts labels=None) still deserve a value.
    for p in sig.parameters.values():
        if (p.kind == p.POSITIONAL_OR_KEYWORD and p.default is None
                and p.name in ("labels", "targets")):
            args.append(_array_for(p.name, shape, n_classes, rng, "teacher"))
    return args


def gradcheck_losses(*, temperatures=GRADCHECK_TEMPERATURES, n=4, n_classes=5, tol=1e-5,
                     rng=None, losses=None):
    r"""Run every public loss through :func:`minikd.gradcheck.check_gradient` in float64.

    .. math::

        \text{error} = \frac{\max_i |g^{\text{closed form}}_i - g^{\text{FD}}_i|}
                            {\max(\|g^{\text{closed form}}\|_\infty, \|g^{\text{FD}}\|_\infty)}
        \le \text{tol}

    Inputs are random normal arrays chosen from each loss's parameter names (logits scaled by 3,
    integer labels, boolean masks, (N, 3, 4, 4) attention maps, (N, C) features); a loss that
    takes ``temperature`` is checked at each temperature with the finite-difference step scaled
    by T, the others once. A loss whose signature fits no recipe is reported as skipped, never
    silently dropped.

    Parameters
    ----------
    temperatures : sequence of float, default (0.5, 1, 4, 20)
    n, n_classes : int
        Batch size N and class count C of the random inputs (C doubles as the feature width).
    tol : float, default 1e-5
        Largest acceptable normwise error.
    rng : int, numpy.random.Generator or None
    losses : dict of str to callable, optional
        Defaults to :func:`discover_losses`.

    Returns
    -------
    list of dict
        One row per (loss, temperature): ``loss``, ``temperature`` (None when the loss has
        none), ``status`` ("pass", "FAIL" or "skip"), ``error`` (float or None), ``detail``.
    """
    rng = np.random.default_rng(rng)
    ts = [check_temperature(t, "gradcheck_losses", "temperatures") for t in temperatures]
    losses = discover_losses() if losses is None else losses
    rows = []
    for name, fn in losses.items():
        _, sig = _required_params(fn)
        has_t = "temperature" in sig.parameters
        for t in (ts if has_t else [None]):
            rows.append(_check_one(name, fn, t, n, n_classes, tol, rng))
    return rows


def _check_one(name, fn, t, n, n_classes, tol, rng):
    kwargs = {} if t is None else {"temperature": t}
    last_error = None
    for shape in _input_shapes(n, n_classes):
        args = _build_call(fn, shape, n_classes, rng)
        try:
            result = fn(*args, **kwargs)
        except (ValueError, TypeError) as err:  # wrong recipe: try the next shape
            last_error = err
            continue
        grad = _grad_of(result)
        if grad is None or np.shape(grad) != np.shape(args[0]):
            last_error = "no gradient shaped like the first input"
            continue

        def f(x, args=args):
            return fn(x, *args[1:], **kwargs)[0]

        res = _gc.check_gradient(f, args[0], grad, scale=1.0 if t is None else t, tol=tol)
        return {"loss": name, "temperature": t, "status": "pass" if res.ok else "FAIL",
                "error": res.error, "detail": "" if res.ok else res.report(name)}
    return {"loss": name, "temperature": t, "status": "skip", "error": None,
            "detail": f"no input recipe fits its signature ({last_error})"}


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
# FitNets' library weight (100, tuned for CIFAR ResNets) drives every ReLU of these small MLPs'
# hint layer to zero within a few epochs (the regressor's MSE dominates the KD term); 10 keeps
# the hint term at the KD term's scale (docs/loss_scales.md).
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
        kills the student's ReLUs on these small networks (:data:`FITNETS_BETA`).
    feature_loss : {"fitnets", "cosine", "at"}
        FitNets hint through a learned linear regressor, DistilBERT's cosine loss, attention
        transfer (the last two need equal student and teacher widths).
    relation_loss : {"rkd", "sp", "pkt"}
        RKD (25 distance + 50 angle), similarity-preserving, probabilistic transfer.
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
    relation_loss: str = "rkd"

    def checked(self):
        """Return self after checking every field (ValueError/TypeError naming the field)."""
        func = "DistillSetup"
        for name in ("seeds", "teacher_epochs", "epochs", "batch_size"):
            _check_int(getattr(self, name), name, func, 1)
        _check_int(self.first_seed, "first_seed", func, 0)
        if self.n_train is not None:
            _check_int(self.n_train, "n_train", func, 2)
        for name in ("teacher_hidden", "student_hidden"):
            widths = getattr(self, name)
            if not isinstance(widths, (tuple, list)) or not widths:
                raise param_error(name, func, "a non-empty tuple of ints", repr(widths),
                                  TypeError)
            for w in widths:
                _check_int(w, name, func, 1)
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


def _check_int(value, name, func, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise param_error(name, func, f"an int >= {minimum}", repr(value), TypeError)
    if value < minimum:
        raise param_error(name, func, f"an int >= {minimum}", repr(value))
    return int(value)


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
                   temperature=setup.temperature, alpha=setup.alpha, beta=setup.beta,
                   epochs=setup.epochs, batch_size=setup.batch_size,
                   optimizer=lambda params: Adam(params, lr=setup.lr), X_val=data.X_test,
                   y_val=data.y_test, rng=_streams(seed)[3], verbose=verbose,
                   label=f"seed {seed} {name}")
    return student, hist


def _save_models(save_dir, seed, models):
    os.makedirs(save_dir, exist_ok=True)
    for name, model in models.items():
        model.save(os.path.join(save_dir, f"{name}_seed{seed}.npz"))


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
    setup = _resolve(setup, overrides)
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
    for seed in _seeds(setup):
        teacher, _ = _train_teacher(setup, data, seed, verbose)
        teacher_pred = teacher.predict(data.X_test)
        base["teacher"].append(_accuracy(teacher, data.X_test, data.y_test))
        for name, wd in (("scratch", 0.0), ("scratch_wd", setup.weight_decay)):
            student, _ = _train_scratch(setup, data, seed, wd, verbose, name)
            base[name].append(_accuracy(student, data.X_test, data.y_test))
        for k, v in enumerate(variants):
            student, _ = _train_distilled(replace(setup, **v), data, teacher, seed, verbose,
                                          name=f"distilled {v}")
            acc[k].append(_accuracy(student, data.X_test, data.y_test))
            agree[k].append(_agreement(student, teacher_pred, data.X_test))
    out = []
    for k, v in enumerate(variants):
        a = np.array(acc[k])
        row = {"overrides": v, "acc": _mean_std(a), "agreement": _mean_std(agree[k])}
        for name in ("scratch", "scratch_wd"):
            diff = a - np.array(base[name])
            row[f"gain_vs_{name}"] = {**_mean_std(diff), "wins": int(np.sum(diff > 0))}
        out.append(row)
    return {"setup": asdict(setup), "baseline": {k: _mean_std(v) for k, v in base.items()},
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

# -- Hinton et al. (2015), §3: the omitted class -------------------------------------------------

@dataclass(frozen=True)
class OmitSetup:
    r"""The knobs of :func:`run_omit_class`; the defaults are the ``minikd omit-class`` defaults.

    Attributes
    ----------
    dataset : {"digits", "mnist1d", "idx"}
    data_dir : str or None
    n_train : int or None
    omit : int
        The class never shown in the transfer set (Hinton et al. used the digit 3).
    seeds, first_seed : int
    teacher_hidden, student_hidden : tuple of int
    teacher_dropout : float
    teacher_epochs, epochs : int
    lr, batch_size : float, int
    temperature, alpha : float
        Hinton et al. used T = 20 on MNIST. ``alpha = 1`` (soft targets only) by default: hard
        labels of the other classes would push the omitted class's logit down on every example.
    val_fraction : float
        Share of the training split held out (with labels) to choose the validation shift; the
        teacher and the student train on the rest.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    n_train: int | None = None
    omit: int = 3
    seeds: int = 5
    first_seed: int = 0
    teacher_hidden: tuple = (256, 256)
    teacher_dropout: float = 0.3
    teacher_epochs: int = 60
    student_hidden: tuple = (64,)
    epochs: int = 100
    lr: float = 3e-3
    batch_size: int = 64
    temperature: float = 20.0
    alpha: float = 1.0
    val_fraction: float = 0.2

    def checked(self):
        """Return self after checking every field (ValueError/TypeError naming the field)."""
        func = "OmitSetup"
        base = DistillSetup(
            dataset=self.dataset, data_dir=self.data_dir, n_train=self.n_train,
            seeds=self.seeds, first_seed=self.first_seed, teacher_hidden=self.teacher_hidden,
            teacher_dropout=self.teacher_dropout, teacher_epochs=self.teacher_epochs,
            student_hidden=self.student_hidden, epochs=self.epochs, lr=self.lr,
            batch_size=self.batch_size, temperature=self.temperature, alpha=self.alpha)
        base.checked()
        _check_int(self.omit, "omit", func, 0)
        v = self.val_fraction
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
            raise param_error("val_fraction", func, "a float in the range (0, 1)", repr(v))
        return self

    def as_distill_setup(self):
        return DistillSetup(
            dataset=self.dataset, data_dir=self.data_dir, n_train=self.n_train,
            seeds=self.seeds, first_seed=self.first_seed, teacher_hidden=self.teacher_hidden,
            teacher_dropout=self.teacher_dropout, teacher_epochs=self.teacher_epochs,
            student_hidden=self.student_hidden, epochs=self.epochs, lr=self.lr,
            batch_size=self.batch_size, temperature=self.temperature, alpha=self.alpha,
            weight_decay=0.0)


_SHIFT_GRID = np.round(np.arange(-5.0, 20.0 + 1e-9, 0.05), 2)  # candidate bias shifts


def _acc_after_shift(logits, y, c, shifts):
    """Overall accuracy of ``logits`` with ``shifts[k]`` added to column c, for each k.

    Returns an ndarray of shape (K,).
    """
    others = np.delete(logits, c, axis=1)  # (N, C-1)
    best_other = others.max(axis=1)  # (N,)
    arg_other = np.delete(np.arange(logits.shape[1]), c)[others.argmax(axis=1)]  # (N,)
    pred_c = (logits[:, c][None, :] + shifts[:, None]) > best_other[None, :]  # (K, N)
    correct = np.where(pred_c, y[None, :] == c, (arg_other == y)[None, :])  # (K, N)
    return correct.mean(axis=1)


def _best_shift(logits, y, c):
    """The shift on the grid that maximises overall accuracy (the smallest |shift| on ties)."""
    acc = _acc_after_shift(logits, y, c, _SHIFT_GRID)
    best = np.flatnonzero(acc == acc.max())
    return float(_SHIFT_GRID[best[np.argmin(np.abs(_SHIFT_GRID[best]))]])


def _prior_shift(logits, c, prior, iters=60):
    r"""The shift b with which the share of rows predicted as class c equals ``prior``.

    Uses no labels: the share grows monotonically with b, so bisection finds it.
    """
    others = np.delete(logits, c, axis=1).max(axis=1)  # (N,)
    margin = others - logits[:, c]  # class c wins once b > margin
    lo, hi = float(margin.min()) - 1.0, float(margin.max()) + 1.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if np.mean(margin < mid) < prior:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _class_acc(logits, y, c, shift=0.0):
    z = logits.copy()
    z[:, c] += shift
    pred = z.argmax(axis=1)
    return float(np.mean(pred[y == c] == c)), float(np.mean(pred == y))


OMIT_RULES = ("none", "test_optimised", "validation", "class_prior")


def run_omit_class(setup=None, *, verbose=True, **overrides):
    r"""Hinton et al. (2015), §3: distil with one class missing from the transfer set, then
    shift that class's output bias.

    .. math::

        z'_c = z_c + b, \qquad
        b_{\text{prior}}: \frac{1}{M}\sum_m [\arg\max_k z'_{mk} = c] = \pi_c

    For each seed: a teacher trains on every class; a student is distilled from it on a transfer
    set with no example of class ``omit``; a scratch student trains on the same transfer set
    with hard labels (it can never predict the missing class). The distilled student's
    accuracy on the test examples of the missing class is reported before any shift and after
    adding b to its logit, with b chosen three ways:

    * ``test_optimised``: the b that maximises overall *test* accuracy, as the paper did
      ("+3.5 ... optimizes overall performance on the test set"); optimistic by construction;
    * ``validation``: the b that maximises accuracy on a labelled validation split;
    * ``class_prior``: the b with which the share of unlabelled validation inputs predicted as
      the class equals its share :math:`\pi_c` of the teacher's training labels (no label is
      looked at).

    Parameters
    ----------
    setup : OmitSetup, optional
    verbose : bool, default True
    **overrides
        Fields of :class:`OmitSetup` to replace.

    Returns
    -------
    dict
        ``setup``, ``data`` (sizes), ``per_seed`` (per model and rule: accuracy on the class,
        overall accuracy, the shift), ``summary`` (mean and std of each), ``seconds``.
    """
    from . import data as _data

    setup = setup or OmitSetup()
    if overrides:
        setup = replace(setup, **overrides)
    setup = setup.checked()
    start = time.perf_counter()
    full = load_dataset(setup.dataset, data_dir=setup.data_dir, n_train=setup.n_train)
    c = setup.omit
    n_classes = _n_classes(full)
    if c >= n_classes:
        raise param_error("omit", "run_omit_class", f"a class in [0, {n_classes})", repr(c))
    base = setup.as_distill_setup()
    per_seed = []
    for seed in range(setup.first_seed, setup.first_seed + setup.seeds):
        X_fit, y_fit, X_val, y_val = _data.train_val_split(
            full.X_train, full.y_train, val_fraction=setup.val_fraction, rng=seed)
        fit_data = _data.Split(X_fit, y_fit, full.X_test, full.y_test)
        teacher, _ = _train_teacher(base, fit_data, seed, verbose)
        X_tr, y_tr = _data.omit_classes(X_fit, y_fit, c)  # the transfer set: no class c
        transfer = _data.Split(X_tr, y_tr, full.X_test, full.y_test)
        # The students keep all C outputs (the test labels include class c) though c never
        # appears in their training data.
        student, _ = _train_distilled(base, transfer, teacher, seed, verbose)
        scratch, _ = _train_scratch(base, transfer, seed, 0.0, verbose)
        z_test = student._logits(full.X_test)  # (M, C)
        z_val = student._logits(X_val)
        prior = float(np.mean(y_fit == c))
        shifts = {"none": 0.0,
                  "test_optimised": _best_shift(z_test, full.y_test, c),
                  "validation": _best_shift(z_val, y_val, c),
                  "class_prior": _prior_shift(z_val, c, prior)}
        record = {"seed": seed}
        t_class, t_all = _class_acc(teacher._logits(full.X_test), full.y_test, c)
        record["teacher"] = {"class_acc": t_class, "acc": t_all}
        s_class, s_all = _class_acc(scratch._logits(full.X_test), full.y_test, c)
        record["scratch"] = {"class_acc": s_class, "acc": s_all}
        for rule, b in shifts.items():
            cls, allc = _class_acc(z_test, full.y_test, c, b)
            record[f"distilled_{rule}"] = {"class_acc": cls, "acc": allc, "shift": b}
        per_seed.append(record)
    keys = ["teacher", "scratch", *(f"distilled_{r}" for r in OMIT_RULES)]
    summary = {}
    for k in keys:
        summary[k] = {m: _mean_std([r[k][m] for r in per_seed])
                      for m in per_seed[0][k]}
    return {"setup": asdict(setup),
            "data": {"n_train": full.X_train.shape[0], "n_test": full.X_test.shape[0],
                     "n_test_class": int(np.sum(full.y_test == c)), "n_classes": n_classes,
                     "n_features": full.X_train.shape[1]},
            "per_seed": per_seed, "summary": summary,
            "seconds": time.perf_counter() - start}

