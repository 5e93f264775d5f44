"""Optimizers against their update rules written out per scalar; schedules; clipping."""

import math
import warnings

import numpy as np
import pytest

from minikd.nn.optim import (
    SGD,
    Adam,
    AdamW,
    CosineSchedule,
    NonFiniteUpdateError,
    StepSchedule,
    clip_grad_norm,
)

STEPS = 4


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(STEPS)]
    return params, grads


def _run(opt_cls, params, grads, **kw):
    params = {k: v.copy() for k, v in params.items()}
    opt = opt_cls(params, **kw)
    for g in grads:
        opt.step({k: v.copy() for k, v in g.items()})
    return params


def _scalar_sgd(theta, gs, lr, mu, nesterov, wd):
    """PyTorch's SGD (dampening 0) for one scalar, as a plain loop."""
    buf = None
    for g in gs:
        d = g + wd * theta
        if mu:
            buf = d if buf is None else mu * buf + d
            d = d + mu * buf if nesterov else buf
        theta = theta - lr * d
    return theta


def _scalar_adam(theta, gs, lr, b1, b2, eps, wd, decoupled):
    """Kingma & Ba, Algorithm 1 (with PyTorch's placement of eps), for one scalar."""
    m = v = 0.0
    for t, g in enumerate(gs, start=1):
        if decoupled:
            theta = theta * (1 - lr * wd)
        else:
            g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        theta = theta - lr * m_hat / (math.sqrt(v_hat) + eps)
    return theta


def _per_scalar(params, grads, rule):
    out = {}
    for key, p in params.items():
        out[key] = np.empty_like(p)
        for idx in np.ndindex(p.shape):
            out[key][idx] = rule(float(p[idx]), [float(g[key][idx]) for g in grads])
    return out


@pytest.mark.parametrize("mu, nesterov, wd", [
    (0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 0.0), (0.5, False, 0.01),
    (0.9, True, 0.1), (0.0, False, 0.2),
])
def test_sgd_matches_the_rule_per_scalar(mu, nesterov, wd):
    params, grads = _problem()
    got = _run(SGD, params, grads, lr=0.3, momentum=mu, nesterov=nesterov, weight_decay=wd)
    want = _per_scalar(params, grads, lambda th, gs: _scalar_sgd(th, gs, 0.3, mu, nesterov, wd))
    for key in params:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-14)
        assert not np.array_equal(got[key], params[key])


@pytest.mark.parametrize("cls, wd", [(Adam, 0.0), (Adam, 0.1), (AdamW, 0.0), (AdamW, 0.3)])
@pytest.mark.parametrize("betas, eps", [((0.9, 0.999), 1e-8), ((0.5, 0.9), 0.1)])
def test_adam_and_adamw_match_the_rule_per_scalar(cls, wd, betas, eps):
    params, grads = _problem(1)
    got = _run(cls, params, grads, lr=0.05, betas=betas, eps=eps, weight_decay=wd)
    decoupled = cls is AdamW
    want = _per_scalar(params, grads, lambda th, gs: _scalar_adam(th, gs, 0.05, *betas, eps,
                                                                  wd, decoupled))
    for key in params:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-14)


def test_adam_first_step_moves_each_entry_by_lr():
    # m_hat = g, v_hat = g^2 at t = 1: the step is lr * sign(g) (up to eps)
    params = {"w": np.array([0.0, 0.0, 0.0])}
    Adam(params, lr=0.01).step({"w": np.array([3.0, -1e-3, 200.0])})
    np.testing.assert_allclose(params["w"], [-0.01, 0.01, -0.01], rtol=1e-4)


def test_state_and_lr_are_kept_and_settable():
    params = {"w": np.array([1.0])}
    opt = SGD(params, lr=0.1, momentum=0.5)
    opt.step({"w": np.array([1.0])})  # v = 1, w = 0.9
    opt.lr = 1.0
    opt.step({"w": np.array([1.0])})  # v = 1.5, w = 0.9 - 1.5
    np.testing.assert_allclose(params["w"], [-0.6])
    np.testing.assert_allclose(opt.velocity["w"], [1.5])
    assert opt.t == 2


def test_float32_params_stay_float32_in_place():
    W = np.ones((4, 3), np.float32)
    params = {"W": W}
    for cls, kw in ((SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.1}),
                    (Adam, {"weight_decay": 0.1}), (AdamW, {})):
        opt = cls(params, **kw)
        opt.step({"W": np.full((4, 3), 0.5, np.float32)})
        assert params["W"] is W and W.dtype == np.float32


