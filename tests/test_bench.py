"""The benchmark script runs, reports what it claims, and times the same step in both libraries."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import minikd

_PATH = Path(__file__).resolve().parents[1] / "bench" / "train_step.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("minikd_bench_train_step", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_bench()

TINY_STUDENTS = (("8-5-3", (8, 5, 3), 4),)
TINY_TEACHER = ("8-6-3", (8, 6, 3), 4)


@pytest.fixture(scope="module")
def tiny_result():
    return bench.run(repeats=2, use_torch=False, students=TINY_STUDENTS, teacher=TINY_TEACHER,
                     block_seconds=0.001, settle_seconds=0.0)


def test_threads_are_read_from_argv_before_numpy():
    assert bench._threads_from_argv(["--json", "--threads", "2"]) == "2"
    assert bench._threads_from_argv(["--threads=1"]) == "1"
    assert bench._threads_from_argv(["--json"]) is None


def test_run_reports_every_column_and_a_consistent_table(tiny_result):
    result = tiny_result
    assert [row["shape"] for row in result["shapes"]] == ["8-5-3", "8-5-3", "8-6-3"]
    assert [row["kind"] for row in result["shapes"]] == ["train step", "api step",
                                                         "teacher forward"]
    train, api, teacher = result["shapes"]
    assert set(train["seconds"]) == set(api["seconds"]) == {"minikd", "matmul", "bare"}
    assert set(teacher["seconds"]) == {"minikd", "matmul"}  # torch was switched off
    assert train["seconds"]["bare"] == api["seconds"]["bare"]  # one round-robin, two rows
    for row in result["shapes"]:
        for impl, seconds in row["seconds"].items():
            assert seconds > 0
            assert row["samples_per_s"][impl] == pytest.approx(row["batch"] / seconds)
        share = row["matmul_share"]
        assert 0 < share["min"] <= share["median"] <= share["max"]
    parts = train["parts_s"]
    assert set(parts) == {"forward", "loss", "backward", "optimizer", "rest"}
    assert all(parts[k] > 0 for k in ("forward", "loss", "backward", "optimizer"))
    assert train["steps_per_epoch"] >= bench.MIN_STEPS_PER_EPOCH
    for dtype in ("float32", "float64"):
        loss = result["loss_256x10"][dtype]
        assert loss["public_us"] > 0 and loss["bare_us"] > 0
        assert loss["public_over_bare"]["median"] > 0
    assert result["meta"]["blas"]  # at least one library described
    json.dumps(result)  # --json can print it
    table = bench.format_table(result)
    assert "8-5-3" in table and "api step" in table and "BLAS" in table


def test_the_train_epoch_is_distill_and_takes_the_api_and_bare_steps():
    # The columns must do the same training, or their speeds say nothing: the train epoch is
    # exactly what minikd.distill does for one epoch, and the api and bare epochs take the same
    # steps on the same mini-batches (float64: up to rounding of the loss's arithmetic).
    problem = bench.make_problem((9, 7, 5, 4), 6, 3, np.float64)
    train, api, bare = (bench.train_epoch(problem), bench.api_epoch(problem),
                        bench.bare_epoch(problem))
    before = {key: p.copy() for key, p in train.params.items()}
    for epoch in (train, api, bare):
        for key, p in before.items():
            np.testing.assert_array_equal(epoch.params[key], p)  # same initialisation
        epoch()
    student = bench._student(problem)
    minikd.distill(problem.teacher, student, problem.x, problem.labels, epochs=1,
                   temperature=bench.TEMPERATURE, alpha=bench.ALPHA, batch_size=problem.batch,
                   optimizer=lambda p: minikd.SGD(p, lr=bench.LR, momentum=bench.MOMENTUM),
                   rng=problem.seed, verbose=False)
    for key in before:
        np.testing.assert_array_equal(train.params[key], student.params[key])
    for epoch in (train, api, bare):
        epoch()  # the second epoch exercises the momentum
    for key, p0 in before.items():
        delta = train.params[key] - p0
        assert np.abs(delta).max() > 1e-4  # the epochs really moved the parameters
        for other in (api, bare):
            np.testing.assert_allclose(other.params[key] - p0, delta, rtol=1e-9,
                                       atol=1e-12 * np.abs(delta).max())


def test_the_api_epoch_trains():
    # Repeated epochs must lower the distillation loss: the timed step is a real one.
    problem = bench.make_problem((8, 5, 3), 16, 2, np.float32)
    epoch = bench.api_epoch(problem)
    model = minikd.MLP([8, 5, 3], rng=problem.seed)
    model.params = epoch.params

    def loss():
        return minikd.distillation_loss(model.forward(problem.x)[0], problem.teacher_logits,
                                        problem.labels, temperature=bench.TEMPERATURE,
                                        alpha=bench.ALPHA).loss

    before = loss()
    for _ in range(50):
        epoch()
    assert loss() < 0.9 * before


def test_the_instrumented_parts_leave_the_library_as_it_was():
    import minikd.training.objective as distiller_module  # where Distiller.step finds them

    kernels = (distiller_module.cross_entropy_kernel, distiller_module.kd_loss_kernel)
    problem = bench.make_problem((8, 5, 3), 4, 3, np.float32)
    parts = bench.train_step_parts(problem, 1, epochs=1)
    assert parts["loss"] > 0 and parts["forward"] > 0
    assert (distiller_module.cross_entropy_kernel, distiller_module.kd_loss_kernel) == kernels
    assert minikd.losses.response.kd_loss_kernel is kernels[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_bare_loss_formula_is_distillation_loss(dtype):
    rng = np.random.default_rng(2)
    z_s, z_t = (3 * rng.standard_normal((2, 7, 5))).astype(dtype)
    y = rng.integers(0, 5, size=7)
    loss, grad = bench.bare_distillation_loss(z_s, z_t, y, bench.TEMPERATURE, bench.ALPHA)
    expected = minikd.distillation_loss(z_s, z_t, y, temperature=bench.TEMPERATURE,
                                        alpha=bench.ALPHA)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert loss == pytest.approx(expected.loss, rel=tol)
    np.testing.assert_allclose(grad, expected.grad, rtol=tol, atol=tol * np.abs(grad).max())


def test_the_package_does_not_reach_into_bench():
    from minikd import cli

    assert "bench" not in cli.build_parser()._subparsers._group_actions[0].choices
    root = _PATH.parents[1] / "minikd"
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "train_step.py" not in text and "bench/" not in text, path


def test_torch_step_computes_minikds_loss_and_gradient():
    # The two columns must time the same work: same loss value and same logit gradient.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    z_s = rng.standard_normal((6, 4)).astype(np.float32) * 3  # (N, C)
    z_t = rng.standard_normal((6, 4)).astype(np.float32) * 3  # (N, C)
    y = rng.integers(0, 4, size=6)
    logits = torch.tensor(z_s, requires_grad=True)
    loss = bench.torch_kd_loss(torch, logits, torch.from_numpy(z_t), torch.from_numpy(y))
    loss.backward()
    expected = minikd.distillation_loss(z_s, z_t, y, temperature=bench.TEMPERATURE,
                                        alpha=bench.ALPHA)
    assert loss.item() == pytest.approx(expected.loss, rel=1e-5)
    np.testing.assert_allclose(logits.grad.numpy(), expected.grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scipy_blas_products_equal_numpys(dtype):
    # The trap column must time the same products, not cheaper or transposed ones.
    sizes, batch = (7, 5, 3), 4
    ours = bench.matmul_ceiling(sizes, batch, dtype)()
    theirs = bench.matmul_ceiling(sizes, batch, dtype, blas="scipy")()
    assert [a.shape for a in ours] == [(4, 5), (7, 5), (4, 3), (5, 3), (4, 5)]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_traps_report_slowdowns():
    traps = bench.measure_traps(TINY_STUDENTS[0], 1, 0.001)
    assert set(traps["seconds"]) == {"float32 step", "float64 step", "numpy products",
                                     "scipy.linalg.blas backward products"}
    assert traps["float64_vs_float32"]["median"] > 0


def test_markdown_table_has_a_row_per_shape(tiny_result):
    result = tiny_result
    table = bench.markdown_table(result).splitlines()
    rows = [line for line in table if line.startswith("| 8-")]
    assert [r.split("|")[2].strip() for r in rows] == ["train step", "api step",
                                                       "teacher forward"]
    assert all(r.count("|") == 9 for r in rows)
    assert "distillation_loss" in table[-1] and "bare NumPy formula" in table[-1]
