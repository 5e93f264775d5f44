"""Boundary checks found missing in review: each case gave NaN/inf or a non-standard exception
(AttributeError, MemoryError, zlib.error, numpy's own message) before its fix."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

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

from minikd import features, relations, softmax_vjp  # noqa: E402
from minikd._validation import feature_limit  # noqa: E402

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


@pytest.mark.parametrize("p", [[[1e200, 0.5]], [[-0.5, 1.5]], [[np.nan, 0.5]], [[1.1, 0.0]]])
def test_softmax_vjp_requires_probabilities(p):
    # p = 1e200 passed the logit-range check and gave NaN.
    with pytest.raises(ValueError) as info:
        softmax_vjp([[1.0, 2.0]], p)
    _standard(info, "softmax_vjp", "p")


def test_softmax_vjp_accepts_float32_round_off_above_one():
    p = np.array([[1.0 + 1e-7, 0.0]], np.float32)
    assert np.all(np.isfinite(softmax_vjp(np.array([[1.0, 2.0]], np.float32), p)))
