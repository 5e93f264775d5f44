"""The MLP: whole-network gradients, twins built from the layer functions, init, modes, checks.

Model files: tests/test_modelio.py."""

import warnings

import numpy as np
import pytest
import scipy.special
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minikd import MLP, gradcheck
from minikd.nn.layers import (
    dropout_backward,
    dropout_forward,
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
    tanh_backward,
    tanh_forward,
)

# -- whole-network gradients against finite differences --------------------------------------


def _set_dropout_seed(model, seed):
    model._dropout_rng = np.random.default_rng(seed)


def _objective(model, x, G, D, train, seed):
    """f(params) = <logits, G> + sum_i <hidden_i, D_i>: its gradient is backward(G, dhidden=D)."""
    _set_dropout_seed(model, seed)
    logits, cache = model.forward(x, train=train)
    return float(np.sum(logits * G) + sum(np.sum(cache.hidden[i] * D[i]) for i in D))


def _min_abs_preactivation(model, x):
    """Smallest |a| over hidden pre-activations (eval mode): the distance to the ReLU kink."""
    h, smallest = x, np.inf
    for k in range(1, model.n_layers):
        a = h @ model.params[f"W{k}"] + model.params[f"b{k}"]
        smallest = min(smallest, np.abs(a).min())
        h = np.maximum(a, 0) if model.activation == "relu" else np.tanh(a)
    return smallest