def test_partial_grads_leave_other_params_alone():
    params = {"a": np.ones(2), "b": np.ones(2)}
    SGD(params, lr=1.0).step({"a": np.ones(2)})
    np.testing.assert_array_equal(params["a"], [0.0, 0.0])
    np.testing.assert_array_equal(params["b"], [1.0, 1.0])


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_non_finite_update_is_refused_and_params_unchanged(cls):
    params = {"a": np.array([1.0, 2.0], np.float32), "b": np.array([3.0], np.float32)}
    before = {k: v.copy() for k, v in params.items()}
    opt = cls(params, lr=0.1)
    with pytest.raises(NonFiniteUpdateError, match=r"\['a'\]"):
        opt.step({"a": np.array([np.nan, 1.0], np.float32), "b": np.array([1.0], np.float32)})
    for key in params:
        np.testing.assert_array_equal(params[key], before[key])


def test_overflowing_update_is_refused():
    # finite gradient and lr, but theta - lr * g overflows float32
    params = {"w": np.array([-3e38, 1.0], np.float32)}
    opt = SGD(params, lr=1e30)
    with pytest.raises(NonFiniteUpdateError):
        opt.step({"w": np.array([1e9, 1.0], np.float32)})
    np.testing.assert_array_equal(params["w"], np.array([-3e38, 1.0], np.float32))
    # a huge but representable update passes (its square would overflow, the result does not)
    SGD(params, lr=1.0).step({"w": np.array([-1e38, 0.0], np.float32)})
    np.testing.assert_array_equal(params["w"], [np.float32(-3e38) + np.float32(1e38), 1.0])


@pytest.mark.parametrize("call, exc", [
    (lambda: SGD({"w": np.ones(2)}, lr=-1.0), ValueError),
    (lambda: SGD({"w": np.ones(2)}, lr=np.nan), ValueError),
    (lambda: SGD({"w": np.ones(2)}, lr="0.1"), TypeError),
    (lambda: SGD({"w": np.ones(2)}, lr=0.1, momentum=1.0), ValueError),
    (lambda: SGD({"w": np.ones(2)}, lr=0.1, nesterov=True), ValueError),
    (lambda: SGD({"w": np.ones(2)}, lr=0.1, weight_decay=-1), ValueError),
    (lambda: SGD({}, lr=0.1), TypeError),
    (lambda: SGD({"w": [1.0]}, lr=0.1), TypeError),
    (lambda: Adam({"w": np.ones(2)}, betas=(0.9,)), TypeError),
    (lambda: Adam({"w": np.ones(2)}, betas=(0.9, 1.0)), ValueError),
    (lambda: Adam({"w": np.ones(2)}, eps=0.0), ValueError),
    (lambda: SGD({"w": np.ones(2)}, lr=0.1).step({"v": np.ones(2)}), ValueError),
    (lambda: SGD({"w": np.ones(2)}, lr=0.1).step({"w": np.ones(3)}), ValueError),
    (lambda: SGD({"w": np.ones(2)}, lr=0.1).step([np.ones(2)]), TypeError),
    (lambda: clip_grad_norm({"w": np.ones(2)}, 0.0), ValueError),
    (lambda: StepSchedule(0.1, step_size=0), ValueError),
    (lambda: StepSchedule(0.1, step_size=1, gamma=1e60), ValueError),  # fuzz: OverflowError
    (lambda: StepSchedule(0.1, step_size=1)(None), TypeError),  # fuzz: int(None)
    (lambda: StepSchedule(0.1, step_size=1)(-1), ValueError),
    (lambda: CosineSchedule(0.1, total=3)(2.5), TypeError),
    (lambda: CosineSchedule(0.1, total=0), ValueError),
])
def test_bad_hyperparameters_raise_clear_errors(call, exc):
    with pytest.raises(exc, match="parameter of"):
        call()


def test_lr_setter_validates():
    opt = SGD({"w": np.ones(2)}, lr=0.1)
    with pytest.raises(ValueError, match="'lr' parameter of SGD"):
        opt.lr = -0.1


# -- clipping ---------------------------------------------------------------------------------


