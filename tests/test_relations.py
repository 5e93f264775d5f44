"""Relation-based losses: RKD distance and angle, SP, PKT.

Three oracles for each: finite differences (minikd.gradcheck, float64, hypothesis), naive loop
twins over i, j, k written from the docstring formulas, and properties (invariances, zero when
equal, degenerate batches). Plus bad input.
"""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minikd
from minikd import gradcheck
from minikd.losses import relations
from minikd.losses.relations import pkt_loss, rkd_angle_loss, rkd_distance_loss, sp_loss

TOL = 1e-5
# Each example costs tens of loss evaluations (finite differences): run a quarter of the
# profile's examples (ci: 25, dev: 8) per test and per loss, so the module stays within its
# share of the suite's time budget.
FEW = settings(max_examples=max(8, settings.default.max_examples // 4))
FD_FLOOR = 1e-8  # central-difference round-off floor, see test_features.py
LOSSES = {"rkd_distance": rkd_distance_loss, "rkd_angle": rkd_angle_loss, "sp": sp_loss,
          "pkt": pkt_loss}


def floats(lim=100.0):
    return st.floats(-lim, lim, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def st_pair(draw, min_n=1, max_n=4, lim=100.0):
    n = draw(st.integers(min_n, max_n))
    fs, ft = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s = draw(arrays(np.float64, (n, fs), elements=floats(lim)))
    t = draw(arrays(np.float64, (n, ft), elements=floats(lim)))
    return s, t


def min_pair_distance(x):
    n = x.shape[0]
    if n < 2:
        return np.inf
    d = np.linalg.norm(x[:, None] - x[None], axis=2)
    return d[~np.eye(n, dtype=bool)].min()


def assert_fd(f, x, analytic, scale=1.0):
    result = gradcheck.check_gradient(f, x, analytic, tol=TOL, scale=scale)
    if not result.ok and np.max(np.abs(result.analytic - result.numeric)) > FD_FLOOR:
        raise AssertionError(result.report())


def well_separated(s, t, rel=1e-2):
    """Rows far apart relative to their scale: away from the clamps and the kinks."""
    scale = max(1.0, np.abs(s).max())
    return min_pair_distance(s) > rel * scale and min_pair_distance(t) > 1e-3


# ---------------------------------------------------------------------------------------------
# naive twins, straight from the docstrings


def sl1(x):
    return (0.5 * x * x, x) if abs(x) < 1 else (abs(x) - 0.5, math.copysign(1.0, x))


def naive_pdist(e):
    n, f = e.shape
    d = np.zeros((n, n))
    active = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            si = sum(e[i, k] ** 2 for k in range(f))
            sj = sum(e[j, k] ** 2 for k in range(f))
            d2 = si + sj - 2 * sum(e[i, k] * e[j, k] for k in range(f))
            active[i, j] = d2 >= 1e-12
            d[i, j] = math.sqrt(max(d2, 1e-12))
    return d, active


def naive_rkd_distance(s, t):
    n = s.shape[0]
    m = n * (n - 1)
    dt, _ = naive_pdist(t)
    mu_t = sum(dt[i, j] for i in range(n) for j in range(n) if i != j) / m
    d, active = naive_pdist(s)
    mu = sum(d[i, j] for i in range(n) for j in range(n) if i != j) / m
    loss, g = 0.0, np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            v, dv = sl1(d[i, j] / mu - dt[i, j] / mu_t)
            loss += v / n**2
            g[i, j] = dv / n**2
    total = sum(g[k, l] * d[k, l] for k in range(n) for l in range(n))
    dd = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                dd[i, j] = g[i, j] / mu - total / (mu * mu * m)
    grad = np.zeros_like(s)
    for i in range(n):
        for j in range(n):
            if i != j and active[i, j]:
                grad[i] += (dd[i, j] + dd[j, i]) * (s[i] - s[j]) / d[i, j]
    return loss, grad


def naive_unit(v, eps=1e-12):
    norm = math.sqrt(sum(x * x for x in v))
    return v / max(norm, eps), norm


def naive_rkd_angle(s, t, eps=1e-12):
    n = s.shape[0]
    u = np.zeros((n, n, s.shape[1]))
    ut = np.zeros((n, n, t.shape[1]))
    norms = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            u[i, j], norms[i, j] = naive_unit(s[j] - s[i])
            ut[i, j], _ = naive_unit(t[j] - t[i])
    loss, g = 0.0, np.zeros((n, n, n))
    for i in range(n):
        for j in range(n):
            for k in range(n):
                v, dv = sl1(float(u[i, j] @ u[i, k]) - float(ut[i, j] @ ut[i, k]))
                loss += v / n**3
                g[i, j, k] = dv / n**3
    grad = np.zeros_like(s)
    for i in range(n):
        for j in range(n):
            du = sum((g[i, j, k] + g[i, k, j]) * u[i, k] for k in range(n))
            if norms[i, j] >= eps:
                dv = (du - u[i, j] * float(u[i, j] @ du)) / norms[i, j]
            else:
                dv = du / eps
            grad[j] += dv  # v_ij = s_j - s_i
            grad[i] -= dv
    return loss, grad


def naive_sp(s, t, eps=1e-12):
    n = s.shape[0]
    def gram_hat(x):
        g = np.array([[float(x[i] @ x[j]) for j in range(n)] for i in range(n)])
        rows = [naive_unit(g[i], eps) for i in range(n)]
        return np.array([r[0] for r in rows]), [r[1] for r in rows]
    gh_t, _ = gram_hat(t)
    gh, norms = gram_hat(s)
    loss = sum((gh_t[i, j] - gh[i, j]) ** 2 for i in range(n) for j in range(n)) / n**2
    dgh = 2.0 / n**2 * (gh - gh_t)
    dg = np.zeros((n, n))
    for i in range(n):
        if norms[i] >= eps:
            dg[i] = (dgh[i] - gh[i] * float(gh[i] @ dgh[i])) / norms[i]
        else:
            dg[i] = dgh[i] / eps
    grad = np.zeros_like(s)
    for i in range(n):
        for j in range(n):
            grad[i] += (dg[i, j] + dg[j, i]) * s[j]
    return loss, grad


def naive_pkt(s, t, eps=1e-7):
    n = s.shape[0]
    def probs(x):
        xh = np.array([x[i] / (math.sqrt(sum(v * v for v in x[i])) + eps) for i in range(n)])
        k = np.array([[(float(xh[i] @ xh[j]) + 1) / 2 for j in range(n)] for i in range(n)])
        rows = [sum(k[i]) for i in range(n)]
        return xh, np.array([[k[i, j] / rows[i] for j in range(n)] for i in range(n)]), rows
    _, pt, _ = probs(t)
    sh, ps, rows = probs(s)
    loss = sum(pt[i, j] * math.log((pt[i, j] + eps) / (ps[i, j] + eps))
               for i in range(n) for j in range(n)) / n**2
    dp = np.array([[-pt[i, j] / (n**2 * (ps[i, j] + eps)) for j in range(n)] for i in range(n)])
    dk = np.array([[(dp[i, j] - sum(dp[i, k] * ps[i, k] for k in range(n))) / rows[i]
                    for j in range(n)] for i in range(n)])
    grad = np.zeros_like(s)
    for i in range(n):
        dsh = 0.5 * sum((dk[i, j] + dk[j, i]) * sh[j] for j in range(n))
        norm = math.sqrt(float(s[i] @ s[i]))
        grad[i] = dsh / (norm + eps)
        if norm > 0:
            grad[i] -= s[i] * float(s[i] @ dsh) / (norm * (norm + eps) ** 2)
    return loss, grad


NAIVE = {"rkd_distance": naive_rkd_distance, "rkd_angle": naive_rkd_angle, "sp": naive_sp,
         "pkt": naive_pkt}


# ---------------------------------------------------------------------------------------------
# oracle 1: finite differences


@pytest.mark.parametrize("name", list(LOSSES))
@FEW
@given(pair=st_pair(min_n=2))
def test_fd(name, pair):
    s, t = pair
    assume(well_separated(s, t))
    assume(np.all(np.linalg.norm(s, axis=1) > 1e-2))  # SP/PKT normalise each row
    if name == "pkt":
        # Antipodal rows give P_s = 0, where log(P_s + 1e-7) bends on a scale of 1e-7.
        u = s / np.linalg.norm(s, axis=1, keepdims=True)
        assume((u @ u.T).min() > -0.99)
    fn = LOSSES[name]
    out = fn(s, t)
    # The losses are scale-free: their third derivatives grow like 1/distance^3, so the step's
    # absolute part follows the smallest distance or row norm.
    scale = min(1.0, min_pair_distance(s), np.linalg.norm(s, axis=1).min())
    assert_fd(lambda x: fn(x, t).loss, s, out.grad, scale=scale)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("seed", range(3))
def test_fd_random_wider(name, seed):
    """Larger random batches (N = 6, different widths) at several scales."""
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((6, 5)) * 10.0 ** (seed - 1)
    t = rng.standard_normal((6, 3)) * 10.0 ** (2 - seed)
    fn = LOSSES[name]
    assert_fd(lambda x: fn(x, t).loss, s, fn(s, t).grad)


# ---------------------------------------------------------------------------------------------
# oracle 2: naive twins


PINNED = [(np.array([[1.0, 2.0], [1.0, 2.0], [3.0, -1.0]]), np.array([[0.0], [1.0], [3.0]])),
          (np.zeros((3, 2)), np.array([[0.0], [1.0], [3.0]])),
          (np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[2.0], [2.0]]))]


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("pair", PINNED)
def test_naive_pinned(name, pair):
    """Duplicates, zero rows, a zero row beside a non-zero one."""
    check_naive(name, *pair)


@pytest.mark.parametrize("name", list(LOSSES))
@FEW
@given(pair=st_pair(min_n=2))
def test_naive(name, pair):
    s, t = pair
    # Keep the comparison well conditioned: a row (or a pairwise difference) that is tiny but
    # not zero is divided by its norm, which amplifies round-off by 1/norm on both sides.
    scale = max(1.0, np.abs(s).max())
    norms = np.linalg.norm(s, axis=1)
    assume(np.all((norms == 0) | (norms > 1e-3 * scale)))
    diffs = np.linalg.norm(s[:, None] - s[None], axis=2)
    assume(np.all((diffs == 0) | (diffs > 1e-3 * scale)))
    if name == "pkt":  # antipodal rows: P ~ 1e-8 computed by cancellation, then divided by
        u = s / np.maximum(norms, 1e-300)[:, None]
        assume((u @ u.T).min() > -0.99)
    check_naive(name, s, t)


def check_naive(name, s, t):
    loss, grad = NAIVE[name](s, t)
    out = LOSSES[name](s, t)
    np.testing.assert_allclose(out.loss, loss, rtol=1e-10, atol=1e-14)
    scale = max(1.0, np.abs(grad).max())
    np.testing.assert_allclose(out.grad, grad, rtol=1e-10, atol=1e-12 * scale)


# ---------------------------------------------------------------------------------------------
# oracle 3: properties, hand values, degenerate batches


def test_hand_values():
    tri = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    line = [[0.0], [1.0], [2.0]]
    # distance: mu_s = (2 + sqrt2)/3, mu_t = 4/3; pairs (AB, AC, BC)
    mu = (2 + math.sqrt(2)) / 3
    diffs = [1 / mu - 0.75, 1 / mu - 1.5, math.sqrt(2) / mu - 0.75]
    assert rkd_distance_loss(tri, line).loss == pytest.approx(
        2 * sum(0.5 * x * x for x in diffs) / 9, rel=1e-12)
    # angle: vertex A: 0 vs 1; B: 1/sqrt2 vs -1; C: 1/sqrt2 vs 1 -> smooth-L1 sum 3.5 over 27
    assert rkd_angle_loss(tri, line).loss == pytest.approx(7 / 54, rel=1e-12)
    # SP: G_hat_s = I, G_hat_t = all 1/sqrt2
    r = 1 / math.sqrt(2)
    assert sp_loss([[1.0, 0.0], [0.0, 1.0]], [[1.0], [1.0]]).loss == pytest.approx(
        (2 * (1 - r) ** 2 + 2 * r**2) / 4, rel=1e-12)
    # PKT: P_s = [[2/3, 1/3], [1/3, 2/3]], P_t = all 1/2 -> (1/4) log(9/8), up to eps
    assert pkt_loss([[1.0, 0.0], [0.0, 1.0]], [[1.0], [1.0]]).loss == pytest.approx(
        0.25 * math.log(9 / 8), rel=1e-6)


def random_rotation(rng, f):
    q, r = np.linalg.qr(rng.standard_normal((f, f)))
    return q * np.sign(np.diag(r))


@pytest.mark.parametrize("name", ["rkd_distance", "rkd_angle"])
@FEW
@given(pair=st_pair(min_n=2, max_n=5), seed=st.integers(0, 2**32 - 1),
       c=st.floats(0.01, 100.0))
def test_rkd_invariances(name, pair, seed, c):
    """Rotation, translation and scale of either side leave RKD unchanged."""
    s, t = pair
    assume(well_separated(s, t, rel=1e-3))
    fn = LOSSES[name]
    rng = np.random.default_rng(seed)
    base = fn(s, t)
    q_s, q_t = random_rotation(rng, s.shape[1]), random_rotation(rng, t.shape[1])
    shift_s, shift_t = rng.uniform(-50, 50, s.shape[1]), rng.uniform(-50, 50, t.shape[1])
    moved = fn(c * s @ q_s + shift_s, t)
    assert moved.loss == pytest.approx(base.loss, rel=1e-7, abs=1e-12)
    # the gradient moves with the student: rotated back and scaled by c
    # (round-off floor: the gradient scales like 1 / distance, and is ~0 when s matches t)
    floor = 1e-12 * max(1.0, 1.0 / c) / min_pair_distance(s)
    np.testing.assert_allclose(moved.grad @ q_s.T * c, base.grad, rtol=1e-6,
                               atol=1e-8 * np.abs(base.grad).max() + floor)
    assert fn(s, c * t @ q_t + shift_t).loss == pytest.approx(base.loss, rel=1e-7, abs=1e-12)


@FEW
@given(pair=st_pair(), c=st.floats(0.01, 100.0))
def test_sp_global_scale_invariance(pair, c):
    s, t = pair
    # above the normalize clamp (Gram rows of norm >= eps after scaling)
    assume(np.all(np.linalg.norm(s, axis=1) > 1e-2) and np.all(np.linalg.norm(t, axis=1) > 1e-2))
    base = sp_loss(s, t).loss
    assert sp_loss(c * s, t).loss == pytest.approx(base, rel=1e-8, abs=1e-12)
    assert sp_loss(s, c * t).loss == pytest.approx(base, rel=1e-8, abs=1e-12)


def test_sp_not_invariant_to_per_sample_scale():
    s = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    t = s + 0.3
    scaled = s * np.array([[1.0], [5.0], [0.2]])
    assert abs(sp_loss(scaled, t).loss - sp_loss(s, t).loss) > 1e-3


@FEW
@given(pair=st_pair(), seed=st.integers(0, 2**32 - 1))
def test_pkt_per_sample_scale_invariance(pair, seed):
    s, t = pair
    assume(np.all(np.linalg.norm(s, axis=1) > 1e-1) and np.all(np.linalg.norm(t, axis=1) > 1e-1))
    for x in (s, t):  # not antipodal: P = 0 there, where the 1e-7 inside the log dominates
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        assume((u @ u.T).min() > -0.99)
    rng = np.random.default_rng(seed)
    c_s = rng.uniform(0.1, 10.0, (s.shape[0], 1))
    c_t = rng.uniform(0.1, 10.0, (t.shape[0], 1))
    base = pkt_loss(s, t).loss
    # x / (|x| + eps) moves by ~eps / |x| <= 1e-5 relative under a scale; the loss with it
    assert pkt_loss(c_s * s, t).loss == pytest.approx(base, rel=1e-4, abs=1e-9)
    assert pkt_loss(s, c_t * t).loss == pytest.approx(base, rel=1e-4, abs=1e-9)


@FEW
@given(name=st.sampled_from(list(LOSSES)), pair=st_pair(min_n=2))
def test_zero_when_equal_and_nonnegative(name, pair):
    s, _ = pair
    fn = LOSSES[name]
    out = fn(s, s)
    assert out.loss == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.isfinite(out.grad))
    norms = np.linalg.norm(s, axis=1)
    if well_separated(s, s) and np.all(norms > 1e-2):
        u = s / norms[:, None]
        if name == "pkt":
            # PKT's minimum sits at s = t only up to its eps: dL/dP = -(1 - eps/(P + eps))/N^2,
            # whose constant part cancels in the row normalisation, leaving O(eps / min P).
            assume((u @ u.T).min() > -0.9)
            bound = 1e-6 / norms.min()
        else:
            bound = 1e-9 * max(1.0, 1.0 / np.abs(s).max())
        assert np.abs(out.grad).max() <= bound
    s2, t2 = pair
    assert fn(s2, t2).loss >= -1e-12


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("case", ["zeros", "duplicates", "one", "two", "all_equal"])
def test_degenerate_batches_are_finite_or_refused(name, case):
    rng = np.random.default_rng(0)
    t = rng.standard_normal((4, 3))
    s = {"zeros": np.vstack([np.zeros((1, 2)), rng.standard_normal((3, 2))]),
         "duplicates": np.array([[1.0, 2.0], [1.0, 2.0], [3.0, -1.0], [0.5, 0.5]]),
         "one": rng.standard_normal((1, 2)),
         "two": rng.standard_normal((2, 2)),
         "all_equal": np.tile([[0.3, -0.7]], (4, 1))}[case]
    t = t[: s.shape[0]]
    fn = LOSSES[name]
    if name == "rkd_distance" and case == "one":
        with pytest.raises(ValueError, match="at least 2 rows"):
            fn(s, t)
        return
    out = fn(s, t)
    assert np.isfinite(out.loss) and np.all(np.isfinite(out.grad))
    assert out.grad.shape == s.shape


