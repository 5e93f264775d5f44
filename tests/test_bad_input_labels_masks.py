"""Labels and masks that used to slip through or crash inside numpy (issue: no silent wrong
answer): a uint64 label that wraps to ignore_index, and a ragged mask."""

import numpy as np
import pytest

import minikd

ZS = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
ZT = np.array([[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]])

LABEL_LOSSES = {
    "cross_entropy": lambda y, **kw: minikd.cross_entropy(ZS, y, **kw),
    "distillation_loss": lambda y, **kw: minikd.distillation_loss(ZS, ZT, y, **kw),
    "dkd_loss": lambda y, **kw: minikd.dkd_loss(ZS, ZT, y, **kw),
    "kd_loss_as hf_distilbert": lambda y, **kw: minikd.kd_loss_as("hf_distilbert", ZS, ZT, y,
                                                                   **kw),
}


@pytest.mark.parametrize("name", list(LABEL_LOSSES))
def test_uint64_label_that_would_wrap_to_ignore_index_is_refused(name):
    # 2**64 - 100 cast to int64 is -100, the ignore_index: the row was silently dropped.
    y = np.array([2**64 - 100, 0], dtype=np.uint64)
    with pytest.raises(ValueError, match=r"'labels' parameter.*indices.*18446744073709551516"):
        LABEL_LOSSES[name](y)


@pytest.mark.parametrize("name", list(LABEL_LOSSES))
def test_valid_uint64_labels_give_the_int64_result(name):
    y = np.array([2, 0])
    assert LABEL_LOSSES[name](y.astype(np.uint64)).loss == LABEL_LOSSES[name](y).loss


MASK_LOSSES = {
    "cross_entropy": lambda m: minikd.cross_entropy(ZS, [2, 0], mask=m),
    "kl_divergence": lambda m: minikd.kl_divergence(ZS, ZT, mask=m),
    "soft_cross_entropy": lambda m: minikd.soft_cross_entropy(ZS, ZT, mask=m),
    "kd_loss": lambda m: minikd.kd_loss(ZS, ZT, mask=m),
    "distillation_loss": lambda m: minikd.distillation_loss(ZS, ZT, [2, 0], mask=m),
    "dkd_loss": lambda m: minikd.dkd_loss(ZS, ZT, [2, 0], mask=m),
}


@pytest.mark.parametrize("name", list(MASK_LOSSES))
def test_ragged_mask_names_the_parameter(name):
    # numpy's own message was "setting an array element with a sequence"
    with pytest.raises(TypeError, match=rf"'mask' parameter of {name.split()[0]} must be a "
                                        r"boolean array of shape \(2,\)"):
        MASK_LOSSES[name]([[True], [True, False]])
