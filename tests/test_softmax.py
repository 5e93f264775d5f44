"""Temperature softmax, log-softmax and their VJPs: scipy, naive loops, FD, properties."""

import numpy as np
import pytest
import reference_losses as ref
from helpers import logits, temperatures
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import softmax as sp_softmax

import minikd
from minikd import gradcheck

GAP = np.array([[0.0, 1e4, -1e4]])


@example(GAP, 0.1)
@example(np.zeros((1, 2)), 4.0)
@given(logits(max_n=4, max_c=6), temperatures)
def test_matches_scipy_and_sums_to_one(z, T):
    p = minikd.softmax(z, temperature=T)
    log_p = minikd.log_softmax(z, temperature=T)
    # z/T is rounded differently (minikd shifts before dividing): an absolute error of
    # ~eps·|z/T| in the exponent is that relative error in tiny probabilities.
    mag = 1 + np.abs(z).max() / T
    np.testing.assert_allclose(p, sp_softmax(z / T, axis=-1), rtol=1e-12 + 1e-14 * mag,
                               atol=1e-300)
    np.testing.assert_allclose(log_p, sp_log_softmax(z / T, axis=-1), rtol=1e-12,
                               atol=1e-14 * mag)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=0, atol=1e-14)
    assert np.all(np.isfinite(log_p)) and np.all(p >= 0) and np.all(log_p <= 0)


@given(logits(max_n=3, max_c=5), temperatures)
def test_matches_naive_loop(z, T):
    want = np.array([ref.log_softmax_row(row, T) for row in z])
    mag = 1 + np.abs(z).max() / T
    np.testing.assert_allclose(minikd.log_softmax(z, temperature=T), want, rtol=1e-10,
                               atol=1e-14 * mag)
    np.testing.assert_allclose(minikd.softmax(z, temperature=T), np.exp(want),
                               rtol=1e-10 + 1e-14 * mag, atol=1e-300)


@given(logits(max_n=3, max_c=5), temperatures, st.floats(-1e3, 1e3))
def test_shift_invariance(z, T, c):
    mag = 1 + (np.abs(z).max() + abs(c)) / T
    np.testing.assert_allclose(minikd.log_softmax(z + c, temperature=T),
                               minikd.log_softmax(z, temperature=T), rtol=1e-9,
                               atol=1e-13 * mag)


def test_gap_1e4_at_t_0_1_by_hand():
    p = minikd.softmax(GAP, temperature=0.1)
    np.testing.assert_array_equal(p, [[0.0, 1.0, 0.0]])
    log_p = minikd.log_softmax(GAP, temperature=0.1)
    np.testing.assert_array_equal(log_p, [[-1e5, 0.0, -2e5]])


def test_temperature_limits():
    z = np.array([[3.0, 1.0, -2.0]])
    np.testing.assert_allclose(minikd.softmax(z, temperature=1e6), [[1 / 3] * 3], rtol=1e-5)
    np.testing.assert_allclose(minikd.softmax(z, temperature=1e-3), [[1.0, 0.0, 0.0]], atol=1e-300)
    # by hand: softmax([2, 1, 0] / 2) = e^[1, .5, 0] / (e + e^.5 + 1)
    e = np.exp([1.0, 0.5, 0.0])
    np.testing.assert_allclose(minikd.softmax([2.0, 1.0, 0.0], temperature=2.0), e / e.sum(),
                               rtol=1e-15)


@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 3, 4), (1, 1, 1, 2)])
def test_any_leading_shape(shape):
    z = np.random.default_rng(0).normal(size=shape)
    p = minikd.softmax(z, temperature=3.0)
    np.testing.assert_allclose(p, sp_softmax(z / 3.0, axis=-1), rtol=1e-13)


def test_float32_stays_float32():
    z = np.random.default_rng(1).normal(size=(4, 5)).astype(np.float32)
    for f in (minikd.softmax, minikd.log_softmax):
        out = f(z, temperature=2.0)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, f(z.astype(np.float64), temperature=2.0), atol=1e-6)
    assert minikd.softmax([[1, 2, 3]]).dtype == np.float64  # ints compute in float64


# ---------------------------------------------------------------- VJPs (oracle 1: FD, random dout)

@example(np.zeros((1, 2)), 0.5, 0)
@example(GAP, 0.1, 1)
@given(logits(max_n=3, max_c=5), temperatures, st.integers(0, 2**16))
def test_softmax_vjp_gradcheck(z, T, seed):
    dout = np.random.default_rng(seed).normal(size=z.shape)  # random, never all-ones
    p = minikd.softmax(z, temperature=T)
    dz = minikd.softmax_vjp(dout, p, temperature=T)
    scale = T + 2 * np.abs(z).max()  # uniform u-step of ~1e-4 (see test_losses._fd)
    gradcheck.assert_gradient(lambda v: minikd.softmax(v, temperature=T), z, dz, dout=dout,
                              h=1e-4 * T / scale, scale=scale,
                              atol=1e-5 * np.abs(dout).max() / T, name="softmax_vjp")


