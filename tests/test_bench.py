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


def _tiny_run(**kwargs):
    return bench.run(repeats=2, use_torch=False, students=TINY_STUDENTS, teacher=TINY_TEACHER,
                     block_seconds=0.001, settle_seconds=0.0, **kwargs)


def test_threads_are_read_from_argv_before_numpy():
    assert bench._threads_from_argv(["--json", "--threads", "2"]) == "2"
    assert bench._threads_from_argv(["--threads=1"]) == "1"
    assert bench._threads_from_argv(["--json"]) is None


def test_run_reports_every_column_and_a_consistent_table():
    result = _tiny_run()
    assert [row["shape"] for row in result["shapes"]] == ["8-5-3", "8-6-3"]
    assert [row["kind"] for row in result["shapes"]] == ["train step", "teacher forward"]
    train, teacher = result["shapes"]
    assert set(train["seconds"]) == {"minikd", "matmul", "bare"}  # torch was switched off
    assert set(teacher["seconds"]) == {"minikd", "matmul"}
    for row in result["shapes"]:
        for impl, seconds in row["seconds"].items():
            assert seconds > 0
            assert row["samples_per_s"][impl] == pytest.approx(row["batch"] / seconds)
        share = row["matmul_share"]
        assert 0 < share["min"] <= share["median"] <= share["max"]
    parts = result["shapes"][0]["parts_s"]
    assert set(parts) == {"forward", "loss", "backward", "optimizer"}
    assert all(v > 0 for v in parts.values())
    assert result["loss_256x10_us"]["float32"] > 0
    assert result["meta"]["blas"]  # at least one library described
    json.dumps(result)  # --json can print it
    table = bench.format_table(result)
    assert "8-5-3" in table and "teacher forward" in table and "BLAS" in table


def test_minikd_step_trains_through_the_public_api():
    # Repeated steps on one batch must lower the distillation loss: the timed step is a real one.
    sizes, batch = (8, 5, 3), 16
    x, z_t, y = bench._inputs(sizes, batch, np.float32)
    step = bench.minikd_step(sizes, batch)

    def loss():
        return minikd.distillation_loss(step.model.forward(x)[0], z_t, y,
                                        temperature=bench.TEMPERATURE, alpha=bench.ALPHA).loss

    before = loss()
    for _ in range(100):
        step()
    assert loss() < 0.9 * before


def test_bare_numpy_step_takes_the_same_step_as_minikd():
    # The yardstick must do minikd's arithmetic, or its speed says nothing about overhead:
    # compare the parameter updates themselves, not the (nearly unchanged) parameters.
    sizes, batch = (9, 7, 5, 4), 6
    ours, bare = bench.minikd_step(sizes, batch), bench.bare_numpy_step(sizes, batch)
    before = {key: p.copy() for key, p in ours.model.params.items()}
    for key, p in before.items():
        np.testing.assert_array_equal(bare.params[key], p)  # same initialisation
    for _ in range(2):  # the second step exercises the momentum
        ours()
        bare()
    for key, p0 in before.items():
        ours_delta = ours.model.params[key] - p0
        bare_delta = bare.params[key] - p0
        assert np.abs(ours_delta).max() > 1e-4  # the steps really moved the parameters
        np.testing.assert_allclose(bare_delta, ours_delta, rtol=1e-3,
                                   atol=1e-3 * np.abs(ours_delta).max())


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


def test_markdown_table_has_a_row_per_shape():
    result = _tiny_run()
    table = bench.markdown_table(result).splitlines()
    rows = [line for line in table if line.startswith("| 8-")]
    assert [r.split("|")[1].strip() for r in rows] == ["8-5-3", "8-6-3"]
    assert all(r.count("|") == 9 for r in rows)
    assert "distillation_loss" in table[-1]
