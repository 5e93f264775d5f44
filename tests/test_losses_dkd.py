"""dkd_loss: the per-sample decomposition identity, mdistiller parity, two classes, stability."""

from pathlib import Path

import numpy as np
import pytest
import reference_losses as ref
from helpers import temperatures
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import softmax as sp_softmax

import minikd

moderate = st.integers(1, 4).flatmap(lambda n: st.integers(2, 6).flatmap(
    lambda c: arrays(np.float64, (n, c), elements=st.floats(-30, 30, allow_subnormal=False))))


@given(moderate, moderate, temperatures, st.data())
def test_identity_kl_equals_tckd_plus_weighted_nckd_per_sample(zs, zt, T, data):
    """T² KL(p_t||p_s) = TCKD + (1 - p_t[y]) NCKD for every sample (Zhao et al. 2022, §3.1).

    Exact for NCKD over the renormalised non-target classes; mdistiller's -1000 mask makes q
    differ from that by e^(-1000 + spread of u), far below double precision for |u| <= 600.
    """
    n = min(len(zs), len(zt))
    zs, zt = zs[:n, : zt.shape[1]], zt[:n, : zs.shape[1]]
    # the docstring's precondition: the -1000 mask is negligible only while the spread of u = z/T
    # stays well below 1000 (a spread of 987 at T = 0.055 moved NCKD by e^-13 and failed)
    assume(max(np.ptp(zs), np.ptp(zt)) / T <= 600)
    y = data.draw(arrays(np.int64, (n,), elements=st.integers(0, zs.shape[1] - 1)))
    p_t = minikd.softmax(zt, temperature=T)
    for i in range(n):
        s, t, yi = zs[i : i + 1], zt[i : i + 1], y[i : i + 1]
        kd = minikd.kd_loss(s, t, temperature=T)
        tckd = minikd.dkd_loss(s, t, yi, temperature=T, alpha=1.0, beta=0.0)
        nckd = minikd.dkd_loss(s, t, yi, temperature=T, alpha=0.0, beta=1.0)
        w = 1.0 - p_t[i, y[i]]
        tol = 1e-12 * (1 + np.abs(np.r_[s.ravel(), t.ravel()]).max() / T) * max(1.0, T * T)
        assert kd.loss == pytest.approx(tckd.loss + w * nckd.loss, rel=1e-9, abs=tol)
        # the same identity holds for the gradients (the weight w is a teacher constant)
        np.testing.assert_allclose(kd.grad, tckd.grad + w * nckd.grad, rtol=1e-8,
                                   atol=tol)


@given(moderate, temperatures, st.floats(0, 2), st.floats(0, 10), st.data())
def test_equals_naive_mdistiller_where_that_is_finite(zs, T, alpha, beta, data):
    zt = data.draw(arrays(np.float64, zs.shape, elements=st.floats(-30, 30)))
    y = data.draw(arrays(np.int64, (zs.shape[0],), elements=st.integers(0, zs.shape[1] - 1)))
    naive = ref.dkd_mdistiller_naive(zs, zt, y, alpha=alpha, beta=beta, temperature=T)
    got = minikd.dkd_loss(zs, zt, y, alpha=alpha, beta=beta, temperature=T).loss
    # mdistiller's log(b_s) is finite but inexact once b_s is subnormal (< 2.2e-308: few bits
    # left), e.g. 1 - p_s[y] = e^-740; compare only where its binary probabilities are normal.
    rows = np.arange(len(y))
    b = [sp_softmax(z / T, axis=1)[rows, y] for z in (zs, zt)]
    normal = all(np.all((v > 1e-300) & (1 - v > 1e-15)) for v in b)
    if np.isfinite(naive) and normal:
        scale = (1 + max(np.abs(zs).max(), np.abs(zt).max()) / T) * max(1.0, T * T)
        assert got == pytest.approx(naive, rel=1e-8, abs=1e-11 * scale * (1 + beta))


def test_golden_example_matches_naive_mdistiller():
    zs = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
    zt = [[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]]
    want = ref.dkd_mdistiller_naive(zs, zt, [2, 0])  # alpha 1, beta 8, T 4
    assert minikd.dkd_loss(zs, zt, [2, 0]).loss == pytest.approx(want, rel=1e-12)


def test_stays_finite_where_mdistiller_is_infinite():
    """p_s[target] rounds to 1: mdistiller's log(1 - p) is log 0 = -inf; minikd stays finite."""
    zs = np.array([[60.0, 0.0, 0.0]])  # at T = 1, 1 - p_s[0] ~ 2e-26 survives; at T = 0.5 not
    zt = np.array([[0.0, 1.0, 2.0]])
    assert not np.isfinite(ref.dkd_mdistiller_naive(zs * 20, zt, [0], temperature=1.0))
    loss, grad = minikd.dkd_loss(zs * 20, zt, [0], temperature=1.0)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    # by hand: b_t = (p_t[0], 1 - p_t[0]); log b_s2 = LSE(0, 0) - 1200 = log 2 - 1200 (to 1e-500)
    p_t0 = 1.0 / (1.0 + np.e + np.e**2)
    want_tckd = p_t0 * (np.log(p_t0) - 0.0) + (1 - p_t0) * (np.log(1 - p_t0) - (np.log(2) - 1200))
    tckd = minikd.dkd_loss(zs * 20, zt, [0], temperature=1.0, alpha=1.0, beta=0.0).loss
    assert tckd == pytest.approx(want_tckd, rel=1e-12)