def test_clip_grad_norm_scales_jointly_and_returns_the_pre_clip_norm():
    grads = {"a": np.array([[3.0, 0.0]]), "b": np.array([0.0, 4.0, 12.0])}  # norm 13
    a, b = grads["a"], grads["b"]
    norm = clip_grad_norm(grads, 6.5)
    assert norm == pytest.approx(13.0, rel=1e-15)
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a, [[3.0 * scale, 0.0]], rtol=1e-15)
    np.testing.assert_allclose(b, [0.0, 4.0 * scale, 12.0 * scale], rtol=1e-15)
    assert grads["a"] is a  # in place
    new_norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads.values()))
    assert new_norm == pytest.approx(6.5, rel=1e-6)


def test_clip_grad_norm_clips_a_norm_just_above_the_threshold():
    grads = {"a": np.array([0.9, 1.2])}  # norm 1.5 = 1.5 x max_norm: coef 2/3, not below 1/2
    assert clip_grad_norm(grads, 1.0) == pytest.approx(1.5, rel=1e-15)
    np.testing.assert_allclose(grads["a"], [0.6, 0.8], rtol=1e-6)


def test_clip_grad_norm_below_threshold_and_float32_overflow():
    grads = {"a": np.array([0.3, 0.4])}
    assert clip_grad_norm(grads, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(grads["a"], [0.3, 0.4])
    big = {"a": np.array([3e20, 4e20], np.float32)}  # squares overflow float32
    assert clip_grad_norm(big, 1.0) == pytest.approx(5e20, rel=1e-6)
    np.testing.assert_allclose(big["a"], [0.6, 0.8], rtol=1e-5)
    assert big["a"].dtype == np.float32
    nan = {"a": np.array([np.nan, 1.0])}
    assert math.isnan(clip_grad_norm(nan, 1.0))
    assert nan["a"][1] == 1.0


# -- schedules --------------------------------------------------------------------------------


def test_step_schedule():
    s = StepSchedule(0.4, step_size=3, gamma=0.5)
    assert [s(t) for t in range(7)] == [0.4, 0.4, 0.4, 0.2, 0.2, 0.2, 0.1]


def test_cosine_schedule_endpoints_midpoint_and_monotone():
    s = CosineSchedule(0.1, total=10, min_lr=0.01)
    assert s(0) == pytest.approx(0.1)
    assert s(5) == pytest.approx(0.055)  # halfway: the mean of the two ends
    assert s(10) == pytest.approx(0.01) and s(50) == pytest.approx(0.01)
    values = [s(t) for t in range(11)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))
    # symmetric around the midpoint: s(t) + s(T - t) = lr + min_lr
    assert s(2) + s(8) == pytest.approx(0.11)


def test_a_merged_params_dict_updates_every_owner_in_place():
    student = {"W1": np.ones((2, 2))}
    regressor = np.ones(3)
    merged = {**student, "Wr": regressor}
    SGD(merged, lr=0.5, momentum=0.9).step({"W1": np.ones((2, 2)), "Wr": np.full(3, 2.0)})
    np.testing.assert_array_equal(student["W1"], np.full((2, 2), 0.5))
    np.testing.assert_array_equal(regressor, np.zeros(3))


# -- what a step refuses, and that a refusal changes nothing ----------------------------------

OPTIMIZERS = {
    "sgd": lambda p: SGD(p, lr=0.1),
    "sgd-momentum": lambda p: SGD(p, lr=0.1, momentum=0.9),
    "sgd-nesterov": lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    "adam": lambda p: Adam(p, lr=0.1),
    "adamw": lambda p: AdamW(p, lr=0.1),
}


def _snapshot(opt):
    state = {key: {name: a.copy() for name, a in s.items()} for key, s in opt.state.items()}
    return opt.t, {key: p.copy() for key, p in opt.params.items()}, state