@example(np.zeros((1, 2)), 0.5, 0)
@given(logits(max_n=3, max_c=5), temperatures, st.integers(0, 2**16))
def test_log_softmax_vjp_gradcheck(z, T, seed):
    dout = np.random.default_rng(seed).normal(size=z.shape)
    p = minikd.softmax(z, temperature=T)
    dz = minikd.log_softmax_vjp(dout, p, temperature=T)
    scale = T + 2 * np.abs(z).max()
    gradcheck.assert_gradient(lambda v: minikd.log_softmax(v, temperature=T), z, dz, dout=dout,
                              h=1e-4 * T / scale, scale=scale,
                              atol=1e-5 * np.abs(dout).max() / T, name="log_softmax_vjp")


@given(logits(max_n=3, max_c=5), temperatures, st.integers(0, 2**16))
def test_vjps_match_explicit_jacobian_loops(z, T, seed):
    """The Jacobians from the docstrings, built entry by entry: dp_i/dz_j = p_i(δ_ij - p_j)/T."""
    dout = np.random.default_rng(seed).normal(size=z.shape)
    p = minikd.softmax(z, temperature=T)
    want_sm, want_lsm = np.zeros_like(z), np.zeros_like(z)
    for n in range(z.shape[0]):
        C = z.shape[1]
        for j in range(C):
            want_sm[n, j] = sum(dout[n, i] * p[n, i] * ((i == j) - p[n, j]) / T for i in range(C))
            want_lsm[n, j] = sum(dout[n, i] * ((i == j) - p[n, j]) / T for i in range(C))
    atol = 1e-15 * np.abs(dout).max() / T
    np.testing.assert_allclose(minikd.softmax_vjp(dout, p, temperature=T), want_sm, rtol=1e-10,
                               atol=atol)
    np.testing.assert_allclose(minikd.log_softmax_vjp(dout, p, temperature=T), want_lsm,
                               rtol=1e-10, atol=atol)


def test_vjp_rows_sum_to_zero_and_ones_give_zero():
    """Why the upstream gradient must be random: with all-ones dp both sides are exactly 0."""
    p = minikd.softmax([[1.0, 2.0, 0.5]], temperature=2.0)
    np.testing.assert_allclose(minikd.softmax_vjp(np.ones((1, 3)), p, temperature=2.0), 0.0,
                               atol=1e-16)
    dz = minikd.log_softmax_vjp([[0.3, -1.0, 2.0]], p, temperature=2.0)
    assert abs(dz.sum()) < 1e-15


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("f", [minikd.softmax, minikd.log_softmax])
@pytest.mark.parametrize("z, exc", [([[np.nan, 1.0]], ValueError), ([[np.inf]], ValueError),
                                    (np.zeros((2, 0)), ValueError), ([[True]], TypeError),
                                    ([[1j]], TypeError), ("abc", TypeError),
                                    ([[1e308, -1e308]], ValueError)])
def test_bad_z(f, z, exc):
    with pytest.raises(exc, match=f"'z' parameter of {f.__name__}"):
        f(z)


@pytest.mark.parametrize("T", [0, -1, np.nan, np.inf, "2", None])
def test_bad_temperature(T):
    with pytest.raises((ValueError, TypeError), match="'temperature' parameter of softmax"):
        minikd.softmax([[1.0, 2.0]], temperature=T)


@pytest.mark.parametrize("f, name", [(minikd.softmax_vjp, "dp"),
                                     (minikd.log_softmax_vjp, "dlog_p")])
def test_bad_vjp_inputs(f, name):
    p = minikd.softmax([[1.0, 2.0]])
    with pytest.raises(ValueError, match="must have the same shape"):
        f([[1.0, 2.0, 3.0]], p)
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        f([[np.nan, 1.0]], p)
    with pytest.raises(TypeError, match="'p' parameter"):
        f([[1.0, 1.0]], [[True, False]])
    with pytest.raises(ValueError, match="'temperature' parameter"):
        f([[1.0, 1.0]], p, temperature=0.0)


@given(arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 4)),
              elements=st.floats(allow_nan=True, allow_infinity=True)), temperatures)
def test_fuzz_values_only_value_errors(z, T):
    try:
        out = minikd.log_softmax(z, temperature=T)
    except ValueError:
        return
    assert np.all(np.isfinite(out))
