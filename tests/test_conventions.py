"""Tests for minikd.conventions: each KD preset against a naive twin written from the library's
code (loops, in this file), finite differences at T != 1, a golden table computed independently
of minikd, the presets' known relations, and bad input."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minikd import gradcheck
from minikd.verify.conventions import CONVENTIONS, Convention, kd_loss_as

KD_NAMES = tuple(CONVENTIONS["kd"])

# Inputs and golden values computed from the libraries' formulas in float64, independently of
# minikd (by hand-written NumPy, not by this package).
Z_S = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
Z_T = [[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]]
Y = [2, 0]
GOLDEN = {  # T: (batchmean·T², 'mean'·T², TextBrewer kd_ce_loss, KD_Lib MSE(prob)·T², hard CE)
    1.0: (0.6510139477, 0.2170046492, 1.5436155206, 0.1250235293, 1.0744586306),
    4.0: (0.7579994684, 0.2526664895, 1.1299462990, 0.1677027773, 1.0744586306),
}
GOLDEN_GRAD_T4 = [[-0.3299074780, 0.0, 0.3299074780], [-0.0503447831, -0.0974538332,
                                                         0.1477986164]]

# Loop twins and O(N^3) relations are slow: these tests run at most 40 examples (fewer under
# the dev profile), to keep the suite inside its time budget.
FEWER = settings(max_examples=min(40, settings.default.max_examples))


# ---------------------------------------------------------------- naive twins (loops)

def _log_softmax_row(z, T):
    u = [v / T for v in z]
    m = max(u)
    lse = m + math.log(sum(math.exp(v - m) for v in u))
    return [v - lse for v in u]


def _softmax_row(z, T):
    return [math.exp(v) for v in _log_softmax_row(z, T)]


def _kl_div_pointwise(log_q, p):
    """F.kl_div(input=log_q, target=p) elementwise summed: p (log p - log_q), 0 where p == 0."""
    return sum(pi * (math.log(pi) - lq) for pi, lq in zip(p, log_q, strict=True) if pi > 0)


def _ce_mean(zs, y):
    """F.cross_entropy(z, y): mean over rows of -log_softmax(z)[y]."""
    return sum(-_log_softmax_row(z, 1.0)[k] for z, k in zip(zs, y, strict=True)) / len(zs)


def twin_repdistiller(zs, zt, y, T, a):
    # F.kl_div(log_softmax(y_s/T), softmax(y_t/T), size_average=False) * T**2 / B
    total = 0.0
    for z_s, z_t in zip(zs, zt, strict=True):
        total += _kl_div_pointwise(_log_softmax_row(z_s, T), _softmax_row(z_t, T))
    soft = total * T ** 2 / len(zs)
    return a * soft + ((1 - a) * _ce_mean(zs, y) if a != 1 else 0.0)


def twin_mdistiller(zs, zt, y, T, a):
    # F.kl_div(log_pred_student, pred_teacher, reduction="none").sum(1).mean() * T**2
    rows = [_kl_div_pointwise(_log_softmax_row(s, T), _softmax_row(t, T))
            for s, t in zip(zs, zt, strict=True)]
    soft = sum(rows) / len(rows) * T ** 2
    return a * soft + ((1 - a) * _ce_mean(zs, y) if a != 1 else 0.0)


def twin_torchdistill(zs, zt, y, T, a):
    # soft_loss = KLDivLoss('batchmean'); bare if its alpha (= 1 - a) == 0 or targets is None
    soft = sum(_kl_div_pointwise(_log_softmax_row(s, T), _softmax_row(t, T))
               for s, t in zip(zs, zt, strict=True)) / len(zs)
    td_alpha, td_beta = 1 - a, a
    if td_alpha == 0 or y is None:
        return soft
    return td_alpha * _ce_mean(zs, y) + td_beta * T ** 2 * soft


def twin_textbrewer(zs, zt, y, T, a):
    # -(p_T * F.log_softmax(logits_S / T, -1)).sum(-1).mean()
    rows = [-sum(p * q for p, q in zip(_softmax_row(t, T), _log_softmax_row(s, T), strict=True))
            for s, t in zip(zs, zt, strict=True)]
    soft = sum(rows) / len(rows)
    return a * soft + ((1 - a) * _ce_mean(zs, y) if a != 1 else 0.0)


def twin_kd_lib(zs, zt, y, T, a):
    # (1 - w) * CE + w * T * T * nn.MSELoss()(softmax(t/T), softmax(s/T))
    sq, count = 0.0, 0
    for s, t in zip(zs, zt, strict=True):
        for p_t, p_s in zip(_softmax_row(t, T), _softmax_row(s, T), strict=True):
            sq += (p_t - p_s) ** 2
            count += 1
    return ((1 - a) * _ce_mean(zs, y) if a != 1 else 0.0) + a * T * T * sq / count


def twin_kldivloss_mean(zs, zt, y, T, a):
    # nn.KLDivLoss()(log_softmax(s/T), softmax(t/T)) * (alpha*T*T) + CE * (1 - alpha)
    total, count = 0.0, 0
    for s, t in zip(zs, zt, strict=True):
        total += _kl_div_pointwise(_log_softmax_row(s, T), _softmax_row(t, T))
        count += len(s)
    return total / count * a * T * T + ((1 - a) * _ce_mean(zs, y) if a != 1 else 0.0)


def _keras_kld(zs, zt, T):
    # keras.losses.KLDivergence(): clip both to [1e-7, 1], sum y_true*log(y_true/y_pred), mean
    total = 0.0
    for s, t in zip(zs, zt, strict=True):
        for p_t, p_s in zip(_softmax_row(t, T), _softmax_row(s, T), strict=True):
            ct, cs = min(max(p_t, 1e-7), 1.0), min(max(p_s, 1e-7), 1.0)
            total += ct * math.log(ct / cs)
    return total / len(zs)


def twin_keras(zs, zt, y, T, a):
    k_alpha = 1 - a  # Keras' alpha weighs the student (hard) loss
    hard = _ce_mean(zs, y) if k_alpha != 0 else 0.0
    return k_alpha * hard + (1 - k_alpha) * _keras_kld(zs, zt, T) * T ** 2


def twin_keras_2020(zs, zt, y, T, a):
    k_alpha = 1 - a
    hard = _ce_mean(zs, y) if k_alpha != 0 else 0.0
    return k_alpha * hard + (1 - k_alpha) * _keras_kld(zs, zt, T)


def twin_hf_distilbert(zs, zt, y, T, a, mask=None):
    """Rows are the flattened leading positions; mask selects KD rows, y == -100 skips CE rows."""
    s_rows = np.asarray(zs, dtype=float).reshape(-1, np.shape(zs)[-1]).tolist()
    t_rows = np.asarray(zt, dtype=float).reshape(-1, np.shape(zt)[-1]).tolist()
    keep = [True] * len(s_rows) if mask is None else np.asarray(mask).reshape(-1).tolist()
    sel = [(s, t) for s, t, k in zip(s_rows, t_rows, keep, strict=True) if k]
    kl = sum(_kl_div_pointwise(_log_softmax_row(s, T), _softmax_row(t, T)) for s, t in sel)
    loss_ce = (kl / len(sel) if sel else 0.0) * T ** 2
    if a == 1:
        return a * loss_ce
    labels = np.asarray(y).reshape(-1).tolist()
    ce = [-_log_softmax_row(s, 1.0)[k] for s, k in zip(s_rows, labels, strict=True) if k != -100]
    return a * loss_ce + (1 - a) * (sum(ce) / len(ce) if ce else 0.0)


TWINS = {
    "repdistiller": twin_repdistiller, "mdistiller": twin_mdistiller,
    "torchdistill": twin_torchdistill, "textbrewer": twin_textbrewer, "kd_lib": twin_kd_lib,
    "hf_distilbert": twin_hf_distilbert, "pytorch_kldivloss_mean": twin_kldivloss_mean,
    "keras": twin_keras, "keras_2020": twin_keras_2020,
}


def _softmax_vjp_loop(dp, z, T):
    """dL/dz_j = sum_i dL/dp_i * p_i (delta_ij - p_j) / T, row by row."""
    out = []
    for g, row in zip(dp, z, strict=True):
        p = _softmax_row(row, T)
        out.append([sum(g[i] * p[i] * ((i == j) - p[j]) for i in range(len(p))) / T
                    for j in range(len(p))])
    return np.array(out)


def twin_grad_kd_lib_soft(zs, zt, T):
    """Gradient of T² · MSE(p_t, p_s) by the chain rule through the softmax Jacobian, in loops."""
    n, c = len(zs), len(zs[0])
    dp = [[2 * T * T * (ps - pt) / (n * c)
           for ps, pt in zip(_softmax_row(s, T), _softmax_row(t, T), strict=True)]
          for s, t in zip(zs, zt, strict=True)]
    return _softmax_vjp_loop(dp, zs, T)


def twin_grad_keras_soft(zs, zt, T):
    """Gradient of the clipped Keras KLDivergence (no T²): -ct / p_s where p_s >= 1e-7."""
    n = len(zs)
    dp = []
    for s, t in zip(zs, zt, strict=True):
        p_s, p_t = _softmax_row(s, T), _softmax_row(t, T)
        dp.append([-min(max(pt, 1e-7), 1.0) / ps / n if ps >= 1e-7 else 0.0
                   for ps, pt in zip(p_s, p_t, strict=True)])
    return _softmax_vjp_loop(dp, zs, T)


FD_H = 1e-6  # with ties at |z| ~ 1e3, h = 1e-5 truncates at ~1e-5 (the step is h (scale + |z|))


def assert_fd(f, x, grad, magnitude, *, scale, name):
    """Central differences (minikd.gradcheck) with a normwise tolerance of 1e-5, plus a per-entry
    floor for the roundoff of the differences, 1e-13 * magnitude / step_i, where magnitude
    bounds the terms the loss is computed from (e.g. T² for a T²-scaled KL): a gradient that
    is exactly 0 (student == teacher) or ~1e-8 (a saturated softmax) cannot be resolved
    relatively by differencing loss values."""
    numeric = gradcheck.numerical_gradient(f, x, h=FD_H, scale=scale)
    floor = 1e-13 * magnitude / (FD_H * (scale + np.abs(x)))
    size = max(np.abs(grad).max(), np.abs(numeric).max())
    if np.any(np.abs(grad - numeric) > 1e-5 * size + floor):
        gradcheck.assert_gradient(f, x, grad, h=FD_H, scale=scale, name=name)  # the report


# ---------------------------------------------------------------- strategies

_elem = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, allow_subnormal=False)
# Finite differences: logits within +-100 (|z/T| up to 2000 at T = 0.05); the +-1e4 extremes
# are pinned examples, and the naive twins above cover +-1e4.
_fd_elem = st.floats(-100, 100, allow_nan=False, allow_infinity=False, allow_subnormal=False)
_small = st.floats(-30, 30, allow_nan=False, allow_infinity=False, allow_subnormal=False)
_temps = st.sampled_from([0.05, 0.5, 2.0, 4.0, 20.0, 100.0]) | st.floats(0.05, 100.0)


@st.composite
def kd_problem(draw, elements=_elem):
    n = draw(st.integers(1, 4))
    c = draw(st.integers(2, 6))
    zs = draw(arrays(np.float64, (n, c), elements=elements))
    zt = draw(arrays(np.float64, (n, c), elements=elements))
    y = np.array(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    T = draw(_temps.filter(lambda v: v != 1.0))
    a = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]) | st.floats(0.0, 1.0))
    return zs, zt, y, T, a


# ---------------------------------------------------------------- registry

def test_registry_lists_every_kd_preset_the_issue_names():
    wanted = {"repdistiller", "mdistiller", "torchdistill", "textbrewer", "kd_lib",
              "hf_distilbert", "pytorch_kldivloss_mean", "keras"}
    assert wanted <= set(KD_NAMES)
    for name, conv in CONVENTIONS["kd"].items():
        assert isinstance(conv, Convention) and conv.name == name and conv.family == "kd"
        assert conv.source and conv.formula and conv.weights and conv.note
        assert callable(conv.kernel) and conv.kernel.__doc__


def test_every_preset_cites_a_repository_at_a_commit():
    for family in CONVENTIONS.values():
        for conv in family.values():
            repo, _, rest = conv.source.partition("@")
            assert "/" in repo and rest[:8].isalnum() and len(rest.split()[0]) >= 7, conv.source


# ---------------------------------------------------------------- golden table

@pytest.mark.parametrize("T", [1.0, 4.0])
def test_golden_table(T):
    batchmean_t2, mean_t2, textbrewer, kd_lib, hard = GOLDEN[T]
    for name in ("repdistiller", "mdistiller", "hf_distilbert", "keras"):
        assert kd_loss_as(name, Z_S, Z_T, temperature=T).loss == pytest.approx(batchmean_t2,
                                                                                 abs=1e-10)
    assert kd_loss_as("pytorch_kldivloss_mean", Z_S, Z_T, temperature=T).loss == \
        pytest.approx(mean_t2, abs=1e-10)
    assert kd_loss_as("textbrewer", Z_S, Z_T, temperature=T).loss == pytest.approx(textbrewer,
                                                                                   abs=1e-10)
    assert kd_loss_as("kd_lib", Z_S, Z_T, temperature=T).loss == pytest.approx(kd_lib, abs=1e-10)
    for name in KD_NAMES:  # alpha = 0: every preset is the plain hard cross-entropy
        assert kd_loss_as(name, Z_S, Z_T, Y, temperature=T, alpha=0.0).loss == \
            pytest.approx(hard, abs=1e-10)


def test_golden_gradient_t4():
    grad = kd_loss_as("repdistiller", Z_S, Z_T, temperature=4.0).grad
    np.testing.assert_allclose(grad, GOLDEN_GRAD_T4, atol=1e-10)


# ---------------------------------------------------------------- naive twins

PINNED = [  # (z_s, z_t, y, T, alpha)
    (np.array(Z_S), np.array(Z_T), np.array(Y), 4.0, 0.9),  # the §1.1 inputs
    (np.zeros((1, 2)), np.zeros((1, 2)), np.array([1]), 0.5, 0.5),  # all zero, N = 1, C = 2
    (np.array([[0.0, 1e4, -1e4]]), np.array([[1e4, 0.0, -1e4]]), np.array([0]), 0.1, 0.5),
    (np.array([[0.0, 3.0, 1.0]]), np.array([[0.0, 3.0, 1.0]]), np.array([1]), 20.0, 1.0),
    (np.array([[2.0, -1.0, 0.5, 0.0], [1.0, 1.0, -3.0, 2.0]]),
     np.array([[0.1, 0.2, -0.4, 1.5], [-2.0, 0.0, 1.0, 0.5]]), np.array([3, 1]), 2.5, 0.0),
]


@pytest.mark.parametrize("name", KD_NAMES)
@pytest.mark.parametrize("problem", PINNED)
def test_every_preset_on_pinned_inputs_twin_and_fd(name, problem):
    zs, zt, y, T, a = problem
    loss, grad = kd_loss_as(name, zs, zt, y, temperature=T, alpha=a)
    want = TWINS[name](zs.tolist(), zt.tolist(), y.tolist(), T, a)
    assert loss == pytest.approx(want, rel=1e-10, abs=1e-10 * max(1.0, T * T))
    assert_fd(lambda z: kd_loss_as(name, z, zt, y, temperature=T, alpha=a).loss, zs, grad,
              max(1.0, abs(loss), T * T), scale=T if a == 1.0 else min(T, 1.0),
              name=f"kd_loss_as({name!r})")


@FEWER
@given(name=st.sampled_from(KD_NAMES), problem=kd_problem())
def test_preset_matches_naive_twin(name, problem):
    zs, zt, y, T, a = problem
    got = kd_loss_as(name, zs, zt, y, temperature=T, alpha=a).loss
    want = TWINS[name](zs.tolist(), zt.tolist(), y.tolist(), T, a)
    assert got == pytest.approx(want, rel=1e-10, abs=1e-10 * max(1.0, T * T))


@FEWER
@given(problem=kd_problem(elements=_small))
def test_thin_formulas_gradients_match_loop_chain_rule(problem):
    zs, zt, _, T, _ = problem
    got = kd_loss_as("kd_lib", zs, zt, temperature=T).grad
    np.testing.assert_allclose(got, twin_grad_kd_lib_soft(zs.tolist(), zt.tolist(), T),
                               rtol=1e-10, atol=1e-13 / T)
    got = kd_loss_as("keras_2020", zs, zt, temperature=T).grad
    np.testing.assert_allclose(got, twin_grad_keras_soft(zs.tolist(), zt.tolist(), T),
                               rtol=1e-10, atol=1e-13 / T)


def test_hf_distilbert_tokens_with_mask_and_ignored_labels():
    rng = np.random.default_rng(7)
    zs, zt = rng.normal(size=(2, 3, 5)) * 2, rng.normal(size=(2, 3, 5)) * 2
    mask = np.array([[True, True, False], [True, False, False]])
    y = np.array([[1, -100, 4], [-100, 2, -100]])
    for a in (1.0, 0.7, 0.0):
        got = kd_loss_as("hf_distilbert", zs, zt, y, temperature=2.0, alpha=a, mask=mask)
        want = twin_hf_distilbert(zs, zt, y, 2.0, a, mask)
        assert got.loss == pytest.approx(want, rel=1e-12)
        assert got.grad.shape == zs.shape
    # masked KD rows with ignored labels get no gradient at all
    g = kd_loss_as("hf_distilbert", zs, zt, y, temperature=2.0, alpha=0.7, mask=mask).grad
    assert np.all(g[1, 2] == 0) and not np.all(g[0, 2] == 0)  # [0, 2] still has its MLM label


# ---------------------------------------------------------------- finite differences at T != 1

@given(name=st.sampled_from(KD_NAMES), problem=kd_problem(elements=_fd_elem))
def test_preset_gradient_matches_finite_differences(name, problem):
    zs, zt, y, T, a = problem
    # Every preset is invariant to a per-row shift of the logits; centring the rows keeps the
    # per-element step h (scale + |z|) from growing with an irrelevant offset. The hard term
    # lives at T = 1, so the step scale is min(T, 1) when it is present.
    zs = zs - zs.mean(axis=1, keepdims=True)
    loss, grad = kd_loss_as(name, zs, zt, y, temperature=T, alpha=a)
    assert_fd(lambda z: kd_loss_as(name, z, zt, y, temperature=T, alpha=a).loss, zs, grad,
              max(1.0, abs(loss), T * T), scale=T if a == 1.0 else min(T, 1.0),
              name=f"kd_loss_as({name!r})")


def test_hf_distilbert_gradient_on_tokens():
    rng = np.random.default_rng(3)
    zs, zt = rng.normal(size=(2, 4, 6)) * 3, rng.normal(size=(2, 4, 6)) * 3
    mask = rng.random((2, 4)) < 0.6
    y = np.where(rng.random((2, 4)) < 0.5, -100, rng.integers(0, 6, (2, 4)))
    loss, grad = kd_loss_as("hf_distilbert", zs, zt, y, temperature=3.0, alpha=0.6, mask=mask)
    assert_fd(lambda z: kd_loss_as("hf_distilbert", z, zt, y, temperature=3.0, alpha=0.6,
                                   mask=mask).loss, zs, grad, max(9.0, loss), scale=1.0,
              name="hf_distilbert")


# ---------------------------------------------------------------- relations between presets

@FEWER
@given(problem=kd_problem())
def test_relations_between_presets(problem):
    zs, zt, y, T, a = problem
    ref = kd_loss_as("repdistiller", zs, zt, y, temperature=T, alpha=a)
    md = kd_loss_as("mdistiller", zs, zt, y, temperature=T, alpha=a)
    assert md.loss == pytest.approx(ref.loss, rel=1e-12, abs=1e-300)
    # torchdistill: the blend for a < 1; the bare KL (ref / T², unweighted) at a = 1
    soft_only = kd_loss_as("repdistiller", zs, zt, temperature=T)
    bare = kd_loss_as("torchdistill", zs, zt, y, temperature=T, alpha=1.0)
    assert bare.loss == pytest.approx(soft_only.loss / T ** 2, rel=1e-9, abs=1e-300)
    np.testing.assert_allclose(bare.grad, soft_only.grad / T ** 2, rtol=1e-9, atol=1e-300)
    no_targets = kd_loss_as("torchdistill", zs, zt, None, temperature=T, alpha=a)
    assert no_targets.loss == bare.loss
    # nn.KLDivLoss() 'mean' is the batchmean soft term divided by C
    mean = kd_loss_as("pytorch_kldivloss_mean", zs, zt, temperature=T)
    assert mean.loss == pytest.approx(soft_only.loss / zs.shape[1], rel=1e-9, abs=1e-300)
    # TextBrewer: same gradient as the bare KL (the teacher entropy is a constant)
    tb = kd_loss_as("textbrewer", zs, zt, temperature=T)
    np.testing.assert_allclose(tb.grad, bare.grad, rtol=1e-9, atol=1e-12 * np.abs(bare.grad).max())


def test_torchdistill_quirk_is_a_jump_of_t_squared():
    near = kd_loss_as("torchdistill", Z_S, Z_T, Y, temperature=4.0, alpha=1.0 - 1e-12).loss
    at = kd_loss_as("torchdistill", Z_S, Z_T, Y, temperature=4.0, alpha=1.0).loss
    assert near == pytest.approx(GOLDEN[4.0][0], rel=1e-9)  # T² · KL
    assert at == pytest.approx(GOLDEN[4.0][0] / 16, rel=1e-9)  # bare KL


def test_keras_equals_kl_when_nothing_is_clipped_and_differs_when_clipped():
    k = kd_loss_as("keras", Z_S, Z_T, temperature=4.0)
    r = kd_loss_as("repdistiller", Z_S, Z_T, temperature=4.0)
    assert k.loss == pytest.approx(r.loss, rel=1e-12)
    np.testing.assert_allclose(k.grad, r.grad, rtol=1e-10, atol=1e-15)
    zs, zt = [[0.0, 40.0]], [[40.0, 0.0]]  # p = e^-40 ~ 4e-18 < 1e-7: both sides clipped
    k = kd_loss_as("keras_2020", zs, zt, temperature=1.0)
    r = kd_loss_as("torchdistill", zs, zt, temperature=1.0)  # the bare KL
    assert r.loss == pytest.approx(40.0, rel=1e-12)
    want = (1 - 1e-7) * math.log((1 - 1e-7) / 1e-7) + 1e-7 * math.log(1e-7 / (1 - 1e-7))
    assert k.loss == pytest.approx(want, rel=1e-6)


def test_kd_lib_is_zero_with_zero_gradient_when_probabilities_agree():
    z = np.array([[1.0, -2.0, 0.5]])
    loss, grad = kd_loss_as("kd_lib", z, z + 3.0, temperature=2.0)  # shift: same softmax
    assert loss == pytest.approx(0.0, abs=1e-30) and np.abs(grad).max() < 1e-16


def test_float32_stays_float32():
    zs, zt = np.float32(Z_S), np.float32(Z_T)
    for name in KD_NAMES:
        lg = kd_loss_as(name, zs, zt, Y, temperature=2.0, alpha=0.5)
        assert lg.grad.dtype == np.float32 and isinstance(lg.loss, float)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, exc, match", [
    ({"convention": "pytorch"}, ValueError, "'convention' parameter of kd_loss_as"),
    ({"convention": 3}, ValueError, "'convention'"),
    ({"temperature": 0.0}, ValueError, "'temperature' parameter of kd_loss_as"),
    ({"temperature": float("nan")}, ValueError, "'temperature'"),
    ({"alpha": 1.5}, ValueError, "'alpha' parameter of kd_loss_as"),
    ({"alpha": True}, TypeError, "'alpha'"),
    ({"labels": None, "alpha": 0.5}, ValueError, "'labels'"),
    ({"labels": [0, 3]}, ValueError, "'labels' parameter of kd_loss_as"),
    ({"labels": [0.0, 1.0]}, TypeError, "'labels'"),
    ({"labels": [-100, 1]}, ValueError, "'labels'"),
    ({"mask": np.array([True, False])}, ValueError, "'mask'"),
    ({"student_logits": [[1.0, np.nan, 0.0], [0, 0, 0]]}, ValueError, "'student_logits'"),
    ({"student_logits": [[1.0, 2.0]]}, ValueError, "same shape"),
    ({"student_logits": np.zeros((0, 3)), "teacher_logits": np.zeros((0, 3))}, ValueError,
     "non-empty"),
    ({"student_logits": np.zeros((2, 1, 3)), "teacher_logits": np.zeros((2, 1, 3))},
     ValueError, "2-D"),
    ({"student_logits": [[True, False, True]] * 2}, TypeError, "'student_logits'"),
    ({"teacher_logits": np.ones((2, 3), dtype=complex)}, TypeError, "'teacher_logits'"),
])
def test_bad_input_raises_clear_errors(kwargs, exc, match):
    args = {"convention": "repdistiller", "student_logits": Z_S, "teacher_logits": Z_T,
            "labels": Y, "temperature": 4.0, "alpha": 0.9}
    args.update(kwargs)
    conv, s, t, y = (args.pop(k) for k in ("convention", "student_logits", "teacher_logits",
                                            "labels"))
    with pytest.raises(exc, match=match):
        kd_loss_as(conv, s, t, y, **args)


@pytest.mark.parametrize("name", KD_NAMES)
def test_every_error_names_kd_loss_as_and_its_parameter(name):
    """Issue 14.13: the thin-formula presets used to say "the 'z' parameter of softmax"."""
    with pytest.raises(ValueError, match="'student_logits' parameter of kd_loss_as"):
        kd_loss_as(name, [[1e300, 0.0]], [[0.0, 1.0]], temperature=4.0)
    with pytest.raises(ValueError, match="'teacher_logits' parameter of kd_loss_as"):
        kd_loss_as(name, [[1.0, 0.0]], [[0.0, 1e300]], temperature=0.05)
    if name != "torchdistill":  # its quirk: no targets means the bare KL
        with pytest.raises(ValueError, match="'labels' parameter of kd_loss_as"):
            kd_loss_as(name, Z_S, Z_T, None, temperature=4.0, alpha=0.5)


@given(junk=st.one_of(st.none(), st.text(max_size=3), st.integers(), st.floats(),
                      st.lists(st.floats(), max_size=3), st.booleans()),
       name=st.sampled_from(KD_NAMES), where=st.sampled_from(["s", "t", "y", "T", "a"]))
def test_malformed_input_only_raises_value_or_type_error(junk, name, where):
    args = {"s": Z_S, "t": Z_T, "y": Y, "T": 2.0, "a": 0.5}
    args[where] = junk
    try:
        kd_loss_as(name, args["s"], args["t"], args["y"], temperature=args["T"], alpha=args["a"])
    except (ValueError, TypeError) as err:
        assert "of kd_loss_as" in str(err), err
