"""Every path of a step (all parameters updated, some, replaced parameters, mixed dtypes, large
arrays, refusals) must follow the per-parameter update rules exactly."""

from __future__ import annotations

import numpy as np
import pytest

from minikd.nn.optim import SGD, Adam, NonFiniteUpdateError

SHAPES = {"W1": (4, 3), "b1": (3,), "W2": (3, 2), "b2": (2,)}


def _params(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}


def _grads(keys, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(SHAPES[k]).astype(dtype) for k in keys}


def _sgd_rule(params, grad_steps, *, lr, momentum, nesterov=False, weight_decay=0.0):
    """SGD written out per parameter and per step, in float64 (PyTorch's rule)."""
    theta = {k: p.astype(np.float64) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in theta.items()}
    for grads in grad_steps:
        for k, g in grads.items():
            g = g.astype(np.float64) + weight_decay * theta[k]
            v[k] = momentum * v[k] + g
            theta[k] = theta[k] - lr * ((g + momentum * v[k]) if nesterov else v[k])
    return theta


# full steps, a partial one (momentum of the missing keys must not decay), full again
STEPS = [list(SHAPES), list(SHAPES), ["W1", "b2"], list(SHAPES)]


@pytest.mark.parametrize(("momentum", "nesterov", "weight_decay"),
                         [(0.9, False, 0.0), (0.9, False, 0.1), (0.5, True, 0.01),
                          (0.0, False, 0.0)])
