"""Tests for minikd.tokens: finite differences, naive twins, properties, bad input."""

import re
import warnings
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import minikd
from minikd import gradcheck
from minikd.losses import mixtures, tokens, topk
from tests import naive_tokens as naive

# (divergence, hyperparameter name, convention) for every loss and JSD convention
CASES = [
    ("forward_kl", None, None),
    ("reverse_kl", None, None),
    ("generalized_jsd", "beta", "trl"),
    ("generalized_jsd", "beta", "gkd"),
    ("generalized_jsd", "beta", "trl_legacy"),
    ("generalized_jsd", "beta", "trl_logspace"),
    ("skew_kl", "alpha", None),
    ("skew_reverse_kl", "alpha", None),
]
IDS = [d if c is None else f"{d}-{c}" for d, _, c in CASES]
REDUCTIONS = ("batchmean", "sum", "mean", "sequence_mean")


def call(case, z_s, z_t, w=None, **kw):
    div, hp, conv = case
    extra = {}
    if hp is not None:
        extra[hp] = 0.3 if w is None else w
    if conv is not None:
        extra["convention"] = conv
    return tokens.token_divergence(z_s, z_t, divergence=div, **extra, **kw)


def twin(case, z_s, z_t, w=None, **kw):
    div, hp, conv = case
    return naive.divergence(z_s, z_t, div, w=None if hp is None else (0.3 if w is None else w),
                            convention=conv, **kw)


def weight(case):
    """A strategy for the case's beta / alpha (None when it has none)."""
    if case[1] == "beta":
        return st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.01, 0.99))
    if case[1] == "alpha":
        return st.one_of(st.just(0.0), st.floats(0.01, 0.9))
    return st.none()


logit = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, allow_subnormal=False)
unit_logit = st.floats(-60, 60, allow_nan=False, allow_infinity=False, allow_subnormal=False)
moderate = st.floats(-8, 8, allow_nan=False, allow_infinity=False, allow_subnormal=False)
temps = st.one_of(st.sampled_from([0.05, 0.5, 2.0, 100.0]), st.floats(0.05, 100.0))


@st.composite
def problem(draw, elements=logit, max_v=5):
    """Student and teacher logits (N, L, V) and a mask over (N, L)."""
    n, length, v = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(2, max_v))
    z_s = draw(hnp.arrays(np.float64, (n, length, v), elements=elements))
    z_t = draw(hnp.arrays(np.float64, (n, length, v), elements=elements))
    mask = draw(hnp.arrays(np.bool_, (n, length)))
    return z_s, z_t, mask


# -- oracle 1: central finite differences -------------------------------------------------------

def assert_fd(f, x, grad, T, name):
    """Normwise error <= 1e-5, with the floors that central differences cannot get below.

    * Where the gradient is exactly zero (identical rows) the normwise error of 0 against a
      truncation-level 1e-9 is 1; there we ask |numeric| <= 1e-6 T (T: the gradient's scale).
    * Rounding: central differences carry an error of about eps F / h, F the size of the terms
      the loss sums (|f|, T^2 and T max|x|); near saturation the gradient can be that small, so
      we accept an absolute error of 100 eps F / h there.
    * Truncation: with step d the central difference is D(d) = f' + d^2 f3 / 6 + O(d^4), f3 the
      third derivative. Where student and teacher nearly agree the gradient is tiny while f3 is
      not, and the d^2 term exceeds 1e-5 of the gradient. We measure it, (D(2d) - D(d)) / 3 is
      that term up to O(d^4), and accept twice it. Example (forward KL, renorm top-3 of
      z_s = [3, 3, 3, 3] against z_t = [6.1e-5, 0, 0, 0], T = 0.05): f3 along z_i is T^2 / T^3
      times the softmax's third cumulant p (1 - p)(1 - 2 p) = 2/27 at p = 1/3, so with
      d = 1e-5 (T + 3) the term is d^2 / (6 T) 2/27 = 2.3e-10, against a gradient of 1.4e-5.
    """
    numeric = gradcheck.numerical_gradient(f, x, scale=T)
    if np.abs(grad).max() <= 1e-12 * T:
        assert np.abs(numeric).max() <= 1e-6 * T, f"{name}: zero gradient, numeric {numeric}"
        return
    h_min = gradcheck.DEFAULT_H * (T + np.abs(x)).min()
    # the loss sums terms built from log-probabilities of size up to max|x| / T (times T^2)
    floor = 1e2 * np.finfo(np.float64).eps * (abs(f(x)) + T * T + T * np.abs(x).max()) / h_min
    err = np.abs(grad - numeric).max()
    bound = max(1e-5 * max(np.abs(grad).max(), np.abs(numeric).max()), floor)
    if err > bound:  # measure the truncation term only when it could matter
        wide = gradcheck.numerical_gradient(f, x, scale=T, h=2 * gradcheck.DEFAULT_H)
        bound = max(bound, 2 * np.abs(wide - numeric).max() / 3)
    assert err <= bound, f"{name}: max error {err:.3e} > {bound:.3e}\n{grad}\n{numeric}"


def test_fd_truncation_floor_explains_a_near_zero_gradient_and_still_catches_bugs():
    # the falsifying example of the old two-floor check (see assert_fd), pinned
    z_s, z_t, T = np.array([[[3.0, 3.0, 3.0, 3.0]]]), np.array([[[6.1e-5, 0.0, 0.0, 0.0]]]), 0.05
    idx = np.array([[[0, 1, 2]]])
    vals = np.take_along_axis(z_t, idx, -1)

    def f(z):
        return topk.topk_divergence(z, vals, idx, temperature=T).loss

    grad = topk.topk_divergence(z_s, vals, idx, temperature=T).grad
    errors = [np.abs(grad - gradcheck.numerical_gradient(f, z_s, scale=T, h=h)).max()
              for h in (1e-5, 2e-5)]
    expected = (1e-5 * (T + 3.0)) ** 2 / (6 * T) * 2 / 27  # d^2 f3 / 6 with f3 = (2/27) / T
    assert errors[0] == pytest.approx(expected, rel=0.01)  # the error is the truncation term,
    assert errors[1] == pytest.approx(4 * errors[0], rel=0.01)  # which scales as d^2,
    assert errors[0] > 1e-5 * np.abs(grad).max()  # and beats the relative bound alone
    assert_fd(f, z_s, grad, T, "pinned")
    for wrong in (grad / T, -grad, grad[..., ::-1], 1.001 * grad):  # no T, sign, permuted, 0.1 %
        with pytest.raises(AssertionError):
            assert_fd(f, z_s, wrong, T, "wrong")


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("T", [0.1, 1.0, 20.0])
def test_gradient_at_extreme_logits(case, T):
    # gaps of 1e4 at T = 0.1 saturate the softmax: flat, so the large FD step is harmless
    z_s = np.array([[[0.0, 1e4, -1e4, 3.0], [2.0, 1.0, 0.0, -1.0]]])
    z_t = np.array([[[1e4, 0.0, 5.0, -1e4], [0.0, 0.0, 0.0, 0.0]]])
    grad = call(case, z_s, z_t, temperature=T).grad
    assert_fd(lambda z: call(case, z, z_t, temperature=T).loss, z_s, grad, T, str(case))


