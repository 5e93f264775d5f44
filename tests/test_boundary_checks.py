"""Boundary checks found missing in review: each case gave NaN/inf or a non-standard exception
(AttributeError, MemoryError, zlib.error, numpy's own message) before its fix."""

from __future__ import annotations

import numpy as np
import pytest

from minikd import MLP


def _standard(info, func, name):
    text = str(info.value)
    assert func in text and f"'{name}'" in text and "Got" in text and "instead" in text, text


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_proba_refuses_overflowing_logits(dtype):
    # Logits of +-1e30 (float32) / +-1e300 (float64): z - max(z) overflows to -inf and then
    # gives NaN or a silent one-hot; the loss functions refuse such logits, so does this.
    model = MLP([2, 2], dtype=dtype, rng=0)
    big = 1e30 if dtype == np.float32 else 1e300
    model.params["W1"][...] = np.array([[big, -big], [-big, big]], dtype)
    with pytest.raises(ValueError) as info:
        model.predict_proba(np.array([[10.0, -10.0]], dtype))
    _standard(info, "MLP.predict_proba", "x (the logits it gives)")
    p = model.predict_proba(np.array([[1e-30, 0.0]], dtype))  # in range: still works
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("temperature", [5e-324, 1e-46, 1e-7, 1e7, 1e39, 1e300])
def test_predict_proba_refuses_an_extreme_temperature(temperature):
    model = MLP([2, 3], rng=0)
    with pytest.raises(ValueError) as info:
        model.predict_proba(np.zeros((1, 2), np.float32), temperature=temperature)
    _standard(info, "MLP.predict_proba", "temperature")
