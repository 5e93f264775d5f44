"""Response-based losses: golden values, naive twins, scipy, finite differences, properties."""

import numpy as np
import pytest
import reference_losses as ref
from helpers import logit_pair, logits, temperatures
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import logsumexp, rel_entr
from scipy.special import softmax as sp_softmax

import minikd
from minikd import gradcheck

# The three slowest property tests (finite differences, Python-loop twins) run at most 50
# examples even in the ci profile; everything else takes the profile's count.
SLOW = settings(max_examples=min(50, settings().max_examples))

# Golden values computed independently of minikd: the definitions (Hinton et al. 2015, §2;
# TextBrewer's kd_ce_loss, airaria/TextBrewer@2c105fa6 src/textbrewer/losses.py) evaluated by
# a plain loop in mpmath at 40 significant digits, rounded to 10 decimals.
ZS = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
ZT = np.array([[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]])
Y = np.array([2, 0])
GOLDEN = {  # T: (batchmean·T², nn.KLDivLoss() 'mean'·T², TextBrewer kd_ce_loss)
    1.0: (0.6510139477, 0.2170046492, 1.5436155206),
    4.0: (0.7579994684, 0.2526664895, 1.1299462990),
}
GOLDEN_CE = 1.0744586306
GOLDEN_GRAD_T4 = np.array([[-0.3299074780, 0.0, 0.3299074780],
                           [-0.0503447831, -0.0974538332, 0.1477986164]])


# ---------------------------------------------------------------- golden values (oracle 2b)

@pytest.mark.parametrize("T", [1.0, 4.0])
def test_golden_kd_values(T):
    batchmean, mean, textbrewer = GOLDEN[T]
    assert minikd.kd_loss(ZS, ZT, temperature=T).loss == pytest.approx(batchmean, abs=1e-10)
    assert minikd.kd_loss(ZS, ZT, temperature=T, reduction="mean").loss == pytest.approx(
        mean, abs=1e-10)
    assert minikd.soft_cross_entropy(ZS, ZT, temperature=T).loss == pytest.approx(
        textbrewer, abs=1e-10)
    assert minikd.kl_divergence(ZS, ZT, temperature=T).loss == pytest.approx(
        batchmean / T**2, abs=1e-10)


def test_golden_ce_and_kd_gradient():
    assert minikd.cross_entropy(ZS, Y).loss == pytest.approx(GOLDEN_CE, abs=1e-10)
    np.testing.assert_allclose(minikd.kd_loss(ZS, ZT, temperature=4.0).grad, GOLDEN_GRAD_T4,
                               rtol=0, atol=1e-10)
    blend = minikd.distillation_loss(ZS, ZT, Y, temperature=4.0, alpha=0.9).loss
    assert blend == pytest.approx(0.9 * GOLDEN[4.0][0] + 0.1 * GOLDEN_CE, abs=1e-10)


# ---------------------------------------------------------------- scipy.special oracle (2c)

@given(logit_pair())
def test_kl_and_ce_match_scipy(case):
    zs, zt, T = case
    p_t = sp_softmax(zt / T, axis=1)
    kl_rows = rel_entr(p_t, sp_softmax(zs / T, axis=1)).sum(axis=1)
    # rel_entr needs p_s > 0; where p_s underflows (huge gaps) scipy returns inf: skip those rows.
    if np.all(np.isfinite(kl_rows)):
        got = minikd.kl_divergence(zs, zt, temperature=T).loss
        assert got == pytest.approx(kl_rows.mean(), rel=1e-9, abs=1e-9 * (1 + np.abs(zs).max() / T))
    cross = -(p_t * sp_log_softmax(zs / T, axis=1)).sum(axis=1).mean()
    assert minikd.soft_cross_entropy(zs, zt, temperature=T).loss == pytest.approx(
        cross, rel=1e-9, abs=1e-9 * (1 + np.abs(zs).max() / T))
    y = np.argmin(zt, axis=1)
    ce = np.mean(logsumexp(zs, axis=1) - zs[np.arange(len(y)), y])
    assert minikd.cross_entropy(zs, y).loss == pytest.approx(ce, rel=1e-10, abs=1e-10)


# ---------------------------------------------------------------- naive loop twins (2a)

def _labels(draw, shape, C):
    return draw(arrays(np.int64, shape, elements=st.integers(0, C - 1)))