def test_documented_degenerate_values():
    rng = np.random.default_rng(1)
    t = rng.standard_normal((4, 3))
    # RKD distance, all rows equal: psi = 1 off the diagonal, gradient exactly zero
    same = np.tile([[0.3, -0.7]], (4, 1))
    out = rkd_distance_loss(same, t)
    assert np.all(out.grad == 0)
    d_t = np.linalg.norm(t[:, None] - t[None], axis=2)
    psi_t = d_t / (d_t.sum() / 12)
    diff = 1.0 - psi_t[~np.eye(4, dtype=bool)]
    expected = np.sum(np.where(np.abs(diff) < 1, 0.5 * diff**2, np.abs(diff) - 0.5)) / 16
    assert out.loss == pytest.approx(expected, rel=1e-12)
    # RKD angle, N = 1 and N = 2: every angle is 0 or 1 on both sides
    for n in (1, 2):
        out = rkd_angle_loss(rng.standard_normal((n, 2)), rng.standard_normal((n, 5)))
        # |u|^2 = 1 up to round-off on each side
        assert out.loss == pytest.approx(0.0, abs=1e-15) and np.abs(out.grad).max() < 1e-12
    # SP, N = 1: both normalised Grams are [[1]]; a zero student row gives [[0]]: loss 1, grad 0
    assert sp_loss([[2.0, 1.0]], [[3.0]]).loss == pytest.approx(0.0, abs=1e-15)
    out = sp_loss([[0.0, 0.0]], [[3.0]])
    assert out.loss == 1.0 and np.all(out.grad == 0)
    # PKT, N = 1: P = [[1]] on both sides
    out = pkt_loss([[0.0, 0.0]], [[3.0]])
    assert out.loss == pytest.approx(0.0, abs=1e-15) and np.all(out.grad == 0)
    # PKT zero row: gradient is d(s_hat) / eps, finite (PyTorch's autograd gives NaN here)
    s = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]])
    out = pkt_loss(s, t[:3])
    assert np.all(np.isfinite(out.grad)) and np.abs(out.grad[0]).max() > 1e3


