"""Bad input: only ValueError/TypeError escape, with messages naming function and parameter."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minikd

Z = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
Y = np.array([2, 0])

# Every public function of losses.py and softmax.py, called with (logits, labels-or-teacher).
PAIR = ["kl_divergence", "soft_cross_entropy", "kd_loss"]
LABELED = ["distillation_loss", "dkd_loss"]


def call(name, zs=Z, zt=Z, y=Y, **kw):
    f = getattr(minikd, name)
    if name == "cross_entropy":
        return f(zs, y, **kw)
    if name in PAIR:
        return f(zs, zt, **kw)
    if name in LABELED:
        return f(zs, zt, y, **kw)
    if name in ("softmax", "log_softmax"):
        return f(zs, **kw)
    return f(zt, zs, **kw)  # softmax_vjp / log_softmax_vjp: (upstream, p)


LOSSES = ["cross_entropy", *PAIR, *LABELED]
ALL = [*LOSSES, "softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp"]


def _message(exc, name, param):
    text = str(exc.value)
    assert name in text and f"'{param}'" in text, text
    assert "Got" in text and "instead" in text, text


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_student_logits(name, bad):
    zs = Z.copy()
    zs[1, 2] = bad
    param = "logits" if name == "cross_entropy" else "student_logits"
    with pytest.raises(ValueError) as exc:
        call(name, zs=zs)
    _message(exc, name, param)
    assert "(1, 2)" in str(exc.value)


@pytest.mark.parametrize("name", PAIR + LABELED)
def test_non_finite_teacher_and_shape_mismatch(name):
    zt = Z.copy()
    zt[0, 0] = np.nan
    with pytest.raises(ValueError) as exc:
        call(name, zt=zt)
    _message(exc, name, "teacher_logits")
    with pytest.raises(ValueError, match=f"'student_logits' and 'teacher_logits' parameters of "
                                         f"{name} must have the same shape"):
        call(name, zt=Z[:, :2])


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("zs", [np.array([1.0, 2.0]), np.array(3.0), np.zeros((0, 3)),
                                np.zeros((2, 0))])
def test_wrong_ndim_or_empty(name, zs):
    with pytest.raises(ValueError):
        call(name, zs=zs, zt=zs, y=np.zeros(zs.shape[:-1], dtype=int) if zs.ndim else Y)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("zs", [Z > 0, Z + 1j, Z.astype(object), [["a", "b"]], [[1.0], [1.0, 2]]])
def test_bool_complex_object_string_ragged(name, zs):
    with pytest.raises(TypeError):
        call(name, zs=zs)


@pytest.mark.parametrize("name", ["cross_entropy", *LABELED])
@pytest.mark.parametrize("y, exc", [([2, 3], ValueError), ([2, -1], ValueError),
                                    ([2.0, 0.0], TypeError), ([2], ValueError),
                                    ([2, 0, 1], ValueError), ([True, False], TypeError),
                                    ("ab", TypeError), ([[2, 0]], ValueError)])
def test_bad_labels(name, y, exc):
    with pytest.raises(exc) as info:
        call(name, y=y)
    _message(info, name, "labels")


@pytest.mark.parametrize("name", PAIR + LABELED)
@pytest.mark.parametrize("T, exc", [(0.0, ValueError), (-1.0, ValueError),
                                    (np.nan, ValueError), (np.inf, ValueError),
                                    ("4", TypeError), (None, TypeError), (True, TypeError),
                                    (1 + 2j, TypeError)])
def test_bad_temperature(name, T, exc):
    with pytest.raises(exc) as info:
        call(name, temperature=T)
    _message(info, name, "temperature")


def test_message_shape_is_sklearn_like():
    with pytest.raises(ValueError) as info:
        minikd.kd_loss(Z, Z, temperature=-1.0)
    assert str(info.value) == ("The 'temperature' parameter of kd_loss must be a float in the "
                               "range [1e-6, 1e6]. Got -1.0 instead.")


@pytest.mark.parametrize("alpha", [-0.1, 1.5, np.nan])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError) as info:
        minikd.distillation_loss(Z, Z, Y, alpha=alpha)
    _message(info, "distillation_loss", "alpha")


@pytest.mark.parametrize("param", ["alpha", "beta"])
@pytest.mark.parametrize("value, exc", [(-1.0, ValueError), (np.inf, ValueError),
                                        ("1", TypeError)])
def test_bad_dkd_weights(param, value, exc):
    with pytest.raises(exc) as info:
        minikd.dkd_loss(Z, Z, Y, **{param: value})
    _message(info, "dkd_loss", param)


def test_labels_none_needs_alpha_one():
    with pytest.raises(ValueError) as info:
        minikd.distillation_loss(Z, Z, None, alpha=0.9)
    _message(info, "distillation_loss", "labels")
    assert minikd.distillation_loss(Z, Z, None, alpha=1.0).loss == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(TypeError):
        minikd.dkd_loss(Z, Z, None)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("kw, exc, param", [
    ({"reduction": "none"}, ValueError, "reduction"), ({"reduction": None}, ValueError,
                                                       "reduction"),
    ({"mask": [1, 0]}, TypeError, "mask"), ({"mask": [True]}, ValueError, "mask"),
])
def test_bad_reduction_and_mask(name, kw, exc, param):
    with pytest.raises(exc) as info:
        call(name, **kw)
    _message(info, name, param)


@pytest.mark.parametrize("name", ["cross_entropy", *LABELED])
@pytest.mark.parametrize("ignore_index", [1.5, "x", True])
def test_bad_ignore_index(name, ignore_index):
    with pytest.raises(TypeError) as info:
        call(name, ignore_index=ignore_index)
    _message(info, name, "ignore_index")


# ---------------------------------------------------------------- fuzz: only ValueError/TypeError

EXTREME_T = [5e-324, 1e-46, 1e39, 1e300]
_junk_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=3),
                         st.floats(allow_nan=True, allow_infinity=True), st.complex_numbers(),
                         st.just(object()),
                         st.sampled_from(EXTREME_T))  # a zero KL times an overflowing T^2
_junk_array = st.one_of(
    _junk_scalar,
    st.lists(_junk_scalar, max_size=3),
    st.lists(st.lists(st.floats(), max_size=3), max_size=3),
    st.lists(st.lists(st.integers(-3, 3), min_size=2, max_size=2), min_size=1, max_size=3),
    st.sampled_from([Z, Z[:1], Z[:, :2], Z > 0, Z.astype(np.float32), np.zeros((2, 3, 0)),
                     Z[None], Y, np.array([[np.nan, 1.0]]), np.array([[1e308, -1e308]]),
                     np.zeros((2, 3)), np.zeros((2, 3), np.float32)]),
)
_junk_kw = st.dictionaries(
    st.sampled_from(["temperature", "alpha", "beta", "mask", "reduction", "ignore_index"]),
    _junk_array, max_size=3)


KEYWORDS = {  # the keyword arguments each public function accepts
    "cross_entropy": {"mask", "reduction", "ignore_index"},
    "kl_divergence": {"temperature", "mask", "reduction"},
    "soft_cross_entropy": {"temperature", "mask", "reduction"},
    "kd_loss": {"temperature", "mask", "reduction"},
    "distillation_loss": {"temperature", "alpha", "mask", "reduction", "ignore_index"},
    "dkd_loss": {"temperature", "alpha", "beta", "mask", "reduction", "ignore_index"},
    "softmax": {"temperature"}, "log_softmax": {"temperature"},
    "softmax_vjp": {"temperature"}, "log_softmax_vjp": {"temperature"},
}
N_POSITIONAL = {"softmax": 1, "log_softmax": 1, "distillation_loss": 3, "dkd_loss": 3}


@given(st.sampled_from(ALL), _junk_array, _junk_array, _junk_array, _junk_kw)
def test_fuzz_only_value_or_type_errors_escape(name, a, b, c, kw):
    kw = {k: v for k, v in kw.items() if k in KEYWORDS[name]}
    args = (a, b, c)[: N_POSITIONAL.get(name, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning (overflow, nan) is a failure too
        try:
            out = getattr(minikd, name)(*args, **kw)
        except (ValueError, TypeError):
            return
    values = out if isinstance(out, np.ndarray) else np.r_[out.loss, np.ravel(out.grad)]
    assert np.all(np.isfinite(values))


@pytest.mark.parametrize("temperature", EXTREME_T)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(k for k, v in KEYWORDS.items() if "temperature" in v))
def test_extreme_temperature_with_small_logits_is_refused(name, dtype, temperature):
    # Before the range check: NaN (float32 z / 1e-46, or T^2 = inf times a zero KL).
    z = np.zeros((2, 3), dtype)
    args = (z, z, np.zeros(2, np.int64))[: N_POSITIONAL.get(name, 2)]
    if name == "softmax_vjp":  # (dout, p): p must be a probability row
        args = (z + 1.0, np.full((2, 3), 1 / 3, dtype))
    with pytest.raises(ValueError) as info:
        getattr(minikd, name)(*args, temperature=temperature)
    _message(info, name, "temperature")
    assert "[1e-6, 1e6]" in str(info.value)


def test_extreme_finite_logits_do_not_overflow():
    """Logits near the float64 limit: z - max(z) overflows to -inf; the result must stay sane."""
    z = np.array([[1e308, -1e308, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            r = minikd.kd_loss(z, z[:, ::-1], temperature=1.0)
        except (ValueError, TypeError):
            return
    assert np.isfinite(r.loss) and np.all(np.isfinite(r.grad))
