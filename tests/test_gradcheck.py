"""The checker itself: exact gradients pass; missing T, sign flip, permutation, shape fail."""

import numpy as np
import pytest
from helpers import logit_pair
from hypothesis import given
from hypothesis import strategies as st

import minikd
from minikd import gradcheck

RNG = np.random.default_rng(0)
ZS = RNG.normal(size=(3, 4)) * 2
ZT = RNG.normal(size=(3, 4)) * 2


def kd(T):
    return lambda v: minikd.kd_loss(v, ZT, temperature=T).loss


def kd_grad_by_hand(T):
    """(T / N)(p_s - p_t), from the formula, not from kd_loss."""
    p_s = minikd.softmax(ZS, temperature=T)
    p_t = minikd.softmax(ZT, temperature=T)
    return T / ZS.shape[0] * (p_s - p_t)


# ---------------------------------------------------------------- must pass

def test_exact_elementary_gradients_pass():
    x = np.array([[0.1, -2.0, 3.5], [1e-3, 4.0, -0.7]])
    r = gradcheck.check_gradient(lambda v: float(np.sum(np.sin(v) * v**2)), x,
                                 np.cos(x) * x**2 + 2 * x * np.sin(x))
    assert r.ok and r.error < 1e-8
    assert gradcheck.check_gradient(lambda v: float(np.sum(v**3)), x, 3 * x**2).error < 1e-8


@pytest.mark.parametrize("T", [0.1, 1.0, 4.0, 20.0, 100.0])
def test_exact_kd_gradient_passes(T):
    result = gradcheck.assert_gradient(kd(T), ZS, kd_grad_by_hand(T), scale=T)
    assert result.error < 1e-6


@given(logit_pair(max_n=3, max_c=4))
def test_kd_gradient_passes_and_its_defects_fail(case):
    """For random cases where the gradient is not ~0: exact passes; missing T, flip, permute fail.

    Uses the uniform u-step explained in test_losses._fd.
    """
    zs, zt, T = case
    grad = minikd.kd_loss(zs, zt, temperature=T).grad
    if np.abs(grad).max() < 1e-3 * T / zs.shape[0]:
        return  # (near-)zero gradient: a scaled or permuted zero is still zero
    scale = T + 2 * np.abs(zs).max()
    check = lambda g: gradcheck.check_gradient(  # noqa: E731
        lambda v: minikd.kd_loss(v, zt, temperature=T).loss, zs, g, h=1e-4 * T / scale,
        scale=scale)
    assert check(grad).ok
    assert not check(-grad).ok
    if abs(T - 1.0) > 0.05:
        assert not check(grad / T).ok  # the KD gradient without its factor T
    flat = grad.reshape(-1)
    perm = np.roll(flat, 1).reshape(grad.shape)
    if np.abs(perm - grad).max() > 1e-3 * np.abs(grad).max():
        assert not check(perm).ok


# ---------------------------------------------------------------- must fail

@pytest.mark.parametrize("T", [0.5, 4.0, 20.0])
def test_missing_factor_of_t_fails(T):
    wrong = kd_grad_by_hand(T) / T  # the gradient of T² KL written as (p_s - p_t)/N
    result = gradcheck.check_gradient(kd(T), ZS, wrong, scale=T)
    assert not result.ok and result.error > 0.3
    with pytest.raises(AssertionError, match="kd: FAILED"):
        gradcheck.assert_gradient(kd(T), ZS, wrong, scale=T, name="kd")


def test_sign_flip_fails_with_error_near_two():
    result = gradcheck.check_gradient(kd(4.0), ZS, -kd_grad_by_hand(4.0), scale=4.0)
    assert not result.ok
    assert result.error == pytest.approx(2.0, rel=1e-4)  # |(-g) - g| / |g| = 2


def test_permutation_fails_and_report_names_worst_entry():
    good = kd_grad_by_hand(4.0)
    bad = good.copy()
    bad[[1, 2], 3] = bad[[2, 1], 3]  # swap two entries
    result = gradcheck.check_gradient(kd(4.0), ZS, bad, scale=4.0)
    assert not result.ok
    assert result.worst_index in ((1, 3), (2, 3))
    report = result.report("kd_loss")
    assert "FAILED" in report and f"worst entry {result.worst_index}" in report
    assert "first pairs (analytic, numeric)" in report
    assert f"{result.analytic[result.worst_index]:.10g}" in report


