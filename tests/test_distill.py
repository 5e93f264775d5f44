"""The distillation trainer: the blended objective's gradient, the frozen teacher, the loop.

* The full objective's gradient with respect to every student and regressor parameter matches
  finite differences (float64, tanh), for each family, with several layer pairs.
* The teacher runs once per transfer set (never per epoch); training goes through
  minikd.train_loop; the same rng gives the same run.
* On digits with class 3 left out of an unlabeled transfer set, a distilled student agrees with
  the teacher on the test 3s far more than a student trained from scratch, over several seeds,
  and a KD gradient with a flipped sign or a zero gradient cannot reach the threshold.
"""

import importlib
import math
import warnings

import numpy as np
import pytest
from test_train import blas_counts, validation_calls

import minikd
from minikd import MLP, Distiller, NonFiniteLossError, data, distill, gradcheck

# The function minikd.distill shadows the module's name on the package: fetch the module itself.
distill_module = importlib.import_module("minikd.training.distiller")
objective_module = importlib.import_module("minikd.training.objective")  # Distiller.step's

FD_TOL = 1e-5
FD_FLOOR = 1e-8  # central-difference round-off floor (see test_features.py)


def tiny_problem(seed=0, n=7, teacher_sizes=(5, 7, 6, 3), student_sizes=(5, 6, 4, 3)):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    y = rng.integers(0, 3, n)
    teacher = MLP(list(teacher_sizes), activation="tanh", dtype=np.float64, rng=seed + 1)
    # a sharper teacher than its initialisation, so KD has something to say
    for k in teacher.params:
        teacher.params[k] *= 2.0
    student = MLP(list(student_sizes), activation="tanh", dtype=np.float64, rng=seed + 2)
    return X, y, teacher, student


def objective_fd(distiller, idx):
    """Check every parameter's gradient (student and regressors) against central differences."""
    terms, grads = distiller.step(idx, train=False)
    assert set(grads) == set(distiller.params)
    for key, p in distiller.params.items():
        def f(v, key=key, p=p):
            old = p.copy()
            p[...] = v
            try:
                return distiller.step(idx, train=False)[0]["loss"]
            finally:
                p[...] = old
        result = gradcheck.check_gradient(f, p.copy(), grads[key], tol=FD_TOL)
        if not result.ok and np.max(np.abs(result.analytic - result.numeric)) > FD_FLOOR:
            raise AssertionError(result.report(f"{distiller.method}: {key}"))
    return terms


@pytest.mark.parametrize("method", distill_module.METHODS)
def test_full_objective_gradient_matches_finite_differences(method):
    equal = method in ("at", "cosine")
    X, y, teacher, student = tiny_problem(
        teacher_sizes=(5, 6, 4, 3) if equal else (5, 7, 6, 3))
    layers = [(0, 0), (1, 1)] if equal else [(0, 1), (1, 0), (1, 1)]
    d = Distiller(teacher, student, X, y, method=method, layers=layers, temperature=2.5,
                  alpha=0.6, gamma=0.7, beta=0.9, rng=0)
    idx = np.array([0, 2, 3, 5, 6])
    terms = objective_fd(d, idx)
    # the objective is the weighted sum of the reported terms
    feature = 0.0 if method == "kd" else 0.9 * terms[method]
    expected = 0.7 * terms["ce"] + 0.6 * terms["kd"] + feature
    assert terms["loss"] == pytest.approx(expected, rel=1e-12)
    if method == "fitnets":
        assert {"reg0.W", "reg0.b", "reg1.W", "reg2.b"} <= set(d.params)
        assert d.params["reg0.W"].shape == (6, 6) and d.params["reg1.W"].shape == (4, 7)


def test_gradient_without_labels_and_with_library_weights():
    X, _, teacher, student = tiny_problem(seed=3)
    for method in ("fitnets", "sp", "pkt", "rkd"):
        d = Distiller(teacher, student, X, method=method, rng=1)  # default alpha 0.9, beta
        assert d.gamma == 0.0 and d.beta == distill_module.DEFAULT_BETA[method]
        terms = objective_fd(d, np.arange(7))
        assert "ce" not in terms and "train_acc" not in terms
        assert terms["loss"] == pytest.approx(0.9 * terms["kd"] + d.beta * terms[method],
                                              rel=1e-12)