def test_angle_duplicate_rows_give_the_reference_huge_gradient():
    """normalize(0) has Jacobian I / 1e-12: the reference's gradient is ~1e12, and so is ours."""
    s = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, -1.0]])
    t = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 1.0]])
    out = rkd_angle_loss(s, t)
    assert np.isfinite(out.grad).all() and 1e9 < np.abs(out.grad).max() < 1e14
    # the two duplicate rows are pushed apart symmetrically
    np.testing.assert_allclose(out.grad[0], -out.grad[1], rtol=1e-9)


def test_float32_stays_float32_and_trailing_axes_flatten():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((4, 2, 3)).astype(np.float32)
    t = rng.standard_normal((4, 5)).astype(np.float32)
    for name, fn in LOSSES.items():
        out = fn(s, t)
        assert out.grad.dtype == np.float32, name
        assert out.grad.shape == s.shape, name
        ref = fn(s.astype(np.float64).reshape(4, 6), t.astype(np.float64))
        np.testing.assert_allclose(out.grad.reshape(4, 6), ref.grad, rtol=1e-3,
                                   atol=1e-5 * np.abs(ref.grad).max())


def test_exported_at_top_level():
    for name in ("rkd_distance_loss", "rkd_angle_loss", "sp_loss", "pkt_loss"):
        assert getattr(minikd, name) is getattr(minikd.losses.relations, name)


