"""Boundary checks found missing in review: each case gave NaN/inf or a non-standard exception
(AttributeError, MemoryError, zlib.error, numpy's own message) before its fix."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from minikd import MLP


def _standard(info, func, name):
    text = str(info.value)
    assert func in text and f"'{name}'" in text and "Got" in text and "instead" in text, text


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_proba_refuses_overflowing_logits(dtype):
    # Logits of +-1e30 (float32) / +-1e300 (float64): z - max(z) overflows to -inf and then
    # gives NaN or a silent one-hot; the loss functions refuse such logits, so does this.
    model = MLP([2, 2], dtype=dtype, rng=0)
    big = 1e30 if dtype == np.float32 else 1e300
    model.params["W1"][...] = np.array([[big, -big], [-big, big]], dtype)
    with pytest.raises(ValueError) as info:
        model.predict_proba(np.array([[10.0, -10.0]], dtype))
    _standard(info, "MLP.predict_proba", "x (the logits it gives)")
    p = model.predict_proba(np.array([[1e-30, 0.0]], dtype))  # in range: still works
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("temperature", [5e-324, 1e-46, 1e-7, 1e7, 1e39, 1e300])
def test_predict_proba_refuses_an_extreme_temperature(temperature):
    model = MLP([2, 3], rng=0)
    with pytest.raises(ValueError) as info:
        model.predict_proba(np.zeros((1, 2), np.float32), temperature=temperature)
    _standard(info, "MLP.predict_proba", "temperature")


# ------------------------------------------------------------- feature and relation input range
from minikd import softmax_vjp  # noqa: E402
from minikd._validation import feature_limit  # noqa: E402
from minikd.losses import features, relations  # noqa: E402

FEATURE_LOSSES = {
    "hint_loss": features.hint_loss, "cosine_loss": features.cosine_loss,
    "rkd_distance_loss": relations.rkd_distance_loss,
    "rkd_angle_loss": relations.rkd_angle_loss, "sp_loss": relations.sp_loss,
    "pkt_loss": relations.pkt_loss,
}


def _pair(rng, dtype, scale):
    s = (rng.uniform(-1.0, 1.0, (4, 5)) * scale).astype(dtype)
    s[0, 0] = dtype(scale)  # the extreme itself
    return s, rng.standard_normal((4, 5)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(FEATURE_LOSSES))
def test_features_above_the_limit_are_refused(name, dtype):
    # Before: float32 3e19 -> hint inf, rkd/sp nan; float64 1e154 -> cosine nan.
    huge = {np.float32: 3e19, np.float64: 1e154}[dtype]
    s, t = _pair(np.random.default_rng(0), dtype, huge)
    with pytest.raises(ValueError) as info:
        FEATURE_LOSSES[name](s, t)
    assert "overflow" in str(info.value)
    with pytest.raises(ValueError):  # the teacher side too
        FEATURE_LOSSES[name](t, s)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(FEATURE_LOSSES))
def test_features_just_below_the_limit_give_finite_values_without_warnings(name, dtype):
    # The bound is low enough for every loss: sums of squares, |s|^3 in PKT's gradient.
    limit = feature_limit(np.dtype(dtype))
    assert limit == pytest.approx(np.sqrt(float(np.finfo(dtype).max)) / 1e3)
    s, t = _pair(np.random.default_rng(1), dtype, 0.999 * limit)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = FEATURE_LOSSES[name](s, t)
    assert np.isfinite(out.loss) and np.all(np.isfinite(out.grad))


def test_pkt_gradient_keeps_its_radial_term_for_large_features():
    # PKT is scale-free in s (up to its eps = 1e-7 on |s|, negligible at |s| ~ 1e6), so
    # grad(c s) = grad(s) / c; before the fix |s|^3 overflowed at |s| ~ 1e146 and the radial
    # term silently became 0.
    rng = np.random.default_rng(2)
    s, t = 1e6 * rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    small = relations.pkt_loss(s, t)
    c = 1e140
    big = relations.pkt_loss(c * s, t)
    assert big.loss == pytest.approx(small.loss, rel=1e-9)
    np.testing.assert_allclose(big.grad * c, small.grad, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("p", [0.5, 16.5, 400.0, np.inf, np.nan])
def test_attention_transfer_p_is_bounded(p):
    f = np.full((1, 2, 2, 2), 3.0)  # p = 400: 3^400 overflowed to inf, the loss was nan
    with pytest.raises(ValueError) as info:
        features.attention_transfer_loss(f, np.ones((1, 2, 2, 2)), p=p)
    _standard(info, "attention_transfer_loss", "p")
    assert "[1, 16]" in str(info.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_attention_transfer_refuses_maps_whose_power_overflows(dtype):
    p = 16.0
    over = 1.01 * feature_limit(np.dtype(dtype), p)
    below = 0.99 * feature_limit(np.dtype(dtype), p)
    rng = np.random.default_rng(3)
    t = rng.standard_normal((2, 3, 2, 2)).astype(dtype)
    with pytest.raises(ValueError) as info:
        features.attention_transfer_loss(np.full((2, 3, 2, 2), over, dtype), t, p=p)
    _standard(info, "attention_transfer_loss", "student_maps")
    s = (rng.uniform(-1.0, 1.0, (2, 3, 2, 2)) * below).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = features.attention_transfer_loss(s, t, p=p, mode="paper")
    assert np.isfinite(out.loss) and np.all(np.isfinite(out.grad))


def _no_warnings(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


@pytest.mark.parametrize("dtype, big", [(np.float64, 1e100), (np.float32, 1e10)])
def test_cosine_of_identical_large_rows_is_zero(dtype, big):
    # Before: |s|² |t|² overflowed (a RuntimeWarning), cos = dot / inf = 0 and the loss was 1.0.
    s = np.array([[1.0, 2.0], [-3.0, 0.5]], dtype) * dtype(big)
    out = _no_warnings(lambda: features.cosine_loss(s, s))
    assert out.loss == 0.0  # 1 - |s|² / (|s|² + 1e-12) rounds to 0 at this scale
    assert np.all(np.isfinite(out.grad)) and np.abs(out.grad).max() * big < 1e-6
    # and the cosine itself survives the scaling: orthogonal rows still give 1
    t = np.array([[2.0, -1.0], [0.5, 3.0]], dtype) * dtype(big)
    assert _no_warnings(lambda: features.cosine_loss(s, t)).loss == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("dtype, big", [(np.float64, 1e100), (np.float32, 1e12)])
def test_sp_is_invariant_to_a_huge_global_scale(dtype, big):
    # Before: the Gram rows' squared norm (|s|^4) overflowed silently, every normalised row was
    # 0, and sp_loss(1e100 * s, s) was 0.5 instead of 0.
    s = np.array([[1.0, 0.0], [1.0, 1.0]], dtype)
    out = _no_warnings(lambda: relations.sp_loss(dtype(big) * s, s))
    assert out.loss == pytest.approx(0.0, abs=1e-12) and np.all(np.isfinite(out.grad))
    t = np.array([[0.0, 1.0], [2.0, 1.0]], dtype)
    assert relations.sp_loss(dtype(big) * s, t).loss == pytest.approx(
        relations.sp_loss(s, t).loss, rel=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hint_loss_is_finite_for_many_elements_at_the_bound(dtype):
    # Before: 300 000 squares of 2 x 1.3e151 summed to inf (float32: 2 x 1.8e16 likewise).
    x = dtype(0.999 * feature_limit(np.dtype(dtype)))
    a = np.full((600, 500), x, dtype)
    out = _no_warnings(lambda: features.hint_loss(a, -a))
    assert out.loss == pytest.approx(4.0 * float(x) ** 2, rel=1e-5)
    assert np.all(np.isfinite(out.grad))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_attention_maps_whose_squares_overflow_are_normalised(dtype):
    # Paper mode sums 64 channels of |f|^p; the squared norm of a 32 x 32 map of such sums
    # overflowed at |f|^p ~ 7e150 (inside the accepted range) and the loss was 1.0 whatever f.
    rng = np.random.default_rng(4)
    limit = feature_limit(np.dtype(dtype))  # on |f|^p
    f = (np.sqrt(0.9 * limit) * rng.uniform(0.5, 1.0, (2, 64, 32, 32))).astype(dtype)
    t = rng.standard_normal((2, 64, 32, 32)).astype(dtype)
    small = features.attention_transfer_loss(f / dtype(np.sqrt(limit)), t, mode="paper")
    big = _no_warnings(lambda: features.attention_transfer_loss(f, t, mode="paper"))
    assert big.loss == pytest.approx(small.loss, rel=1e-4)  # scale-free
    assert np.all(np.isfinite(big.grad))


@pytest.mark.parametrize("name", list(FEATURE_LOSSES))
def test_wide_rows_at_the_bound_are_right_or_refused(name):
    # Sums over F features must not overflow. Every loss here is scale-free (hint scales like
    # c²), so the values at the bound are checked against the same rows of +-1. SP's Gram
    # entries and RKD's squared distances sum F squares of the features themselves: rows wider
    # than 1e5 at the bound are refused by name. Before: hint and cosine gave inf/nan, SP and
    # RKD distance nan, PKT a silent 0 gradient (|s| = inf) from 1.2e6 features on.
    c = 0.999 * feature_limit(np.dtype(np.float64))
    rng = np.random.default_rng(5)
    fn = FEATURE_LOSSES[name]
    wide = {"sp_loss": 150_000, "rkd_distance_loss": 150_000,
            "rkd_angle_loss": None}.get(name, 1_200_000)  # (N, N, F) in angle: kept narrow
    for n, F in ((3, 50_000), (2, wide)):
        if F is None:
            continue
        s, t = rng.choice([-1.0, 1.0], (n, F)), rng.choice([-1.0, 1.0], (n, F))
        if F > 100_000 and name in ("sp_loss", "rkd_distance_loss"):
            with pytest.raises(ValueError) as info:
                fn(c * s, c * t)
            _standard(info, name, "student_features")
            assert f"rows of {F} features" in str(info.value)
            continue
        out = _no_warnings(lambda: fn(c * s, c * t))  # noqa: B023
        ref = fn(s, t)
        power = 2 if name == "hint_loss" else 0  # hint: loss c², gradient c; others: 1, 1/c
        assert out.loss == pytest.approx(c**power * ref.loss, rel=1e-6), (name, F)
        # (the rows have norm sqrt(F): gradients of scale-free losses are O(1 / sqrt(F)))
        scale = max(np.abs(ref.grad).max(), F**-0.5)
        np.testing.assert_allclose(out.grad, c ** (power - 1) * ref.grad, rtol=1e-6,
                                   atol=1e-9 * c ** (power - 1) * scale)


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(name=st.sampled_from(list(FEATURE_LOSSES) + ["at_code", "at_paper"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1),
       n=st.integers(1, 4), f=st.integers(1, 5), log_c=st.floats(0.05, 1.0))
@example(name="sp_loss", dtype=np.float32, seed=3875, n=2, f=1, log_c=1.0)  # exact zero gradient
def test_any_magnitude_up_to_the_bound_gives_the_scale_free_answer(name, dtype, seed, n, f,
                                                                    log_c):
    """A fuzz pass made permanent: features of magnitude c (up to the accepted bound) give the
    loss and gradient of the same features at magnitude 1 (hint: c² and c times them)."""
    rng = np.random.default_rng(seed)
    c = dtype(feature_limit(np.dtype(dtype)) ** log_c)  # from ~10 (float32) up to the bound
    if name.startswith("at"):
        c = dtype(np.sqrt(c))  # |f|^2 must stay below the bound
        fn = lambda a, b: features.attention_transfer_loss(  # noqa: E731
            a, b, mode=name[3:])
        shape_s, shape_t = (n, 2, f, 2), (n, 3, f, 2)
    else:
        fn = FEATURE_LOSSES[name]
        n = max(n, 2) if name == "rkd_distance_loss" else n
        shape_s = (n, f)
        shape_t = (n, f) if name in ("hint_loss", "cosine_loss") else (n, f + 1)
    s = rng.uniform(0.5, 1.0, shape_s) * rng.choice([-1.0, 1.0], shape_s)  # no near-zero rows
    t = rng.uniform(0.5, 1.0, shape_t) * rng.choice([-1.0, 1.0], shape_t)
    if name == "pkt_loss":  # antipodal rows: P = 0, where the 1e-7 inside the log amplifies
        for x in (s, t):      # eps / |x| (PKT's only departure from scale-freeness) by 1e7
            u = x / np.linalg.norm(x, axis=1, keepdims=True)
            assume((u @ u.T).min() > -0.99)
    s, t = (s * 2.0**20).astype(dtype), (t * 2.0**20).astype(dtype)  # epsilons negligible
    scale = dtype(c / dtype(2.0**20))
    small = fn(s, t)
    big = _no_warnings(lambda: fn(s * scale, t * scale))
    power = 2 if name == "hint_loss" else 0
    tol = 1e-3 if dtype == np.float32 else 1e-9
    assert big.loss == pytest.approx(float(scale) ** power * small.loss, rel=tol, abs=1e-12)
    want = small.grad.astype(np.float64) * float(scale) ** (power - 1)
    natural = float(scale) ** (power - 1) * np.abs(small.grad).max()
    # Rows of norm ~2^20: a scale-free gradient is O(2^-20), and where it is zero in exact
    # arithmetic (one feature: SP's normalised rows are +-1) both sides are round-off of that
    # size, ~eps * 2^-20, which no relative tolerance covers.
    roundoff = float(scale) ** (power - 1) * 2.0**-20 * 100 * np.finfo(dtype).eps
    assert np.abs(big.grad - want).max() <= 10 * tol * natural + roundoff, name


@pytest.mark.parametrize("p", [[[1e200, 0.5]], [[-0.5, 1.5]], [[np.nan, 0.5]], [[1.1, 0.0]]])
def test_softmax_vjp_requires_probabilities(p):
    # p = 1e200 passed the logit-range check and gave NaN.
    with pytest.raises(ValueError) as info:
        softmax_vjp([[1.0, 2.0]], p)
    _standard(info, "softmax_vjp", "p")


def test_softmax_vjp_accepts_float32_round_off_above_one():
    p = np.array([[1.0 + 1e-7, 0.0]], np.float32)
    assert np.all(np.isfinite(softmax_vjp(np.array([[1.0, 2.0]], np.float32), p)))


# ------------------------------------------------------------------------ data, layers, MLP, optim

import gzip  # noqa: E402

from minikd import data  # noqa: E402
from minikd.nn import layers  # noqa: E402
from minikd.nn.optim import clip_grad_norm  # noqa: E402


def test_load_idx_refuses_corrupt_deflate_data(tmp_path):
    # A valid gzip header followed by garbage: gzip raises zlib.error, which leaked before.
    raw = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])
    blob = bytearray(gzip.compress(raw))
    blob[10:14] = b"\xff\xff\xff\xff"  # inside the deflate stream, after the 10-byte header
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="looks gzipped but cannot be decompressed"):
        data.load_idx(path)


@pytest.mark.parametrize("dtype", ["foo", object(), 3])
def test_make_mnist1d_refuses_a_non_dtype_with_the_standard_message(dtype):
    with pytest.raises(TypeError) as info:
        data.make_mnist1d(n_samples=100, dtype=dtype)
    _standard(info, "make_mnist1d", "dtype")


BAD_CACHES = [[1.0], "x", None, (1, 2), np.array([True, False]), {"x": 1}]


@pytest.mark.parametrize("cache", BAD_CACHES)
@pytest.mark.parametrize("name", ["linear_backward", "relu_backward", "tanh_backward",
                                  "dropout_backward"])
def test_backward_with_a_bad_cache_raises_type_error(name, cache):
    if name == "dropout_backward" and cache is None:
        return  # None is dropout's cache in eval mode
    with pytest.raises(TypeError) as info:  # AttributeError before
        getattr(layers, name)(np.ones((1, 2)), cache)
    _standard(info, name, "cache")


def test_linear_backward_refuses_a_cache_of_wrong_arrays():
    with pytest.raises(TypeError):
        layers.linear_backward(np.ones((1, 2)), (np.ones(2), np.ones((2, 2))))


def test_mlp_load_refuses_huge_sizes_before_allocating(tmp_path):
    model = MLP([3, 4, 2], rng=0)
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["sizes"] = np.array([3, 2**40, 2], np.int64)  # MemoryError before
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"array 'W1' has shape \(3, 4\); sizes"):
        MLP.load(path)


@pytest.mark.parametrize("grads", [{"w": [1.0]}, {"w": np.array([1, 2])}, {"w": 1.0}])
def test_clip_grad_norm_refuses_non_float_arrays(grads):
    with pytest.raises(TypeError) as info:  # AttributeError for the list before
        clip_grad_norm(grads, 1.0)
    _standard(info, "clip_grad_norm", "grads")


# --------------------------------------------------------------- the shared validators themselves

from minikd._validation import check_bool, check_choice, check_fraction, check_int  # noqa: E402


def test_check_int():
    assert check_int(np.int64(3), "n", "f", low=1) == 3
    assert type(check_int(np.int64(3), "n", "f")) is int
    for bad, exc in [(True, TypeError), (2.0, TypeError), ("3", TypeError), (0, ValueError),
                     (11, ValueError)]:
        with pytest.raises(exc) as info:
            check_int(bad, "n", "f", low=1, high=10)
        assert str(info.value).startswith("The 'n' parameter of f must be an int in the range "
                                          "[1, 10]. Got ")
    assert check_int(-(2**70), "n", "f") == -(2**70)  # no bounds: any int


def test_check_fraction_ends():
    assert check_fraction(0.0, "m", "f") == 0.0
    with pytest.raises(ValueError, match=r"range \[0, 1\)"):
        check_fraction(1.0, "m", "f")
    with pytest.raises(ValueError, match=r"range \(0, 1\)"):
        check_fraction(0.0, "m", "f", closed_low=False)
    assert check_fraction(1.0, "m", "f", closed_high=True) == 1.0
    for bad, exc in [(np.nan, ValueError), (True, TypeError), ("0.5", TypeError),
                     (-0.1, ValueError)]:
        with pytest.raises(exc):
            check_fraction(bad, "m", "f")


def test_check_bool_and_check_choice():
    assert check_bool(np.bool_(True), "b", "f") is True
    for bad in [1, 0, "yes", None]:
        with pytest.raises(TypeError, match="must be a bool"):
            check_bool(bad, "b", "f")
    assert check_choice("sum", "reduction", "f", ("mean", "sum")) == "sum"
    for bad in ["Sum", 1, None, np.array(["sum"]), ["sum"]]:
        with pytest.raises(ValueError, match=r"must be one of \('mean', 'sum'\)"):
            check_choice(bad, "reduction", "f", ("mean", "sum"))


def test_float64_input_beyond_float32_range_is_named_not_called_inf():
    """A finite float64 value too large for a float32 model: a clear message, no RuntimeWarning."""
    model = MLP([3, 4, 2], rng=0)  # float32
    x = np.array([[1.0, 2.0, 1e300]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="values that fit in float32.*1e\\+300"):
            model.forward(x)
