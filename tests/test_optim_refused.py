"""A refused optimizer step changes nothing: neither the parameters nor the optimizer's state,
so the next finite step is exactly the first step of a fresh optimizer."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from minikd.nn.optim import SGD, Adam, AdamW, NonFiniteUpdateError

MAKERS = {
    "sgd": lambda p, **kw: SGD(p, lr=0.1, **kw),
    "sgd-momentum": lambda p, **kw: SGD(p, lr=0.1, momentum=0.9, **kw),
    "sgd-nesterov": lambda p, **kw: SGD(p, lr=0.1, momentum=0.9, nesterov=True, **kw),
    "adam": lambda p, **kw: Adam(p, lr=0.1, **kw),
    "adamw": lambda p, **kw: AdamW(p, lr=0.1, **kw),
}
BAD = [np.nan, np.inf, -np.inf]


def _fresh_first_step(make, params, grads, **kw):
    fresh = {k: v.copy() for k, v in params.items()}
    make(fresh, **kw).step({k: v.copy() for k, v in grads.items()})
    return fresh


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("name", list(MAKERS))
def test_refused_step_then_good_step_equals_a_fresh_first_step(name, bad):
    make = MAKERS[name]
    params = {"w": np.ones(3)}
    expected = _fresh_first_step(make, params, {"w": np.full(3, 0.1)})
    opt = make(params)
    with pytest.raises(NonFiniteUpdateError, match="non-finite gradient"):
        opt.step({"w": np.array([bad, 1.0, 1.0])})
    np.testing.assert_array_equal(params["w"], np.ones(3))
    assert opt.t == 0
    opt.step({"w": np.full(3, 0.1)})  # before the fix: refused too (NaN momentum / moments)
    np.testing.assert_array_equal(params["w"], expected["w"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(MAKERS))
def test_refusal_after_some_steps_restores_the_state(name, dtype):
    # Two optimizers see the same finite steps; one also sees a refused step in between
    # (all parameters, then a subset).
    rng = np.random.default_rng(0)
    shapes = {"W": (3, 2), "b": (2,)}
    start = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    steps = [{k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
             for _ in range(3)]
    a, b = ({k: v.copy() for k, v in start.items()} for _ in range(2))
    opt_a, opt_b = MAKERS[name](a, weight_decay=0.01), MAKERS[name](b, weight_decay=0.01)
    for i, grads in enumerate(steps):
        opt_a.step({k: v.copy() for k, v in grads.items()})
        if i == 1:
            for refused in ({"W": np.full((3, 2), np.nan, dtype), "b": steps[0]["b"]},
                            {"b": np.array([1.0, np.inf], dtype)}):
                with pytest.raises(NonFiniteUpdateError):
                    opt_b.step(refused)
        opt_b.step({k: v.copy() for k, v in grads.items()})
    assert opt_a.t == opt_b.t == 3
    for k in shapes:
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("name", ["sgd-momentum", "adam"])
def test_finite_gradient_with_overflowing_update_restores_the_state(name):
    # The update overflows though the gradient is finite (a huge learning rate): refused, and
    # the state is put back, so a later step at a sane learning rate is a fresh first step.
    params = {"w": np.ones(3)}
    expected = _fresh_first_step(MAKERS[name], params, {"w": np.full(3, 0.1)})
    opt = MAKERS[name](params)
    opt.lr = 1e308
    with pytest.raises(NonFiniteUpdateError) as info:
        opt.step({"w": np.full(3, 1e10)})
    assert "gradient" not in str(info.value)
    opt.lr = 0.1
    opt.step({"w": np.full(3, 0.1)})
    np.testing.assert_array_equal(params["w"], expected["w"])


@pytest.mark.parametrize("name", ["sgd-momentum", "adam"])
def test_refused_step_after_a_replaced_parameter_restores_the_state(name):
    # The refused step is the first after W was replaced (new shape: fresh state); the refusal
    # must not keep that state half-made, so both optimizers then take the same steps.
    rng = np.random.default_rng(4)
    start = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    first = {k: rng.standard_normal(v.shape) for k, v in start.items()}
    a, b = ({k: v.copy() for k, v in start.items()} for _ in range(2))
    opt_a, opt_b = MAKERS[name](a), MAKERS[name](b)
    opt_a.step(first)
    opt_b.step(first)
    for params in (a, b):
        params["W"] = np.ones((2, 2))
    with pytest.raises(NonFiniteUpdateError):
        opt_b.step({"W": np.full((2, 2), np.nan), "b": np.ones(2)})
    then = {"W": np.full((2, 2), 0.5), "b": np.full(2, -0.5)}
    for _ in range(2):
        opt_a.step({k: v.copy() for k, v in then.items()})
        opt_b.step({k: v.copy() for k, v in then.items()})
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def _refused_and_unchanged(opt, grads):
    """Step ``opt`` with ``grads``: it must raise NonFiniteUpdateError, print no warning and leave
    the parameters, the step count and the state as they were."""
    before = ({k: p.copy() for k, p in opt.params.items()}, opt.t,
              {k: {n: a.copy() for n, a in s.items()} for k, s in opt.state.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would fail the test
        with pytest.raises(NonFiniteUpdateError):
            opt.step(grads)
    params, t, state = before
    for k, p in params.items():
        np.testing.assert_array_equal(opt.params[k], p)
    assert opt.t == t
    assert opt.state.keys() == state.keys()
    for k, s in state.items():
        for name, a in s.items():
            np.testing.assert_array_equal(opt.state[k][name], a)


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_refuses_an_overflowing_second_moment_that_leaves_theta_finite(cls):
    # float32: g = 1e30 gives m = (1 - b1) g = 1e29 (finite) but v = (1 - b2) g^2 = 1e57 = inf,
    # and theta - lr m_hat / (sqrt(v_hat) + eps) = theta - lr * 1e30 / inf = theta: finite. Only
    # a test of v itself sees it: a test of the new theta alone would take the step.
    params = {"w": np.ones(3, np.float32)}
    opt = cls(params, lr=0.1)
    opt.step({"w": np.full(3, 0.5, np.float32)})
    with np.errstate(over="ignore"):
        assert np.isinf(np.float32(1e30) * np.float32(1e30) * np.float32(1e-3))
    _refused_and_unchanged(opt, {"w": np.full(3, 1e30, np.float32)})


def test_sgd_refuses_an_overflowing_velocity_even_at_lr_zero():
    # An overflowing velocity is refused though theta would not move at lr = 0 (theta - 0 * inf
    # is NaN anyway, and v itself is inf). v overflows on the second step:
    # 0.9 * 3e38 + 3e38 > float32's largest 3.4e38, though every gradient is finite.
    params = {"w": np.ones(2, np.float32)}
    opt = SGD(params, lr=0.0, momentum=0.9)
    g = np.full(2, 3e38, np.float32)
    opt.step({"w": g})
    np.testing.assert_array_equal(params["w"], np.ones(2, np.float32))  # lr = 0: no move
    _refused_and_unchanged(opt, {"w": g})
    opt.lr = 0.1
    _refused_and_unchanged(opt, {"w": g})  # and at lr > 0 (theta - 0.1 * inf = -inf)
