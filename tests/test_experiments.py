"""minikd.experiments, omit_class, sweeps and selfcheck without training: the bias-shift rules
against brute-force twins, the temperature table against scipy, setup validation, discovery."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import softmax as scipy_softmax

from minikd.experiments import distill_job as E
from minikd.experiments import omit_class as O
from minikd.experiments import sweeps
from minikd.verify import selfcheck

# -- bias shifts (Hinton et al. 2015, §3) ---------------------------------------------------------


def naive_acc_after_shift(logits, y, c, shift):
    """Loop twin: add ``shift`` to column c, then count argmax == label row by row."""
    correct = 0
    for row, label in zip(logits, y, strict=True):
        z = list(row)
        z[c] += shift
        best = max(range(len(z)), key=lambda k: (z[k], -k))  # first maximum, like argmax
        correct += best == label
    return correct / len(y)


small_logits = arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(2, 5)),
                      elements=st.floats(-5, 5, allow_nan=False, allow_infinity=False))


@given(small_logits, st.data())
def test_acc_after_shift_matches_a_loop(logits, data):
    n, c_count = logits.shape
    y = np.array(data.draw(st.lists(st.integers(0, c_count - 1), min_size=n, max_size=n)))
    c = data.draw(st.integers(0, c_count - 1))
    # Shifts off the grid of ties (quarter-integers plus an irrational part) so that "wins"
    # means the same in both (the vectorised rule breaks exact ties against class c).
    shifts = np.array([-2.0, -0.3, 0.0, 0.7, 3.1]) + np.sqrt(2) * 1e-3
    got = O._acc_after_shift(logits, y, c, shifts)
    expected = [naive_acc_after_shift(logits, y, c, s) for s in shifts]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_best_shift_on_a_hand_made_case():
    # Class 1 is always 2.0 below the winner; shifting it by more than 2 makes the two rows of
    # class 1 right and the row of class 0 wrong once the shift passes 3.
    logits = np.array([[2.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    y = np.array([1, 1, 0])
    b = O._best_shift(logits, y, 1)
    assert 2.0 < b <= 3.0
    # smallest |shift| among the best: the first grid point above 2
    assert b == pytest.approx(2.05)


def test_prior_shift_matches_the_prior_without_labels():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((1000, 4))
    logits[:, 2] -= 3.0  # class 2 is almost never predicted
    b = O._prior_shift(logits, 2, 0.25)
    z = logits.copy()
    z[:, 2] += b
    assert np.mean(z.argmax(axis=1) == 2) == pytest.approx(0.25, abs=2e-3)
    assert b > 2.0


def test_class_acc_counts_only_the_class():
    logits = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    y = np.array([1, 1, 0])
    cls, overall = O._class_acc(logits, y, 1)
    assert cls == 0.5 and overall == pytest.approx(1 / 3)
    cls, overall = O._class_acc(logits, y, 1, shift=5.0)  # everything becomes class 1
    assert cls == 1.0 and overall == pytest.approx(2 / 3)


# -- temperature table ------------------------------------------------------------------------


@given(arrays(np.float64, st.integers(2, 6), elements=st.floats(-50, 50)),
       st.lists(st.floats(0.05, 100), min_size=1, max_size=4))
def test_temperature_table_matches_scipy(z, ts):
    table = E.temperature_table(z, ts)
    assert table.shape == (len(ts), z.size)
    for row, t in zip(table, ts, strict=True):
        np.testing.assert_allclose(row, scipy_softmax(z / t), rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("ts, exc", [([], ValueError), ([0.0], ValueError), ([-1.0], ValueError),
                                     ([float("nan")], ValueError), (["a"], TypeError)])
def test_temperature_table_rejects_bad_temperatures(ts, exc):
    with pytest.raises(exc, match="temperature"):
        E.temperature_table([1.0, 2.0], ts)


def test_temperature_table_rejects_bad_logits():
    with pytest.raises(ValueError, match="'logits'"):
        E.temperature_table([[1.0, 2.0]], [1.0])
    with pytest.raises(ValueError, match="finite"):
        E.temperature_table([1.0, np.inf], [1.0])


# -- setups -----------------------------------------------------------------------------------

@pytest.mark.parametrize("field, value, exc", [
    ("seeds", 0, ValueError), ("seeds", 2.0, TypeError), ("epochs", -1, ValueError),
    ("temperature", 0.0, ValueError), ("alpha", 1.5, ValueError), ("beta", -1.0, ValueError),
    ("teacher_dropout", 1.0, ValueError), ("family", "telepathy", ValueError),
    ("feature_loss", "hint", ValueError), ("relation_loss", "rkd_distance", ValueError),
    ("dataset", "cifar", ValueError), ("student_hidden", (), TypeError),
    ("teacher_hidden", (0,), ValueError), ("weight_decay", float("nan"), ValueError),
])
def test_distill_setup_rejects_bad_fields(field, value, exc):
    with pytest.raises(exc, match=f"'{field}'"):
        E.DistillSetup(**{field: value}).checked()


def test_default_setups_are_valid():
    assert E.DistillSetup().checked().method == "kd"
    assert O.OmitSetup().checked().omit == 3


def test_term_weight_defaults_to_the_library_weights():
    s = E.DistillSetup(family="relation", relation_loss="sp")
    assert (s.method, s.term_weight) == ("sp", 3000.0)
    assert E.DistillSetup(family="feature", beta=2.5).term_weight == 2.5


def test_run_variants_rejects_keys_it_cannot_vary():
    with pytest.raises(ValueError, match="'variants'"):
        sweeps.run_variants(variants=[{"epochs": 3}], verbose=False)
    with pytest.raises(ValueError, match="'variants'"):
        sweeps.run_variants(variants=[], verbose=False)
    with pytest.raises(ValueError, match="'temperature'"):
        sweeps.run_variants(variants=[{"temperature": -1.0}], verbose=False)


# -- loss discovery ---------------------------------------------------------------------------

def test_registry_lists_the_core_losses():
    found = selfcheck.LOSSES
    for name in ("cross_entropy", "kl_divergence", "kd_loss", "distillation_loss", "dkd_loss"):
        assert name in found
    assert "softmax" not in found and "fit" not in found


@pytest.mark.parametrize("overrides, method, beta", [
    ({"family": "response"}, "kd", 0.0),
    ({"family": "feature"}, "fitnets", 10.0),
    ({"family": "feature", "beta": 100.0}, "fitnets", 100.0),
    ({"family": "relation", "relation_loss": "sp"}, "sp", 3000.0),
])
def test_the_setup_reaches_the_trainer(overrides, method, beta, monkeypatch):
    seen = {}

    def fake_distill(teacher, student, X, y, **kwargs):
        seen.update(kwargs)
        return {"val_acc": [0.5]}

    from minikd.experiments import seed_runs

    monkeypatch.setattr(seed_runs, "distill", fake_distill)
    data = E.load_dataset("digits")
    setup = E.DistillSetup(temperature=3.0, alpha=0.7, **overrides).checked()
    seed_runs.train_distilled(setup, data, teacher=None, seed=0, verbose=False)
    assert (seen["method"], seen["beta"]) == (method, beta)
    assert (seen["temperature"], seen["alpha"]) == (3.0, 0.7)
    assert seen["epochs"] == setup.epochs and seen["batch_size"] == setup.batch_size


# -- what travels where: the test split draws curves only; the omit-class split follows the seed --


def test_the_trainers_curve_is_the_test_accuracy_per_epoch():
    """seed_runs hands fit the test split as its held-out set: the curve it returns is the test
    accuracy, epoch by epoch (checked at the last epoch against the trained model)."""
    from minikd.experiments import seed_runs

    data = E.load_dataset("digits")
    setup = E.DistillSetup(dataset="digits", epochs=2, teacher_epochs=2, student_hidden=(8,),
                           teacher_hidden=(16,)).checked()
    student, curve = seed_runs.train_scratch(setup, data, 3, 0.0, False)
    assert len(curve) == 2
    assert curve[-1] == seed_runs.accuracy(student, data.X_test, data.y_test)
    teacher, t_curve = seed_runs.train_teacher(setup, data, 3, False)
    student, d_curve = seed_runs.train_distilled(setup, data, teacher, 3, False)
    assert len(t_curve) == 2 and d_curve[-1] == seed_runs.accuracy(student, data.X_test,
                                                                   data.y_test)


def test_omit_class_draws_each_seeds_digits_split_from_the_seed(monkeypatch):
    seen = []
    real = O.load_dataset

    def recording(name, **kwargs):
        split = real(name, **kwargs)
        seen.append((kwargs.get("rng"), split.y_test.copy()))
        return split

    monkeypatch.setattr(O, "load_dataset", recording)
    O.run_omit_class(seeds=2, first_seed=7, epochs=1, teacher_epochs=1, teacher_hidden=(8,),
                     student_hidden=(8,), verbose=False, jobs=1)  # patched here
    rngs = [rng for rng, _ in seen]
    assert 7 in rngs and 8 in rngs
    y7 = next(y for rng, y in seen if rng == 7)
    y8 = next(y for rng, y in seen if rng == 8)
    assert np.array_equal(np.bincount(y7), np.bincount(y8))  # stratified: same class counts
    assert not np.array_equal(y7, y8)  # but different rows
