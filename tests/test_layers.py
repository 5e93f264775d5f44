"""Layers: naive loop twins, finite differences, dropout statistics, bad input."""

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minikd import gradcheck
from minikd.nn.layers import (
    dropout_backward,
    dropout_forward,
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
    tanh_backward,
    tanh_forward,
)

# -- naive twins written from the docstring formulas ------------------------------------------


def naive_linear(x, W, b):
    N, D = x.shape
    H = W.shape[1]
    out = np.zeros((N, H))
    for n in range(N):
        for h in range(H):
            out[n, h] = sum(x[n, d] * W[d, h] for d in range(D)) + b[h]
    return out


def naive_linear_backward(dout, x, W):
    N, D = x.shape
    H = W.shape[1]
    dx, dW, db = np.zeros((N, D)), np.zeros((D, H)), np.zeros(H)
    for n in range(N):
        for d in range(D):
            for h in range(H):
                dx[n, d] += dout[n, h] * W[d, h]
                dW[d, h] += x[n, d] * dout[n, h]
    for h in range(H):
        db[h] = sum(dout[n, h] for n in range(N))
    return dx, dW, db


def elementwise(f, *arrays_):
    out = np.zeros(arrays_[0].shape)
    for idx in np.ndindex(out.shape):
        out[idx] = f(*(float(a[idx]) for a in arrays_))
    return out


small = st.integers(1, 4)
# Entries of |v| < 1e-6 become 0: next to an O(1) bias their effect is below double rounding,
# which finite differences (not the analytic gradient) cannot resolve.
values = st.floats(-10, 10, allow_nan=False, allow_infinity=False,
                   allow_subnormal=False).map(lambda v: 0.0 if abs(v) < 1e-6 else v)


@st.composite
def linear_case(draw):
    n, d, h = draw(small), draw(small), draw(small)
    x = draw(arrays(np.float64, (n, d), elements=values))
    W = draw(arrays(np.float64, (d, h), elements=values))
    b = draw(arrays(np.float64, (h,), elements=values))
    seed = draw(st.integers(0, 2**32 - 1))
    return x, W, b, np.random.default_rng(seed).standard_normal((n, h))