@pytest.mark.parametrize("method", [m for m in distill_module.METHODS if m != "kd"])
def test_a_one_row_last_mini_batch_trains(method):
    """N % batch_size == 1 leaves a one-row batch: it has no pair of rows, yet trains."""
    equal = method in ("at", "cosine")
    X, y, teacher, student = tiny_problem(n=9, teacher_sizes=(5, 6, 4, 3) if equal
                                          else (5, 7, 6, 3))
    d = Distiller(teacher, student, X, y, method=method, rng=0)
    history = d.train(epochs=1, batch_size=8, rng=0, verbose=False)
    assert math.isfinite(history["loss"][-1])
    terms = objective_fd(d, np.array([4]))  # the one-row objective, checked by differences
    if method == "rkd":  # no pair: the distance term is 0 and every angle is 0 on both sides
        assert terms["rkd"] == 0.0


def test_teacher_with_dropout_is_cached_in_evaluation_mode():
    X, y, _, student = tiny_problem(n=30)
    teacher = MLP([5, 7, 6, 3], activation="tanh", dropout=0.5, dtype=np.float64, rng=1)
    d = Distiller(teacher, student, X, y, method="sp", rng=0)
    z, cache = teacher.forward(X)  # train=False: no dropout
    np.testing.assert_array_equal(d.teacher_logits, z)
    np.testing.assert_array_equal(d.teacher_hidden[1], cache.hidden[1])
    # a training-mode forward would differ: the check above can fail
    assert not np.allclose(teacher.forward(X, train=True)[0], z)