def test_single_wrong_entry_is_located():
    good = kd_grad_by_hand(2.0)
    bad = good.copy()
    bad[2, 1] += 0.05
    result = gradcheck.check_gradient(kd(2.0), ZS, bad, scale=2.0)
    assert not result.ok and result.worst_index == (2, 1)


def test_wrong_shape_fails():
    result = gradcheck.check_gradient(kd(4.0), ZS, kd_grad_by_hand(4.0).T, scale=4.0)
    assert not result.ok and result.error == float("inf")
    assert "shape mismatch" in result.report()
    with pytest.raises(AssertionError, match="shape mismatch"):
        gradcheck.assert_gradient(kd(4.0), ZS, kd_grad_by_hand(4.0)[:2], scale=4.0)


def test_small_relative_error_fails_at_default_tol():
    """A 1e-4 relative error (e.g. float32 arithmetic in the analytic path) is caught."""
    g = kd_grad_by_hand(4.0)
    assert not gradcheck.check_gradient(kd(4.0), ZS, g * (1 + 1e-4), scale=4.0).ok
    assert gradcheck.check_gradient(kd(4.0), ZS, g * (1 + 1e-7), scale=4.0).ok


# ---------------------------------------------------------------- pieces

def test_numerical_gradient_leaves_input_untouched_and_uses_relative_steps():
    x = np.array([1e-8, 1.0, 1e4])
    before = x.copy()
    seen = []

    def f(v):
        seen.append(v.copy())
        v[:] = 0.0  # a function that scribbles on its argument must not affect the check
        return float(np.sum(before * 0.0))

    gradcheck.numerical_gradient(f, x, h=1e-5, scale=2.0)
    np.testing.assert_array_equal(x, before)
    steps = [np.abs(s - before).max() for s in seen[::2]]
    np.testing.assert_allclose(steps, 1e-5 * (2.0 + np.abs(before)), rtol=1e-6)


def test_numerical_vjp_of_linear_map_is_exact():
    A = RNG.normal(size=(3, 4))
    x = RNG.normal(size=4)
    dout = RNG.normal(size=3)
    np.testing.assert_allclose(gradcheck.numerical_vjp(lambda v: A @ v, x, dout), A.T @ dout,
                               rtol=1e-8)


def test_normwise_error_properties():
    a = np.array([1.0, -2.0, 3.0])
    assert gradcheck.normwise_error(a, a) == 0.0
    assert gradcheck.normwise_error(np.zeros(3), np.zeros(3)) == 0.0
    assert gradcheck.normwise_error(a, -a) == pytest.approx(2.0)
    # saturated entries: a tiny absolute error on a tiny entry is not a large error
    b = a.copy()
    b[0] = 1e-12
    c = b.copy()
    c[0] = 2e-12
    assert gradcheck.normwise_error(b, c) == pytest.approx(1e-12 / 3.0)
    assert gradcheck.normwise_error(a, a[:2]) == float("inf")


def test_atol_rescues_only_tiny_differences():
    zero = np.zeros((2, 2))
    f = lambda v: float(np.sum(v**2)) + 1.0  # noqa: E731
    r = gradcheck.check_gradient(f, zero, np.full((2, 2), 1e-12))
    assert not r.ok and r.error == pytest.approx(1.0)  # relative error of ~0 vs ~0
    assert gradcheck.check_gradient(f, zero, np.full((2, 2), 1e-12), atol=1e-10).ok
    assert not gradcheck.check_gradient(f, zero, np.full((2, 2), 1e-3), atol=1e-10).ok


def test_check_directional():
    x = RNG.normal(size=(20, 30))
    f = lambda v: float(np.sum(np.tanh(v)))  # noqa: E731
    good = 1 - np.tanh(x) ** 2
    assert gradcheck.check_directional(f, x, good, rng=1).ok
    assert not gradcheck.check_directional(f, x, -good, rng=1).ok
    assert not gradcheck.check_directional(f, x, good * 1.01, rng=1).ok