@given(case=st.sampled_from(CASES), data=st.data())
def test_gradient_matches_finite_differences(case, data):
    # logits in units of T (|z / T| <= 60): the FD step h (T + |z|) then moves z / T by at most
    # 6e-4, where the O(step^2) truncation stays below 1e-5 even where nothing saturates
    z_s, z_t, mask = data.draw(problem(elements=unit_logit))
    T, w = data.draw(temps), data.draw(weight(case))
    z_s, z_t = z_s * T, z_t * T
    reduction = data.draw(st.sampled_from(REDUCTIONS))
    kw = dict(temperature=T, mask=mask, reduction=reduction)
    grad = call(case, z_s, z_t, w, **kw).grad
    assert_fd(lambda z: call(case, z, z_t, w, **kw).loss, z_s, grad, T, str(case))


@given(case=st.sampled_from(CASES), tail=st.sampled_from(["renorm", "bucket"]), data=st.data())
def test_topk_gradient_matches_finite_differences(case, tail, data):
    z_s, z_t, mask = data.draw(problem(elements=moderate, max_v=6))
    T, w = data.draw(temps), data.draw(weight(case))
    v = z_s.shape[-1]
    k = data.draw(st.integers(1, v - 1))
    idx = np.argsort(-z_t, axis=-1)[..., :k]
    lp = z_t / T - np.log(np.exp(z_t / T).sum(-1, keepdims=True))  # teacher log-probs at T
    kind = "log_probs" if tail == "bucket" else data.draw(st.sampled_from(["logits", "log_probs"]))
    vals = np.take_along_axis(lp if kind == "log_probs" else z_t, idx, axis=-1)
    div, hp, conv = case
    kw = dict(tail=tail, values_kind=kind, divergence=div, temperature=T, mask=mask,
              **({hp: 0.3 if w is None else w} if hp else {}),
              **({"convention": conv} if conv else {}))
    grad = topk.topk_divergence(z_s, vals, idx, **kw).grad
    assert_fd(lambda z: topk.topk_divergence(z, vals, idx, **kw).loss, z_s, grad, T,
              f"topk {tail} {case}")


# -- oracle 2: naive twins over positions ---------------------------------------------------------