@given(linear_case())
@example((np.ones((1, 1)), np.ones((1, 1)), np.zeros(1), np.array([[0.7]])))
def test_linear_matches_naive_twin_and_finite_differences(case):
    x, W, b, dout = case
    out, cache = linear_forward(x, W, b)
    np.testing.assert_allclose(out, naive_linear(x, W, b), rtol=1e-10, atol=1e-10)
    dx, dW, db = linear_backward(dout, cache)
    ndx, ndW, ndb = naive_linear_backward(dout, x, W)
    for got, want in ((dx, ndx), (dW, ndW), (db, ndb)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    gradcheck.assert_gradient(lambda v: linear_forward(v, W, b)[0], x, dx, dout=dout, name="dx")
    gradcheck.assert_gradient(lambda v: linear_forward(x, v, b)[0], W, dW, dout=dout, name="dW")
    gradcheck.assert_gradient(lambda v: linear_forward(x, W, v)[0], b, db, dout=dout, name="db")


@st.composite
def activation_case(draw, low=-10.0, high=10.0):
    n, h = draw(small), draw(small)
    x = draw(arrays(np.float64, (n, h), elements=st.floats(low, high, allow_nan=False,
                                                             allow_subnormal=False)))
    dout = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal((n, h))
    return x, dout


@given(activation_case())
def test_relu_matches_naive_twin_and_finite_differences(case):
    x, dout = case
    x = np.where(np.abs(x) < 1e-3, 0.5, x)  # finite differences need distance from the kink
    out, cache = relu_forward(x)
    np.testing.assert_array_equal(out, elementwise(lambda v: v if v > 0 else 0.0, x))
    dx = relu_backward(dout, cache)
    np.testing.assert_array_equal(dx, elementwise(lambda g, v: g if v > 0 else 0.0, dout, x))
    gradcheck.assert_gradient(lambda v: relu_forward(v)[0], x, dx, dout=dout)


def test_relu_derivative_at_zero_is_zero():
    _, cache = relu_forward(np.array([[0.0, -0.0]]))
    np.testing.assert_array_equal(relu_backward(np.array([[1.0, 1.0]]), cache), [[0.0, 0.0]])


@given(activation_case(-20.0, 20.0))
def test_tanh_matches_naive_twin_and_finite_differences(case):
    x, dout = case
    out, cache = tanh_forward(x)
    np.testing.assert_allclose(out, elementwise(math.tanh, x), rtol=1e-12, atol=1e-15)
    dx = tanh_backward(dout, cache)
    # d tanh / dx = 1 / cosh^2, an independent formula
    want = elementwise(lambda g, v: g / math.cosh(v) ** 2, dout, x)
    np.testing.assert_allclose(dx, want, rtol=1e-10, atol=1e-15)
    # Beyond |x| ~ 4, tanh(x +- h) differ by less than double rounding can resolve: finite
    # differences lose their digits there (the twin above covers the full range).
    x = np.clip(x, -4.0, 4.0)
    dx = tanh_backward(dout, tanh_forward(x)[1])
    gradcheck.assert_gradient(lambda v: tanh_forward(v)[0], x, dx, dout=dout)


def test_backward_returns_fresh_arrays():
    x = np.arange(6.0).reshape(2, 3) - 2
    dout = np.ones((2, 3)) * 0.5
    _, cache = relu_forward(x)
    dx = relu_backward(dout, cache)
    assert dx is not dout and not np.shares_memory(dx, dout)
    _, cache = dropout_forward(x, p=0.5, train=False)
    dx = dropout_backward(dout, cache)
    assert not np.shares_memory(dx, dout)


# -- dropout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_mask_statistics_and_scaling(p):
    rng = np.random.default_rng(1)
    x = np.ones((400, 500))
    out, mask = dropout_forward(x, p=p, train=True, rng=rng)
    kept = mask != 0
    # survivors are scaled by exactly 1 / (1 - p); the rest are exactly zero
    np.testing.assert_allclose(mask[kept], 1.0 / (1.0 - p), rtol=1e-15)
    np.testing.assert_array_equal(out, x * mask)
    # drop rate within 5 binomial standard deviations of p (n = 200 000)
    n = x.size
    assert abs((~kept).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    # inverted dropout keeps the mean: E[m] = 1
    assert abs(out.mean() - 1.0) < 5 * math.sqrt(p / (1 - p) / n)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(dropout_backward(dout, mask), dout * mask)


def test_dropout_eval_and_p0_are_identity_and_seeded_train_is_reproducible():
    x = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    for kwargs in ({"p": 0.5, "train": False}, {"p": 0.0, "train": True}):
        out, cache = dropout_forward(x, rng=0, **kwargs)
        assert cache is None and out.dtype == np.float32
        np.testing.assert_array_equal(out, x)
    a, _ = dropout_forward(x, p=0.3, train=True, rng=42)
    b, _ = dropout_forward(x, p=0.3, train=True, rng=42)
    c, _ = dropout_forward(x, p=0.3, train=True, rng=43)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.float32


def test_dropout_gradient_matches_finite_differences_for_a_fixed_mask():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4))
    dout = rng.standard_normal((3, 4))
    _, mask = dropout_forward(x, p=0.4, train=True, rng=7)
    dx = dropout_backward(dout, mask)
    gradcheck.assert_gradient(lambda v: dropout_forward(v, p=0.4, train=True, rng=7)[0], x, dx,
                              dout=dout)


# -- dtypes and bad input ------------------------------------------------------------------------


def test_float32_stays_float32_and_mixed_goes_float64():
    x = np.ones((2, 3), np.float32)
    W = np.ones((3, 4), np.float32)
    b = np.zeros(4, np.float32)
    out, cache = linear_forward(x, W, b)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in linear_backward(np.ones((2, 4), np.float32), cache))
    assert linear_forward(x, W, b.astype(np.float64))[0].dtype == np.float64
    assert relu_forward(x)[0].dtype == np.float32 and tanh_forward(x)[0].dtype == np.float32