@st.composite
def full_case(draw, lead=False):
    """student, teacher, T, labels, mask (or None), reduction, alpha."""
    if lead:
        shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))
        zs, zt, T = draw(logit_pair(lead=shape))
    else:
        zs, zt, T = draw(logit_pair())
    y = _labels(draw, zs.shape[:-1], zs.shape[-1])
    if draw(st.booleans()):
        y = np.where(draw(arrays(np.bool_, y.shape)), -100, y)
    mask = draw(st.none() | arrays(np.bool_, zs.shape[:-1]))
    reduction = draw(st.sampled_from(["batchmean", "sum", "mean"]))
    alpha = draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0))
    return zs, zt, T, y, mask, reduction, alpha


def _close(got, want, mag):
    """rtol 1e-10; atol for entries that are round-off of order eps · |z / T| (then ~0).

    The twins normalise by log-sum-exp of the unshifted row, so an entry that should be 0 comes
    out as ~eps·|u| there (u = z / T up to 2e5 here); ``mag`` bounds |u| times the loss's
    prefactors (T or 1/T, T², the DKD weights).
    """
    loss, grad = got
    want_loss, want_grad = want
    assert loss == pytest.approx(want_loss, rel=1e-10, abs=1e-14 * mag)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-14 * mag)


@SLOW
@given(st.booleans().flatmap(lambda lead: full_case(lead=lead)))
def test_vectorised_losses_match_naive_loops(case):
    zs, zt, T, y, mask, red, alpha = case
    kw = dict(mask=mask, reduction=red)
    mag = 10 * (1 + max(np.abs(zs).max(), np.abs(zt).max()) / min(T, 1.0)) * max(T * T, 1 / T)
    _close(minikd.cross_entropy(zs, y, **kw), ref.cross_entropy(zs, y, **kw), mag)
    _close(minikd.kl_divergence(zs, zt, temperature=T, **kw),
           ref.kl_divergence(zs, zt, temperature=T, **kw), mag)
    _close(minikd.soft_cross_entropy(zs, zt, temperature=T, **kw),
           ref.soft_cross_entropy(zs, zt, temperature=T, **kw), mag)
    _close(minikd.kd_loss(zs, zt, temperature=T, **kw), ref.kd_loss(zs, zt, temperature=T, **kw),
           mag)
    _close(minikd.distillation_loss(zs, zt, y, temperature=T, alpha=alpha, **kw),
           ref.distillation_loss(zs, zt, y, temperature=T, alpha=alpha, **kw), mag)
    _close(minikd.dkd_loss(zs, zt, y, temperature=T, alpha=alpha, beta=8.0 * (1 - alpha), **kw),
           ref.dkd_loss(zs, zt, y, temperature=T, alpha=alpha, beta=8.0 * (1 - alpha), **kw),
           8 * mag)


# ---------------------------------------------------------------- finite differences (oracle 1)

def _fd(loss_fn, z, T, name, natural):
    """Central differences in float64 (minikd.gradcheck), normwise error <= 1e-5.

    Step: ``h · (scale + |z_i|)`` with ``scale = T + 2 max|z|`` and ``h = 1e-4 T / scale``, i.e.
    a step between 1e-4 T and 1.5e-4 T for every entry: 1e-4 in u = z / T. The default rule
    (h = 1e-5, scale = T) takes a step of 1e-5 |z_i| for large |z_i|, which is 2 in u at
    |z| = 1e4, T = 0.05: fine where the softmax is saturated, but at a near-tie between two large
    logits the loss is curved on that scale and central differences err by ~(step/T)². A fixed
    u-step of 1e-4 keeps truncation (~1e-8), the rounding of z + step (ulp(z)/step <= 2e-7) and
    round-off in f (eps |u| / 1e-4 <= 5e-7) all well below the tolerance.

    ``natural`` is the loss's largest possible gradient entry (1/(N T) for KL, T/N for KD, 1/N
    for CE). atol = 1e-5 · natural only matters where the exact gradient vanishes (student equal
    to teacher up to a shift): there the normwise error is noise over noise.
    """
    grad = loss_fn(z).grad
    scale = T + 2 * np.abs(z).max()
    gradcheck.assert_gradient(lambda v: loss_fn(v).loss, z, grad, h=1e-4 * T / scale,
                              scale=scale, atol=1e-5 * natural, name=name)


