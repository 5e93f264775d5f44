"""The character language model: a loop twin of its docstring equation, finite differences for
every parameter (with and without dropout), sampling, bad input."""

import math

import numpy as np
import pytest

from minikd import cross_entropy, gradcheck
from minikd.nn.char_lm import CharLM


def naive_logits(model, contexts):
    """z = MLP([E_{i_1}; ...; E_{i_K}]) by loops, in evaluation mode (docstring equation)."""
    P = model.params
    act = math.tanh if model.activation == "tanh" else (lambda v: max(v, 0.0))
    out = []
    for row in contexts:
        h = [float(P["E"][i, d]) for i in row for d in range(model.embed_dim)]  # concatenated
        for l in range(1, model.n_layers + 1):
            W, b = P[f"W{l}"], P[f"b{l}"]
            a = [sum(h[j] * float(W[j, u]) for j in range(len(h))) + float(b[u])
                 for u in range(W.shape[1])]
            h = a if l == model.n_layers else [act(v) for v in a]
        out.append(h)
    return np.array(out)


@pytest.mark.parametrize("activation, hidden", [("tanh", (5,)), ("relu", (4, 3))])
def test_forward_matches_naive_twin(activation, hidden):
    model = CharLM(context=3, embed_dim=2, hidden=hidden, vocab=6, activation=activation,
                   dtype=np.float64, rng=0)
    for key in model.params:  # non-zero biases, so a dropped bias would show
        model.params[key] += 0.1 * np.random.default_rng(1).standard_normal(
            model.params[key].shape)
    contexts = np.array([[0, 0, 5], [3, 3, 3], [1, 2, 4]])
    logits, _ = model.forward(contexts)
    np.testing.assert_allclose(logits, naive_logits(model, contexts), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.logits(contexts), logits, rtol=0, atol=0)


@pytest.mark.parametrize("activation, hidden, dropout, seed", [
    ("tanh", (6,), 0.0, 0), ("relu", (5, 4), 0.0, 1), ("tanh", (6, 5), 0.3, 2),
])
def test_every_parameter_gradient_matches_finite_differences(activation, hidden, dropout, seed):
    """L = <z, G> for a random G, through every layer, each parameter element by element."""
    model = CharLM(context=3, embed_dim=3, hidden=hidden, vocab=7, activation=activation,
                   dropout=dropout, dtype=np.float64, rng=seed)
    rng = np.random.default_rng(seed + 10)
    for key in model.params:
        model.params[key] += 0.2 * rng.standard_normal(model.params[key].shape)
    contexts = rng.integers(0, 7, size=(5, 3))
    contexts[0] = contexts[1]  # a repeated row: its embedding rows are read twice
    dout = rng.standard_normal((5, 7))

    def run(params):
        model.rng = np.random.default_rng(99)  # the same dropout masks at every evaluation
        saved, model.params = model.params, params
        try:
            return model.forward(contexts, train=True)
        finally:
            model.params = saved

    _, cache = run(model.params)
    grads = model.backward(dout, cache)
    assert sorted(grads) == sorted(model.params)
    for key, value in model.params.items():
        def f(v, key=key):
            return run({**model.params, key: v})[0]
        gradcheck.assert_gradient(f, value, grads[key], dout=dout, name=key)


def test_loss_gradient_through_cross_entropy_in_float32_training_shapes():
    """The training path: float32 model, CE loss, directional checks on a float64 copy."""
    model = CharLM(context=8, embed_dim=4, hidden=(16,), rng=3)
    rng = np.random.default_rng(4)
    contexts, targets = rng.integers(0, 27, size=(32, 8)), rng.integers(0, 27, size=32)
    logits, cache = model.forward(contexts)
    grads = model.backward(cross_entropy(logits, targets).grad, cache)
    assert all(g.dtype == np.float32 for g in grads.values())
    twin = CharLM(context=8, embed_dim=4, hidden=(16,), dtype=np.float64, rng=3)
    twin.params = {k: v.astype(np.float64) for k, v in model.params.items()}
    _, cache64 = twin.forward(contexts)
    grads64 = twin.backward(cross_entropy(twin.forward(contexts)[0], targets).grad, cache64)
    for key, value in twin.params.items():
        np.testing.assert_allclose(grads[key], grads64[key], rtol=1e-3, atol=1e-5)

        def loss(v, key=key):
            saved, twin.params = twin.params, {**twin.params, key: v}
            try:
                return cross_entropy(twin.forward(contexts)[0], targets).loss
            finally:
                twin.params = saved
        result = gradcheck.check_directional(loss, value, grads64[key], rng=5)
        assert result.ok, result.report(key)