def test_kd_only_gradient_is_the_kd_and_ce_blend():
    """method='kd': dlogits = gamma (p - e_y)/B + alpha (T/B)(p^T_s - p^T_t), by hand."""
    X, y, teacher, student = tiny_problem(seed=5)
    T, a = 3.0, 0.75
    d = Distiller(teacher, student, X, y, temperature=T, alpha=a)
    idx = np.arange(7)
    _, grads = d.step(idx, train=False)
    z, cache = student.forward(X)
    zt = teacher.forward(X)[0]

    def sm(v):
        e = np.exp(v - v.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    dz = (1 - a) * (sm(z) - np.eye(3)[y]) / 7 + a * T / 7 * (sm(z / T) - sm(zt / T))
    expected = student.backward(dz, cache)
    for key in grads:
        np.testing.assert_allclose(grads[key], expected[key], rtol=1e-10, atol=1e-14)


def test_teacher_runs_once_not_per_epoch(monkeypatch):
    X, y, teacher, student = tiny_problem(n=40)
    calls = []
    real = teacher.forward_unchecked
    monkeypatch.setattr(teacher, "forward_unchecked", lambda x, train: calls.append(len(x)) or
                        real(x, train))
    X_val = X[:10]
    history = distill(teacher, student, X, y, method="sp", epochs=4, batch_size=8, rng=0,
                      X_val=X_val, y_val=y[:10], verbose=False)
    assert len(history) == 4
    assert calls == [40, 10]  # the transfer set once, the validation set once


def test_training_goes_through_train_loop(monkeypatch):
    X, y, teacher, student = tiny_problem(n=20)
    seen = {}
    real = distill_module.train_loop

    def spy(params, optimizer, n_samples, step, **kw):
        seen["n"], seen["label"] = n_samples, kw["label"]
        return real(params, optimizer, n_samples, step, **kw)

    monkeypatch.setattr(distill_module, "train_loop", spy)
    distill(teacher, student, X, y, epochs=1, batch_size=5, verbose=False)
    assert seen == {"n": 20, "label": "distill"}


def test_history_columns_progress_lines_and_reproducibility(capsys):
    X, y, teacher, _ = tiny_problem(n=30)

    def run(seed):
        student = MLP([5, 6, 4, 3], activation="tanh", dtype=np.float64, rng=11)
        h = distill(teacher, student, X, y, method="fitnets", layers=[(0, 1)], epochs=3,
                    batch_size=8, X_val=X[:9], y_val=y[:9], rng=seed, verbose=True)
        return h, student

    h1, s1 = run(4)
    err = capsys.readouterr().err
    assert err.count("distill epoch") == 3 and "agree" in err
    assert set(h1.columns) >= {"epoch", "lr", "loss", "ce", "kd", "fitnets", "train_acc",
                               "agree", "val_agree", "val_acc", "time"}
    h2, s2 = run(4)
    for key in s1.params:
        assert np.array_equal(s1.params[key], s2.params[key])
    assert h1["loss"] == h2["loss"]
    h3, s3 = run(5)
    assert not np.array_equal(s1.params["W1"], s3.params["W1"])


def test_regressor_and_student_both_train():
    X, y, teacher, student = tiny_problem(n=30)
    d = Distiller(teacher, student, X, y, method="fitnets", rng=0)
    before = {k: v.copy() for k, v in d.params.items()}
    d.train(epochs=3, batch_size=10, rng=0, verbose=False)
    for key in before:
        assert not np.array_equal(before[key], d.params[key]), key
    assert d.params["W1"] is student.params["W1"]  # updates land in the student itself


def test_optimizer_factory_and_a_refused_optimizer_without_the_regressors():
    X, y, teacher, student = tiny_problem(n=20)
    h = distill(teacher, student, X, y, method="fitnets", epochs=2, batch_size=5, rng=0,
                optimizer=lambda p: minikd.Adam(p, lr=1e-2), verbose=False)
    assert h["lr"] == [1e-2, 1e-2]
    h = distill(teacher, student, X, y, method="sp", epochs=1, batch_size=5, rng=0,
                optimizer=minikd.Adam, verbose=False)  # a class is a factory too
    assert len(h) == 1
    with pytest.raises(ValueError, match="reg0.W"):
        distill(teacher, student, X, y, method="fitnets", epochs=1, verbose=False,
                optimizer=minikd.SGD(student.params, lr=0.1))


def test_non_finite_objective_stops_with_the_guard():
    X, y, teacher, student = tiny_problem(n=30, student_sizes=(5, 6, 3))
    student = MLP([5, 6, 3], rng=0, dtype=np.float64)  # relu: can blow up
    with pytest.raises(NonFiniteLossError) as info:
        distill(teacher, student, X * 1e30, y, epochs=2, batch_size=10, rng=0, verbose=False,
                optimizer=minikd.SGD(student.params, lr=1e30))
    assert info.value.epoch >= 1 and info.value.step >= 1
    assert all(np.isfinite(p).all() for p in student.params.values())


# ---------------------------------------------------------------------------------------------
# the teacher knows something the transfer set does not show


@pytest.fixture(scope="module")
def omitted_three():
    X, y = data.load_digits()
    split = data.train_val_split(X, y, val_fraction=0.3, rng=0)
    teacher = MLP([64, 64, 10], rng=0)
    minikd.fit(teacher, split.X_train, split.y_train, epochs=15, batch_size=64, rng=0,
               verbose=False)
    keep = split.y_train != 3
    return teacher, split.X_train[keep], split.y_train[keep], split.X_test, split.y_test


def agreement_on_threes(teacher, student, X_test, y_test):
    threes = y_test == 3
    return float(np.mean(student.predict(X_test[threes]) == teacher.predict(X_test[threes])))


def test_distilled_student_learns_the_omitted_class_from_soft_targets(omitted_three):
    """Hinton et al. 2015, §3: no 3 in the (unlabeled) transfer set, yet the student learns 3s."""
    teacher, X_tr, y_tr, X_te, y_te = omitted_three
    assert np.mean(teacher.predict(X_te) == y_te) > 0.9
    for seed in range(3):
        scratch = MLP([64, 32, 10], rng=seed)
        minikd.fit(scratch, X_tr, y_tr, epochs=20, batch_size=32, rng=seed, verbose=False)
        student = MLP([64, 32, 10], rng=seed)
        history = distill(teacher, student, X_tr, epochs=20, batch_size=32, alpha=1.0,
                          rng=seed, verbose=False)  # no labels at all
        scratch_3 = agreement_on_threes(teacher, scratch, X_te, y_te)
        distilled_3 = agreement_on_threes(teacher, student, X_te, y_te)
        # a student that never saw a 3 (nor a label) predicts the teacher's 3s...
        assert distilled_3 >= 0.8, (seed, distilled_3)
        # ...which the labelled scratch student cannot (it never predicts the missing class)
        assert scratch_3 <= 0.2, (seed, scratch_3)
        overall = np.mean(student.predict(X_te) == teacher.predict(X_te))
        assert overall >= np.mean(scratch.predict(X_te) == teacher.predict(X_te)) + 0.05
        assert history["agree"][-1] > 0.95


@pytest.mark.parametrize("broken", ["flipped sign", "zero gradient"])
def test_a_broken_kd_gradient_cannot_meet_the_threshold(omitted_three, monkeypatch, broken):
    teacher, X_tr, _, X_te, y_te = omitted_three
    real = objective_module.kd_loss_kernel

    def bad(z_s, z_t, *, temperature):
        loss, grad = real(z_s, z_t, temperature=temperature)
        return minikd.LossGrad(loss, -grad if broken == "flipped sign" else 0 * grad)

    monkeypatch.setattr(objective_module, "kd_loss_kernel", bad)
    student = MLP([64, 32, 10], rng=0)
    try:
        distill(teacher, student, X_tr, epochs=20, batch_size=32, alpha=1.0, rng=0,
                verbose=False)
    except NonFiniteLossError:
        return  # diverging is failing too
    assert agreement_on_threes(teacher, student, X_te, y_te) < 0.8


def test_feature_and_relation_families_train_on_digits(omitted_three):
    """Every family runs end to end on real data and reaches high agreement with the teacher."""
    teacher, X_tr, y_tr, X_te, _ = omitted_three
    for method in ("fitnets", "at", "sp", "rkd", "pkt", "cosine"):
        student = MLP([64, 64, 10], rng=1)  # same width: AT and cosine apply too
        # FitNets' library weight (100) kills this ReLU student's units in the first epoch at
        # lr 0.05 (docs/loss_scales.md): 10 puts its gradient near the cross-entropy's.
        beta = 10.0 if method == "fitnets" else None
        h = distill(teacher, student, X_tr[:400], y_tr[:400], method=method, beta=beta,
                    epochs=6, batch_size=32, rng=0, verbose=False)
        assert math.isfinite(h["loss"][-1]) and h[method][-1] < h[method][0], method
        assert h["agree"][-1] > 0.8, method


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"method": "fitnet"}, ValueError, "'method' parameter of Distiller"),
    ({"layers": [(0, 5)]}, ValueError, "'layers'"),
    ({"layers": [(0.0, 1)]}, TypeError, "'layers'"),
    ({"layers": []}, ValueError, "'layers'"),
    ({"layers": 3}, TypeError, "'layers'"),
    ({"method": "at", "layers": [(1, 1)]}, ValueError, "equal widths"),
    ({"method": "cosine", "layers": [(0, 0)]}, ValueError, "equal widths"),
    ({"temperature": 0.0}, ValueError, "'temperature'"),
    ({"alpha": 1.5}, ValueError, "'alpha'"),
    ({"beta": -1.0}, ValueError, "'beta'"),
    ({"gamma": "1"}, TypeError, "'gamma'"),
])
def test_bad_arguments(kwargs, exc, words):
    X, y, teacher, student = tiny_problem()
    kwargs = {"method": "sp", **kwargs}
    with pytest.raises(exc) as info:
        Distiller(teacher, student, X, y, **kwargs)
    assert words in str(info.value)


