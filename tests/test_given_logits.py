"""minikd.distill / Distiller with a teacher's logits given instead of a teacher network."""

import numpy as np
import pytest

from minikd import MLP, distill, fit
from minikd.training.distiller import Distiller


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((240, 6)).astype(np.float32)  # (N, D)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(np.int64) + (X[:, 3] > 1)  # 3 classes
    teacher = MLP([6, 32, 3], dropout=0.2, rng=0)
    fit(teacher, X, y, epochs=4, batch_size=32, rng=0, verbose=False)
    logits, _ = teacher.forward(X)  # (N, C), evaluation mode
    return X, y, teacher, logits


@pytest.mark.parametrize("temperature, alpha, labels", [(1.0, 0.9, True), (4.0, 0.5, True),
                                                        (2.5, 1.0, False)])
def test_given_logits_equal_the_teacher_they_come_from(task, temperature, alpha, labels):
    X, y, teacher, logits = task
    y_arg = y if labels else None
    students, histories = [], []
    for kw in ({"teacher": teacher}, {"teacher": None, "teacher_logits": logits}):
        student = MLP([6, 8, 3], rng=1)
        kw = dict(kw)
        t = kw.pop("teacher")
        histories.append(distill(t, student, X, y_arg, temperature=temperature, alpha=alpha,
                                 epochs=3, batch_size=32, rng=7, verbose=False, **kw))
        students.append(student)
    for k in students[0].params:
        assert np.array_equal(students[0].params[k], students[1].params[k]), k  # bit for bit
    assert histories[0]["loss"] == histories[1]["loss"]
    assert histories[0]["agree"] == histories[1]["agree"]


def test_different_logits_train_a_different_student(task):
    # negative control: the given logits are really used
    X, y, teacher, logits = task
    a, b = MLP([6, 8, 3], rng=1), MLP([6, 8, 3], rng=1)
    distill(None, a, X, y, teacher_logits=logits, epochs=1, rng=7, verbose=False)
    distill(None, b, X, y, teacher_logits=logits[::-1].copy(), epochs=1, rng=7, verbose=False)
    assert not np.array_equal(a.params["W1"], b.params["W1"])


def test_cache_holds_the_given_logits_in_the_students_dtype(task):
    X, y, _, logits = task
    student = MLP([6, 8, 3], dtype=np.float64, rng=1)
    d = Distiller(None, student, X, y, teacher_logits=logits)
    assert d.teacher_logits.dtype == np.float64
    assert np.array_equal(d.teacher_logits, logits.astype(np.float64))
    assert np.array_equal(d.teacher_pred, logits.argmax(axis=1))


def test_validation_without_a_teacher_reports_accuracy_not_agreement(task):
    X, y, _, logits = task
    h = distill(None, MLP([6, 8, 3], rng=1), X, y, teacher_logits=logits, epochs=2,
                X_val=X[:50], y_val=y[:50], rng=0, verbose=False)
    assert len(h["val_acc"]) == 2
    assert "val_acc" in h.columns and "val_agree" not in h.columns


@pytest.mark.parametrize("kwargs, match", [
    ({"teacher": None}, "teacher.*Distiller.*teacher_logits"),
    ({"teacher": "T", "teacher_logits": "L"}, "teacher_logits.*both"),
    ({"teacher": None, "teacher_logits": "L", "method": "sp"}, "method.*'kd'.*hidden layers"),
    ({"teacher": None, "teacher_logits": "short"}, r"teacher_logits.*shape \(240, 3\)"),
    ({"teacher": None, "teacher_logits": "wide"}, r"teacher_logits.*shape \(240, 3\)"),
    ({"teacher": None, "teacher_logits": "nan"}, "teacher_logits.*(NaN|finite)"),
    ({"teacher": None, "teacher_logits": "1d"}, "teacher_logits.*2-D"),
])
def test_bad_teacher_or_logits_are_refused_by_name(task, kwargs, match):
    X, y, teacher, logits = task
    nan = logits.copy()
    nan[5, 1] = np.nan
    arrays = {"L": logits, "short": logits[:-1], "wide": np.hstack([logits, logits]),
              "nan": nan, "1d": logits[:, 0], "T": teacher}
    kwargs = {k: arrays.get(v, v) if isinstance(v, str) and k != "method" else v
              for k, v in kwargs.items()}
    teacher_arg = kwargs.pop("teacher")
    with pytest.raises((ValueError, TypeError), match=match):
        Distiller(teacher_arg, MLP([6, 8, 3], rng=1), X, y, **kwargs)


# -- the job: run_seed / run_distill with given logits ----------------------------------------

@pytest.fixture(scope="module")
def small_job():
    from minikd.experiments.data import load_dataset
    from minikd.experiments.setup import DistillSetup

    data = load_dataset("digits")
    setup = DistillSetup(dataset="digits", seeds=1, teacher_hidden=(32,), teacher_epochs=2,
                         student_hidden=(8,), epochs=2).checked()
    return setup, data


def test_a_seed_distilled_from_its_teachers_logits_equals_the_seed_with_the_teacher(small_job):
    from minikd.experiments.distill_job import run_seed
    from minikd.experiments.seed_runs import train_teacher

    setup, data = small_job
    record, _, models = run_seed(setup, data, 3)
    teacher, _ = train_teacher(setup, data, 3, False)  # the same seed: the same teacher
    logits = (teacher.forward(data.X_train)[0], teacher.forward(data.X_test)[0])
    given, curves, given_models = run_seed(setup, data, 3, teacher_logits=logits)
    assert "teacher" not in given_models and curves["teacher"] == []
    assert given == record  # every accuracy and agreement, the teacher's included
    for k, w in models["distilled"].params.items():
        assert np.array_equal(w, given_models["distilled"].params[k]), k


@pytest.mark.parametrize("change, match", [
    ({"teacher_logits": "short"}, r"teacher_logits \(train\).*shape \(1258, 10\)"),
    ({"teacher_logits": "test wide"}, r"teacher_logits \(test\).*shape \(539, 10\)"),
    ({"teacher_logits": "nan"}, r"teacher_logits \(train\).*(NaN|finite)"),
    ({"family": "relation"}, "teacher_logits.*family 'relation'"),
])
def test_run_distill_refuses_bad_logits_before_training(small_job, change, match):
    from minikd.experiments.distill_job import run_distill

    setup, data = small_job
    z_tr, z_te = np.zeros((1258, 10)), np.zeros((539, 10))
    nan = z_tr.copy()
    nan[0, 0] = np.nan
    logits = {"short": (z_tr[1:], z_te), "test wide": (z_tr, np.zeros((539, 11))),
              "nan": (nan, None)}.get(change.get("teacher_logits"), (z_tr, z_te))
    overrides = {k: v for k, v in change.items() if k != "teacher_logits"}
    with pytest.raises(ValueError, match=match):
        run_distill(setup, data=data, teacher_logits=logits, verbose=False, **overrides)