@given(
    sizes=st.lists(st.integers(1, 4), min_size=2, max_size=4).map(lambda s: [3, *s]),
    activation=st.sampled_from(["relu", "tanh"]),
    dropout=st.sampled_from([0.0, 0.3]),
    with_dhidden=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_parameter_gradient_matches_finite_differences(sizes, activation, dropout,
                                                              with_dhidden, seed):
    rng = np.random.default_rng(seed)
    model = MLP(sizes, activation=activation, dropout=dropout, dtype=np.float64, rng=seed)
    for key in model.params:  # nonzero biases so every term of the chain is exercised
        model.params[key] += 0.1 * rng.standard_normal(model.params[key].shape)
    x = rng.standard_normal((5, sizes[0]))
    if activation == "relu":
        assume(_min_abs_preactivation(model, x) > 1e-3)
    G = rng.standard_normal((5, sizes[-1]))
    n_hidden = len(sizes) - 2
    D = {i: rng.standard_normal((5, sizes[i + 1])) for i in range(n_hidden)
         if with_dhidden and rng.random() < 0.8}
    train = dropout > 0
    _set_dropout_seed(model, 11)
    _, cache = model.forward(x, train=train)
    grads = model.backward(G, cache, dhidden=D or None)
    assert list(grads) == list(model.params)
    for key, p in model.params.items():
        def f(v, key=key, p=p):
            old = p.copy()
            p[...] = v
            try:
                return _objective(model, x, G, D, train, 11)
            finally:
                p[...] = old
        gradcheck.assert_gradient(f, p, grads[key], name=key)


def test_large_network_gradient_along_random_directions():
    rng = np.random.default_rng(5)
    model = MLP([20, 64, 48, 7], activation="tanh", dtype=np.float64, rng=1)
    x = rng.standard_normal((16, 20))
    G = rng.standard_normal((16, 7))
    D = {0: rng.standard_normal((16, 64)), 1: rng.standard_normal((16, 48))}
    _, cache = model.forward(x)
    grads = model.backward(G, cache, dhidden=D)
    for key, p in model.params.items():
        def f(v, key=key, p=p):
            old = p.copy()
            p[...] = v
            try:
                return _objective(model, x, G, D, False, 0)
            finally:
                p[...] = old
        result = gradcheck.check_directional(f, p, grads[key], n_directions=3, rng=2)
        assert result.ok, result.report(key)


def test_dhidden_on_the_top_hidden_layer_reaches_only_the_layers_below_it():
    rng = np.random.default_rng(0)
    model = MLP([4, 6, 5, 3], dtype=np.float64, rng=0)
    x = rng.standard_normal((8, 4))
    _, cache = model.forward(x)
    zero = np.zeros((8, 3))
    grads = model.backward(zero, cache, dhidden={1: rng.standard_normal((8, 5))})
    assert not grads["W3"].any() and not grads["b3"].any()
    assert grads["W2"].any() and grads["W1"].any()


def test_backward_is_linear_in_its_upstream_gradients():
    """A vector-Jacobian product is linear: backward(aG + bG') = a backward(G) + b backward(G')."""
    rng = np.random.default_rng(4)
    model = MLP([5, 7, 6, 3], dropout=0.3, dtype=np.float64, rng=4)
    _, cache = model.forward(rng.standard_normal((8, 5)), train=True)
    G1, G2 = rng.standard_normal((2, 8, 3))
    D1, D2 = rng.standard_normal((2, 8, 6))
    g1 = model.backward(G1, cache, dhidden={1: D1})
    g2 = model.backward(G2, cache, dhidden={1: D2})
    g = model.backward(2.0 * G1 - 0.5 * G2, cache, dhidden={1: 2.0 * D1 - 0.5 * D2})
    for key in g:
        np.testing.assert_allclose(g[key], 2.0 * g1[key] - 0.5 * g2[key], rtol=1e-10,
                                   atol=1e-12)


def test_a_sign_flipped_backward_is_caught_by_the_check():
    """Negative control: the finite-difference oracle rejects a wrong chain."""
    rng = np.random.default_rng(1)
    model = MLP([3, 4, 2], activation="tanh", dtype=np.float64, rng=1)
    x, G = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    _, cache = model.forward(x)
    grads = model.backward(G, cache)
    p = model.params["W1"]

    def f(v):
        old = p.copy()
        p[...] = v
        try:
            return _objective(model, x, G, {}, False, 0)
        finally:
            p[...] = old
    assert gradcheck.check_gradient(f, p, grads["W1"]).ok
    assert not gradcheck.check_gradient(f, p, -grads["W1"]).ok


# -- the model against a chain of the public layer functions (a loop twin) --------------------


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_forward_and_backward_match_a_chain_of_layer_functions(activation):
    rng = np.random.default_rng(2)
    sizes = [6, 9, 7, 4]
    model = MLP(sizes, activation=activation, dropout=0.25, dtype=np.float64, rng=3)
    x = rng.standard_normal((10, 6))
    dlogits = rng.standard_normal((10, 4))
    dhidden = {0: rng.standard_normal((10, 9))}
    _set_dropout_seed(model, 9)
    logits, cache = model.forward(x, train=True)
    grads = model.backward(dlogits, cache, dhidden=dhidden)

    act_f = relu_forward if activation == "relu" else tanh_forward
    act_b = relu_backward if activation == "relu" else tanh_backward
    mask_rng = np.random.default_rng(9)
    h, caches, hidden = x, [], []
    for k in (1, 2, 3):
        a, lin = linear_forward(h, model.params[f"W{k}"], model.params[f"b{k}"])
        if k == 3:
            caches.append((lin, None, None))
            break
        h, act = act_f(a)
        hidden.append(h)
        # the same draw as the model: u ~ U[0, 1), keep where u >= p, scale by 1 / (1 - p)
        mask = (mask_rng.random(h.shape) >= 0.25) / 0.75
        h = h * mask
        caches.append((lin, act, mask))
    np.testing.assert_allclose(logits, a, rtol=1e-12, atol=1e-12)
    for i in (0, 1):
        np.testing.assert_allclose(cache.hidden[i], hidden[i], rtol=1e-12, atol=1e-12)
    d = dlogits
    for k in (3, 2, 1):
        lin, _, _ = caches[k - 1]
        dh, dW, db = linear_backward(d, lin)
        np.testing.assert_allclose(grads[f"W{k}"], dW, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grads[f"b{k}"], db, rtol=1e-10, atol=1e-12)
        if k > 1:
            _, act, mask = caches[k - 2]
            dh = dropout_backward(dh, mask) + dhidden.get(k - 2, 0.0)
            d = act_b(dh, act)


# -- initialisation, dtypes, modes ------------------------------------------------------------


def test_he_and_glorot_initialisation_statistics():
    relu = MLP([400, 300, 10], dtype=np.float64, rng=0)
    W = relu.params["W1"]
    # He: N(0, 2 / fan_in); the sample std of 120 000 draws is within 1 % of sqrt(2/400)
    assert abs(W.std() / np.sqrt(2 / 400) - 1) < 0.01 and abs(W.mean()) < 0.002
    tanh = MLP([400, 300, 10], activation="tanh", dtype=np.float64, rng=0)
    W = tanh.params["W1"]
    limit = np.sqrt(6 / 700)
    assert np.abs(W).max() <= limit and np.abs(W).max() > 0.99 * limit
    assert abs(W.var() / (limit**2 / 3) - 1) < 0.02  # variance of U(-a, a) is a^2 / 3
    assert not relu.params["b1"].any() and not tanh.params["b2"].any()


def test_float32_default_and_float64_end_to_end():
    x = np.random.default_rng(0).standard_normal((4, 5))
    m32 = MLP([5, 6, 3], rng=0)
    assert all(p.dtype == np.float32 for p in m32.params.values())
    logits, cache = m32.forward(x)  # float64 input is converted to the model's dtype
    assert logits.dtype == np.float32 and cache.hidden[0].dtype == np.float32
    assert all(g.dtype == np.float32 for g in m32.backward(np.ones((4, 3)), cache).values())
    m64 = MLP([5, 6, 3], dtype=np.float64, rng=0)
    logits64, cache = m64.forward(x.astype(np.float32))
    assert logits64.dtype == np.float64
    assert all(g.dtype == np.float64 for g in m64.backward(np.ones((4, 3)), cache).values())
    # same seed, same draws: the float32 model is the float64 one rounded
    for key in m32.params:
        np.testing.assert_array_equal(m32.params[key], m64.params[key].astype(np.float32))
    np.testing.assert_allclose(logits, logits64, rtol=1e-5, atol=1e-5)


def test_hidden_is_before_dropout_and_eval_mode_is_deterministic():
    model = MLP([5, 8, 8, 3], dropout=0.5, rng=0)
    x = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    ev1, c_eval = model.forward(x)
    ev2, _ = model.forward(x)
    np.testing.assert_array_equal(ev1, ev2)
    tr1, c_train = model.forward(x, train=True)
    tr2, _ = model.forward(x, train=True)
    assert not np.array_equal(tr1, tr2)  # a fresh mask each call
    # the first hidden layer sees the same input in both modes: identical, so pre-dropout
    np.testing.assert_array_equal(c_train.hidden[0], c_eval.hidden[0])
    mask = c_train.masks[0]
    np.testing.assert_array_equal(c_train.inputs[1], c_train.hidden[0] * mask)
    assert set(np.unique(mask)) <= {0.0, 2.0}
    assert c_eval.masks == [None, None]


def test_same_seed_gives_same_params_and_same_dropout_masks():
    x = np.ones((4, 3), np.float32)
    a, b = MLP([3, 16, 2], dropout=0.5, rng=7), MLP([3, 16, 2], dropout=0.5, rng=7)
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
    np.testing.assert_array_equal(a.forward(x, train=True)[1].masks[0],
                                  b.forward(x, train=True)[1].masks[0])
    c = MLP([3, 16, 2], dropout=0.5, rng=8)
    assert not np.array_equal(a.params["W1"], c.params["W1"])


def test_predict_predict_proba_n_params_nbytes():
    model = MLP([3, 5, 4], dtype=np.float64, rng=0)
    x = np.random.default_rng(0).standard_normal((9000, 3))  # > one predict chunk
    logits, _ = model.forward(x)
    np.testing.assert_array_equal(model.predict(x), np.argmax(logits, axis=1))
    for T in (0.5, 1.0, 4.0):
        p = model.predict_proba(x, temperature=T)
        np.testing.assert_allclose(p, scipy.special.softmax(logits / T, axis=1), rtol=1e-12)
    assert model.n_params == 3 * 5 + 5 + 5 * 4 + 4
    assert model.nbytes == 8 * model.n_params
    assert MLP([784, 800, 800, 10]).nbytes == 4 * (784 * 800 + 800 + 800 * 800 + 800 + 8010)
    assert repr(model) == "MLP([3, 5, 4], activation='relu', dropout=0.0, dtype=float64)"


@pytest.mark.parametrize("call, exc", [
    (lambda: MLP([3]), ValueError),
    (lambda: MLP([3, 0, 2]), ValueError),
    (lambda: MLP([3, 2.5, 2]), TypeError),
    (lambda: MLP(5), TypeError),
    (lambda: MLP([3, 2], activation="gelu"), ValueError),
    (lambda: MLP([3, 2], dropout=1.0), ValueError),
    (lambda: MLP([3, 2], dropout=-0.5), ValueError),
    (lambda: MLP([3, 2], dtype=np.int32), ValueError),
    (lambda: MLP([3, 2]).forward(np.ones((2, 4))), ValueError),
    (lambda: MLP([3, 2]).forward(np.ones(3)), ValueError),
    (lambda: MLP([3, 2]).forward([[np.nan, 0, 0]]), ValueError),
    (lambda: MLP([3, 2]).forward(np.ones((0, 3))), ValueError),
    (lambda: MLP([3, 2]).forward(np.ones((2, 3), bool)), TypeError),
    (lambda: MLP([3, 2]).forward(np.ones((2, 3)), train=1), TypeError),
    (lambda: MLP([3, 2]).predict_proba(np.ones((2, 3)), temperature=0), ValueError),
    (lambda: MLP([3, 2]).backward(np.ones((2, 2)), None), TypeError),
])
def test_bad_arguments_raise_clear_errors(call, exc):
    with pytest.raises(exc, match="parameter of"):
        call()


@given(st.one_of(
    arrays(np.float64, st.tuples(st.integers(0, 3), st.integers(0, 4)),
           elements=st.floats(allow_nan=True, allow_infinity=True)),
    arrays(np.float64, st.integers(0, 4)), arrays(np.bool_, (2, 3)),
    arrays(np.complex64, (2, 3)), st.just(np.array([["a", "b", "c"]])),
    st.lists(st.lists(st.floats(), max_size=4), max_size=3), st.none(), st.text(max_size=3),
))
def test_malformed_x_only_raises_value_or_type_error(x):
    model = MLP([3, 4, 2], rng=0)
    for call in (lambda: model.forward(x), lambda: model.predict(x),
                 lambda: model.predict_proba(x, temperature=2.0)):
        try:
            call()
        except (ValueError, TypeError):
            pass


def test_bad_backward_gradients_raise_clear_errors():
    model = MLP([3, 4, 2], rng=0)
    _, cache = model.forward(np.ones((5, 3)))
    for dlogits, dhidden in [(np.ones((5, 3)), None), (np.ones((4, 2)), None),
                             (np.full((5, 2), np.nan), None), (np.ones((5, 2)), {1: 0}),
                             (np.ones((5, 2)), {0: np.ones((5, 5))}),
                             (np.ones((5, 2)), {True: np.ones((5, 4))}),
                             (np.ones((5, 2)), [np.ones((5, 4))])]:
        with pytest.raises((ValueError, TypeError), match="parameter of MLP.backward"):
            model.backward(dlogits, cache, dhidden=dhidden)


def test_backward_does_not_modify_its_inputs():
    rng = np.random.default_rng(0)
    model = MLP([3, 4, 4, 2], dropout=0.5, rng=0)
    _, cache = model.forward(rng.standard_normal((5, 3)), train=True)
    dl = rng.standard_normal((5, 2)).astype(np.float32)
    dh = {0: rng.standard_normal((5, 4)).astype(np.float32)}
    copies = dl.copy(), dh[0].copy(), [h.copy() for h in cache.hidden]
    model.backward(dl, cache, dhidden=dh)
    np.testing.assert_array_equal(dl, copies[0])
    np.testing.assert_array_equal(dh[0], copies[1])
    for h, c in zip(cache.hidden, copies[2], strict=True):
        np.testing.assert_array_equal(h, c)


# -- issue 14: overflow, foreign caches, seeds, sizes ----------------------------------------


@pytest.mark.parametrize("dtype, big", [(np.float32, 3e38), (np.float64, 1e308)])
def test_input_that_overflows_the_network_is_a_clear_error(dtype, big):
    # item 5: forward gave inf logits with a RuntimeWarning, and predict said class 0
    model = MLP([3, 8, 4], dtype=dtype, rng=0)
    x = np.array([[big, -big, big], [1.0, 2.0, 3.0]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for call, name in ((lambda: model.forward(x), "MLP.forward"),
                           (lambda: model.forward(x, train=True), "MLP.forward"),
                           (lambda: model.predict(x), "MLP.predict"),
                           (lambda: model.predict_proba(x), "MLP.predict_proba")):
            with pytest.raises(ValueError, match=f"'x' parameter of {name} must be inputs for "
                                                 "which the network stays finite.*overflows"):
                call()
    assert model.predict(x[1:]).shape == (1,)  # a finite row alone is fine


def test_backward_refuses_gradients_that_overflow():
    model = MLP([3, 8, 4], rng=0)
    _, cache = model.forward(np.ones((2, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="'dlogits' parameter of MLP.backward.*overflow"):
            model.backward(np.full((2, 4), 3e38), cache)


@pytest.mark.parametrize("other", [
    MLP([3, 5, 2], rng=0),  # the same depth, another width: broadcast before
    MLP([3, 4, 2], dtype=np.float64, rng=0),  # another dtype
    MLP([3, 4, 4, 2], rng=0),  # another depth
])
def test_backward_refuses_another_networks_cache(other):
    # item 14: MLP.backward with another network's cache raised numpy's broadcast error
    model = MLP([3, 4, 2], rng=0)
    _, cache = other.forward(np.ones((5, 3)))
    with pytest.raises((ValueError, TypeError), match="'cache' parameter of MLP.backward must "
                                                      r"be the ForwardCache .*\[3, 4, 2\]"):
        model.backward(np.ones((5, 2)), cache)


def test_backward_refuses_a_tampered_cache():
    model = MLP([3, 4, 4, 2], dropout=0.5, rng=0)
    _, cache = model.forward(np.ones((5, 3)), train=True)
    for field, i, bad in (("hidden", 1, np.ones((5, 3), np.float32)),
                          ("masks", 0, np.ones((4, 4), np.float32)),
                          ("inputs", 2, [[1.0]])):
        parts = {f: list(getattr(cache, f)) for f in ("inputs", "hidden", "masks")}
        parts[field][i] = bad
        with pytest.raises(ValueError, match=f"a cache whose {field}\\[{i}\\]"):
            model.backward(np.ones((5, 2)), type(cache)(**parts))


@pytest.mark.parametrize("rng, exc", [("abc", TypeError), (-1, ValueError), (1.5, TypeError),
                                      (True, TypeError), ([1, -2], ValueError)])
def test_a_bad_rng_is_a_clear_error(tmp_path, rng, exc):
    # item 14: MLP([2, 2], rng="abc") raised numpy's SeedSequence TypeError
    with pytest.raises(exc, match="'rng' parameter of MLP must be"):
        MLP([2, 2], rng=rng)
    MLP([2, 2], rng=0).save(tmp_path / "m.npz")
    with pytest.raises(exc, match="'rng' parameter of MLP.load must be"):
        MLP.load(tmp_path / "m.npz", rng=rng)
    with pytest.raises(exc, match="'rng' parameter of dropout_forward must be"):
        dropout_forward(np.ones((2, 2)), p=0.5, train=True, rng=rng)


@pytest.mark.parametrize("sizes", [[3, 2**40, 2], [2**31, 2**31], [10**6] * 3])
def test_sizes_beyond_memory_are_refused_before_allocating(sizes):
    # item 15: MLP([3, 2**40, 2]) raised MemoryError
    with pytest.raises(ValueError, match=r"'sizes' parameter of MLP must be a size whose arrays "
                                         r"fit in this machine's memory \(.* GiB\)\. Got \["):
        MLP(sizes)


def test_a_batch_beyond_memory_is_refused_before_the_forward_pass():
    model = MLP([1, 10**6, 2], rng=0)  # 12 MB of parameters
    x = np.broadcast_to(np.float32(1.0), (10**7, 1))  # 40 MB; its activations, 160 TB
    with pytest.raises(ValueError, match=r"'x' parameter of MLP.forward must be a size whose "
                                         r"arrays fit in this machine's memory"):
        model.forward(x)


@pytest.mark.parametrize("call", ["forward", "backward", "predict", "predict_proba", "save"])
@pytest.mark.parametrize("key, value, message", [
    ("W1", np.ones((4, 3), np.float32), r"params\['W1'\] of dtype float32 and shape \(4, 3\)"),
    ("b1", np.ones(4), r"params\['b1'\] of dtype float64"),
    ("W2", [[1.0]], r"params\['W2'\] a list"),
    ("W3", np.ones((2, 2), np.float32), r"the keys \['W1', 'b1', 'W2', 'b2', 'W3'\]"),
    ("W1", np.full((3, 4), np.nan, np.float32), r"must be finite. Got NaN or inf in \['W1'\]"),
])
def test_replaced_params_are_clear_errors(tmp_path, call, key, value, message):
    # fuzz: params replaced by the user gave numpy's matmul and broadcast errors, or (NaN) an
    # error that blamed x
    model = MLP([3, 4, 2], rng=0)
    x = np.ones((2, 3), np.float32)
    _, cache = model.forward(x)
    model.params[key] = value
    calls = {"forward": lambda: model.forward(x), "predict": lambda: model.predict(x),
             "backward": lambda: model.backward(np.ones((2, 2)), cache),
             "predict_proba": lambda: model.predict_proba(x),
             "save": lambda: model.save(tmp_path / "m.npz")}
    if call == "backward" and "finite" in message:
        return  # NaN weights give NaN gradients only through what they multiply
    with pytest.raises((TypeError, ValueError), match=f"The model's params .*{message}"):
        calls[call]()
    assert not (tmp_path / "m.npz").exists()
