"""A fuzz pass over every public loss: whatever it is given, a loss either refuses with a
ValueError/TypeError that names the function, or returns a finite value and a finite gradient
shaped like its first input, prints no RuntimeWarning and leaves its inputs unchanged.

The inputs mix well-formed arrays with the shapes, dtypes and values that broke things before
(issue 14): NaN/inf, huge and tiny finite values, float16/32/64, ints, bools, complex, strings,
objects, read-only and strided arrays, ragged lists, wrong shapes, masks and labels of every
kind, and bad scalars. ``HYPOTHESIS_PROFILE=ci`` runs 100 cases per function; the counts of a
long run are in the closing note of issue 14 (``FUZZ_EXAMPLES=N`` sets the count).
"""

import os
import warnings
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minikd

OUTCOMES = Counter()  # (function, "refused" | "answered") -> cases, printed by a long run


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    if _N:
        print("\nfuzz outcomes:", dict(sorted(OUTCOMES.items())))

_N = int(os.environ.get("FUZZ_EXAMPLES", "0")) or None
_settings = settings(max_examples=_N, deadline=None,
                     suppress_health_check=list(HealthCheck)) if _N else settings(
    suppress_health_check=list(HealthCheck))

VALUES = st.sampled_from([0.0, 1.0, -1.0, 3.5, 1e-300, 5e-324, 1e4, -1e4, 1e30, 1e100, 1e300,
                          -1e300, 1.7e308, np.nan, np.inf, -np.inf])
DTYPES = st.sampled_from(["float64", "float32", "float16", "int64", "uint64", "bool",
                          "complex128", "<U3", "object"])


@st.composite
def arrays(draw, shape):
    """An array of ``shape`` (or a nearby wrong one), with a drawn dtype, values and layout."""
    if draw(st.integers(0, 9)) == 0:  # a wrong shape
        shape = draw(st.sampled_from([(), (0,), (3,), (2, 3, 4, 5, 2), (shape[0] + 1, *shape[1:]),
                                      (*shape[:-1], shape[-1] + 1), (0, *shape[1:])]))
    base = np.asarray(np.random.default_rng(draw(st.integers(0, 2**32 - 1))).normal(
        size=shape) * draw(st.sampled_from([1.0, 1.0, 10.0, 1e-3])))
    special = draw(st.integers(0, 3)) if draw(st.booleans()) else 0
    if special and base.size:
        flat = base.reshape(-1)
        for _ in range(special):
            flat[draw(st.integers(0, flat.size - 1))] = draw(VALUES)
    dtype = draw(DTYPES) if draw(st.integers(0, 3)) == 0 else "float64"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = base.astype(dtype) if dtype not in ("object", "<U3") else base.astype(dtype)
    layout = draw(st.sampled_from(["plain", "plain", "plain", "readonly", "strided", "fortran",
                                   "list"]))
    if layout == "readonly":
        a.setflags(write=False)
    elif layout == "strided" and a.ndim:
        a = np.repeat(a, 2, axis=-1)[..., ::2]
    elif layout == "fortran":
        a = np.asfortranarray(a)
    elif layout == "list":
        a = a.tolist()
        if draw(st.booleans()) and isinstance(a, list) and a and isinstance(a[0], list):
            a[0] = a[0][:-1]  # ragged
    return a


def scalars(good):
    bad = [0.0, -1.0, np.nan, np.inf, 1e-300, 1e300, "4", True, None, np.float32(2.0),
           np.int64(3)]
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(good),
                     st.sampled_from(bad))


def labels(n, c):
    return st.sampled_from(["good"] * 8 + ["neg", "high", "ignore", "float", "uint64", "bool",
                                           "short", "2d"]).map(lambda kind: _labels(kind, n, c))


def _labels(kind, n, c):
    y = np.arange(n) % c
    return {"good": y, "neg": y - c - 1000, "high": y + c, "ignore": np.full(n, -100),
            "float": y + 0.5, "uint64": np.full(n, 2**64 - 100, dtype=np.uint64),
            "bool": y.astype(bool), "short": y[:-1], "2d": y[:, None]}[kind]


def masks(shape):
    return st.sampled_from(["none"] * 6 + ["good"] * 3 + ["none_kept", "int", "float", "short",
                                                         "ragged"]).map(
        lambda kind: _mask(kind, shape))