def test_sgd_full_and_partial_steps_follow_the_rule(momentum, nesterov, weight_decay):
    params = _params()
    start = {k: p.copy() for k, p in params.items()}
    grad_steps = [_grads(keys, seed) for seed, keys in enumerate(STEPS)]
    opt = SGD(params, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    for grads in grad_steps:
        opt.step(grads)
    expected = _sgd_rule(start, grad_steps, lr=0.1, momentum=momentum, nesterov=nesterov,
                         weight_decay=weight_decay)
    for k, p in params.items():
        assert p.dtype == np.float32
        np.testing.assert_allclose(p, expected[k], rtol=1e-5, atol=1e-6)


def test_sgd_state_survives_a_replaced_parameter():
    params = _params(np.float64)
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step(_grads(SHAPES, 0, np.float64))
    v_b1 = opt.velocity["b1"].copy()
    params["W2"] = np.zeros((5, 2))  # another shape: it starts with fresh momentum
    params["b1"] = params["b1"].copy()  # same shape: its momentum is kept
    grads = _grads(["W1", "b1", "b2"], 1, np.float64) | {"W2": np.ones((5, 2))}
    before_b1 = params["b1"].copy()
    opt.step(grads)
    np.testing.assert_allclose(params["W2"], np.full((5, 2), -0.1))
    np.testing.assert_allclose(params["b1"], before_b1 - 0.1 * (0.9 * v_b1 + grads["b1"]))


def test_mixed_dtypes_stay_correct_and_keep_their_dtype():
    params = {"a": np.ones(3, np.float32), "b": np.ones(2, np.float64)}
    opt = SGD(params, lr=0.5, momentum=0.9)
    for _ in range(2):
        opt.step({"a": np.ones(3, np.float32), "b": np.ones(2)})
    # v1 = 1, theta1 = 0.5; v2 = 1.9, theta2 = 0.5 - 0.95
    np.testing.assert_allclose(params["a"], np.full(3, -0.45), rtol=1e-6)
    np.testing.assert_allclose(params["b"], np.full(2, -0.45))
    assert params["a"].dtype == np.float32


@pytest.mark.parametrize("make", [lambda p: SGD(p, lr=1e30, momentum=0.9),
                                  lambda p: Adam(p, lr=1.0)])
def test_the_check_refuses_a_non_finite_update_of_any_parameter(make):
    params = _params()
    opt = make(params)
    opt.step(_grads(SHAPES, 0))  # finite
    before = {k: p.copy() for k, p in params.items()}
    grads = _grads(SHAPES, 1)
    grads["b2"] = np.array([np.inf, 1.0], np.float32)  # one entry of the last array
    with pytest.raises(NonFiniteUpdateError):
        opt.step(grads)
    for k, p in params.items():
        np.testing.assert_array_equal(p, before[k])


def test_adam_on_all_parameters_matches_one_adam_per_parameter():
    # Adam on all four parameters at once equals four Adams on one parameter each.
    params = _params(np.float64)
    alone = {k: {k: p.copy()} for k, p in params.items()}
    opt = Adam(params, lr=0.01, weight_decay=0.1)
    opts = {k: Adam(d, lr=0.01, weight_decay=0.1) for k, d in alone.items()}
    for seed in range(3):
        grads = _grads(SHAPES, seed, np.float64)
        opt.step(grads)
        for k, o in opts.items():
            o.step({k: grads[k]})
    for k, p in params.items():
        np.testing.assert_allclose(p, alone[k][k], rtol=1e-12)


BIG = {"W": (300, 250), "b": (250,)}  # 75,250 entries, 300 kB in float32


def _big(seed, dtype=np.float32, scale=1.0):
    rng = np.random.default_rng(seed)
    return {k: (scale * rng.standard_normal(s)).astype(dtype) for k, s in BIG.items()}


@pytest.mark.parametrize(("nesterov", "weight_decay"), [(False, 0.0), (False, 0.05), (True, 0.05)])
def test_sgd_on_large_arrays_follows_the_rule(nesterov, weight_decay):
    params = _big(0)
    start = {k: p.copy() for k, p in params.items()}
    grad_steps = [_big(seed) for seed in (1, 2, 3)]
    opt = SGD(params, lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=weight_decay)
    for grads in grad_steps:
        opt.step(grads)
    expected = _sgd_rule(start, grad_steps, lr=0.05, momentum=0.9, nesterov=nesterov,
                         weight_decay=weight_decay)
    for k, p in params.items():
        np.testing.assert_allclose(p, expected[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bad", ["nan", "huge lr"])
def test_sgd_on_large_arrays_refuses_and_keeps_its_state(bad):
    # A NaN gradient entry, or lr * v' overflowing float32: the step is refused, and the next
    # good step matches an optimizer that never saw it (parameters and velocity, bit for bit).
    a, b = _big(0), _big(0)
    opt_a, opt_b = SGD(a, lr=0.05, momentum=0.9), SGD(b, lr=0.05, momentum=0.9)
    for opt in (opt_a, opt_b):
        opt.step(_big(1))
    grads = _big(2)
    if bad == "nan":
        grads["W"][7, 3] = np.nan
    else:
        opt_b.lr = 1e38  # lr * v' overflows float32 where |v'| > 3.4
    with pytest.raises(NonFiniteUpdateError):
        opt_b.step(grads)
    assert opt_b.t == 1
    opt_b.lr = 0.05
    for opt in (opt_a, opt_b):
        opt.step(_big(3))
    for k in BIG:
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(opt_a.velocity[k], opt_b.velocity[k])


def test_sgd_unbounded_but_finite_update_is_taken():
    # A huge learning rate whose update is still finite in every entry (at most about 1e19 in
    # float32, whose norm would overflow): the step is taken, exactly as the rule says.
    params = _big(0)
    start = {k: p.copy() for k, p in params.items()}
    opt = SGD(params, lr=1e18, momentum=0.9)
    grads = [_big(1), _big(2)]
    for g in grads:
        opt.step(g)
    assert opt.t == 2
    expected = _sgd_rule(start, grads, lr=1e18, momentum=0.9)
    for k, p in params.items():  # float32 against float64: relative to the largest entry
        np.testing.assert_allclose(p, expected[k], rtol=1e-5,
                                   atol=1e-6 * np.abs(expected[k]).max())


def test_adam_refuses_when_the_second_moment_overflows():
    # g = 1e21 in float32: v' = 1e-3 g^2 = 1e39 = inf, while Delta = m' / inf = 0 is finite.
    # Taking the step would leave v = inf for good (every later update of that entry would be 0).
    params = {"w": np.array([1.0, -1.0], np.float32)}
    twin = {"w": params["w"].copy()}
    opt, undisturbed = Adam(params, lr=0.01), Adam(twin, lr=0.01)
    first = {"w": np.array([0.5, 0.25], np.float32)}
    opt.step(first)
    undisturbed.step(first)
    before = {"w": params["w"].copy()}, {k: v.copy() for k, v in opt.m.items()}, \
        {k: v.copy() for k, v in opt.v.items()}
    with pytest.raises(NonFiniteUpdateError, match=r"\['w'\] or Adam's state"):
        opt.step({"w": np.array([1e21, 0.5], np.float32)})
    assert opt.t == 1
    for now, then in zip((params, opt.m, opt.v), before, strict=True):
        np.testing.assert_array_equal(now["w"], then["w"])
    second = {"w": np.array([-0.5, 2.0], np.float32)}
    opt.step(second)
    undisturbed.step(second)
    np.testing.assert_array_equal(params["w"], twin["w"])


def test_adam_large_but_finite_second_moment_is_taken():
    # g = 1e15 and 1e20 in float32: v' = 1e-3 g^2 = 1e27 and 1e37 are finite (g^2 = 1e40
    # alone would not be): the step is taken.
    for g in (1e15, 1e20):
        params = {"w": np.array([1.0, -1.0], np.float32)}
        Adam(params, lr=0.01).step({"w": np.array([g, -g], np.float32)})
        np.testing.assert_allclose(params["w"], [0.99, -0.99], rtol=1e-6)  # lr sign(g)


def _sgd_velocity(grad_steps, momentum):
    """The velocity v <- mu v + g of every key after each step, in float64."""
    v, history = {}, []
    for grads in grad_steps:
        for k, g in grads.items():
            v[k] = momentum * v.get(k, 0.0) + g.astype(np.float64)
        history.append({k: np.broadcast_to(x, SHAPES[k]).copy() for k, x in v.items()})
    return history


def test_state_dicts_show_the_current_state_after_steps_and_a_refusal():
    # The velocity, m and v properties show the committed state, never a candidate (not the
    # refused one after a refusal).
    params = _params()
    opt = SGD(params, lr=0.1, momentum=0.9)
    grad_steps = [_grads(keys, seed) for seed, keys in enumerate(STEPS)]
    for grads, want in zip(grad_steps, _sgd_velocity(grad_steps, 0.9), strict=True):
        opt.step(grads)
        for k in want:
            np.testing.assert_allclose(opt.velocity[k], want[k], rtol=1e-6)
    held = {k: v.copy() for k, v in opt.velocity.items()}
    for refused in (_grads(SHAPES, 9) | {"b1": np.full(3, np.nan, np.float32)},
                    {"W2": np.full((3, 2), np.inf, np.float32)}):
        with pytest.raises(NonFiniteUpdateError):
            opt.step(refused)
        for k in SHAPES:
            np.testing.assert_array_equal(opt.velocity[k], held[k])
    adam = Adam(_params(), lr=0.1, betas=(0.5, 0.75))
    for seed in range(3):  # m = (1 - b1) sum b1^(t-i) g_i, v likewise with g_i^2
        adam.step(_grads(SHAPES, seed))
    gs = [_grads(SHAPES, seed) for seed in range(3)]
    for k in SHAPES:
        m = sum(0.5 * 0.5 ** (2 - i) * gs[i][k].astype(np.float64) for i in range(3))
        v = sum(0.25 * 0.75 ** (2 - i) * gs[i][k].astype(np.float64) ** 2 for i in range(3))
        np.testing.assert_allclose(adam.m[k], m, rtol=1e-6)
        np.testing.assert_allclose(adam.v[k], v, rtol=1e-6)


@pytest.mark.parametrize("make", [lambda p: SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
                                  lambda p: SGD(p, lr=0.1, momentum=0.5, nesterov=True),
                                  lambda p: Adam(p, lr=0.1), lambda p: SGD(p, lr=0.1)])
def test_refused_steps_after_a_partial_step_change_nothing(make):
    # Refused steps after a partial step (all keys, then a subset) must leave both the
    # parameters and the state as they were.
    a, b = _params(seed=3), _params(seed=3)
    opt_a, opt_b = make(a), make(b)
    good = [_grads(SHAPES, 0), _grads(["W1", "b2"], 1), _grads(SHAPES, 2)]
    for i, grads in enumerate(good):
        if i == 2:
            for refused in (_grads(SHAPES, 5) | {"W2": np.full((3, 2), np.nan, np.float32)},
                            {"b1": np.array([1.0, np.inf, 0.0], np.float32)}):
                with pytest.raises(NonFiniteUpdateError):
                    opt_b.step(refused)
        opt_a.step(grads)
        opt_b.step(grads)
    assert opt_a.t == opt_b.t == 3
    names = ["m", "v"] if isinstance(opt_a, Adam) else ["velocity"]
    for k in SHAPES:
        np.testing.assert_array_equal(a[k], b[k])
        for name in names:
            np.testing.assert_array_equal(getattr(opt_a, name)[k], getattr(opt_b, name)[k])


def test_a_parameter_replaced_by_a_non_float_array_is_a_clear_type_error():
    params = _params()
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step(_grads(SHAPES, 0))
    params["b1"] = np.zeros(3, np.int64)
    with pytest.raises(TypeError, match="'params' parameter of SGD"):
        opt.step(_grads(SHAPES, 1))