@given(st.integers(1, 3), st.integers(2, 4), st.integers(0, 2**16))
def test_loss_grad_via_vjp_of_log_softmax(n, c, seed):
    """The checker composes: CE's gradient is the log-softmax VJP of -onehot / N."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, c)) * 3
    y = rng.integers(0, c, size=n)
    onehot = np.eye(c)[y]
    want = minikd.log_softmax_vjp(-onehot / n, minikd.softmax(z))
    np.testing.assert_allclose(minikd.cross_entropy(z, y).grad, want, rtol=1e-12, atol=1e-15)
    gradcheck.assert_gradient(lambda v: minikd.cross_entropy(v, y).loss, z, want)


# ---------------------------------------------------------------- a checker that cannot be fooled

@pytest.mark.parametrize("value, exc, match", [
    (float("nan"), ValueError, "must be finite around x"),
    (float("inf"), ValueError, "must be finite around x"),
    (minikd.LossGrad(1.0, np.zeros(3)), TypeError,
     r"Got LossGrad .*pass lambda x: loss\(x, \.\.\.\)\.loss"),
    ("1.0", TypeError, "must return the loss, a real scalar. Got str"),
    (None, TypeError, "Got NoneType"),
    (1j, TypeError, "Got complex"),
    (np.ones(3), TypeError, "Got ndarray"),
])
def test_f_must_return_a_finite_real_loss(value, exc, match):
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(exc, match=match):
        gradcheck.check_gradient(lambda v: value, x, np.zeros(3))


def test_a_nan_anywhere_fails_the_check():
    x = np.array([0.5, -1.0])
    f = lambda v: float(np.sum(v**2))  # noqa: E731
    for analytic in ([np.nan, 0.0], [np.inf, -2.0], [np.nan, np.nan]):
        result = gradcheck.check_gradient(f, x, analytic)
        assert not result.ok and result.error == float("inf")
        assert "FAILED" in result.report()
    assert gradcheck.normwise_error([0.0, 0.0], [np.nan, 0.0]) == float("inf")  # was 0.0
    assert gradcheck.normwise_error([np.inf], [np.inf]) == float("inf")


@pytest.mark.parametrize("kwargs, match", [
    ({"h": 0.0}, "'h' parameter of numerical_gradient"),
    ({"h": -1e-5}, "'h'"),
    ({"h": float("nan")}, "'h'"),
    ({"scale": -1.0}, "'scale' parameter of numerical_gradient"),
    ({"scale": float("inf")}, "'scale'"),
    ({"tol": -1.0}, "'tol' parameter of check_gradient"),
    ({"atol": float("nan")}, "'atol'"),
])
def test_bad_step_and_tolerance_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gradcheck.check_gradient(lambda v: float(np.sum(v)), np.ones(2), np.ones(2), **kwargs)


def test_a_step_that_vanishes_is_refused():
    f = lambda v: float(np.sum(v**2))  # noqa: E731
    with pytest.raises(ValueError, match="'scale' parameter of numerical_gradient must be > 0 "
                                         "where x is 0.*Got 0.0 with an entry x = 0 instead"):
        gradcheck.check_gradient(f, np.array([1.0, 0.0]), np.array([2.0, 0.0]), scale=0.0)
    assert gradcheck.check_gradient(f, np.array([1.0, -3.0]), np.array([2.0, -6.0]),
                                    scale=0.0).ok  # a purely relative step is fine away from 0


@pytest.mark.parametrize("x, match", [
    (np.zeros(0), "non-empty"), ([1.0, np.nan], "finite"), ([[1.0], [1.0, 2.0]], "rectangular"),
])
def test_bad_points_are_refused(x, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gradcheck.numerical_gradient(lambda v: 0.0, x)


def test_vjp_refuses_an_upstream_gradient_it_would_broadcast():
    A = RNG.normal(size=(3, 4))
    with pytest.raises(ValueError, match="'dout' parameter of numerical_vjp must be shaped"):
        gradcheck.numerical_vjp(lambda v: A @ v, np.ones(4), np.ones(1))


def test_directional_refuses_a_gradient_of_another_shape():
    with pytest.raises(ValueError, match="'analytic' parameter of check_directional"):
        gradcheck.check_directional(lambda v: float(np.sum(v)), np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="'n_directions'"):
        gradcheck.check_directional(lambda v: float(np.sum(v)), np.ones(3), np.ones(3),
                                    n_directions=0)