def test_bad_models_and_data():
    X, y, teacher, student = tiny_problem()
    with pytest.raises(TypeError, match="'teacher'"):
        Distiller("teacher", student, X, y)
    with pytest.raises(ValueError, match="'student'"):
        Distiller(teacher, MLP([5, 4, 2]), X, y)
    with pytest.raises(ValueError, match="'gamma'"):
        Distiller(teacher, student, X, gamma=0.5)  # CE without labels
    with pytest.raises(ValueError, match="'y'"):
        Distiller(teacher, student, X, y[:3])
    with pytest.raises(ValueError):
        Distiller(teacher, student, np.full_like(X, np.nan), y)
    with pytest.raises(ValueError, match="'method'"):
        Distiller(MLP([5, 3]), MLP([5, 3]), X, y, method="sp")
    with pytest.raises(ValueError, match="'X_val'"):
        distill(teacher, student, X, y, y_val=y, epochs=1, verbose=False)
    with pytest.raises(TypeError, match="'blas_threads' parameter of distill"):
        distill(teacher, student, X, y, epochs=1, verbose=False, blas_threads="2")


def test_teacher_logits_out_of_range_are_refused_once_at_build():
    X, y, _, _ = tiny_problem()
    teacher = MLP([5, 3], dtype=np.float32, rng=0)
    teacher.params["W1"] *= np.float32(1e28)  # logits ~1e28: past float32's limit at T = 4
    with pytest.raises(ValueError, match="teacher's logits"):
        Distiller(teacher, MLP([5, 4, 3], rng=0), X.astype(np.float32), y)


