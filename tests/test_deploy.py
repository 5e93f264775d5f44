"""``minikd deploy`` and minikd.experiments.deploy: int8 quantization, the timing helper, the job
(trained here or read from ``minikd distill --save`` files), its results whatever ``jobs``, and
the command's output and one-line errors. Skips cleanly without onnx / onnxruntime, except the
missing-extra test. Accuracies are asserted through properties (float ONNX = NumPy, bounds),
never as copied numbers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time

import numpy as np
import pytest

from minikd import MLP, cli
from minikd.experiments import deploy
from minikd.experiments.data import load_dataset

HAS_EXTRA = all(importlib.util.find_spec(p) is not None for p in ("onnx", "onnxruntime"))
needs_extra = pytest.mark.skipif(not HAS_EXTRA, reason="onnx and onnxruntime are not installed "
                                                       "(minikd[onnx])")
# A small pair trained here on the shipped digits: seconds, not minutes.
SMALL = dict(dataset="digits", teacher_hidden=(32,), teacher_epochs=3, student_hidden=(8,),
             epochs=3)


def deploy_cli(argv):
    return cli.main(["deploy", *argv])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """What ``minikd distill --save`` leaves for seeds 0 and 1 (untrained MLPs on the digits'
    64 features: loading, exporting and scoring do not care whether they learned)."""
    folder = tmp_path_factory.mktemp("models")
    for seed in (0, 1):
        MLP([64, 48, 32, 10], rng=seed).save(folder / f"teacher_seed{seed}.npz")
        MLP([64, 12, 10], activation="tanh", rng=seed).save(folder / f"distilled_seed{seed}.npz")
    return folder


def test_normwise_error():
    assert deploy.normwise_error(np.zeros(3), np.zeros(3)) == 0.0
    # max|a - b| = 0.5, max(|a|_inf, |b|_inf) = 4
    assert deploy.normwise_error([1.0, -4.0], [1.5, -4.0]) == pytest.approx(0.125)


def test_seconds_per_call_orders_functions_by_their_cost():
    def slow():
        time.sleep(0.002)

    def fast():
        time.sleep(0.0002)

    t_slow, t_fast = deploy.seconds_per_call([slow, fast], repeats=3, block_seconds=0.01)
    assert t_slow >= 0.002 and t_fast >= 0.0002
    assert t_slow > 2 * t_fast


def test_cpu_clock_does_not_count_waiting():
    def wait():
        time.sleep(0.002)

    def work():
        sum(range(20_000))

    wall = deploy.seconds_per_call([wait, work], repeats=3, block_seconds=0.01)
    cpu = deploy.seconds_per_call([wait, work], repeats=3, block_seconds=0.01, clock="cpu")
    assert wall[0] >= 0.002 and cpu[0] < 0.5 * wall[0]  # a sleep costs no CPU time
    assert cpu[1] > 0
    with pytest.raises(ValueError, match="'clock' parameter of seconds_per_call"):
        deploy.seconds_per_call([wait], clock="gpu")


@needs_extra
def test_describe_machine_states_cpu_cores_and_versions():
    import onnxruntime

    m = deploy.describe_machine()
    assert m["cpu"] and m["cores"] >= 1 and m["onnxruntime"] == onnxruntime.__version__
    assert m["numpy"] == np.__version__ and m["threads"] == 1


@needs_extra
def test_int8_model_stores_int8_weights_keeps_metadata_and_stays_close(tmp_path):
    import onnx
    from onnx import numpy_helper

    from minikd.nn.onnx_export import export_onnx, onnx_session, quantize_int8, read_onnx_metadata

    X = load_dataset("digits").X_test  # (539, 64), real inputs
    model = MLP([64, 128, 64, 10], rng=0)
    export_onnx(model, tmp_path / "f.onnx")
    quantize_int8(tmp_path / "f.onnx", tmp_path / "q.onnx")
    assert sorted(os.listdir(tmp_path)) == ["f.onnx", "q.onnx"]  # no temporary left
    q = onnx.load(tmp_path / "q.onnx")
    ops = [n.op_type for n in q.graph.node]
    assert ops.count("MatMulInteger") == 3 and "MatMul" not in ops
    int8 = [t for t in q.graph.initializer if numpy_helper.to_array(t).dtype == np.int8]
    assert sum(t.dims[0] * t.dims[1] for t in int8 if len(t.dims) == 2) == \
        64 * 128 + 128 * 64 + 64 * 10  # every weight matrix, one byte per weight
    # A float32 weight takes 4 bytes and an int8 one 1: the file shrinks by more than half.
    assert os.path.getsize(tmp_path / "q.onnx") < 0.5 * os.path.getsize(tmp_path / "f.onnx")
    meta = read_onnx_metadata(tmp_path / "q.onnx")
    assert meta["sizes"] == "[64, 128, 64, 10]" and "int8" in meta["quantization"]
    (z_q,) = onnx_session(tmp_path / "q.onnx").run(None, {"x": X})
    z = model.forward(X)[0]
    # int8 rounding moves each weight by at most half a step (max|W| / 127 / 2): the logits
    # move by a few percent, not more; not bit-exact (that is the point of the test below).
    assert 0 < deploy.normwise_error(z_q, z) < 0.1
    assert np.mean(z_q.argmax(1) == z.argmax(1)) > 0.8


@needs_extra
def test_deploy_on_saved_models_scores_and_times_every_model(model_dir, tmp_path):
    r = deploy.run_deploy(dataset="digits", seeds=2, model_dir=str(model_dir),
                          out_dir=str(tmp_path), repeats=1, jobs=1)
    m = r["models"]
    assert r["data"] == {"dataset": "digits", "split": "test", "n_test": 539, "n_features": 64}
    assert m["teacher"]["sizes"] == [64, 48, 32, 10] and m["student"]["sizes"] == [64, 12, 10]
    assert m["teacher"]["n_params"] == 64 * 48 + 48 + 48 * 32 + 32 + 32 * 10 + 10
    for name in ("teacher", "student"):  # float ONNX scores exactly what NumPy scores
        assert m[name]["acc"]["per_seed"] == m[name]["numpy_acc"]
        stem = "teacher" if name == "teacher" else "distilled"
        assert m[name]["npz_bytes"] == os.path.getsize(model_dir / f"{stem}_seed0.npz")
    for name in deploy.MODELS:
        assert m[name]["onnx_bytes"] == os.path.getsize(r["files"][0][name])
        for runtime in ("onnxruntime", "numpy"):
            for b, s in m[name]["latency"][runtime].items():
                assert b in ("1", "256") and 0 < s < 0.1
    assert set(m["student_int8"]["latency"]["numpy"]) == set()
    assert 0 < r["runtime_overhead"] < 0.1  # a call of a graph that returns its input
    assert m["student_int8"]["onnx_bytes"] < m["student"]["onnx_bytes"] \
        < m["teacher"]["onnx_bytes"]
    t = r["triple"]["student"]
    assert t["smaller"] == pytest.approx(1 - m["student"]["onnx_bytes"] /
                                         m["teacher"]["onnx_bytes"])
    assert t["kept"] == pytest.approx(m["student"]["acc"]["mean"] / m["teacher"]["acc"]["mean"])
    lat = {k: m[k]["latency"]["onnxruntime"]["256"] for k in ("teacher", "student")}
    assert t["faster"]["256"] == pytest.approx(lat["teacher"] / lat["student"] - 1)
    assert sorted(os.listdir(tmp_path)) == sorted(
        f"{n}_seed{s}.onnx" for n in ("teacher", "distilled", "distilled_int8") for s in (0, 1))
    assert not r["setup"]["trained_here"]
    json.dumps(r, allow_nan=False)


@needs_extra
def test_deploy_trains_a_pair_and_its_numbers_do_not_depend_on_jobs():
    runs = [deploy.run_deploy(seeds=2, repeats=1, jobs=jobs, **SMALL) for jobs in (1, 2)]
    keys = ("teacher_acc", "student_acc", "student_int8_acc", "teacher_bytes", "student_bytes",
            "student_int8_bytes", "int8_agrees_with_float", "teacher_numpy_acc")
    for a, b in zip(runs[0]["per_seed"], runs[1]["per_seed"], strict=True):
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    r = runs[0]
    assert r["setup"]["trained_here"] and [s["seed"] for s in r["per_seed"]] == [0, 1]
    assert r["models"]["teacher"]["acc"]["mean"] > 0.5  # it learned something in 3 epochs


@needs_extra
def test_deploy_checks_every_file_before_any_work(model_dir, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="Cannot load an MLP from .*teacher_seed2.npz"):
        deploy.run_deploy(dataset="digits", seeds=3, model_dir=str(model_dir),
                          out_dir=str(out), jobs=1)
    with pytest.raises(ValueError, match="models of the mnist1d data .* 64 inputs"):
        deploy.run_deploy(dataset="mnist1d", model_dir=str(model_dir), out_dir=str(out))
    bad = tmp_path / "bad"
    bad.mkdir()
    MLP([64, 10], dtype=np.float64, rng=0).save(bad / "teacher_seed0.npz")
    with pytest.raises(ValueError, match="float32 models .* float64"):
        deploy.run_deploy(dataset="digits", model_dir=str(bad), out_dir=str(out))
    with pytest.raises(ValueError, match="'repeats' parameter of run_deploy"):
        deploy.run_deploy(dataset="digits", model_dir=str(model_dir), repeats=0)
    assert not out.exists()


def test_deploy_without_the_extra_is_one_line_exit_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)
    status = deploy_cli(["--dataset", "digits"])
    out, err = capsys.readouterr()
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("minikd deploy: ") and "pip install 'minikd[onnx]'" in err


@needs_extra
def test_deploy_command_prints_the_table_the_triple_and_the_machine(model_dir, capfd):
    status = deploy_cli(["--models", str(model_dir), "--dataset", "digits", "--repeats", "1",
                         "--jobs", "1"])
    out, err = capfd.readouterr()
    assert status == 0 and err == ""  # nothing on stderr but errors, C++ logs included
    for text in ("accuracy on the test split (539 rows)", "machine: ", "cores",
                 "teacher 64-48-32-10", "distilled student 64-12-10", "distilled student, int8",
                 "ORT µs/sample b=1", "NumPy µs/sample b=1", "smaller on disk", "x as fast",
                 "onnxruntime's own cost per call",
                 "of the teacher's test accuracy", "int8 against the float32 student"):
        assert text in out, text


@needs_extra
def test_deploy_command_json(model_dir, capsys):
    status = deploy_cli(["--models", str(model_dir), "--dataset", "digits", "--repeats", "1",
                         "--jobs", "1", "--json", "--first-seed", "1"])
    r = json.loads(capsys.readouterr().out)
    assert status == 0 and r["timed_seed"] == 1 and set(r["models"]) == set(deploy.MODELS)


@needs_extra
def test_deploy_command_bad_input_is_one_line_exit_2(model_dir, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "teacher_seed0.npz").write_text("not a model")
    cases = [(["--models", str(tmp_path / "nowhere")], "no folder"),
             (["--models", str(model_dir), "--out", str(tmp_path / "a_file")], "expected a folder"),
             (["--models", str(tmp_path / "junk"), "--dataset", "digits"], "Cannot load an MLP"),
             (["--models", str(model_dir), "--dataset", "digits", "--seeds", "3"],
              "teacher_seed2.npz"),
             (["--dataset", "idx"], "--data-dir")]
    for argv, match in cases:
        status = deploy_cli(argv)
        out, err = capsys.readouterr()
        assert status == 2 and out == "", argv
        assert err.startswith("minikd deploy: ") and err.count("\n") == 1 and match in err, err