@given(case=st.sampled_from(CASES), data=st.data())
@example(case=CASES[2], data=None)  # pinned, see the None branch
def test_matches_naive_twin(case, data):
    if data is None:  # pinned: all-zero student, a gap of 20 at T = 0.1, N = 1
        z_s, z_t, mask = np.zeros((1, 2, 3)), np.array([[[0, 2, 0], [1, 0, 0]]]), None
        T, w, reduction, t2 = 0.1, 0.5, "batchmean", True
    else:
        z_s, z_t, mask = data.draw(problem(elements=moderate))
        T, w = data.draw(st.floats(0.3, 10.0)), data.draw(weight(case))
        reduction, t2 = data.draw(st.sampled_from(REDUCTIONS)), data.draw(st.booleans())
    kw = dict(temperature=T, mask=mask, reduction=reduction, t2_scale=t2)
    loss, grad = call(case, z_s, z_t, w, **kw)
    loss_n, grad_n = twin(case, z_s, z_t, w, T=T, mask=mask, reduction=reduction, t2_scale=t2)
    np.testing.assert_allclose(loss, loss_n, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(grad, grad_n, rtol=1e-10, atol=1e-13)


@given(case=st.sampled_from(CASES), tail=st.sampled_from(["renorm", "bucket"]), data=st.data())
def test_topk_matches_naive_twin(case, tail, data):
    z_s, z_t, mask = data.draw(problem(elements=moderate, max_v=6))
    T, w = data.draw(st.floats(0.3, 10.0)), data.draw(weight(case))
    reduction = data.draw(st.sampled_from(REDUCTIONS))
    v = z_s.shape[-1]
    k = data.draw(st.integers(1, v - 1))
    idx = np.stack([np.random.default_rng(0).permutation(v)[:k]] * z_s.shape[1])[None]
    idx = np.broadcast_to(idx, z_s.shape[:-1] + (k,)).copy()
    lp = z_t / T - np.log(np.exp(z_t / T).sum(-1, keepdims=True))
    kind = "log_probs" if tail == "bucket" else data.draw(st.sampled_from(["logits", "log_probs"]))
    vals = np.take_along_axis(lp if kind == "log_probs" else z_t, idx, axis=-1)
    div, hp, conv = case
    ww = None if hp is None else (0.3 if w is None else w)
    loss, grad = topk.topk_divergence(
        z_s, vals, idx, tail=tail, values_kind=kind, divergence=div, temperature=T, mask=mask,
        reduction=reduction, **({hp: ww} if hp else {}), **({"convention": conv} if conv else {}))
    loss_n, grad_n = naive.topk(z_s, vals, idx, div, tail=tail, w=ww, convention=conv, T=T,
                                mask=mask, reduction=reduction, values_kind=kind)
    np.testing.assert_allclose(loss, loss_n, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grad, grad_n, rtol=1e-9, atol=1e-12)


def test_labels_and_ignore_index_match_naive_twin():
    rng = np.random.default_rng(3)
    z_s, z_t = rng.normal(size=(2, 4, 6)), rng.normal(size=(2, 4, 6))
    labels = np.array([[1, 3, 5, 0], [-1, -1, 2, -1]])
    mask = np.array([[True, True, False, True], [True, True, True, True]])
    loss, grad = tokens.forward_kl(z_s, z_t, labels=labels, mask=mask, ignore_index=-1)
    loss_n, grad_n = naive.divergence(z_s, z_t, "forward_kl", labels=labels, mask=mask,
                                      ignore_index=-1)
    np.testing.assert_allclose([loss], [loss_n], rtol=1e-12)
    np.testing.assert_allclose(grad, grad_n, rtol=1e-12, atol=1e-15)
    # with ignore_index=-1, -100 is a label like any other, and out of range: refused
    with pytest.raises(ValueError, match="labels"):
        tokens.forward_kl(z_s, z_t, labels=np.where(labels < 0, -100, labels), ignore_index=-1)


# -- oracle 3: properties -----------------------------------------------------------------------

def test_forward_kl_hand_value():
    # p = (1/2, 1/2), q = (1/4, 3/4): KL = 1/2 log 2 + 1/2 log(2/3); grad = q - p per position
    z_s, z_t = np.log([[0.25, 0.75]]), np.zeros((1, 2))
    loss, grad = tokens.forward_kl(z_s, z_t)
    assert loss == pytest.approx(0.5 * np.log(2) + 0.5 * np.log(2 / 3), rel=1e-14)
    np.testing.assert_allclose(grad, [[-0.25, 0.25]], rtol=1e-14)


def test_jsd_half_is_the_symmetric_jsd_by_scipy():
    from scipy.spatial.distance import jensenshannon
    rng = np.random.default_rng(5)
    z_s, z_t = rng.normal(size=(3, 7)), rng.normal(size=(3, 7))
    p = np.exp(z_t) / np.exp(z_t).sum(-1, keepdims=True)
    q = np.exp(z_s) / np.exp(z_s).sum(-1, keepdims=True)
    expected = np.mean(jensenshannon(p, q, axis=-1) ** 2)  # scipy returns the square root
    for conv in ("trl", "gkd", "trl_legacy"):
        assert mixtures.generalized_jsd(z_s, z_t, beta=0.5, convention=conv).loss == \
            pytest.approx(expected, rel=1e-12)


@given(problem(elements=st.floats(-3, 3)), st.floats(1.0, 5.0))
def test_jsd_limits_scale_to_forward_and_reverse_kl(prob, T):
    # the expansions hold while beta * p / q << 1: logit gaps <= 6 at T >= 1 and beta = 1e-9
    z_s, z_t, mask = prob
    kw = dict(temperature=T, mask=mask)
    fkl, rkl = tokens.forward_kl(z_s, z_t, **kw), tokens.reverse_kl(z_s, z_t, **kw)
    eps = 1e-9
    small = mixtures.generalized_jsd(z_s, z_t, beta=eps, convention="gkd", **kw)
    large = mixtures.generalized_jsd(z_s, z_t, beta=1 - eps, convention="gkd", **kw)
    # gkd: JSD(beta) / beta -> KL(p||q) as beta -> 0, JSD / (1 - beta) -> KL(q||p) as beta -> 1
    # + rounding: losses carry ~1e-16 absolute error, which / beta is ~1e-7
    tol = 1e-3 * max(fkl.loss, rkl.loss) + 1e-5
    assert small.loss / eps == pytest.approx(fkl.loss, abs=tol)
    assert large.loss / eps == pytest.approx(rkl.loss, abs=tol)
    gtol = 1e-3 * (np.abs(fkl.grad).max() + np.abs(rkl.grad).max()) + 1e-5
    np.testing.assert_allclose(small.grad / eps, fkl.grad, atol=gtol)
    np.testing.assert_allclose(large.grad / eps, rkl.grad, atol=gtol)
    # trl: the same interior, the unscaled KLs at the ends; gkd: 0 at the ends
    for b, ref in ((0.0, fkl), (1.0, rkl)):
        got = mixtures.generalized_jsd(z_s, z_t, beta=b, convention="trl", **kw)
        assert got.loss == ref.loss
        np.testing.assert_array_equal(got.grad, ref.grad)
        zero = mixtures.generalized_jsd(z_s, z_t, beta=b, convention="gkd", **kw)
        assert zero.loss == 0.0 and not zero.grad.any()
    assert mixtures.generalized_jsd(z_s, z_t, beta=0.3, convention="trl", **kw).loss == \
        mixtures.generalized_jsd(z_s, z_t, beta=0.3, convention="gkd", **kw).loss
    # trl_legacy is continuous: reverse KL at 0, forward KL at 1, unscaled
    tol2 = 1e-3 * max(fkl.loss, rkl.loss) + 1e-10

    def legacy(b):
        return mixtures.generalized_jsd(z_s, z_t, beta=b, convention="trl_legacy", **kw)

    assert legacy(eps).loss == pytest.approx(rkl.loss, abs=tol2)
    assert legacy(1 - eps).loss == pytest.approx(fkl.loss, abs=tol2)
    # trl_logspace: beta^2 FKL + (1 - beta)^2 RKL
    logspace = mixtures.generalized_jsd(z_s, z_t, beta=0.3, convention="trl_logspace", **kw)
    assert logspace.loss == pytest.approx(0.09 * fkl.loss + 0.49 * rkl.loss, rel=1e-10, abs=1e-14)


def test_trl_legacy_is_gkd_with_swapped_weights():
    # legacy(beta): m = beta q + (1-beta) p, weights beta on KL(p||m), (1-beta) on KL(q||m).
    # With b = 1 - beta: m = b p + (1-b) q, weights (1-b) on KL(p||m), b on KL(q||m). At b = 1/2
    # that is gkd; elsewhere it is not (the weights differ), which we check too.
    rng = np.random.default_rng(9)
    z_s, z_t = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    legacy = mixtures.generalized_jsd(z_s, z_t, beta=0.5, convention="trl_legacy").loss
    assert legacy == pytest.approx(mixtures.generalized_jsd(z_s, z_t, beta=0.5,
                                                          convention="gkd").loss, rel=1e-12)
    assert mixtures.generalized_jsd(z_s, z_t, beta=0.2, convention="trl_legacy").loss != \
        pytest.approx(mixtures.generalized_jsd(z_s, z_t, beta=0.8, convention="gkd").loss)


@given(problem(elements=moderate), st.floats(0.3, 5.0), st.floats(0.01, 0.99))
def test_jsd_bounded_by_the_mixture_entropy(prob, T, beta):
    # beta KL(p||m) + (1-beta) KL(q||m) <= H(beta) = -beta log beta - (1-beta) log(1-beta)
    z_s, z_t, _ = prob
    loss = mixtures.generalized_jsd(z_s, z_t, beta=beta, convention="gkd", temperature=T,
                                  t2_scale=False, reduction="batchmean").loss
    assert -1e-15 <= loss <= -beta * np.log(beta) - (1 - beta) * np.log1p(-beta) + 1e-12


@given(problem(elements=st.floats(-3, 3)), st.floats(1.0, 5.0))
def test_skew_at_alpha_zero_is_kl(prob, T):
    z_s, z_t, mask = prob
    kw = dict(temperature=T, mask=mask)
    for skew, plain in ((mixtures.skew_kl, tokens.forward_kl),
                        (mixtures.skew_reverse_kl, tokens.reverse_kl)):
        exact, ref = skew(z_s, z_t, alpha=0.0, **kw), plain(z_s, z_t, **kw)
        assert exact.loss == ref.loss
        # and continuous there, while alpha * p / q << 1 (gaps <= 6 at T >= 1)
        near = skew(z_s, z_t, alpha=1e-9, **kw)
        assert near.loss == pytest.approx(ref.loss, rel=1e-3, abs=1e-10)
        np.testing.assert_allclose(near.grad, ref.grad, rtol=1e-3, atol=1e-3 * np.abs(
            ref.grad).max() + 1e-12)


def test_skew_kl_bounds_the_gradient_where_the_student_has_no_mass():
    # teacher puts mass where the student has (almost) none: forward KL grows like the gap,
    # skew KL stays below log(1/alpha)
    z_s, z_t = np.array([[0.0, -60.0]]), np.array([[0.0, 0.0]])
    assert tokens.forward_kl(z_s, z_t).loss > 25
    assert mixtures.skew_kl(z_s, z_t, alpha=0.1).loss < np.log(10)


@given(case=st.sampled_from(CASES), z=hnp.arrays(np.float64, (2, 3, 4), elements=logit),
       shift=hnp.arrays(
    np.float64, (2, 3, 1), elements=st.floats(-100, 100)), T=temps,
    w=st.sampled_from([0.0, 0.3, 0.5]))
def test_zero_for_identical_distributions(case, z, shift, T, w):
    loss, grad = call(case, z, z + shift, w, temperature=T)
    assert abs(loss) <= 1e-9 * max(1.0, T * T)
    assert np.abs(grad).max() <= 1e-9 * max(1.0, T)


@given(case=st.sampled_from(CASES), prob=problem(elements=moderate), T=st.floats(0.3, 10.0),
       w=st.sampled_from([0.0, 0.4]),
       s1=st.floats(-50, 50), s2=st.floats(-50, 50))
def test_invariant_to_per_position_shifts_and_nonnegative(case, prob, T, w, s1, s2):
    z_s, z_t, mask = prob
    rows = np.linspace(-1, 1, z_s.shape[1])[None, :, None]
    base = call(case, z_s, z_t, w, temperature=T, mask=mask)
    moved = call(case, z_s + s1 * rows, z_t + s2 * rows, w, temperature=T, mask=mask)
    assert base.loss >= -1e-12
    assert moved.loss == pytest.approx(base.loss, rel=1e-8, abs=1e-10)
    np.testing.assert_allclose(moved.grad, base.grad, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_masked_positions_are_inert(case):
    rng = np.random.default_rng(11)
    z_s, z_t = rng.normal(size=(2, 5, 7)), rng.normal(size=(2, 5, 7))
    mask = rng.random((2, 5)) < 0.6
    mask[0, 0], mask[1, 1] = False, True
    base = call(case, z_s, z_t, temperature=2.0, mask=mask)
    assert not base.grad[~mask].any()
    z_s2, z_t2 = z_s.copy(), z_t.copy()
    z_s2[~mask] = 1e4 * rng.normal(size=(int((~mask).sum()), 7))
    z_t2[~mask] = -1e4
    moved = call(case, z_s2, z_t2, temperature=2.0, mask=mask)
    assert moved.loss == base.loss
    np.testing.assert_array_equal(moved.grad, base.grad)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_fully_masked_batch_is_zero_not_nan(case, reduction):
    z_s, z_t = np.ones((2, 3, 4)), np.zeros((2, 3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        by_mask = call(case, z_s, z_t, mask=np.zeros((2, 3), bool), reduction=reduction)
        by_labels = call(case, z_s, z_t, labels=np.full((2, 3), -100), reduction=reduction)
    for res in (by_mask, by_labels):
        assert res.loss == 0.0
        assert res.grad.shape == z_s.shape and not res.grad.any()


def test_reductions_relate_as_documented():
    rng = np.random.default_rng(2)
    z_s, z_t = rng.normal(size=(3, 4, 5)), rng.normal(size=(3, 4, 5))
    mask = rng.random((3, 4)) < 0.5
    mask[0, 0] = True
    m = mask.sum()
    r = {red: tokens.reverse_kl(z_s, z_t, mask=mask, reduction=red) for red in REDUCTIONS}
    assert r["sum"].loss == pytest.approx(m * r["batchmean"].loss, rel=1e-12)
    assert r["mean"].loss == pytest.approx(r["batchmean"].loss / 5, rel=1e-12)
    assert r["sequence_mean"].loss == pytest.approx(r["sum"].loss / 3, rel=1e-12)
    np.testing.assert_allclose(r["sum"].grad, m * r["batchmean"].grad, rtol=1e-12)
    # 2-D, no mask: sequence_mean is batchmean
    a = tokens.forward_kl(z_s[0], z_t[0], reduction="sequence_mean")
    b = tokens.forward_kl(z_s[0], z_t[0])
    assert a.loss == pytest.approx(b.loss, rel=1e-14)


def test_t2_scale_and_temperature():
    rng = np.random.default_rng(4)
    z_s, z_t = rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 3, 5))
    on = mixtures.skew_reverse_kl(z_s, z_t, temperature=4.0)
    off = mixtures.skew_reverse_kl(z_s, z_t, temperature=4.0, t2_scale=False)
    assert on.loss == pytest.approx(16 * off.loss, rel=1e-12)
    np.testing.assert_allclose(on.grad, 16 * off.grad, rtol=1e-12)
    # temperature T on logits z is temperature 1 on z / T (up to the T^2 and 1/T factors)
    plain = mixtures.skew_reverse_kl(z_s / 4, z_t / 4, t2_scale=False)
    assert off.loss == pytest.approx(plain.loss, rel=1e-12)
    np.testing.assert_allclose(off.grad, plain.grad / 4, rtol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_extreme_logits_stay_finite(case):
    z_s = np.array([[[0.0, 1e4, -1e4], [5e3, -5e3, 0.0]]])
    z_t = np.array([[[-1e4, 0.0, 1e4], [0.0, 0.0, 0.0]]])
    for T in (0.05, 0.5, 4.0, 20.0):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loss, grad = call(case, z_s, z_t, temperature=T)
        assert np.isfinite(loss) and np.isfinite(grad).all()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_stays_float32_and_close(case):
    rng = np.random.default_rng(8)
    z_s, z_t = rng.normal(size=(3, 4, 50)) * 3, rng.normal(size=(3, 4, 50)) * 3
    lo = call(case, z_s.astype(np.float32), z_t.astype(np.float32), temperature=2.0)
    hi = call(case, z_s, z_t, temperature=2.0)
    assert lo.grad.dtype == np.float32
    assert lo.loss == pytest.approx(hi.loss, rel=1e-4, abs=1e-6)
    assert gradcheck.normwise_error(lo.grad, hi.grad) < 1e-4
    mixed = call(case, z_s.astype(np.float32), z_t, temperature=2.0)
    assert mixed.grad.dtype == np.float64


def _read_only(*arrays):
    for a in arrays:
        a.flags.writeable = False  # an in-place write into it now raises
    return arrays


KERNEL_CALLS = {  # name: (kernel call, the public function's call) on (z_s, z_t, mask)
    **{f"{d}-{c}" if c else d: (
        lambda s, t, m, d=d, c=c: tokens.token_divergence_kernel(
            s, t, divergence=d, convention=c or "trl", beta=0.3, alpha=0.3, temperature=2.0,
            mask=m, reduction="batchmean", t2_scale=True),
        lambda s, t, m, d=d, c=c: tokens.token_divergence(
            s, t, divergence=d, convention=c or "trl", beta=0.3, alpha=0.3, temperature=2.0,
            mask=m)) for d, _, c in CASES},
    "forward_kl_kernel": (
        lambda s, t, m: tokens.forward_kl_kernel(s, t, temperature=2.0, mask=m),
        lambda s, t, m: tokens.forward_kl(s, t, temperature=2.0, mask=m)),
    "reverse_kl_kernel": (
        lambda s, t, m: tokens.reverse_kl_kernel(s, t, temperature=2.0, mask=m),
        lambda s, t, m: tokens.reverse_kl(s, t, temperature=2.0, mask=m)),
    "generalized_jsd_kernel": (
        lambda s, t, m: mixtures.generalized_jsd_kernel(s, t, beta=0.2, convention="trl_legacy",
                                                        temperature=2.0, mask=m),
        lambda s, t, m: mixtures.generalized_jsd(s, t, beta=0.2, convention="trl_legacy",
                                                 temperature=2.0, mask=m)),
    "skew_kl_kernel": (
        lambda s, t, m: mixtures.skew_kl_kernel(s, t, alpha=0.2, temperature=2.0, mask=m),
        lambda s, t, m: mixtures.skew_kl(s, t, alpha=0.2, temperature=2.0, mask=m)),
    "skew_reverse_kl_kernel": (
        lambda s, t, m: mixtures.skew_reverse_kl_kernel(s, t, alpha=0.2, temperature=2.0,
                                                        mask=m),
        lambda s, t, m: mixtures.skew_reverse_kl(s, t, alpha=0.2, temperature=2.0, mask=m)),
}


@pytest.mark.parametrize("name", sorted(KERNEL_CALLS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernels_never_write_their_inputs_and_equal_the_public_function(name, dtype):
    rng = np.random.default_rng(6)
    z_s, z_t = rng.normal(size=(3, 4, 7)).astype(dtype), rng.normal(size=(3, 4, 7)).astype(dtype)
    mask = rng.random((3, 4)) < 0.7
    before = [a.copy() for a in (z_s, z_t, mask)]
    kernel, public = KERNEL_CALLS[name]
    got = kernel(*_read_only(z_s, z_t, mask))
    for a, b in zip((z_s, z_t, mask), before, strict=True):
        np.testing.assert_array_equal(a, b)
    ref = public(z_s, z_t, mask)
    assert got.loss == ref.loss and got.grad.dtype == dtype
    np.testing.assert_array_equal(got.grad, ref.grad)


@pytest.mark.parametrize("tail", ["renorm", "bucket"])
def test_topk_kernel_never_writes_its_inputs(tail):
    z_s, z_t, lp = _teacher(seed=7)
    idx = np.argsort(-z_t, axis=-1)[..., :3]
    vals = np.take_along_axis(lp, idx, -1)
    mask = np.array([[True, False, True], [True, True, False]])
    arrays = (z_s, vals, idx, mask)
    before = [a.copy() for a in arrays]
    got = topk.topk_divergence_kernel(*_read_only(z_s, vals, idx), tail=tail,
                                      values_kind="log_probs", divergence="skew_reverse_kl",
                                      temperature=1.0, mask=_read_only(mask)[0])
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)
    ref = topk.topk_divergence(z_s, vals, idx, tail=tail, values_kind="log_probs",
                               divergence="skew_reverse_kl", mask=mask)
    assert got.loss == ref.loss
    np.testing.assert_array_equal(got.grad, ref.grad)


# -- top-k ----------------------------------------------------------------------------------------

def _teacher(v=8, seed=1):
    rng = np.random.default_rng(seed)
    z_s, z_t = rng.normal(size=(2, 3, v)) * 2, rng.normal(size=(2, 3, v)) * 2
    lp = z_t - np.log(np.exp(z_t).sum(-1, keepdims=True))
    return z_s, z_t, lp


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_topk_with_every_token_is_the_full_loss(case):
    z_s, z_t, lp = _teacher()
    idx = np.argsort(-z_t, axis=-1)  # K = V, in the teacher's order
    div, hp, conv = case
    kw = dict(divergence=div, temperature=1.5, **({hp: 0.3} if hp else {}),
              **({"convention": conv} if conv else {}))
    full = tokens.token_divergence(z_s, z_t, **kw)
    renorm = topk.topk_divergence(z_s, np.take_along_axis(z_t, idx, -1), idx, **kw)
    assert renorm.loss == pytest.approx(full.loss, rel=1e-12)
    np.testing.assert_allclose(renorm.grad, full.grad, rtol=1e-10, atol=1e-14)


def test_topk_bucket_forward_kl_gradient_spreads_the_tail_like_the_student():
    z_s, z_t, lp = _teacher(seed=2)
    k = 3
    idx = np.argsort(-z_t, axis=-1)[..., :k]
    vals = np.take_along_axis(lp, idx, -1)
    loss, grad = topk.topk_divergence(z_s, vals, idx, tail="bucket", t2_scale=False)
    q = np.exp(z_s) / np.exp(z_s).sum(-1, keepdims=True)
    p_tilde = np.zeros_like(q)
    np.put_along_axis(p_tilde, idx, np.exp(vals), -1)
    in_top = p_tilde > 0
    tail_t = 1 - np.exp(vals).sum(-1, keepdims=True)
    tail_s = np.where(in_top, 0, q).sum(-1, keepdims=True)
    p_tilde = np.where(in_top, p_tilde, tail_t * q / tail_s)
    np.testing.assert_allclose(grad, (q - p_tilde) / 6, rtol=1e-12, atol=1e-15)
    # data processing: merging the tail can only lose information
    assert loss <= tokens.forward_kl(z_s, z_t).loss + 1e-12


def test_topk_renorm_ignores_order_and_leaves_other_tokens_alone():
    z_s, z_t, _ = _teacher(seed=3)
    idx = np.argsort(-z_t, axis=-1)[..., :4]
    perm = idx[..., ::-1]
    a = topk.topk_divergence(z_s, np.take_along_axis(z_t, idx, -1), idx, divergence="reverse_kl")
    b = topk.topk_divergence(z_s, np.take_along_axis(z_t, perm, -1), perm,
                               divergence="reverse_kl")
    assert a.loss == pytest.approx(b.loss, rel=1e-13)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-12, atol=1e-15)
    outside = np.ones(z_s.shape, bool)
    np.put_along_axis(outside, idx, False, -1)
    assert not a.grad[outside].any()
    # values given as logits or as log-probabilities: the same renormalised distribution
    lp = z_t - 7.0
    c = topk.topk_divergence(z_s, np.take_along_axis(lp, idx, -1), idx, divergence="reverse_kl")
    assert c.loss == pytest.approx(a.loss, rel=1e-12)


@pytest.mark.parametrize("tail, kind", [("renorm", "logits"), ("renorm", "log_probs"),
                                        ("bucket", "log_probs")])
def test_topk_float32_stays_float32_and_close(tail, kind):
    z_s, z_t, lp = _teacher(v=40, seed=9)
    idx = np.argsort(-z_t, axis=-1)[..., :5]
    lp_t = z_t / 2 - np.log(np.exp(z_t / 2).sum(-1, keepdims=True))  # at T = 2
    vals = np.take_along_axis(lp_t if kind == "log_probs" else z_t, idx, -1)
    kw = dict(tail=tail, values_kind=kind, divergence="generalized_jsd", temperature=2.0)
    lo = topk.topk_divergence(z_s.astype(np.float32), vals.astype(np.float32), idx, **kw)
    hi = topk.topk_divergence(z_s, vals, idx, **kw)
    assert lo.grad.dtype == np.float32
    assert lo.loss == pytest.approx(hi.loss, rel=1e-4)
    assert gradcheck.normwise_error(lo.grad, hi.grad) < 1e-4


def test_topk_bucket_with_a_zero_tail_stays_finite():
    z_s, z_t, lp = _teacher(v=4, seed=4)
    idx = np.argsort(-z_t, axis=-1)  # K = V: the teacher's tail is exactly 0
    for div in tokens.DIVERGENCES:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loss, grad = topk.topk_divergence(z_s, np.take_along_axis(lp, idx, -1), idx,
                                                tail="bucket", divergence=div)
        assert np.isfinite(loss) and np.isfinite(grad).all()


# -- bad input -----------------------------------------------------------------------------------

GOOD = np.zeros((2, 3, 4))
BAD_CALLS = [
    (ValueError, "'student_logits' parameter of forward_kl must be finite",
     lambda: tokens.forward_kl(np.full((2, 4), np.nan), np.zeros((2, 4)))),
    (ValueError, "'teacher_logits' parameter of reverse_kl must be finite",
     lambda: tokens.reverse_kl(np.zeros((2, 4)), np.full((2, 4), np.inf))),
    (ValueError, "'teacher_logits' parameter of skew_kl must be logits with", lambda:
     mixtures.skew_kl(np.zeros((2, 4)), np.full((2, 4), 1e300), temperature=2.0)),
    (ValueError, "same shape", lambda: tokens.forward_kl(GOOD, np.zeros((2, 3, 5)))),
    (ValueError, "non-empty", lambda: tokens.forward_kl(np.zeros((0, 4)), np.zeros((0, 4)))),
    (ValueError, "dimension", lambda: tokens.forward_kl(1.0, 2.0)),
    (TypeError, "boolean", lambda: tokens.forward_kl(GOOD > 0, GOOD)),
    (TypeError, "complex", lambda: tokens.forward_kl(GOOD + 0j, GOOD)),
    (TypeError, "object", lambda: tokens.forward_kl(np.array([[None, 1]]), np.zeros((1, 2)))),
    (TypeError, "'student_logits' parameter of forward_kl must be a rectangular", lambda:
     tokens.forward_kl([[1, 2], [3]], [[1, 2], [3, 4]])),
    (TypeError, "'mask' parameter of generalized_jsd must be a boolean array of shape", lambda:
     mixtures.generalized_jsd(GOOD, GOOD, mask=[[True, False, True], [True]])),  # ragged
    (TypeError, "'mask' parameter of topk_divergence", lambda: topk.topk_divergence(
        GOOD, GOOD[..., :2], np.zeros((2, 3, 2), int) + [0, 1], mask=[[True], [True, False]])),
    (ValueError, "temperature", lambda: tokens.forward_kl(GOOD, GOOD, temperature=0.0)),
    (TypeError, "temperature", lambda: tokens.forward_kl(GOOD, GOOD, temperature="2")),
    (ValueError, "beta", lambda: mixtures.generalized_jsd(GOOD, GOOD, beta=1.5)),
    (TypeError, "beta", lambda: mixtures.generalized_jsd(GOOD, GOOD, beta=None)),
    (ValueError, "convention", lambda: mixtures.generalized_jsd(GOOD, GOOD, convention="paper")),
    (ValueError, "alpha", lambda: mixtures.skew_kl(GOOD, GOOD, alpha=1.0)),
    (ValueError, "alpha", lambda: mixtures.skew_reverse_kl(GOOD, GOOD, alpha=-0.1)),
    (ValueError, "reduction", lambda: tokens.forward_kl(GOOD, GOOD, reduction="none")),
    (TypeError, "t2_scale", lambda: tokens.forward_kl(GOOD, GOOD, t2_scale=1)),
    (TypeError, "mask", lambda: tokens.forward_kl(GOOD, GOOD, mask=np.ones((2, 3)))),
    (ValueError, "mask", lambda: tokens.forward_kl(GOOD, GOOD, mask=np.ones((3, 2), bool))),
    (TypeError, "labels", lambda: tokens.forward_kl(GOOD, GOOD, labels=np.zeros((2, 3)))),
    (ValueError, "labels", lambda: tokens.forward_kl(GOOD, GOOD, labels=np.full((2, 3), 4))),
    (ValueError, "labels", lambda: tokens.forward_kl(GOOD, GOOD, labels=np.zeros(6, int))),
    (TypeError, "ignore_index", lambda: tokens.forward_kl(GOOD, GOOD, ignore_index=-1.5)),
    (TypeError, "ignore_index", lambda: tokens.forward_kl(GOOD, GOOD, labels=np.zeros((2, 3), int),
                                                          ignore_index="-100")),
    (ValueError, "divergence", lambda: tokens.token_divergence(GOOD, GOOD, divergence="kl")),
    (ValueError, "tail", lambda: topk.topk_divergence(
        GOOD, GOOD[..., :2], np.zeros((2, 3, 2), int) + [0, 1], tail="drop")),
    (ValueError, "topk_values", lambda: topk.topk_divergence(
        GOOD, np.zeros((2, 3, 5)), np.zeros((2, 3, 5), int))),
    (ValueError, "topk_values", lambda: topk.topk_divergence(
        GOOD, np.zeros((3, 2, 2)), np.zeros((3, 2, 2), int))),
    (ValueError, "topk_indices", lambda: topk.topk_divergence(
        GOOD, GOOD[..., :2], np.zeros((2, 3, 2), int))),  # repeated index
    (ValueError, "topk_indices", lambda: topk.topk_divergence(
        GOOD, GOOD[..., :2], np.full((2, 3, 2), 4) + [0, 1])),  # out of range
    (TypeError, "topk_indices", lambda: topk.topk_divergence(
        GOOD, GOOD[..., :2], np.zeros((2, 3, 2)) + [0, 1])),  # float indices
    (ValueError, "topk_indices", lambda: topk.topk_divergence(
        GOOD, GOOD[..., :2], np.zeros((2, 3, 3), int) + [0, 1, 2])),
    (ValueError, "at most 1", lambda: topk.topk_divergence(  # logits, not log-probs
        GOOD, GOOD[..., :2], np.zeros((2, 3, 2), int) + [0, 1], tail="bucket")),
    (ValueError, "at most 1", lambda: topk.topk_divergence(
        GOOD, GOOD[..., :2], np.zeros((2, 3, 2), int) + [0, 1], values_kind="log_probs")),
    (ValueError, "values_kind", lambda: topk.topk_divergence(
        GOOD, GOOD[..., :2] - 5, np.zeros((2, 3, 2), int) + [0, 1], tail="bucket",
        values_kind="logits")),
    (ValueError, "values_kind", lambda: topk.topk_divergence(
        GOOD, GOOD[..., :2], np.zeros((2, 3, 2), int) + [0, 1], values_kind="probs")),
]


@pytest.mark.parametrize("exc, match, fn", BAD_CALLS)
def test_bad_input_raises_a_clear_error(exc, match, fn):
    with pytest.raises(exc, match=match):
        fn()


junk = st.one_of(
    st.none(), st.booleans(), st.text(max_size=3), st.floats(allow_nan=True),
    hnp.arrays(st.sampled_from([np.float64, np.int64, np.bool_, np.complex128]),
               hnp.array_shapes(min_dims=0, max_dims=3, max_side=3),
               elements=None),
    st.lists(st.one_of(st.floats(), st.lists(st.floats(), max_size=2)), max_size=3))


@given(a=junk, b=junk, kw=st.fixed_dictionaries({}, optional={
    "temperature": junk, "mask": junk, "labels": junk, "reduction": junk, "beta": junk}))
def test_malformed_input_only_raises_value_or_type_error(a, b, kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn in (lambda: mixtures.generalized_jsd(a, b, **kw),
                   lambda: topk.topk_divergence(a, b, np.zeros(np.shape(b), int), **{
                       k: v for k, v in kw.items() if k != "beta"})):
            try:
                loss, grad = fn()
            except (ValueError, TypeError):
                continue
            assert np.isfinite(loss) and np.isfinite(grad).all()


# -- the package exports and the docs page ------------------------------------------------------

def test_exported_at_top_level():
    for module, names in ((tokens, ("forward_kl", "reverse_kl", "token_divergence")),
                          (mixtures, ("generalized_jsd", "skew_kl", "skew_reverse_kl")),
                          (topk, ("topk_divergence",))):
        for name in names:
            assert getattr(minikd, name) is getattr(module, name)
            assert name in module.__all__


DOC = Path(__file__).resolve().parent.parent / "docs" / "token_losses.md"


def test_docs_examples_print_what_the_page_says(capsys):
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```\n+```text\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/token_losses.md has no python block followed by its text output"
    for code, expected in blocks:
        exec(compile(code, str(DOC), "exec"), {})  # noqa: S102 - our own docs
        assert capsys.readouterr().out == expected


def test_docs_name_log_2_as_minus_log_of_the_kept_mass():
    # issue 14 item 26: the worked example's reverse-KL optimum is about log 2 because it is
    # -log of the teacher's mass on the mode the student keeps, and each mode holds half of it
    text = DOC.read_text()
    assert "mass of the ignored mode" not in text
    kept = re.search(r"^-log\(teacher mass on tokens 0\.\.9\) = ([0-9.]+)$", text, flags=re.M)
    fitted = re.search(r"^reverse_kl +([0-9.]+) ", text, flags=re.M)
    assert kept and fitted and abs(float(kept[1]) - float(fitted[1])) < 0.01
    # the identity: p_s = p_t restricted to a set S gives KL(p_s || p_t) = -log p_t(S)
    rng = np.random.default_rng(26)
    z_t = rng.normal(size=(1, 9))
    keep = np.arange(9) < 4
    z_s = np.where(keep, z_t, z_t - 1e3)
    p_t = np.exp(z_t) / np.exp(z_t).sum()
    assert tokens.reverse_kl(z_s, z_t).loss == pytest.approx(-np.log(p_t[0, keep].sum()),
                                                             rel=1e-12)


# -- the core response losses on sequences (minikd.losses, (..., C) + mask) ----------------------

def test_core_kl_divergence_on_sequences_is_forward_kl():
    rng = np.random.default_rng(21)
    z_s, z_t = rng.normal(size=(3, 5, 11)) * 2, rng.normal(size=(3, 5, 11)) * 2
    mask = rng.random((3, 5)) < 0.6
    for T in (0.5, 1.0, 3.0):
        for red in ("batchmean", "sum", "mean"):
            core = minikd.kl_divergence(z_s, z_t, temperature=T, mask=mask, reduction=red)
            ours = tokens.forward_kl(z_s, z_t, temperature=T, mask=mask, reduction=red,
                                     t2_scale=False)
            assert core.loss == pytest.approx(ours.loss, rel=1e-12)
            np.testing.assert_allclose(core.grad, ours.grad, rtol=1e-10, atol=1e-15)
            kd = minikd.kd_loss(z_s, z_t, temperature=T, mask=mask, reduction=red)
            ours_t2 = tokens.forward_kl(z_s, z_t, temperature=T, mask=mask, reduction=red)
            assert kd.loss == pytest.approx(ours_t2.loss, rel=1e-12)
            np.testing.assert_allclose(kd.grad, ours_t2.grad, rtol=1e-10, atol=1e-15)


CORE = {
    "cross_entropy": lambda s, t, y, **kw: minikd.cross_entropy(s, y, **kw),
    "soft_cross_entropy": lambda s, t, y, **kw: minikd.soft_cross_entropy(s, t, temperature=2.0,
                                                                          **kw),
    "kl_divergence": lambda s, t, y, **kw: minikd.kl_divergence(s, t, temperature=2.0, **kw),
    "kd_loss": lambda s, t, y, **kw: minikd.kd_loss(s, t, temperature=3.0, **kw),
    "distillation_loss": lambda s, t, y, **kw: minikd.distillation_loss(s, t, y, alpha=0.7, **kw),
    "dkd_loss": lambda s, t, y, **kw: minikd.dkd_loss(s, t, y, **kw),
}
LABEL_TAKING = ("cross_entropy", "distillation_loss", "dkd_loss")


@pytest.mark.parametrize("name", sorted(CORE))
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "mean"])
def test_core_losses_on_sequences_equal_the_selected_rows(name, reduction):
    # (N, L, V) + mask (+ labels with -100) must equal the same loss on the selected rows, 2-D
    rng = np.random.default_rng(sum(map(ord, name + reduction)))
    z_s, z_t = rng.normal(size=(2, 6, 5)) * 2, rng.normal(size=(2, 6, 5)) * 2
    y = rng.integers(0, 5, size=(2, 6))
    mask = rng.random((2, 6)) < 0.7
    y[0, 1] = -100
    mask[1, 2] = False
    keep = mask & (y != -100) if name in LABEL_TAKING else mask
    fn = CORE[name]
    seq = fn(z_s, z_t, y if name in LABEL_TAKING else None, mask=mask, reduction=reduction)
    flat = fn(z_s[keep], z_t[keep], y[keep] if name in LABEL_TAKING else None,
              reduction=reduction)
    assert seq.grad.shape == z_s.shape
    assert seq.loss == pytest.approx(flat.loss, rel=1e-12)
    np.testing.assert_allclose(seq.grad[keep], flat.grad, rtol=1e-10, atol=1e-15)
    assert not seq.grad[~keep].any()
    # a fully masked batch: 0 and zeros, not NaN
    none = fn(z_s, z_t, y if name in LABEL_TAKING else None, mask=np.zeros((2, 6), bool),
              reduction=reduction)
    assert none.loss == 0.0 and not none.grad.any()


def test_bench_script_runs_every_kernel(capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / "tokens.py"
    spec = importlib.util.spec_from_file_location("minikd_bench_tokens", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--rows", "6", "--vocab", "50", "--k", "4", "--repeat", "1"])
    out = capsys.readouterr().out
    for name in ("forward_kl", "reverse_kl", "generalized_jsd beta=0.5", "skew_kl alpha=0.1",
                 "skew_reverse_kl alpha=0.1", "topk renorm k=4 +mask", "topk bucket k=4",
                 "forward_kl (public: checks + kernel)"):
        assert f"\n{name} " in out, name