# ---------------------------------------------------------------------------------------------
# an independent oracle: PyTorch autograd on the upstream code (RepDistiller's RKD and SP; optional)


def test_matches_torch_autograd_when_available():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional

    def pdist(e):
        sq = e.pow(2).sum(1)
        res = (sq[:, None] + sq[None] - 2 * e @ e.t()).clamp(min=1e-12).sqrt().clone()
        res[range(len(e)), range(len(e))] = 0
        return res

    def rkd_d(s, t):
        td = pdist(t)
        td = td / td[td > 0].mean()
        d = pdist(s)
        return F.smooth_l1_loss(d / d[d > 0].mean(), td)

    def angles(x):
        n = F.normalize(x[None] - x[:, None], p=2, dim=2)
        return torch.bmm(n, n.transpose(1, 2)).view(-1)

    def sp(s, t):
        d = F.normalize(t @ t.t()) - F.normalize(s @ s.t())
        return (d * d).sum() / s.shape[0] ** 2

    def pkt(s, t, eps=1e-7):
        def p(x):
            x = x / (torch.sqrt((x**2).sum(1, keepdim=True)) + eps)
            k = (x @ x.t() + 1) / 2
            return k / k.sum(1, keepdim=True)
        pt, ps = p(t), p(s)
        return torch.mean(pt * torch.log((pt + eps) / (ps + eps)))

    ref = {"rkd_distance": rkd_d, "rkd_angle": lambda s, t: F.smooth_l1_loss(angles(s), angles(t)),
           "sp": sp, "pkt": pkt}
    rng = np.random.default_rng(5)
    cases = [(rng.standard_normal((5, 3)), rng.standard_normal((5, 4))),
             (np.array([[1.0, 2.0], [1.0, 2.0], [3.0, -1.0], [0.0, 0.0]]),
              rng.standard_normal((4, 3)))]
    for s, t in cases:
        for name, fn in LOSSES.items():
            ts = torch.tensor(s, requires_grad=True)
            value = ref[name](ts, torch.tensor(t))
            value.backward()
            out = fn(s, t)
            assert out.loss == pytest.approx(value.item(), rel=1e-12, abs=1e-15), name
            g = ts.grad.numpy()
            if name == "pkt" and not np.all(np.isfinite(g)):
                # autograd's sqrt backward at a zero row is 0/0; minikd returns the limit
                assert not np.any(s[np.isnan(g).any(axis=1)])
                ok = np.isfinite(g).all(axis=1)
                np.testing.assert_allclose(out.grad[ok], g[ok], rtol=1e-9, atol=1e-15)
                continue
            np.testing.assert_allclose(out.grad, g, rtol=1e-9, atol=1e-12 * np.abs(g).max())


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("s, t, exc, words", [
    ([[1.0, np.nan]], [[1.0]], ValueError, "'student_features'"),
    ([[1.0, 2.0]], [[np.inf]], ValueError, "'teacher_features'"),
    ([[1.0, 2.0], [0.0, 1.0]], [[1.0]], ValueError, "N = 2 rows"),
    ([1.0, 2.0], [1.0, 2.0], ValueError, "at least 2 dimension"),
    (np.zeros((0, 2)), np.zeros((0, 2)), ValueError, "non-empty"),
    ([[True, False]], [[1.0]], TypeError, "boolean"),
    ([[1j]], [[1.0]], TypeError, "complex"),
    (np.array([["a"]]), [[1.0]], TypeError, "string"),
    ([[1.0], [2.0, 3.0]], [[1.0], [2.0]], TypeError, "rectangular"),
])
def test_bad_input(name, s, t, exc, words):
    with pytest.raises(exc) as info:
        LOSSES[name](s, t)
    assert words in str(info.value) and f"of {name}_loss" in str(info.value)