def test_initial_predictions_are_nearly_uniform():
    model = CharLM(rng=0)
    contexts = np.random.default_rng(0).integers(0, 27, size=(500, 8))
    loss = cross_entropy(model.logits(contexts), np.zeros(500, np.int64)).loss
    assert abs(loss - math.log(27)) < 0.1  # the 0.1 scale of the last layer (makemore)


def test_logits_in_chunks_equal_one_forward():
    model = CharLM(context=2, embed_dim=2, hidden=(3,), rng=1)
    contexts = np.random.default_rng(1).integers(0, 27, size=(9000, 2))  # more than a chunk
    np.testing.assert_array_equal(model.logits(contexts), model.forward(contexts)[0])


def test_dropout_only_in_training_mode():
    model = CharLM(context=2, embed_dim=2, hidden=(50,), dropout=0.5, rng=2)
    contexts = np.ones((4, 2), np.int64)
    a, b = model.forward(contexts)[0], model.forward(contexts)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.forward(contexts, train=True)[0], a)


def test_sampling_is_seeded_stops_at_the_boundary_and_respects_max_len():
    model = CharLM(context=3, embed_dim=2, hidden=(4,), rng=0)
    first = model.sample(20, rng=7)
    assert first == model.sample(20, rng=7)
    assert all(0 < t < 27 for row in first for t in row)
    model.params["b2"][:] = 0.0
    model.params["b2"][0] = 50.0  # the boundary is (almost surely) the first draw
    assert model.sample(5, rng=0) == [[]] * 5
    model.params["b2"][0] = -50.0
    model.params["b2"][3] = 50.0  # never the boundary: cut at max_len
    assert model.sample(2, max_len=4, rng=0) == [[3, 3, 3, 3]] * 2
    assert model.sample(0, rng=0) == []


def test_sampling_follows_the_model_distribution():
    """One step from the empty context: token frequencies match softmax(b) (no hidden input
    matters when every weight is 0)."""
    model = CharLM(context=2, embed_dim=2, hidden=(3,), vocab=4, rng=0)
    for key in model.params:
        model.params[key][...] = 0.0
    model.params["b2"][:] = np.log([0.1, 0.2, 0.3, 0.4])
    draws = model.sample(40000, max_len=1, rng=3)
    freq = np.bincount([row[0] if row else 0 for row in draws], minlength=4) / 40000
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.01)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"context": 0}, ValueError, "'context' parameter of CharLM"),
    ({"hidden": ()}, TypeError, "'hidden' parameter of CharLM"),
    ({"hidden": (4, 0)}, ValueError, "'hidden' parameter of CharLM"),
    ({"activation": "gelu"}, ValueError, "'activation' parameter of CharLM"),
    ({"dropout": 1.0}, ValueError, r"'dropout' parameter of CharLM must be a float in the "
                                   r"range \[0, 1\)"),
    ({"dtype": np.float16}, TypeError, "'dtype' parameter of CharLM"),
    ({"vocab": 1}, ValueError, "'vocab' parameter of CharLM"),
])
def test_bad_constructor_arguments_name_the_parameter(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        CharLM(**kwargs)


@pytest.mark.parametrize("contexts, exc, match", [
    (np.zeros((2, 3), np.int64), ValueError, r"shape \(N, 8\).*Got shape \(2, 3\)"),
    (np.zeros((2, 8)), TypeError, "integer array of token indices"),
    (np.full((2, 8), 27), ValueError, r"token indices in \[0, 27\)"),
])
def test_bad_contexts_name_the_parameter(contexts, exc, match):
    model = CharLM(rng=0)
    with pytest.raises(exc, match="'contexts' parameter of CharLM.forward must be"):
        model.forward(contexts)
    with pytest.raises(exc, match=match):
        model.logits(contexts)
