"""Feature-based losses: FitNets hint + regressor, DistilBERT cosine, attention transfer.

Three oracles for each: finite differences (minikd.gradcheck, float64, hypothesis), a naive loop
twin written from the docstring formulas, and mathematical properties. Plus bad input.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minikd
from minikd import gradcheck
from minikd.losses.features import attention_transfer_loss, cosine_loss, hint_loss
from minikd.nn.regressor import init_regressor, regressor_backward, regressor_forward

TOL = 1e-5
# Each example costs tens of loss evaluations (finite differences): run a quarter of the
# profile's examples (ci: 25) so the module stays within its share of the suite's time budget.
FEW = settings(max_examples=max(8, settings.default.max_examples // 4))
EPS12 = 1e-12
# Central differences carry a round-off floor of about eps_machine * |L| / step ~ 1e-11 and a
# truncation error of about step^2 * |d3L| ~ 1e-9 on each entry; where the true gradient is that
# small (student == teacher, a minimum), the normwise error is noise divided by noise. Below this
# absolute difference, a check passes.
FD_FLOOR = 1e-8


def assert_fd(f, x, analytic, **kw):
    result = gradcheck.check_gradient(f, x, analytic, tol=TOL, **kw)
    if not result.ok and np.max(np.abs(result.analytic - result.numeric)) > FD_FLOOR:
        raise AssertionError(result.report())


def floats(lim=100.0):
    return st.floats(-lim, lim, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def batch(lim=100.0):
    shapes = st.tuples(st.integers(1, 4), st.integers(1, 5))
    return shapes.flatmap(lambda nf: arrays(np.float64, nf, elements=floats(lim)))


@st.composite
def st_pair(draw, lim=100.0):
    n, f = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    s = draw(arrays(np.float64, (n, f), elements=floats(lim)))
    t = draw(arrays(np.float64, (n, f), elements=floats(lim)))
    return s, t


@st.composite
def st_maps(draw):
    n, cs, ct = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = draw(st.sampled_from([(2,), (2, 2), (1, 3), (3, 2)]))
    s = draw(arrays(np.float64, (n, cs) + spatial, elements=floats(10.0)))
    t = draw(arrays(np.float64, (n, ct) + spatial, elements=floats(10.0)))
    return s, t


# ---------------------------------------------------------------------------------------------
# naive twins, straight from the docstrings


def naive_hint(s, t):
    s, t = np.asarray(s, float).ravel(), np.asarray(t, float).ravel()
    m = s.size
    loss = sum((s[i] - t[i]) ** 2 for i in range(m)) / m
    grad = np.array([2.0 / m * (s[i] - t[i]) for i in range(m)])
    return loss, grad


def naive_cosine(s, t, eps=EPS12):
    n, f = s.shape
    loss, grad = 0.0, np.zeros_like(s)
    for i in range(n):
        dot = sum(s[i, k] * t[i, k] for k in range(f))
        ss = sum(s[i, k] ** 2 for k in range(f)) + eps
        tt = sum(t[i, k] ** 2 for k in range(f)) + eps
        c = dot / math.sqrt(ss * tt)
        loss += (1.0 - c) / n
        for k in range(f):
            grad[i, k] = -(t[i, k] / math.sqrt(ss * tt) - c * s[i, k] / ss) / n
    return loss, grad


def naive_at(s, t, p=2.0, mode="code", eps=EPS12):
    """Loops over n, c, positions; the channel reduction is a sum, rescaled by 1/C in code mode."""
    n, cs = s.shape[:2]
    s2 = s.reshape(n, cs, -1)
    t2 = t.reshape(n, t.shape[1], -1)
    npos = s2.shape[2]

    def amap(x):
        c = x.shape[1]
        a = np.zeros((n, npos))
        for i in range(n):
            for q in range(npos):
                a[i, q] = sum(abs(x[i, k, q]) ** p for k in range(c))
                if mode == "code":
                    a[i, q] /= c
        return a

    a_s, a_t = amap(s2), amap(t2)
    q_s, q_t = np.zeros_like(a_s), np.zeros_like(a_t)
    norms = []
    for i in range(n):
        ns = math.sqrt(sum(a_s[i, q] ** 2 for q in range(npos)))
        nt = math.sqrt(sum(a_t[i, q] ** 2 for q in range(npos)))
        norms.append(ns)
        for q in range(npos):
            q_s[i, q] = a_s[i, q] / max(ns, eps)
            q_t[i, q] = a_t[i, q] / max(nt, eps)
    dq = np.zeros_like(q_s)
    if mode == "code":
        loss = sum((q_s[i, q] - q_t[i, q]) ** 2 for i in range(n) for q in range(npos)) / (n * npos)
        for i in range(n):
            for q in range(npos):
                dq[i, q] = 2.0 / (n * npos) * (q_s[i, q] - q_t[i, q])
    else:
        loss = 0.0
        for i in range(n):
            dist = math.sqrt(sum((q_s[i, q] - q_t[i, q]) ** 2 for q in range(npos)))
            loss += dist / n
            for q in range(npos):
                dq[i, q] = (q_s[i, q] - q_t[i, q]) / (n * dist) if dist > 0 else 0.0
    da = np.zeros_like(q_s)
    for i in range(n):
        proj = sum(q_s[i, q] * dq[i, q] for q in range(npos))
        for q in range(npos):
            if norms[i] >= eps:
                da[i, q] = (dq[i, q] - q_s[i, q] * proj) / norms[i]
            else:
                da[i, q] = dq[i, q] / eps
    grad = np.zeros_like(s2)
    for i in range(n):
        for k in range(cs):
            for q in range(npos):
                x = s2[i, k, q]
                dmap = p * abs(x) ** (p - 1) * np.sign(x)
                grad[i, k, q] = dmap * da[i, q] / (cs if mode == "code" else 1)
    return loss, grad.reshape(s.shape)


# ---------------------------------------------------------------------------------------------
# oracle 1: finite differences


@FEW
@given(st_pair())
@example((np.zeros((1, 1)), np.zeros((1, 1))))
@example((np.array([[1e4, -1e4]]), np.array([[0.0, 3.0]])))
def test_hint_fd(pair):
    s, t = pair
    out = hint_loss(s, t)
    assert_fd(lambda x: hint_loss(x, t).loss, s, out.grad)


@FEW
@given(st_pair())
@example((np.array([[1.0, 2.0]]), np.array([[1.0, 2.0]])))
@example((np.array([[1e4, -3.0]]), np.array([[-2.0, 5.0]])))
def test_cosine_fd(pair):
    s, t = pair
    # The loss is scale-free in s: a step relative to |s_i| is fine except for rows that are
    # nearly zero compared with sqrt(eps) = 1e-6, where the function bends (next test).
    norms = np.linalg.norm(s, axis=1)
    assume(np.all(norms > 1e-3))
    out = cosine_loss(s, t)
    # The loss is scale-free, so its third derivative grows like 1/|s|^3: keep the step (the
    # absolute part included) proportional to the smallest row.
    assert_fd(lambda x: cosine_loss(x, t).loss, s, out.grad, scale=min(1.0, norms.min()))


def test_cosine_fd_at_zero_rows():
    """At s_i = 0 the eps matters: check with a step far below sqrt(eps) = 1e-6."""
    s = np.array([[0.0, 0.0], [1e-8, -2e-8], [1.0, 2.0]])
    t = np.array([[3.0, 4.0], [1.0, 1.0], [0.0, 0.0]])
    out = cosine_loss(s, t)
    gradcheck.assert_gradient(lambda x: cosine_loss(x, t).loss, s, out.grad, h=1e-11, scale=1e-2,
                              tol=1e-4)


@FEW
@given(st_maps(), st.sampled_from([1.0, 1.5, 2.0, 3.0]), st.sampled_from(["code", "paper"]))
def test_at_fd(maps, p, mode):
    s, t = maps
    n = s.shape[0]
    a_s = (np.abs(s) ** p).reshape(n, s.shape[1], -1).sum(axis=1)
    # Stay away from the kinks: |f|^1 at f = 0, the normalize clamp, the paper norm at q_s = q_t.
    assume(np.all(np.linalg.norm(a_s, axis=1) > 1e-3))
    if p < 2.0:  # |f|^p bends sharply near f = 0 (p - 1 < 1): keep the step well inside
        assume(np.all(np.abs(s) > 1e-2))
    out = attention_transfer_loss(s, t, p=p, mode=mode)
    if mode == "paper":
        q = lambda x: (np.abs(x) ** p).reshape(n, x.shape[1], -1).sum(1)  # noqa: E731
        qs = q(s) / np.linalg.norm(q(s), axis=1, keepdims=True)
        qt = q(t) / np.maximum(np.linalg.norm(q(t), axis=1, keepdims=True), EPS12)
        assume(np.all(np.linalg.norm(qs - qt, axis=1) > 1e-3))
    # scale-free in each sample: step proportional to the smallest sample (see test_cosine_fd)
    smallest = np.abs(s).reshape(n, -1).max(axis=1).min()
    assert_fd(lambda x: attention_transfer_loss(x, t, p=p, mode=mode).loss, s, out.grad,
              scale=min(1.0, smallest))


@FEW
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_regressor_fd(n, h_s, h_t, seed):
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((n, h_s))
    params = init_regressor(h_s, h_t, rng=rng)
    w, b = params["W"], params["b"]
    dout = rng.standard_normal((n, h_t))  # random upstream gradient, never all ones
    _, cache = regressor_forward(h, w, b)
    dh, dw, db = regressor_backward(dout, cache)
    gradcheck.assert_gradient(lambda x: regressor_forward(x, w, b)[0], h, dh, dout=dout, tol=TOL)
    gradcheck.assert_gradient(lambda x: regressor_forward(h, x, b)[0], w, dw, dout=dout, tol=TOL)
    gradcheck.assert_gradient(lambda x: regressor_forward(h, w, x)[0], b, db, dout=dout, tol=TOL)


@FEW
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_hint_through_regressor_fd(n, h_s, h_t, seed):
    """The FitNets stage as the trainer uses it: hint_loss(r(h), t) w.r.t. h, W and b."""
    rng = np.random.default_rng(seed)
    h, t = rng.standard_normal((n, h_s)), rng.standard_normal((n, h_t))
    p = init_regressor(h_s, h_t, rng=rng)

    def loss(h_, w_, b_):
        return hint_loss(regressor_forward(h_, w_, b_)[0], t).loss

    r, cache = regressor_forward(h, p["W"], p["b"])
    dh, dw, db = regressor_backward(hint_loss(r, t).grad, cache)
    gradcheck.assert_gradient(lambda x: loss(x, p["W"], p["b"]), h, dh, tol=TOL)
    gradcheck.assert_gradient(lambda x: loss(h, x, p["b"]), p["W"], dw, tol=TOL)
    gradcheck.assert_gradient(lambda x: loss(h, p["W"], x), p["b"], db, tol=TOL)


# ---------------------------------------------------------------------------------------------
# oracle 2: naive twins


@FEW
@given(st_pair())
def test_hint_naive(pair):
    s, t = pair
    loss, grad = naive_hint(s, t)
    out = hint_loss(s, t)
    np.testing.assert_allclose(out.loss, loss, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(out.grad.ravel(), grad, rtol=1e-10, atol=1e-300)


@FEW
@given(st_pair())
@example((np.zeros((2, 2)), np.array([[1.0, 0.0], [0.0, 0.0]])))
def test_cosine_naive(pair):
    s, t = pair
    loss, grad = naive_cosine(s, t)
    out = cosine_loss(s, t)
    np.testing.assert_allclose(out.loss, loss, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.grad, grad, rtol=1e-10, atol=1e-12 * max(1, abs(grad).max()))


@FEW
@given(st_maps(), st.sampled_from([1.0, 2.0, 2.5]), st.sampled_from(["code", "paper"]))
@example((np.zeros((2, 2, 2, 2)), np.ones((2, 3, 2, 2))), 2.0, "code")
@example((np.full((1, 1, 2, 2), 1e-7), np.ones((1, 2, 2, 2))), 2.0, "code")  # clamped norm
def test_at_naive(maps, p, mode):
    s, t = maps
    if mode == "paper":
        # At q_s = q_t the non-squared norm has a kink: the direction of the round-off residue
        # is arbitrary, on both sides. Compare away from it.
        a = lambda x: (np.abs(x) ** p).reshape(x.shape[0], x.shape[1], -1).sum(1)  # noqa: E731
        u = lambda v: v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), EPS12)  # noqa: E731
        assume(np.all(np.linalg.norm(u(a(s)) - u(a(t)), axis=1) > 1e-6))
    loss, grad = naive_at(s, t, p=p, mode=mode)
    out = attention_transfer_loss(s, t, p=p, mode=mode)
    np.testing.assert_allclose(out.loss, loss, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(out.grad, grad, rtol=1e-10, atol=1e-12 * max(1, abs(grad).max()))


def test_regressor_naive():
    rng = np.random.default_rng(3)
    h, w, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)
    dout = rng.standard_normal((3, 2))
    out, cache = regressor_forward(h, w, b)
    dh, dw, db = regressor_backward(dout, cache)
    for i in range(3):
        for j in range(2):
            assert out[i, j] == pytest.approx(sum(h[i, k] * w[k, j] for k in range(4)) + b[j],
                                              rel=1e-12)
    for k in range(4):
        for j in range(2):
            assert dw[k, j] == pytest.approx(sum(h[i, k] * dout[i, j] for i in range(3)),
                                             rel=1e-12)
        for i in range(3):
            assert dh[i, k] == pytest.approx(sum(dout[i, j] * w[k, j] for j in range(2)),
                                             rel=1e-12)
    for j in range(2):
        assert db[j] == pytest.approx(sum(dout[i, j] for i in range(3)), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# oracle 3: properties and hand-derived values


def test_hand_values():
    # hint: ((1-0)^2 + 0 + 0 + (0-1)^2) / 4 = 0.5
    assert hint_loss([[1.0, 2.0], [0.0, 0.0]], [[0.0, 2.0], [0.0, 1.0]]).loss == 0.5
    # cosine: orthogonal rows give 1, parallel rows 0 (up to eps) -> mean 0.5
    assert cosine_loss([[1.0, 0.0], [1.0, 1.0]], [[0.0, 2.0], [2.0, 2.0]]).loss == \
        pytest.approx(0.5, abs=1e-12)
    # AT: q_s = [1, 0], q_t = [1, 1]/sqrt2 -> mean of squares = ((1-r)^2 + r^2)/2, r = 1/sqrt2
    s = np.zeros((1, 2, 1, 2))
    s[0, :, 0, 0] = 1.0
    r = 1 / math.sqrt(2)
    assert attention_transfer_loss(s, np.ones((1, 3, 1, 2))).loss == \
        pytest.approx(((1 - r) ** 2 + r**2) / 2, rel=1e-12)
    # paper mode: the non-squared distance ||q_s - q_t|| = sqrt((1-r)^2 + r^2)
    assert attention_transfer_loss(s, np.ones((1, 3, 1, 2)), mode="paper").loss == \
        pytest.approx(math.sqrt((1 - r) ** 2 + r**2), rel=1e-12)


@FEW
@given(st_maps())
def test_at_mean_equals_sum_after_normalisation(maps):
    """The channel mean and the channel sum give the same normalised map (the 1/C cancels)."""
    s, t = maps
    n = s.shape[0]
    code = attention_transfer_loss(s, t)
    # Rebuild code mode from sum-maps: same loss, and the paper-mode map is the sum-map.
    q = lambda x: (x**2).reshape(n, x.shape[1], -1).sum(1)  # noqa: E731
    def unit(a):
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), EPS12)
    qs_sum, qs_mean = unit(q(s)), unit(q(s) / s.shape[1])
    # Only above the clamp: below eps, normalize is x / eps and the 1/C no longer cancels.
    assume(np.all(np.linalg.norm(q(s), axis=1) > 1e-6 * s.shape[1]))
    assume(np.all(np.linalg.norm(q(t), axis=1) > 1e-6 * t.shape[1]))
    np.testing.assert_allclose(qs_sum, qs_mean, rtol=1e-12, atol=1e-15)
    expected = np.mean((qs_sum - unit(q(t))) ** 2)
    assert code.loss == pytest.approx(expected, rel=1e-10, abs=1e-15)


@FEW
@given(st_maps(), st.floats(0.01, 100.0))
def test_at_invariant_to_per_sample_scale(maps, c):
    s, t = maps
    # above the normalize clamp on both sides (below it the map is x / eps, not scale-free)
    assume(np.all(np.abs(s).reshape(s.shape[0], -1).max(axis=1) > 1e-2))
    assume(np.all(np.abs(t).reshape(t.shape[0], -1).max(axis=1) > 1e-2))
    base = attention_transfer_loss(s, t).loss
    assert attention_transfer_loss(c * s, t).loss == pytest.approx(base, rel=1e-8, abs=1e-12)
    assert attention_transfer_loss(s, c * t).loss == pytest.approx(base, rel=1e-8, abs=1e-12)


@FEW
@given(st_pair(), st.floats(0.01, 100.0))
def test_cosine_properties(pair, c):
    s, t = pair
    out = cosine_loss(s, t)
    # parallel rows give cos = 1 + 1 ulp (e.g. [87, 87, 87] and [47.9, 47.9, 47.9])
    assert -1e-15 <= out.loss <= 2.0 + 1e-15
    norms = np.linalg.norm(s, axis=1)
    assume(np.all(norms > 1e-3))
    # Scale-free up to the eps on the squared norms: |delta cos| <= eps / min(|s_i|^2, |c s_i|^2)
    slack = 2 * EPS12 / (min(c, 1.0) ** 2 * norms.min() ** 2)
    assert cosine_loss(c * s, t).loss == pytest.approx(out.loss, rel=1e-8, abs=slack + 1e-14)
    # Radial part of the gradient: zero but for the eps. Differentiating c_n along s_n gives
    # <grad_n, s_n> = -c_n eps / (N (|s_n|^2 + eps)), derived by hand from the docstring.
    n = s.shape[0]
    ss, tt = norms**2 + EPS12, np.sum(t * t, axis=1) + EPS12
    cos = np.sum(s * t, axis=1) / np.sqrt(ss * tt)
    radial = np.einsum("nf,nf->n", out.grad, s)
    # round-off: the two terms of <grad_n, s_n> are each ~ |t_n||s_n|/D_n and cancel
    # (L1 norms bound the L2 ones and do not underflow for rows like [1e-246])
    l1_s, l1_t = np.abs(s).sum(axis=1), np.abs(t).sum(axis=1)
    floor = 1e-14 * np.max(l1_t * l1_s / np.sqrt(ss * tt)) / n
    np.testing.assert_allclose(radial, -cos * EPS12 / (n * ss), rtol=1e-6, atol=floor + 1e-300)


@FEW
@given(batch())
def test_zero_when_equal(s):
    assert hint_loss(s, s) == (0.0, pytest.approx(np.zeros_like(s)))
    assert np.all(hint_loss(s, s).grad == 0)
    assume(np.all(np.linalg.norm(s, axis=1) > 1e-3))
    out = cosine_loss(s, s)
    ss = np.sum(s * s, axis=1)
    # identical rows: cos = |s|^2 / (|s|^2 + eps), so the loss is the mean of eps / (|s|^2 + eps)
    assert out.loss == pytest.approx(np.mean(EPS12 / (ss + EPS12)), rel=1e-4, abs=1e-15)
    # identical rows: grad_n = -eps s_n / (N (|s_n|^2 + eps)^2), which is about eps / (N |s|^3),
    # not 0, for small |s| (found by hypothesis at s = [[0.125]]); the floor is the round-off
    # of the two cancelling terms, each of size 1 / (N |s|)
    n = s.shape[0]
    expected = -EPS12 * s / (n * (ss + EPS12)[:, None] ** 2)
    floor = 1e-14 * np.max(1.0 / np.sqrt(ss)) / n
    np.testing.assert_allclose(out.grad, expected, rtol=1e-5, atol=floor)
    maps = s[:, None, :]
    for mode in ("code", "paper"):
        out = attention_transfer_loss(maps, maps, mode=mode)
        assert out.loss == 0.0
        assert np.all(out.grad == 0)


def test_at_different_channel_counts_and_mlp_shape():
    rng = np.random.default_rng(0)
    s, t = rng.standard_normal((4, 3, 5, 5)), rng.standard_normal((4, 7, 5, 5))
    out = attention_transfer_loss(s, t)
    assert out.grad.shape == s.shape and np.isfinite(out.loss)
    h_s, h_t = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    assert attention_transfer_loss(h_s[:, None, :], h_t[:, None, :]).grad.shape == (4, 1, 6)


def test_degenerate_inputs_are_finite():
    # zero student maps: zero attention map, zero gradient (|f|^(p-1) vanishes)
    out = attention_transfer_loss(np.zeros((2, 2, 2, 2)), np.ones((2, 3, 2, 2)))
    assert np.isfinite(out.loss) and np.all(out.grad == 0)
    out = attention_transfer_loss(np.zeros((2, 2, 2, 2)), np.ones((2, 3, 2, 2)), p=1.0)
    assert np.all(out.grad == 0)
    # paper mode where q_s == q_t: the norm's kink, gradient taken as 0 (like torch.norm)
    s = np.ones((1, 2, 2, 2))
    out = attention_transfer_loss(s, 3 * s, mode="paper")
    assert out.loss == 0.0 and np.all(out.grad == 0)
    # zero rows in cosine: c = 0, loss 1, gradient -t / (N sqrt(eps (|t|^2 + eps)))
    t = np.array([[3.0, 4.0]])
    out = cosine_loss(np.zeros((1, 2)), t)
    assert out.loss == 1.0
    np.testing.assert_allclose(out.grad, -t / math.sqrt(EPS12 * (25.0 + EPS12)), rtol=1e-12)
    out = cosine_loss(np.zeros((1, 2)), np.zeros((1, 2)))
    assert out.loss == 1.0 and np.all(out.grad == 0)


def test_at_tiny_norm_matches_normalize_clamp():
    """Below eps, F.normalize is x / 1e-12: the gradient is the upstream one times 1e12."""
    s = np.full((1, 1, 1, 2), 1e-7)  # map = 1e-14 per position: norm 1.4e-14 < 1e-12
    t = np.ones((1, 1, 1, 2))
    out = attention_transfer_loss(s, t)
    q_s = np.full(2, 1e-14 / EPS12)
    q_t = np.full(2, 1 / math.sqrt(2))
    dq = 2 * (q_s - q_t) / 2
    np.testing.assert_allclose(out.grad.ravel(), 2 * 1e-7 * dq / EPS12, rtol=1e-12)


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    s, t = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4))
    assert hint_loss(s, s.copy()).grad.dtype == np.float32
    assert hint_loss(s, t).grad.dtype == np.float64  # mixed -> float64
    assert cosine_loss(s, s + 1).grad.dtype == np.float32
    m = s[:, None, :]
    assert attention_transfer_loss(m, m * 2).grad.dtype == np.float32
    out, _ = regressor_forward(s, init_regressor(4, 2, dtype=np.float32)["W"],
                               np.zeros(2, np.float32))
    assert out.dtype == np.float32


def test_init_regressor_reproducible():
    a, b = init_regressor(5, 3, rng=7), init_regressor(5, 3, rng=7)
    assert np.array_equal(a["W"], b["W"]) and np.array_equal(a["b"], b["b"])
    assert np.abs(a["W"]).max() <= 1 / math.sqrt(5)


def test_exported_at_top_level():
    for name in ("hint_loss", "cosine_loss", "attention_transfer_loss"):
        assert getattr(minikd, name) is getattr(minikd.losses.features, name)
    for name in ("init_regressor", "regressor_forward", "regressor_backward"):
        assert getattr(minikd, name) is getattr(minikd.nn.regressor, name)


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("call, exc, words", [
    (lambda: hint_loss([[1.0, np.nan]], [[1.0, 2.0]]), ValueError, "'student_features'"),
    (lambda: hint_loss([[1.0, 2.0]], [[1.0, np.inf]]), ValueError, "'teacher_features'"),
    (lambda: hint_loss([[1.0, 2.0]], [[1.0, 2.0, 3.0]]), ValueError, "same shape"),
    (lambda: hint_loss([1.0, 2.0], [1.0, 2.0]), ValueError, "at least 2"),
    (lambda: hint_loss(np.zeros((0, 2)), np.zeros((0, 2))), ValueError, "non-empty"),
    (lambda: hint_loss([[True]], [[1.0]]), TypeError, "boolean"),
    (lambda: cosine_loss([[1j, 2]], [[1.0, 2.0]]), TypeError, "complex"),
    (lambda: cosine_loss(np.zeros((2, 2, 2)), np.zeros((2, 2, 2))), ValueError, "2-D"),
    (lambda: cosine_loss(np.array([[None]]), [[1.0]]), TypeError, "object"),
    (lambda: attention_transfer_loss(np.ones((2, 3)), np.ones((2, 3))), ValueError, "at least 3"),
    (lambda: attention_transfer_loss(np.ones((2, 1, 3)), np.ones((3, 1, 3))), ValueError,
     "'teacher_maps' parameter of attention_transfer_loss must be an array with N = 2 rows"),
    (lambda: attention_transfer_loss(np.ones((2, 1, 3)), np.ones((2, 1, 4))), ValueError,
     "same N and spatial size"),
    (lambda: attention_transfer_loss(np.ones((2, 1, 3)), np.ones((2, 1, 3)), p=0.5), ValueError,
     "'p' parameter of attention_transfer_loss must be a float in the range [1, 16]"),
    (lambda: attention_transfer_loss(np.ones((2, 1, 3)), np.ones((2, 1, 3)), p="2"), TypeError,
     "'p'"),
    (lambda: attention_transfer_loss(np.ones((2, 1, 3)), np.ones((2, 1, 3)), mode="Paper"),
     ValueError, "'mode'"),
    (lambda: init_regressor(0, 3), ValueError, "'in_features'"),
    (lambda: init_regressor(2, 3.0), TypeError, "'out_features'"),
    (lambda: regressor_forward(np.ones((2, 3)), np.ones((4, 2)), np.ones(2)), ValueError, "'W'"),
    (lambda: regressor_forward(np.ones((2, 3)), np.ones((3, 2)), np.ones(3)), ValueError, "'b'"),
    (lambda: regressor_backward(np.ones((2, 5)),
                                regressor_forward(np.ones((2, 3)), np.ones((3, 2)),
                                                  np.ones(2))[1]), ValueError, "'dout'"),
    (lambda: regressor_backward(np.ones((2, 2)), None), TypeError, "'cache'"),
    (lambda: regressor_backward(np.ones((2, 2)), (np.ones(3), 1)), TypeError, "'cache'"),
])
def test_bad_input(call, exc, words):
    with pytest.raises(exc, match=None) as info:
        call()
    assert words in str(info.value)


JUNK = st.one_of(
    st.none(), st.text(max_size=3), st.floats(), st.booleans(),
    arrays(st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128]),
           st.lists(st.integers(0, 3), min_size=0, max_size=4).map(tuple),
           elements=None),
)


@FEW
@given(JUNK, JUNK, st.sampled_from(["hint", "cos", "at", "at_paper"]))
def test_malformed_inputs_raise_only_value_or_type_errors(a, b, which):
    fn = {"hint": hint_loss, "cos": cosine_loss,
          "at": attention_transfer_loss,
          "at_paper": lambda x, y: attention_transfer_loss(x, y, mode="paper")}[which]
    try:
        out = fn(a, b)
    except (ValueError, TypeError):
        return
    assert np.isfinite(out.loss) and np.all(np.isfinite(out.grad))


# ---------------------------------------------------------------------------------------------
# kernels and the regressor's boundary

from minikd.losses import features  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_public_losses_are_their_kernels_on_checked_read_only_input(dtype):
    rng = np.random.default_rng(8)
    s, t = rng.standard_normal((4, 6)).astype(dtype), rng.standard_normal((4, 6)).astype(dtype)
    m_s, m_t = rng.standard_normal((2, 3, 2, 2)).astype(dtype), \
        rng.standard_normal((2, 5, 2, 2)).astype(dtype)
    for x in (s, t, m_s, m_t):
        x.setflags(write=False)
    cases = [(hint_loss(s, t), features.hint_loss_kernel(s, t)),
             (cosine_loss(s, t), features.cosine_loss_kernel(s, t))]
    for p in (1.0, 2.0, 3.0):
        for mode in ("code", "paper"):
            cases.append((attention_transfer_loss(m_s, m_t, p=p, mode=mode),
                          features.attention_transfer_loss_kernel(m_s, m_t, p=p, mode=mode)))
    for public, kernel in cases:
        assert kernel.loss == public.loss and np.array_equal(kernel.grad, public.grad)
        assert kernel.grad.dtype == dtype


def test_cosine_rows_scaled_or_not_give_the_atens_formula():
    """Rows with entries above 1 are divided by their max first: same value as the formula."""
    rng = np.random.default_rng(9)
    s = rng.standard_normal((5, 4)) * np.array([[1e-3], [0.5], [3.0], [1e6], [1e150]])
    t = rng.standard_normal((5, 4)) * np.array([[2.0], [1e100], [0.1], [1e-5], [7.0]])
    loss, grad = naive_cosine(s[:3], t[:3])  # rows where Python floats do not overflow
    out = cosine_loss(s[:3], t[:3])
    np.testing.assert_allclose(out.loss, loss, rtol=1e-12)
    np.testing.assert_allclose(out.grad, grad, rtol=1e-10, atol=1e-15 * np.abs(grad).max())
    # every row is scale-free (up to eps): the huge rows agree with their scaled-down copies
    scaled = s / np.array([[1.0], [1.0], [1.0], [1e6], [1e150]])
    ref = cosine_loss(scaled, t / np.array([[1.0], [1e100], [1.0], [1.0], [1.0]]))
    assert cosine_loss(s, t).loss == pytest.approx(ref.loss, rel=1e-12)


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"dtype": "foo"}, TypeError, "'dtype' parameter of init_regressor"),
    ({"dtype": np.int64}, TypeError, "numpy.float32 or numpy.float64"),
    ({"dtype": object}, TypeError, "'dtype'"),
    ({"rng": "abc"}, TypeError, "'rng' parameter of init_regressor"),
    ({"rng": -1}, TypeError, "'rng'"),
    ({"rng": 1.5}, TypeError, "'rng'"),
])
def test_init_regressor_names_bad_dtype_and_rng(kwargs, exc, words):
    # Before: numpy's "data type 'foo' not understood" and SeedSequence's own messages.
    with pytest.raises(exc) as info:
        init_regressor(3, 2, **kwargs)
    assert words in str(info.value) and "Got" in str(info.value)


def test_init_regressor_float32():
    p = init_regressor(3, 2, rng=0, dtype="float32")
    assert p["W"].dtype == np.float32 and p["b"].dtype == np.float32


def test_losses_floor_does_not_import_the_nn_floor():
    """Arrows point down: the losses import only each other and the ground (_validation)."""
    import ast
    from pathlib import Path

    for path in (Path(minikd.__file__).parent / "losses").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:  # from ..x import
                assert node.module == "_validation", f"{path.name} imports ..{node.module}"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("minikd") for a in node.names), path.name
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert not (node.module or "").startswith("minikd"), path.name