JUNK = st.one_of(
    st.none(), st.text(max_size=3), st.floats(), st.booleans(),
    arrays(st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128]),
           st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple), elements=None),
)


@FEW
@given(name=st.sampled_from(list(LOSSES)), a=JUNK, b=JUNK)
def test_malformed_inputs_raise_only_value_or_type_errors(name, a, b):
    try:
        out = LOSSES[name](a, b)
    except (ValueError, TypeError):
        return
    assert np.isfinite(out.loss) and np.all(np.isfinite(out.grad))


# ---------------------------------------------------------------------------------------------
# kernels and boundary


KERNELS = {"rkd_distance": relations.rkd_distance_loss_kernel,
           "rkd_angle": relations.rkd_angle_loss_kernel, "sp": relations.sp_loss_kernel,
           "pkt": relations.pkt_loss_kernel}


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_public_loss_is_its_kernel_on_checked_read_only_input(name, dtype):
    rng = np.random.default_rng(6)
    s = rng.standard_normal((5, 2, 3)).astype(dtype)  # trailing axes: flattened by the kernel
    t = rng.standard_normal((5, 4)).astype(dtype)
    s.setflags(write=False)
    t.setflags(write=False)
    before = s.copy(), t.copy()
    out = LOSSES[name](s, t)
    kernel = KERNELS[name](s, t)
    assert kernel.loss == out.loss and np.array_equal(kernel.grad, out.grad)
    assert kernel.grad.shape == s.shape and kernel.grad.dtype == dtype
    assert np.array_equal(s, before[0]) and np.array_equal(t, before[1])  # pure