@given(st.integers(1, 4).flatmap(lambda n: st.tuples(
    arrays(np.float64, (n, 2), elements=st.floats(-1e4, 1e4, allow_subnormal=False)),
    arrays(np.float64, (n, 2), elements=st.floats(-1e4, 1e4, allow_subnormal=False)),
    arrays(np.int64, (n,), elements=st.integers(0, 1)))), temperatures,
    st.floats(0, 2), st.floats(0, 10))
def test_two_classes_is_finite_and_equals_alpha_times_kd(case, T, alpha, beta):
    """C = 2: one non-target class, so NCKD is 0 and DKD = alpha · kd_loss (documented).

    (Up to the -1000 mask's leak e^(-1000 + |u_t - u_o|), which matters only when a logit gap
    exceeds 1000 T; then NCKD is still finite.)
    """
    zs, zt, y = case
    loss, grad = minikd.dkd_loss(zs, zt, y, alpha=alpha, beta=beta, temperature=T)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    if np.abs(np.diff(zs)).max() < 900 * T and np.abs(np.diff(zt)).max() < 900 * T:
        kd = minikd.kd_loss(zs, zt, temperature=T)
        assert loss == pytest.approx(alpha * kd.loss, rel=1e-9, abs=1e-12 * max(1, T * T))
        np.testing.assert_allclose(grad, alpha * kd.grad, rtol=1e-9, atol=1e-12 * max(1, T))


def test_minus_1000_is_not_divided_by_temperature():
    """With a gap of 900 at T = 1 the masked target is e^-100 below: invisible. At T = 0.5 the
    same logits give u = 1800 - 1000 = 800 above the rest: the masked 'target' dominates q, so
    NCKD no longer ignores it, as in mdistiller (the mask is subtracted after dividing by T)."""
    zs = np.array([[900.0, 0.0, 1.0]])
    zt = np.array([[900.0, 1.0, 0.0]])
    y = [0]
    nckd1 = minikd.dkd_loss(zs, zt, y, temperature=1.0, alpha=0.0, beta=1.0).loss
    # By hand at T=1: q over classes 1,2 only: KL([1/(1+e), e/(1+e)] || [e/(1+e), 1/(1+e)])
    a, b = 1 / (1 + np.e), np.e / (1 + np.e)
    assert nckd1 == pytest.approx(a * np.log(a / b) + b * np.log(b / a), rel=1e-12)
    nckd_half = minikd.dkd_loss(zs, zt, y, temperature=0.5, alpha=0.0, beta=1.0).loss
    naive_tckd, naive_nckd = ref.dkd_mdistiller_naive(zs, zt, y, temperature=0.5, parts=True)
    assert nckd_half == pytest.approx(naive_nckd, rel=1e-12, abs=1e-300)
    assert not np.isfinite(naive_tckd)  # and mdistiller's TCKD is inf here: log(0)
    assert nckd_half < 1e-100  # the target (shared by both) swallows q's mass


def test_one_class_is_refused():
    with pytest.raises(ValueError, match="'student_logits' parameter of dkd_loss"):
        minikd.dkd_loss([[1.0]], [[2.0]], [0])


def _first_gap(dtype, predicate):
    """The smallest logit gap at which predicate(p_y, b_2) holds (bisection), two classes, T = 1,
    with b_2 formed as mdistiller does: the sum of the non-target probabilities."""
    def holds(gap):
        z = np.array([gap, 0.0], dtype)
        e = np.exp(z - z.max())
        p = e / e.sum()
        return predicate(p[0], p[1])

    low, high = 0.0, 1000.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (low, mid) if holds(mid) else (mid, high)
    return high


def test_dkd_page_states_where_mdistillers_binary_split_underflows():
    # docs/derivations/dkd.md once said b_2 is 0 as soon as p_y rounds to 1; the thresholds are
    # far apart, and the page must give the measured ones (float64 and float32).
    page = (Path(__file__).resolve().parents[1] / "docs" / "derivations" / "dkd.md").read_text()
    for dtype in (np.float64, np.float32):
        tiny = np.finfo(dtype).tiny
        gaps = [_first_gap(dtype, lambda p_y, b2: p_y == 1.0),
                _first_gap(dtype, lambda p_y, b2, tiny=tiny: b2 < tiny),
                _first_gap(dtype, lambda p_y, b2: b2 == 0.0)]
        for gap in gaps:
            assert f"{round(gap):d}\\,T" in page, (dtype, gaps)
    assert "Once $p_{s,y}$ rounds to 1, $b_{s,2}$ is 0" not in page