PINNED = [
    (np.zeros((2, 3)), np.zeros((2, 3)), 4.0),  # all-zero logits
    (ZS, ZS.copy(), 2.0),  # student == teacher
    (np.array([[0.3, -1.2, 2.0, 0.1]]), np.array([[1.0, 0.0, -1.0, 0.5]]), 20.0),  # N = 1
    (np.array([[1.0, -1.0], [0.0, 3.0]]), np.array([[0.5, 0.5], [2.0, -2.0]]), 0.5),  # C = 2
    (np.array([[0.0, 1e4, -1e4]]), np.array([[1e4, 0.0, -1e4]]), 0.1),  # gaps of 1e4 at T = 0.1
]


def _pin(test):
    for zs, zt, T in PINNED:
        test = example((zs, zt, T))(test)
    return test


@SLOW
@_pin
@given(logit_pair())
def test_soft_losses_gradcheck(case):
    zs, zt, T = case
    N = zs.shape[0]
    _fd(lambda v: minikd.kl_divergence(v, zt, temperature=T), zs, T, "kl_divergence", 1 / (N * T))
    _fd(lambda v: minikd.kd_loss(v, zt, temperature=T), zs, T, "kd_loss", T / N)
    _fd(lambda v: minikd.soft_cross_entropy(v, zt, temperature=T), zs, T, "soft_cross_entropy",
        1 / (N * T))


@SLOW
@_pin
@given(logit_pair())
def test_label_losses_gradcheck(case):
    zs, zt, T = case
    y = np.argmax(zt, axis=1) if zs.shape[0] % 2 else np.argmin(zs, axis=1)
    N = zs.shape[0]
    _fd(lambda v: minikd.cross_entropy(v, y), zs, 1.0, "cross_entropy", 1 / N)
    _fd(lambda v: minikd.distillation_loss(v, zt, y, temperature=T, alpha=0.7), zs, min(T, 1.0),
        "distillation_loss", (0.7 * T + 0.3) / N)
    _fd(lambda v: minikd.dkd_loss(v, zt, y, temperature=T, alpha=1.0, beta=8.0), zs, T,
        "dkd_loss", 9 * T / N)


# ---------------------------------------------------------------- properties (oracle 3)

@given(logit_pair(), st.floats(-50, 50), st.floats(-50, 50))
def test_shift_invariance_per_row(case, a, b):
    zs, zt, T = case
    shifts = np.array([[a], [b]] * 4)[: zs.shape[0]]
    y = np.argmax(zt, axis=1)
    for f in (lambda s, t: minikd.kd_loss(s, t, temperature=T),
              lambda s, t: minikd.dkd_loss(s, t, y, temperature=T),
              lambda s, t: minikd.distillation_loss(s, t, y, temperature=T, alpha=0.5)):
        base, moved = f(zs, zt), f(zs + shifts, zt - shifts)
        tol = 1e-9 * (1 + np.abs(zs).max() / T) * max(1.0, T * T)
        assert moved.loss == pytest.approx(base.loss, rel=1e-7, abs=tol)
        np.testing.assert_allclose(moved.grad, base.grad, rtol=1e-6, atol=tol)


@given(logit_pair())
def test_kl_nonnegative_zero_iff_equal_up_to_shift(case):
    zs, zt, T = case
    loss, grad = minikd.kl_divergence(zs, zt, temperature=T)
    assert loss >= -1e-12 * (1 + np.abs(zs).max() / T)
    same, g0 = minikd.kl_divergence(zt + 3.0, zt, temperature=T)
    assert abs(same) <= 1e-12 * (1 + np.abs(zt).max() / T)
    assert np.abs(g0).max() <= 1e-12 * (1 + np.abs(zt).max() / T)
    # gradient rows sum to zero (softmax outputs are on the simplex)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-12 / T)


def test_kl_positive_when_distributions_differ():
    assert minikd.kl_divergence([[0.0, 1.0]], [[1.0, 0.0]], temperature=2.0).loss > 0.01


@given(logit_pair())
def test_soft_ce_minus_kl_is_teacher_entropy_and_grads_equal(case):
    zs, zt, T = case
    p_t = sp_softmax(zt / T, axis=1)
    entropy = -np.sum(np.where(p_t > 0, p_t * sp_log_softmax(zt / T, axis=1), 0.0), axis=1).mean()
    ce, kl = minikd.soft_cross_entropy(zs, zt, temperature=T), minikd.kl_divergence(
        zs, zt, temperature=T)
    assert ce.loss - kl.loss == pytest.approx(entropy, abs=1e-9 * (1 + np.abs(zs).max() / T))
    np.testing.assert_allclose(ce.grad, kl.grad, rtol=1e-12, atol=1e-15)