@pytest.mark.parametrize("call, exc", [
    (lambda: linear_forward(np.ones((2, 3)), np.ones((4, 2)), np.zeros(2)), ValueError),
    (lambda: linear_forward(np.ones((2, 3)), np.ones((3, 2)), np.zeros(3)), ValueError),
    (lambda: linear_forward(np.ones(3), np.ones((3, 2)), np.zeros(2)), ValueError),
    (lambda: linear_forward([[np.nan, 1.0]], np.ones((2, 2)), np.zeros(2)), ValueError),
    (lambda: linear_forward([[True, False]], np.ones((2, 2)), np.zeros(2)), TypeError),
    (lambda: linear_forward(np.ones((1, 2), complex), np.ones((2, 2)), np.zeros(2)), TypeError),
    (lambda: linear_forward(np.array([[object()]]), np.ones((1, 2)), np.zeros(2)), TypeError),
    (lambda: linear_backward(np.ones((2, 5)), (np.ones((2, 3)), np.ones((3, 2)))), ValueError),
    (lambda: relu_forward([[np.inf]]), ValueError),
    (lambda: relu_backward(np.ones((2, 2)), np.ones((2, 3))), ValueError),
    (lambda: tanh_backward([[np.nan]], np.ones((1, 1))), ValueError),
    (lambda: dropout_forward(np.ones((2, 2)), p=1.0, train=True), ValueError),
    (lambda: dropout_forward(np.ones((2, 2)), p=-0.1, train=True), ValueError),
    (lambda: dropout_forward(np.ones((2, 2)), p=0.5, train="yes"), TypeError),
    (lambda: dropout_backward(np.ones((2, 3)), np.ones((2, 2))), ValueError),
])
def test_bad_input_raises_clear_errors(call, exc):
    with pytest.raises(exc, match="parameter of"):
        call()


@given(st.one_of(
    arrays(np.float64, st.tuples(small, small), elements=st.floats(allow_nan=True)),
    arrays(np.bool_, (2, 2)), arrays(np.complex128, (2, 2)),
    st.lists(st.lists(st.floats(), min_size=1, max_size=3), max_size=3),
    st.just(np.zeros((0, 2))),
))
def test_malformed_inputs_only_raise_value_or_type_error(x):
    for call in (lambda: linear_forward(x, np.ones((2, 2)), np.zeros(2)),
                 lambda: relu_forward(x), lambda: tanh_forward(x),
                 lambda: dropout_forward(x, p=0.5, train=True, rng=0)):
        try:
            call()
        except (ValueError, TypeError):
            pass


# -- the kernels: what the public functions return, from checked arrays, inputs untouched -------


def test_each_public_layer_returns_its_kernel_and_kernels_never_write_their_inputs():
    from minikd.nn import layers

    rng = np.random.default_rng(0)
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)
    dout = rng.standard_normal((4, 5))
    a, lin = layers.linear_forward_kernel(x, W, b)
    h, act = layers.relu_forward_kernel(a)
    t, tact = layers.tanh_forward_kernel(a)
    d, mask = layers.dropout_forward_kernel(h, p=0.5, train=True, rng=np.random.default_rng(1))
    calls = [
        (layers.linear_forward, (x, W, b), {}, (a, lin)),
        (layers.relu_forward, (a,), {}, (h, act)),
        (layers.tanh_forward, (a,), {}, (t, tact)),
        (layers.dropout_forward, (h,), {"p": 0.5, "train": True, "rng": 1}, (d, mask)),
        (layers.linear_backward, (dout, lin), {}, layers.linear_backward_kernel(dout, lin)),
        (layers.relu_backward, (dout, act), {}, layers.relu_backward_kernel(dout, act)),
        (layers.tanh_backward, (dout, tact), {}, layers.tanh_backward_kernel(dout, tact)),
        (layers.dropout_backward, (dout, mask), {}, layers.dropout_backward_kernel(dout, mask)),
        (layers.dropout_backward, (dout, None), {}, layers.dropout_backward_kernel(dout, None)),
    ]
    inputs = [x, W, b, a, h, dout, mask]
    copies = [v.copy() for v in inputs]
    for public, args, kwargs, want in calls:
        got = public(*args, **kwargs)
        for g, w in zip(_flat(got), _flat(want), strict=True):
            np.testing.assert_array_equal(g, w)
    for v, c in zip(inputs, copies, strict=True):
        np.testing.assert_array_equal(v, c)
    dx, dW, db = layers.linear_backward_kernel(dout, lin)
    none, dW1, db1 = layers.linear_backward_kernel(dout, lin, input_grad=False)
    assert none is None
    np.testing.assert_array_equal(dW1, dW)
    np.testing.assert_array_equal(db1, db)


def _flat(value):
    """The arrays in a (nested) tuple of results, in order."""
    if isinstance(value, tuple):
        return [a for v in value for a in _flat(v)]
    return [value]