def _mask(kind, shape):
    lead = shape[:-1]
    m = np.arange(int(np.prod(lead))).reshape(lead) % 3 != 0
    return {"none": None, "good": m, "none_kept": np.zeros(lead, bool), "int": m.astype(int),
            "float": m.astype(float) * 0.5, "short": m[:-1],
            "ragged": [[True], [True, False]]}[kind]


def _check(fn, first, *args, **kwargs):
    """The invariant: a clear refusal, or a finite (loss, grad) and untouched inputs."""
    inputs = [first, *args, *(v for v in kwargs.values() if isinstance(v, np.ndarray))]
    before = [np.array(x, dtype=object, copy=True) if isinstance(x, np.ndarray) else None
              for x in inputs]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning fails the case
        try:
            out = fn(first, *args, **kwargs)
        except (ValueError, TypeError) as err:
            msg = str(err)
            assert fn.__name__ in msg, f"{fn.__name__}: {msg}"
            assert "Traceback" not in msg and len(msg) < 2000
            OUTCOMES[fn.__name__, "refused"] += 1
            return
    loss, grad = out
    assert np.ndim(loss) == 0 and np.isfinite(loss), (fn.__name__, loss)
    assert np.shape(grad) == np.shape(first), (fn.__name__, np.shape(grad), np.shape(first))
    assert np.all(np.isfinite(grad)), fn.__name__
    for x, b in zip(inputs, before, strict=True):
        if b is not None:
            assert np.array_equal(np.array(x, dtype=object), b), f"{fn.__name__} changed input"
    OUTCOMES[fn.__name__, "answered"] += 1


PAIR_LOSSES = ["kd_loss", "kl_divergence", "soft_cross_entropy", "forward_kl", "reverse_kl",
               "skew_kl", "skew_reverse_kl", "generalized_jsd", "token_divergence"]


@_settings
@pytest.mark.parametrize("name", PAIR_LOSSES)
@given(data=st.data())
def test_pair_losses(name, data):
    shape = data.draw(st.sampled_from([(4, 5), (2, 3, 4)]))
    kwargs = {"temperature": data.draw(scalars([1.0, 2.5, 4.0])),
              "mask": data.draw(masks(shape)),
              "reduction": data.draw(st.sampled_from(["batchmean", "batchmean", "mean", "sum",
                                                      "bogus"]))}
    fn = getattr(minikd, name)
    _check(fn, data.draw(arrays(shape)), data.draw(arrays(shape)), **kwargs)


@_settings
@pytest.mark.parametrize("name", ["distillation_loss", "dkd_loss", "cross_entropy"])
@given(data=st.data())
def test_labelled_losses(name, data):
    n, c = 6, 4
    shape = (n, c)
    fn = getattr(minikd, name)
    kwargs = {"mask": data.draw(masks(shape)),
              "reduction": data.draw(st.sampled_from(["batchmean", "batchmean", "mean", "sum",
                                                      "bogus"]))}
    y = data.draw(labels(n, c))
    if name == "cross_entropy":
        _check(fn, data.draw(arrays(shape)), y, **kwargs)
        return
    kwargs["temperature"] = data.draw(scalars([1.0, 4.0]))
    kwargs["alpha"] = data.draw(scalars([0.0, 0.5, 0.9, 1.0]))
    _check(fn, data.draw(arrays(shape)), data.draw(arrays(shape)), y, **kwargs)


FEATURE_LOSSES = ["hint_loss", "cosine_loss", "sp_loss", "pkt_loss", "rkd_distance_loss",
                  "rkd_angle_loss"]


@_settings
@pytest.mark.parametrize("name", FEATURE_LOSSES)
@given(data=st.data())
def test_feature_losses(name, data):
    shape = data.draw(st.sampled_from([(5, 3), (4, 6)]))
    fn = getattr(minikd, name)
    _check(fn, data.draw(arrays(shape)), data.draw(arrays(shape)))


@_settings
@given(data=st.data())
def test_attention_transfer(data):
    shape = (3, 2, 4, 4)
    _check(minikd.attention_transfer_loss, data.draw(arrays(shape)), data.draw(arrays(shape)),
           p=data.draw(scalars([2, 1, 4])), mode=data.draw(st.sampled_from(["code", "paper",
                                                                             "bogus"])))