@given(logit_pair(), st.floats(0.0, 1.0))
def test_blend_linear_in_alpha_with_endpoints(case, alpha):
    zs, zt, T = case
    y = np.argmax(zt, axis=1)
    kd, ce = minikd.kd_loss(zs, zt, temperature=T), minikd.cross_entropy(zs, y)
    blend = minikd.distillation_loss(zs, zt, y, temperature=T, alpha=alpha)
    want = alpha * kd.loss + (1 - alpha) * ce.loss
    assert blend.loss == pytest.approx(want, rel=1e-10, abs=1e-10)
    np.testing.assert_allclose(blend.grad, alpha * kd.grad + (1 - alpha) * ce.grad,
                               rtol=1e-10, atol=1e-12)
    one = minikd.distillation_loss(zs, zt, None, temperature=T, alpha=1.0)
    assert one.loss == pytest.approx(kd.loss, rel=1e-14, abs=1e-300)
    np.testing.assert_allclose(one.grad, kd.grad, rtol=1e-14)
    zero = minikd.distillation_loss(zs, zt, y, temperature=T, alpha=0.0)
    assert zero.loss == pytest.approx(ce.loss, rel=1e-12)


def test_hinton_eq4_high_temperature_limit_rate():
    """kd_loss's gradient -> (centred z_s - centred z_t) / (N C) with error O(1/T) (eq. 4)."""
    rng = np.random.default_rng(0)
    N, C = 3, 5
    zs, zt = rng.normal(size=(N, C)), rng.normal(size=(N, C))
    limit = ((zs - zs.mean(1, keepdims=True)) - (zt - zt.mean(1, keepdims=True))) / (N * C)
    err = {}
    for T in (20.0, 100.0, 1000.0):
        grad = minikd.kd_loss(zs, zt, temperature=T).grad
        err[T] = np.abs(grad - limit).max() / np.abs(limit).max()
    assert err[1000.0] < 2e-3
    # O(1/T): a 5x larger T gives about 1/5 the error (1/25 would be O(1/T^2)).
    assert 1 / 6.5 < err[100.0] / err[20.0] < 1 / 4
    assert 1 / 13 < err[1000.0] / err[100.0] < 1 / 8


def test_t2_keeps_gradient_magnitude_comparable():
    """With T², the soft gradient norm changes little with T; without, it shrinks like 1/T²."""
    rng = np.random.default_rng(1)
    zs, zt = 3 * rng.normal(size=(8, 10)), 3 * rng.normal(size=(8, 10))
    kd = [np.abs(minikd.kd_loss(zs, zt, temperature=T).grad).sum() for T in (2.0, 20.0)]
    kl = [np.abs(minikd.kl_divergence(zs, zt, temperature=T).grad).sum() for T in (2.0, 20.0)]
    assert 0.2 < kd[1] / kd[0] < 5
    assert kl[1] / kl[0] < 0.05


# ---------------------------------------------------------------- extremes

def test_extremes_stay_finite_and_exact():
    zs = np.array([[0.0, 1e4, -1e4]])
    zt = np.array([[1e4, 0.0, -1e4]])
    for T in (0.1, 0.5, 1.0, 4.0, 20.0):
        for r in (minikd.kd_loss(zs, zt, temperature=T), minikd.kl_divergence(zs, zt,
                  temperature=T), minikd.soft_cross_entropy(zs, zt, temperature=T),
                  minikd.dkd_loss(zs, zt, [0], temperature=T),
                  minikd.distillation_loss(zs, zt, [0], temperature=T)):
            assert np.isfinite(r.loss) and np.all(np.isfinite(r.grad))
    # At T = 0.1 the softmaxes are one-hot: KL = (1e4 - 0) / 0.1 = 1e5 exactly (by hand).
    assert minikd.kl_divergence(zs, zt, temperature=0.1).loss == pytest.approx(1e5, rel=1e-12)
    np.testing.assert_allclose(minikd.kd_loss(zs, zt, temperature=0.1).grad,
                               [[-0.1, 0.1, 0.0]], atol=1e-15)
    assert minikd.cross_entropy([[0.0, 1e4]], [0]).loss == pytest.approx(1e4, rel=1e-12)


