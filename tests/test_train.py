"""The training loop: learning a toy problem, reproducibility, guards, history, schedules."""

import math
import os
import sys
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import minikd._validation
from minikd import MLP, SGD, Adam, StepSchedule
from minikd.training import History, NonFiniteLossError, blas_threads, fit, train_loop


def spirals(n_per_class=150, n_classes=3, noise=0.2, seed=0):
    """Interleaved 2-D spiral arms (cs231n's toy problem): not linearly separable."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c in range(n_classes):
        r = np.linspace(0.05, 1.0, n_per_class)
        theta = np.linspace(c * 4.0, (c + 1) * 4.0, n_per_class) + rng.normal(0, noise,
                                                                               n_per_class)
        X.append(np.column_stack([r * np.sin(theta), r * np.cos(theta)]))
        y.append(np.full(n_per_class, c))
    return np.concatenate(X).astype(np.float32), np.concatenate(y)


def ce_stand_in(logits, labels):
    """Test-side cross-entropy written from its formula: mean -log softmax(z)_y, (p - e_y)/N."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    p = np.exp(log_p)
    n = len(labels)
    loss = -np.mean(log_p[np.arange(n), labels])
    grad = p.copy()
    grad[np.arange(n), labels] -= 1
    return loss, (grad / n).astype(logits.dtype)


def make_step(model, X, y, flip=False):
    def step(idx):
        logits, cache = model.forward(X[idx], train=True)
        loss, dlogits = ce_stand_in(logits, y[idx])
        grads = model.backward(dlogits, cache)
        if flip:  # a broken backward pass: gradient ascent
            grads = {k: -g for k, g in grads.items()}
        return {"loss": loss, "acc": float(np.mean(logits.argmax(1) == y[idx]))}, grads
    return step


def train_spirals(flip=False, seed=0, epochs=40):
    X, y = spirals()
    model = MLP([2, 64, 64, 3], rng=seed)
    opt = Adam(model.params, lr=0.01)
    try:
        history = train_loop(model.params, opt, len(X), make_step(model, X, y, flip),
                             epochs=epochs, batch_size=32, rng=seed, verbose=False)
    except NonFiniteLossError:  # gradient ascent may blow up: the params stay finite
        history = None
    return model, history, float(np.mean(model.predict(X) == y))


def test_a_small_mlp_learns_spirals_and_a_flipped_gradient_does_not():
    X, y = spirals()
    # a linear classifier cannot do this: check the bar is high
    model, history, acc = train_spirals()
    assert acc >= 0.97, acc
    assert history["loss"][-1] < 0.25 * history["loss"][0]
    _, _, broken = train_spirals(flip=True, epochs=15)
    assert broken < 0.6, broken  # a sign error in backward cannot pass the threshold


def test_same_seed_gives_bitwise_identical_params():
    X, y = spirals(n_per_class=40)

    def run(seed):
        model = MLP([2, 16, 16, 3], dropout=0.2, rng=seed)
        fit(model, X, y, epochs=5, batch_size=16, rng=seed, verbose=False,
            optimizer=SGD(model.params, lr=0.1, momentum=0.9, nesterov=True))
        return model.params

    a, b, c = run(3), run(3), run(4)
    for key in a:
        assert a[key].tobytes() == b[key].tobytes()
    assert a["W1"].tobytes() != c["W1"].tobytes()


