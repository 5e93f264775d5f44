"""Leading axes (..., C), masks, ignore_index and the three reductions, for every loss."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import minikd

T = 2.5


def _calls(y):
    """Every loss as f(z_s, z_t, **kw) -> LossGrad, with fixed labels y of the leading shape."""
    return {
        "cross_entropy": lambda s, t, **kw: minikd.cross_entropy(s, y, **kw),
        "kl_divergence": lambda s, t, **kw: minikd.kl_divergence(s, t, temperature=T, **kw),
        "soft_cross_entropy": lambda s, t, **kw: minikd.soft_cross_entropy(s, t, temperature=T,
                                                                           **kw),
        "kd_loss": lambda s, t, **kw: minikd.kd_loss(s, t, temperature=T, **kw),
        "distillation_loss": lambda s, t, **kw: minikd.distillation_loss(s, t, y, temperature=T,
                                                                         alpha=0.6, **kw),
        "dkd_loss": lambda s, t, **kw: minikd.dkd_loss(s, t, y, temperature=T, **kw),
    }


NAMES = list(_calls(None))


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    zs, zt = 3 * rng.normal(size=shape), 3 * rng.normal(size=shape)
    y = rng.integers(0, shape[-1], size=shape[:-1])
    return zs, zt, y


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "mean"])
def test_sequence_logits_equal_flattened_rows(name, reduction):
    """(N, L, V) with a mask is the same as the (N·L, V) rows that the mask selects."""
    zs, zt, y = _data((3, 4, 5))
    mask = np.random.default_rng(1).random((3, 4)) < 0.6
    f3 = _calls(y)[name]
    f2 = _calls(y[mask])[name]
    got = f3(zs, zt, mask=mask, reduction=reduction)
    want = f2(zs[mask], zt[mask], reduction=reduction)
    assert got.grad.shape == zs.shape
    assert got.loss == pytest.approx(want.loss, rel=1e-12)
    np.testing.assert_allclose(got.grad[mask], want.grad, rtol=1e-12, atol=1e-15)
    assert np.all(got.grad[~mask] == 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_reductions_relate_by_counts(name):
    zs, zt, y = _data((6, 4), seed=2)
    f = _calls(y)[name]
    mask = np.array([True, False, True, True, False, True])
    bm, sm, mn = (f(zs, zt, mask=mask, reduction=r) for r in ("batchmean", "sum", "mean"))
    assert sm.loss == pytest.approx(4 * bm.loss, rel=1e-13)
    assert mn.loss == pytest.approx(bm.loss / 4, rel=1e-13)  # / (M C) = batchmean / C
    np.testing.assert_allclose(sm.grad, 4 * bm.grad, rtol=1e-13)
    np.testing.assert_allclose(mn.grad, bm.grad / 4, rtol=1e-13)
    # the default is batchmean, and with no mask it divides by N
    assert f(zs, zt).loss == pytest.approx(f(zs, zt, reduction="sum").loss / 6, rel=1e-13)


@given(name=st.sampled_from(NAMES), data=st.data())
def test_masked_positions_have_zero_grad_and_no_influence(name, data):
    shape = data.draw(st.sampled_from([(4, 3), (2, 3, 4), (1, 2)]))
    zs, zt, y = _data(shape, seed=3)
    mask = data.draw(arrays(np.bool_, shape[:-1]))
    junk = data.draw(arrays(np.float64, shape, elements=st.floats(-1e4, 1e4)))
    f = _calls(y)[name]
    a = f(zs, zt, mask=mask)
    b = f(np.where(mask[..., None], zs, junk), np.where(mask[..., None], zt, junk[::-1]),
          mask=mask)
    assert a.loss == b.loss
    np.testing.assert_array_equal(a.grad, b.grad)
    assert np.all(a.grad[~mask] == 0.0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "mean"])
def test_fully_masked_batch_is_zero(name, reduction):
    zs, zt, y = _data((2, 3, 4))
    loss, grad = _calls(y)[name](zs, zt, mask=np.zeros((2, 3), dtype=bool), reduction=reduction)
    assert loss == 0.0 and isinstance(loss, float)
    assert grad.shape == zs.shape and np.all(grad == 0.0)


@pytest.mark.parametrize("name", ["cross_entropy", "distillation_loss", "dkd_loss"])
def test_ignore_index_is_a_mask(name):
    zs, zt, y = _data((3, 5, 4), seed=4)
    ignored = np.random.default_rng(5).random((3, 5)) < 0.4
    y_ign = np.where(ignored, -100, y)
    got = _calls(y_ign)[name](zs, zt)
    want = _calls(y)[name](zs, zt, mask=~ignored)
    assert got.loss == pytest.approx(want.loss, rel=1e-13)
    np.testing.assert_allclose(got.grad, want.grad, rtol=1e-13, atol=1e-16)
    # a custom ignore_index works the same way; None turns ignoring off (so -100 is out of range)
    y_7 = np.where(ignored, 7, y)
    other = _calls(y_7)[name](zs, zt, ignore_index=7)
    assert other.loss == pytest.approx(want.loss, rel=1e-13)
    with pytest.raises(ValueError, match="labels"):
        _calls(y_ign)[name](zs, zt, ignore_index=None)


def test_all_ignored_labels_give_zero():
    zs, zt, _ = _data((2, 3))
    loss, grad = minikd.cross_entropy(zs, [-100, -100])
    assert loss == 0.0 and np.all(grad == 0.0)


def test_mask_and_ignore_index_combine():
    zs, zt, y = _data((4, 3), seed=6)
    y = y.copy()
    y[0] = -100
    mask = np.array([True, True, False, True])
    got = minikd.cross_entropy(zs, y, mask=mask)
    want = minikd.cross_entropy(zs[[1, 3]], y[[1, 3]])
    assert got.loss == pytest.approx(want.loss, rel=1e-13)


def test_2d_no_mask_equals_pytorch_batchmean_by_hand():
    """Batchmean over a 2-D batch: the sum of per-row KLs over N (computed row by row here)."""
    zs, zt, _ = _data((5, 3), seed=7)
    rows = [minikd.kl_divergence(zs[i : i + 1], zt[i : i + 1], temperature=T).loss
            for i in range(5)]
    assert minikd.kl_divergence(zs, zt, temperature=T).loss == pytest.approx(np.mean(rows),
                                                                              rel=1e-13)