def _assert_unchanged(opt, snapshot):
    t, params, state = snapshot
    assert opt.t == t
    for key, p in params.items():
        np.testing.assert_array_equal(opt.params[key], p)
    assert opt.state.keys() == state.keys()
    for key, s in state.items():
        assert opt.state[key].keys() == s.keys()
        for name, a in s.items():
            np.testing.assert_array_equal(opt.state[key][name], a)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_read_only_parameter_is_a_type_error_and_nothing_moves(name):
    # issue 14, item 8: numpy's "output array is read-only" came after m had moved
    params = {"a": np.ones(3), "w": np.ones(2)}
    opt = OPTIMIZERS[name](params)
    opt.step({"a": np.full(3, 0.5), "w": np.full(2, 0.5)})
    params["w"].flags.writeable = False
    before = _snapshot(opt)
    with pytest.raises(TypeError, match=r"'params' parameter of \w+ must be .*writeable.*'w'"):
        opt.step({"a": np.full(3, 0.5), "w": np.full(2, 0.5)})
    _assert_unchanged(opt, before)
    with pytest.raises(TypeError, match="read-only array at key 'v'"):
        OPTIMIZERS[name]({"v": np.broadcast_to(np.ones(2), (2,))})


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("grad, exc, message", [
    (np.ones(2, complex), TypeError, "complex128 at key 'w'"),
    (np.array([object(), object()]), TypeError, "object at key 'w'"),
    (np.array(["a", "b"]), TypeError, "<U1 at key 'w'"),
    (np.ones(2, bool), TypeError, "bool at key 'w'"),
    ([[1.0], [1.0, 2.0]], TypeError, "ragged"),
    (np.ones((2, 1)), ValueError, r"shape \(2, 1\)"),
    (np.ones(3), ValueError, r"shape \(3,\)"),
    ("ab", ValueError, r"shape \(\)"),
])
def test_odd_gradients_are_clear_errors_and_nothing_moves(name, grad, exc, message):
    # issue 14, item 14: SGD.step with complex/object/str gradients raised UFuncTypeError
    params = {"w": np.ones(2)}
    opt = OPTIMIZERS[name](params)
    opt.step({"w": np.full(2, 0.5)})
    before = _snapshot(opt)
    with pytest.raises(exc, match=f"'grads' parameter of {type(opt).__name__}.step.*{message}"):
        opt.step({"w": grad})
    _assert_unchanged(opt, before)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_integer_and_other_float_gradients_are_converted_to_the_parameter_dtype(name):
    a, b = {"w": np.ones(3, np.float32)}, {"w": np.ones(3, np.float32)}
    opt_a, opt_b = OPTIMIZERS[name](a), OPTIMIZERS[name](b)
    opt_a.step({"w": np.array([1, -2, 3])})
    opt_b.step({"w": np.array([1.0, -2.0, 3.0], np.float32)})
    assert a["w"].dtype == np.float32
    np.testing.assert_array_equal(a["w"], b["w"])
    assert all(s.dtype == np.float32 for s in opt_a.state["w"].values())


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, 1e200, -1e300])
def test_refused_steps_print_no_runtime_warning(name, bad):
    # issue 14, item 9: "invalid value in divide" and "overflow" warnings came before the error
    params = {"w": np.array([1.0, -1.0])}
    opt = OPTIMIZERS[name](params)
    before = _snapshot(opt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            opt.step({"w": np.array([bad, 1.0])})
        except NonFiniteUpdateError:
            pass
        else:  # 1e200 is finite and so is SGD's step with it; Adam's v = 1e-3 g^2 is not
            assert abs(bad) < np.inf and name.startswith("sgd")
            return
    _assert_unchanged(opt, before)


def test_a_huge_learning_rate_is_refused_without_warnings():
    params = {"w": np.array([1.0, -1.0])}
    opt = SGD(params, lr=1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NonFiniteUpdateError, match=r"lr=1e\+300"):
            opt.step({"w": np.array([1e10, 1.0])})
    np.testing.assert_array_equal(params["w"], [1.0, -1.0])


def test_a_float64_gradient_beyond_float32_is_a_refused_step_not_a_warning():
    params = {"w": np.ones(2, np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NonFiniteUpdateError, match="non-finite gradient"):
            SGD(params, lr=0.1).step({"w": np.array([1e39, 1.0])})
    np.testing.assert_array_equal(params["w"], [1.0, 1.0])


def test_clip_grad_norm_of_finite_gradients_whose_squares_overflow_float64():
    # fuzz: a 1.3e154 entry made the norm inf (a RuntimeWarning, no clipping)
    grads = {"a": np.array([3e200, 0.0]), "b": np.array([4e200])}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert clip_grad_norm(grads, 1.0) == pytest.approx(5e200, rel=1e-12)
    np.testing.assert_allclose(grads["a"], [0.6, 0.0], rtol=1e-12)
    np.testing.assert_allclose(grads["b"], [0.8], rtol=1e-12)