def test_fit_reports_loss_train_and_val_accuracy_and_prints_one_line_per_epoch(capsys):
    X, y = spirals(n_per_class=60, seed=1)
    Xv, yv = spirals(n_per_class=30, seed=2)
    model = MLP([2, 32, 32, 3], rng=0)
    history = fit(model, X, y, epochs=4, batch_size=32, X_val=Xv, y_val=yv, rng=0,
                  optimizer=Adam(model.params, lr=0.01))
    assert len(history) == 4
    assert history["epoch"] == [1, 2, 3, 4]
    for col in ("loss", "train_acc", "val_acc", "lr", "time"):
        assert len(history[col]) == 4
    assert history["val_acc"][-1] == pytest.approx(np.mean(model.predict(Xv) == yv))
    assert all(0 <= a <= 1 for a in history["train_acc"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and err[0].startswith("fit epoch 1/4") and "val_acc" in err[0]
    fit(model, X, y, epochs=2, verbose=False)
    assert capsys.readouterr().err == ""


def test_fit_cross_entropy_matches_the_stand_in():
    X, y = spirals(n_per_class=10)
    model = MLP([2, 8, 3], dtype=np.float64, rng=0)
    loss_before, _ = ce_stand_in(model.forward(X)[0], y)
    # one full-batch step of plain SGD: the loss recorded is the loss before the update
    history = fit(model, X, y, epochs=1, batch_size=len(X), verbose=False,
                  optimizer=SGD(model.params, lr=0.0))
    assert history["loss"][0] == pytest.approx(loss_before, rel=1e-12)


def test_fit_trains_with_dropout_on(monkeypatch):
    """fit runs the model in training mode: one dropout mask per hidden layer per step."""
    import minikd.nn.mlp as mlp_module

    X, y = spirals(n_per_class=10)
    calls = []
    real = mlp_module.dropout_forward_kernel
    monkeypatch.setattr(mlp_module, "dropout_forward_kernel",
                        lambda h, **kw: calls.append(h.shape) or real(h, **kw))
    model = MLP([2, 8, 8, 3], dropout=0.5, rng=0)
    fit(model, X, y, epochs=2, batch_size=10, rng=0, verbose=False)
    assert calls == [(10, 8)] * (2 * 3 * 2)  # 2 epochs x 3 batches x 2 hidden layers
    # and the masks matter: the same run without dropout ends elsewhere
    plain = MLP([2, 8, 8, 3], dropout=0.0, rng=0)
    fit(plain, X, y, epochs=2, batch_size=10, rng=0, verbose=False)
    assert not np.allclose(plain.params["W1"], model.params["W1"])


def test_terms_are_averaged_weighted_by_batch_size():
    params = {"w": np.zeros(1)}
    seen = []

    def step(idx):
        seen.append(idx.copy())
        return {"loss": float(len(idx))}, {"w": np.zeros(1)}

    h = train_loop(params, SGD(params, lr=0.1), 10, step, epochs=2, batch_size=4, rng=0,
                   verbose=False)
    # batches of 4, 4, 2: mean of per-sample values = (4*4 + 4*4 + 2*2) / 10
    assert h["loss"] == [3.6, 3.6]
    assert [len(i) for i in seen] == [4, 4, 2, 4, 4, 2]
    epoch1 = np.sort(np.concatenate(seen[:3]))
    np.testing.assert_array_equal(epoch1, np.arange(10))  # a permutation: each sample once
    assert not np.array_equal(np.concatenate(seen[:3]), np.concatenate(seen[3:]))
    h = train_loop(params, SGD(params, lr=0.1), 10, step, epochs=1, batch_size=4,
                   drop_last=True, verbose=False)
    assert h["loss"] == [4.0]


def test_schedule_sets_lr_each_epoch_and_evaluate_is_merged():
    params = {"w": np.zeros(1)}
    opt = SGD(params, lr=1.0)
    lrs = []

    def step(idx):
        lrs.append(opt.lr)
        return {"loss": 0.0}, {"w": np.ones(1)}

    h = train_loop(params, opt, 4, step, epochs=5, batch_size=2, verbose=False,
                   schedule=StepSchedule(0.8, step_size=2, gamma=0.5),
                   evaluate=lambda e: {"val": 10.0 * e})
    assert h["lr"] == [0.8, 0.8, 0.4, 0.4, 0.2]
    assert lrs == [0.8, 0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.4, 0.2, 0.2]
    assert h["val"] == [10.0, 20.0, 30.0, 40.0, 50.0]
    # w moved by the sum of the learning rates times the unit gradient
    np.testing.assert_allclose(params["w"], [-sum(lrs)])


def test_clip_norm_in_the_loop():
    params = {"w": np.zeros(2)}
    train_loop(params, SGD(params, lr=1.0), 1, lambda idx: ({"loss": 0.0},
                                                            {"w": np.array([3.0, 4.0])}),
               epochs=1, batch_size=1, clip_norm=1.0, verbose=False)
    np.testing.assert_allclose(params["w"], [-0.6, -0.8], rtol=1e-6)


def test_nan_loss_stops_with_epoch_and_step_and_keeps_params():
    params = {"w": np.zeros(3)}
    calls = []

    def step(idx):
        calls.append(1)
        loss = np.nan if len(calls) == 7 else 1.0  # epoch 2 (3 steps per epoch), step 3... no
        return {"loss": loss}, {"w": np.ones(3)}

    with pytest.raises(NonFiniteLossError, match=r"epoch 3, step 1/3.*'loss' is nan") as info:
        train_loop(params, SGD(params, lr=0.5), 6, step, epochs=5, batch_size=2,
                   verbose=False)
    assert (info.value.epoch, info.value.step) == (3, 1)
    # six updates happened before the NaN step; the seventh was refused
    np.testing.assert_array_equal(params["w"], np.full(3, -3.0))
    assert isinstance(info.value, ArithmeticError)


def test_huge_learning_rate_stops_before_params_become_non_finite():
    X, y = spirals(n_per_class=20)
    model = MLP([2, 16, 3], rng=0)
    opt = SGD(model.params, lr=1e38)
    with pytest.raises(NonFiniteLossError, match="epoch 1, step") as info:
        fit(model, X, y, epochs=3, batch_size=8, optimizer=opt, verbose=False)
    assert "non-finite" in str(info.value) or "is nan" in str(info.value) \
        or "is inf" in str(info.value)
    for p in model.params.values():
        assert np.isfinite(p).all()


def test_update_that_would_overflow_is_refused_and_params_kept():
    params = {"w": np.array([1.0, 2.0], np.float32)}
    before = params["w"].copy()

    def step(idx):
        return {"loss": 1.0}, {"w": np.array([1e30, 0.0], np.float32)}

    with pytest.raises(NonFiniteLossError, match=r"epoch 1, step 1/1.*\['w'\]"):
        train_loop(params, SGD(params, lr=1e10), 1, step, epochs=1, batch_size=1,
                   verbose=False)
    np.testing.assert_array_equal(params["w"], before)


def test_foreign_optimizer_making_params_non_finite_is_caught():
    params = {"w": np.zeros(2)}

    class Bad:
        lr = 1.0

        def step(self, grads):
            params["w"][0] = np.inf

    with pytest.raises(NonFiniteLossError, match="foreign optimizer"):
        train_loop(params, Bad(), 2, lambda idx: ({"loss": 0.0}, {"w": np.zeros(2)}),
                   epochs=1, batch_size=1, verbose=False)


def test_history_columns():
    h = History()
    h.append({"epoch": 1, "loss": 1.0})
    h.append({"epoch": 2, "loss": 0.5, "val_acc": 0.9})
    assert h["loss"] == [1.0, 0.5] and h["val_acc"] == [None, 0.9]
    assert h.columns == ["epoch", "loss", "val_acc"] and len(h) == 2
    assert [r["epoch"] for r in h] == [1, 2]
    assert h[-1] == {"epoch": 2, "loss": 0.5, "val_acc": 0.9} and h[0]["loss"] == 1.0
    with pytest.raises(KeyError, match="no column 'acc'"):
        h["acc"]


@pytest.mark.parametrize("kwargs, exc", [
    ({"epochs": 0}, ValueError),
    ({"epochs": 1.5}, TypeError),
    ({"batch_size": 0}, ValueError),
    ({"n_samples": 0}, ValueError),
    ({"step": 3}, TypeError),
    ({"optimizer": object()}, TypeError),
    ({"params": [1]}, TypeError),
    ({"evaluate": "val"}, TypeError),
    ({"clip_norm": -1.0}, ValueError),
    ({"verbose": "yes"}, TypeError),
    ({"batch_size": 5, "drop_last": True}, ValueError),
    ({"blas_threads": 0}, ValueError),
    ({"blas_threads": 1.0}, TypeError),
])
def test_train_loop_bad_arguments(kwargs, exc):
    params = {"w": np.zeros(1)}
    args = {"params": params, "optimizer": SGD(params, lr=0.1), "n_samples": 4,
            "step": lambda idx: ({"loss": 0.0}, {"w": np.zeros(1)}), "epochs": 1,
            "batch_size": 2}
    args.update(kwargs)
    with pytest.raises(exc, match="parameter of train_loop"):
        train_loop(args.pop("params"), args.pop("optimizer"), args.pop("n_samples"),
                   args.pop("step"), **{"verbose": False, **args})


@pytest.mark.parametrize("kwargs, exc", [
    ({"X": np.ones((5, 3))}, ValueError),
    ({"X": np.full((6, 2), np.nan)}, ValueError),
    ({"y": np.zeros(5, int)}, ValueError),
    ({"y": np.full(6, 3)}, ValueError),
    ({"y": np.zeros(6)}, TypeError),
    ({"X_val": np.ones((2, 2))}, ValueError),
    ({"X_val": np.ones((2, 2)), "y_val": np.zeros(3, int)}, ValueError),
    ({"model": "mlp"}, TypeError),
    ({"blas_threads": True}, TypeError),
])
def test_fit_bad_arguments(kwargs, exc):
    args = {"model": MLP([2, 4, 3], rng=0), "X": np.ones((6, 2)), "y": np.zeros(6, int)}
    args.update(kwargs)
    with pytest.raises(exc, match="parameter of fit"):
        fit(args.pop("model"), args.pop("X"), args.pop("y"), epochs=1, verbose=False, **args)


def test_spirals_are_not_linearly_separable():
    """The accuracy bar above means something: a linear softmax model stays far below it."""
    X, y = spirals()
    model = MLP([2, 3], rng=0)  # no hidden layer: multinomial logistic regression
    fit(model, X, y, epochs=60, batch_size=32, rng=0, verbose=False,
        optimizer=Adam(model.params, lr=0.05))
    assert np.mean(model.predict(X) == y) < 0.7
    assert math.isfinite(float(model.params["W1"].sum()))


# -- validate once, then kernels per batch ---------------------------------------------------

def validation_calls(fn):
    """How many Python calls into the minikd/_validation package running fn() makes."""
    folder, count = os.path.dirname(minikd._validation.__file__) + os.sep, 0

    def profile(frame, event, arg):
        nonlocal count
        count += event == "call" and frame.f_code.co_filename.startswith(folder)

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def test_fit_validates_once_not_per_batch():
    X, y = spirals(n_per_class=4)  # 12 rows

    def run(batch_size):
        model = MLP([2, 5, 3], rng=0)
        return validation_calls(lambda: fit(model, X, y, epochs=2, batch_size=batch_size,
                                            verbose=False))

    one_batch, six_batches = run(12), run(2)
    assert one_batch > 0  # the boundary checks are seen: the count can fail
    assert six_batches == one_batch


def test_a_diverging_fit_stops_with_the_guard_and_no_warnings():
    X, y = spirals(n_per_class=20)
    model = MLP([2, 16, 3], rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail the test
        with pytest.raises(NonFiniteLossError):
            fit(model, X * 1e20, y, epochs=3, batch_size=8, verbose=False,
                optimizer=SGD(model.params, lr=1e20))
    assert all(np.isfinite(p).all() for p in model.params.values())


# -- BLAS threads ----------------------------------------------------------------------------

def blas_counts():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def counts_under(n):
    """What threadpoolctl itself gives for a limit of n (a machine may cap it)."""
    with threadpool_limits(limits=n, user_api="blas"):
        return blas_counts()


def test_blas_threads_block_sets_and_restores():
    before = blas_counts()
    assert before, "no BLAS library found by threadpoolctl"
    with blas_threads(1):
        assert blas_counts() == [1] * len(before)
    assert blas_counts() == before
    with blas_threads(None):
        assert blas_counts() == before
    with pytest.raises(ValueError, match="'n' parameter of blas_threads"):
        with blas_threads(0):
            pass
    assert blas_counts() == before


def test_training_uses_one_blas_thread_by_default_and_restores_the_count():
    before, two = blas_counts(), counts_under(2)
    X, y = spirals(n_per_class=4)
    seen = []

    def schedule(t):  # called inside the loop, at the start of each epoch
        seen.append(blas_counts())
        return 0.01

    fit(MLP([2, 5, 3], rng=0), X, y, epochs=1, schedule=schedule, verbose=False)
    fit(MLP([2, 5, 3], rng=0), X, y, epochs=1, schedule=schedule, verbose=False,
        blas_threads=2)
    with blas_threads(2):  # an enclosing block (the CLI's --threads) replaces the default...
        fit(MLP([2, 5, 3], rng=0), X, y, epochs=1, schedule=schedule, verbose=False)
        # ...and an explicit argument still wins
        fit(MLP([2, 5, 3], rng=0), X, y, epochs=1, schedule=schedule, verbose=False,
            blas_threads=1)
    ones = [1] * len(before)
    assert seen == [ones, two, two, ones]
    assert blas_counts() == before


def test_the_blas_limit_is_lifted_when_training_fails():
    before = blas_counts()
    params = {"w": np.zeros(1)}
    with pytest.raises(NonFiniteLossError):
        train_loop(params, SGD(params, lr=0.1), 2, lambda idx: ({"loss": math.inf}, {}),
                   epochs=1, batch_size=1, verbose=False)
    assert blas_counts() == before
