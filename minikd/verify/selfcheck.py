r"""The gradient self-check behind ``minikd gradcheck``: every public loss of minikd, found at
run time, against central finite differences (:mod:`minikd.gradcheck`) on random float64 inputs.
"""

from __future__ import annotations

import inspect

import numpy as np

from .._validation import check_temperature
from . import gradcheck as _gc

__all__ = ["GRADCHECK_TEMPERATURES", "discover_losses", "gradcheck_losses"]

GRADCHECK_TEMPERATURES = (0.5, 1.0, 4.0, 20.0)


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