# ---------------------------------------------------------------------------------------------
# validate once, then kernels per batch; BLAS threads


def _validation_count(method, batch_size):
    equal = method in ("at", "cosine")  # these compare layers of equal widths
    X, y, teacher, _ = tiny_problem(n=12, teacher_sizes=(5, 6, 4, 3) if equal else (5, 7, 6, 3))
    student = MLP([5, 6, 4, 3], activation="tanh", dtype=np.float64, rng=2)
    return validation_calls(lambda: distill(teacher, student, X, y, method=method, epochs=2,
                                            batch_size=batch_size, beta=0.1, rng=0,
                                            verbose=False))


def test_distill_validates_once_not_per_batch():
    one_batch, six_batches = _validation_count("kd", 12), _validation_count("kd", 2)
    assert one_batch > 0
    assert six_batches == one_batch


@pytest.mark.parametrize("method", ["fitnets", "at", "sp", "rkd", "pkt", "cosine"])
def test_feature_methods_validate_once_not_per_batch(method):
    assert _validation_count(method, 2) == _validation_count(method, 12)


def test_distill_limits_blas_threads_for_the_teacher_pass_and_training():
    X, y, teacher, student = tiny_problem(n=20)
    before, seen = blas_counts(), []
    real = teacher.forward_unchecked

    def spy(x, train=False):
        seen.append(("teacher", blas_counts()))
        return real(x, train)

    teacher.forward_unchecked = spy  # an instance attribute: this teacher only

    def schedule(t):
        seen.append(("train", blas_counts()))
        return 0.05

    distill(teacher, student, X, y, epochs=1, batch_size=5, schedule=schedule, verbose=False)
    ones = [1] * len(before)
    assert seen == [("teacher", ones), ("train", ones)]
    assert blas_counts() == before


def test_a_non_finite_feature_term_stops_with_the_guard_and_no_warnings():
    X, y, teacher, _ = tiny_problem(n=30)
    student = MLP([5, 6, 4, 3], dtype=np.float32, rng=0)
    student.params["W1"] *= np.float32(1e38)  # the hidden layers overflow to inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail the test
        with pytest.raises(NonFiniteLossError, match="epoch 1, step 1/3.*'loss' is nan"):
            # the feature term alone: only it can report the non-finite hidden layer
            distill(teacher, student, X.astype(np.float32), y, method="sp", alpha=0.0,
                    gamma=0.0, beta=1.0, epochs=1, batch_size=10, rng=0, verbose=False)