@pytest.mark.parametrize("name, n", [("rkd_angle", 2000), ("rkd_distance", 60_000),
                                     ("sp", 60_000), ("pkt", 60_000)])
def test_batches_that_cannot_fit_in_memory_are_refused_before_allocating(name, n):
    # rkd_angle holds (N, N, N) arrays: N = 2000 needs ~360 GiB in float64; the others (N, N):
    # N = 60000 needs ~320 GiB. Before: MemoryError, or the OOM killer after minutes.
    s = np.zeros((n, 4))
    with pytest.raises(ValueError) as info:
        LOSSES[name](s, s)
    text = str(info.value)
    assert f"of {name}_loss" in text and "'student_features'" in text and "GiB" in text
    assert f"N = {n}" in text


def test_parameters_use_the_student_teacher_vocabulary():
    import inspect

    for fn in list(LOSSES.values()) + list(KERNELS.values()):
        assert list(inspect.signature(fn).parameters) == ["student_features", "teacher_features"]
    out = sp_loss(student_features=[[1.0, 0.0], [0.0, 1.0]], teacher_features=[[1.0], [1.0]])
    assert out.loss == pytest.approx(0.292893, abs=1e-6)


def test_public_helpers_of_the_presets():
    e = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    d, active = relations.pairwise_distances(e)
    np.testing.assert_allclose(d, [[0, 5, 1e-6], [5, 0, 5], [1e-6, 5, 0]], rtol=1e-12)
    assert active.tolist() == [[False, True, False], [True, False, True], [False, True, False]]
    d, _ = relations.pairwise_distances(e, clamp=1e-10)
    assert d[0, 2] == pytest.approx(1e-5)
    value, slope = relations.smooth_l1(np.array([-3.0, -0.5, 0.0, 0.5, 1.0, 3.0]))
    assert value.tolist() == [2.5, 0.125, 0.0, 0.125, 0.5, 2.5]
    assert slope.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0, 1.0]