def test_all_zero_logits_by_hand():
    z = np.zeros((3, 4))
    assert minikd.kd_loss(z, z).loss == 0.0
    loss, grad = minikd.cross_entropy(z, [0, 1, 3])
    assert loss == pytest.approx(np.log(4), rel=1e-14)
    want = np.full((3, 4), 0.25)
    want[[0, 1, 2], [0, 1, 3]] -= 1
    np.testing.assert_allclose(grad, want / 3, atol=1e-16)


@given(logits(max_n=3), temperatures, st.floats(0, 4), st.floats(0, 4))
def test_float32_in_float32_out(z, T, a, b):
    zs = (z / (1 + np.abs(z).max()) * 20).astype(np.float32)
    zt = zs[::-1].copy() if zs.shape[0] > 1 else zs + 1.0
    y = np.argmax(zs, axis=1)
    calls = [
        lambda s: minikd.cross_entropy(s, y),
        lambda s: minikd.kl_divergence(s, zt, temperature=T),
        lambda s: minikd.soft_cross_entropy(s, zt, temperature=T),
        lambda s: minikd.kd_loss(s, zt, temperature=T),
        lambda s: minikd.distillation_loss(s, zt, y, temperature=T),
        lambda s: minikd.dkd_loss(s, zt, y, temperature=T, alpha=a, beta=b),
    ]
    for f in calls:
        r32, r64 = f(zs), f(zs.astype(np.float64))
        assert r32.grad.dtype == np.float32 and isinstance(r32.loss, float)
        assert r64.grad.dtype == np.float64
        scale = max(1.0, np.abs(r64.grad).max())
        np.testing.assert_allclose(r32.grad, r64.grad, rtol=0, atol=1e-4 * scale * max(1, T))


# ---------------------------------------------------------------- varied inputs

@pytest.mark.parametrize("C", [3, 64, 65, 130])
@pytest.mark.parametrize("lead", [(5,), (2, 3)])
@pytest.mark.parametrize("variant", ["plain", "masked", "float32 student", "sliced"])
def test_losses_match_naive_twins_on_varied_inputs(C, lead, variant):
    # Short and long rows, several leading axes, masks, ignored labels, non-contiguous inputs
    # and mixed dtypes, each against the loops written from the docstrings.
    rng = np.random.default_rng(C)
    zs = 3.0 * rng.standard_normal(lead + (C,))
    zt = 3.0 * rng.standard_normal(lead + (C,))
    y = rng.integers(0, C, size=lead)
    y.reshape(-1)[1] = -100  # an ignored position
    mask = None
    if variant == "masked":
        mask = rng.random(lead) < 0.7
        mask.reshape(-1)[0] = True
    if variant == "float32 student":
        zs = zs.astype(np.float32).astype(np.float64)  # the twin sees the same values
        zs_in = zs.astype(np.float32)
    elif variant == "sliced":
        wide = np.zeros(lead + (2 * C,))
        wide[..., ::2] = zs
        zs_in = wide[..., ::2]  # a strided view
        assert not zs_in.flags.c_contiguous
    else:
        zs_in = zs
    T = 2.5
    rtol = 1e-5 if variant == "float32 student" else 1e-10
    cases = [
        (minikd.cross_entropy(zs_in, y, mask=mask), ref.cross_entropy(zs, y, mask=mask)),
        (minikd.kd_loss(zs_in, zt, temperature=T, mask=mask),
         ref.kd_loss(zs, zt, temperature=T, mask=mask)),
        (minikd.kl_divergence(zs_in, zt, temperature=T, mask=mask, reduction="sum"),
         ref.kl_divergence(zs, zt, temperature=T, mask=mask, reduction="sum")),
        (minikd.soft_cross_entropy(zs_in, zt, temperature=T, mask=mask, reduction="mean"),
         ref.soft_cross_entropy(zs, zt, temperature=T, mask=mask, reduction="mean")),
        (minikd.distillation_loss(zs_in, zt, y, temperature=T, alpha=0.7, mask=mask),
         ref.distillation_loss(zs, zt, y, temperature=T, alpha=0.7, mask=mask)),
        (minikd.dkd_loss(zs_in, zt, y, temperature=T, mask=mask),
         ref.dkd_loss(zs, zt, y, temperature=T, mask=mask)),
    ]
    for (loss, grad), (ref_loss, ref_grad) in cases:
        assert grad.shape == zs.shape and grad.flags.c_contiguous
        assert loss == pytest.approx(ref_loss, rel=rtol, abs=1e-12)
        scale = max(np.abs(ref_grad).max(), 1e-300)
        assert np.abs(grad - ref_grad).max() / scale <= rtol
