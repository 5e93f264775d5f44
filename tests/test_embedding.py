"""The embedding layer: naive loop twins, finite differences, the scatter-add's repeats, bad
input."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minikd import gradcheck
from minikd.nn.embedding import embedding_backward, embedding_forward

# -- naive twins written from the docstring formulas ------------------------------------------


def naive_forward(idx, E):
    """y[n, k, d] = E[idx[n, k], d]."""
    N, K = idx.shape
    out = np.zeros((N, K, E.shape[1]))
    for n in range(N):
        for k in range(K):
            for d in range(E.shape[1]):
                out[n, k, d] = E[idx[n, k], d]
    return out


def naive_backward(dout, idx, V):
    """dE[v, d] = sum over (n, k) with idx[n, k] == v of dout[n, k, d]."""
    N, K, D = dout.shape
    dE = np.zeros((V, D))
    for v in range(V):
        for n in range(N):
            for k in range(K):
                if idx[n, k] == v:
                    dE[v] += dout[n, k]
    return dE


@st.composite
def embedding_case(draw):
    V, D = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    N, K = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    idx = draw(arrays(np.int64, (N, K), elements=st.integers(0, V - 1)))
    E = draw(arrays(np.float64, (V, D), elements=st.floats(-10, 10, allow_subnormal=False)))
    seed = draw(st.integers(0, 2**32 - 1))
    return idx, E, np.random.default_rng(seed).standard_normal((N, K, D))


@given(embedding_case())
@example((np.zeros((3, 4), np.int64), np.ones((2, 3)),  # every position reads row 0
          np.random.default_rng(0).standard_normal((3, 4, 3))))
def test_embedding_matches_naive_twin_and_finite_differences(case):
    idx, E, dout = case
    out, cache = embedding_forward(idx, E)
    np.testing.assert_array_equal(out, naive_forward(idx, E))
    dE = embedding_backward(dout, cache)
    np.testing.assert_allclose(dE, naive_backward(dout, idx, E.shape[0]), rtol=1e-12,
                               atol=1e-12)
    # np.add.at is numpy's own unbuffered scatter-add: a second, independent statement.
    twin = np.zeros_like(E)
    np.add.at(twin, idx, dout)
    np.testing.assert_allclose(dE, twin, rtol=1e-12, atol=1e-12)
    gradcheck.assert_gradient(lambda v: embedding_forward(idx, v)[0], E, dE, dout=dout,
                              name="dE")


def test_repeated_tokens_add_and_unread_rows_get_zero():
    E = np.arange(8.0).reshape(4, 2)
    idx = np.array([[2, 2, 2], [0, 2, 0]])  # row 2 read four times, row 0 twice, 1 and 3 never
    _, cache = embedding_forward(idx, E)
    dout = np.ones((2, 3, 2))
    np.testing.assert_array_equal(embedding_backward(dout, cache),
                                  [[2, 2], [0, 0], [4, 4], [0, 0]])


def test_gradcheck_rejects_the_assignment_bug():
    """``dE[idx] = dout`` keeps one of the rows of a repeated token: the checker must see it."""
    rng = np.random.default_rng(1)
    E = rng.standard_normal((3, 2))
    idx = np.array([[1, 1, 2], [0, 1, 2]])
    dout = rng.standard_normal((2, 3, 2))
    wrong = np.zeros_like(E)
    wrong[idx] = dout
    f = lambda v: embedding_forward(idx, v)[0]  # noqa: E731
    assert not gradcheck.check_gradient(f, E, wrong, dout=dout).ok
    _, cache = embedding_forward(idx, E)
    assert gradcheck.check_gradient(f, E, embedding_backward(dout, cache), dout=dout).ok


def test_dtypes_copies_and_leading_axes():
    E = np.random.default_rng(2).standard_normal((5, 3)).astype(np.float32)
    idx = np.array([[[1, 4], [0, 0]]], dtype=np.uint8)  # (1, 2, 2): any leading axes
    E_before, idx_before = E.copy(), idx.copy()
    out, cache = embedding_forward(idx, E)
    assert out.shape == (1, 2, 2, 3) and out.dtype == np.float32
    out[...] = 7.0  # the output is a fresh array: the table is untouched
    np.testing.assert_array_equal(E, E_before)
    dout = np.ones((1, 2, 2, 3), np.float32)
    dE = embedding_backward(dout, cache)
    assert dE.shape == (5, 3) and dE.dtype == np.float32
    np.testing.assert_array_equal(dE[:, 0], [2, 1, 0, 0, 1])
    np.testing.assert_array_equal(idx, idx_before)
    np.testing.assert_array_equal(dout, 1.0)  # the upstream gradient is not overwritten
    empty_out, empty_cache = embedding_forward(np.zeros((0, 2), np.int64), E)
    assert empty_out.shape == (0, 2, 3)
    np.testing.assert_array_equal(embedding_backward(np.zeros((0, 2, 3)), empty_cache), 0.0)


@pytest.mark.parametrize("idx, E, exc, match", [
    ([[0.0, 1.0]], np.ones((3, 2)), TypeError, "'idx' parameter of embedding_forward must be "
                                               "an integer array"),
    ([[0, 3]], np.ones((3, 2)), ValueError, r"token indices in \[0, 3\).*Got values in \[0, 3\]"),
    ([[-1, 0]], np.ones((3, 2)), ValueError, "token indices in"),
    (5, np.ones((3, 2)), ValueError, "at least 1 dimension"),
    ([[0, 1]], np.ones(3), ValueError, "'E' parameter of embedding_forward must be a 2-D"),
    ([[0, 1]], [[np.nan, 1.0], [0.0, 1.0]], ValueError, "finite"),
    ([[0], [1, 2]], np.ones((3, 2)), TypeError, "rectangular integer array"),
])
def test_bad_forward_input_names_the_parameter(idx, E, exc, match):
    with pytest.raises(exc, match=match):
        embedding_forward(idx, E)


def test_bad_backward_input_names_the_parameter():
    _, cache = embedding_forward([[0, 1]], np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"'dout' parameter of embedding_backward must be an "
                                         r"array of shape \(1, 2, 'D'\)"):
        embedding_backward(np.ones((2, 2, 2)), cache)
    with pytest.raises(TypeError, match="'cache' parameter of embedding_backward"):
        embedding_backward(np.ones((1, 2, 2)), (np.array([[0, 1]]), 3.0))
    with pytest.raises(ValueError, match="finite"):
        embedding_backward(np.full((1, 2, 2), np.inf), cache)
