"""ONNX export (minikd.nn.onnx_export) and ``minikd export``: the graph is the forward equation,
onnxruntime reproduces MLP.forward, the metadata, atomic writes, and every bad input.

Tests that need ``onnx`` or ``onnxruntime`` skip cleanly without them; the missing-extra tests
run either way (they hide the package). Errors are normwise, ``max|a-n| / max(|a|_inf, |n|_inf)``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import numpy as np
import pytest

import minikd
from minikd import MLP, cli
from minikd.experiments import data
from minikd.nn import onnx_export
from minikd.nn.onnx_export import export_onnx, read_onnx_metadata

HAS_ONNX = importlib.util.find_spec("onnx") is not None
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
needs_onnx = pytest.mark.skipif(not HAS_ONNX, reason="onnx is not installed (minikd[onnx])")
needs_ort = pytest.mark.skipif(not (HAS_ONNX and HAS_ORT),
                               reason="onnx and onnxruntime are not installed (minikd[onnx])")
TOL = {np.float32: 1e-5, np.float64: 1e-12}  # the float32 bar; float64 to rounding


def normwise(a, n):
    a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
    return np.abs(a - n).max() / max(np.abs(a).max(), np.abs(n).max())


def session(path):
    import onnxruntime as ort

    return ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])


def export_cli(argv):
    return cli.main(["export", *argv])


@pytest.fixture(scope="module")
def digits():
    """The shipped UCI digits, standardised as the experiments do: real inputs."""
    X, y = data.load_digits()
    split = data.train_val_split(X, y, val_fraction=0.3, rng=0)
    X_train, X_test = data.standardize(split.X_train, split.X_test)
    return X_train.astype(np.float32), split.y_train, X_test.astype(np.float32)


# -- the graph is the equation --------------------------------------------------------------

@needs_onnx
@pytest.mark.parametrize("activation,op", [("relu", "Relu"), ("tanh", "Tanh")])
@pytest.mark.parametrize("hidden", [[7], [16, 9], [12, 10, 8]])
def test_graph_is_matmul_add_activation_per_layer_without_dropout(tmp_path, activation, op,
                                                                  hidden):
    import onnx
    from onnx import numpy_helper

    model = MLP([5, *hidden, 3], activation=activation, dropout=0.5, rng=1)
    proto = onnx.load(export_onnx(model, tmp_path / "m.onnx"))
    expected = ["MatMul", "Add", op] * len(hidden) + ["MatMul", "Add"]
    assert [n.op_type for n in proto.graph.node] == expected  # no Dropout, no Gemm
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert sorted(weights) == sorted(model.params)
    for key, value in model.params.items():  # the same numbers, bit for bit
        assert weights[key].dtype == value.dtype and np.array_equal(weights[key], value)
    onnx.checker.check_model(proto, full_check=True)


@needs_onnx
def test_batch_axis_is_dynamic(tmp_path):
    import onnx

    model = MLP([6, 4, 3], rng=0)
    proto = onnx.load(export_onnx(model, tmp_path / "m.onnx", softmax_temperature=2.0))
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param == "N" and not dims[0].HasField("dim_value")
    assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 6
    assert [o.name for o in proto.graph.output] == ["logits", "probabilities"]


@needs_onnx
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_reference_evaluator_runs_the_graph_to_the_forward_logits(tmp_path, dtype, activation):
    # onnx's own pure-Python evaluator: the graph's semantics, independently of onnxruntime.
    from onnx.reference import ReferenceEvaluator

    model = MLP([8, 16, 12, 4], activation=activation, dtype=dtype, rng=3)
    path = export_onnx(model, tmp_path / "m.onnx", softmax_temperature=0.5)
    x = np.random.default_rng(0).standard_normal((9, 8)).astype(dtype)
    logits, proba = ReferenceEvaluator(path).run(None, {"x": x})
    assert normwise(logits, model.forward(x)[0]) <= TOL[dtype]
    assert normwise(proba, model.predict_proba(x, temperature=0.5)) <= TOL[dtype]


# -- exactness in onnxruntime ---------------------------------------------------------------

@needs_ort
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("hidden", [[64], [128, 64], [256, 128, 64]])
def test_onnxruntime_equals_forward_on_random_inputs(tmp_path, dtype, activation, hidden):
    model = MLP([40, *hidden, 10], activation=activation, dtype=dtype, rng=len(hidden))
    sess = session(export_onnx(model, tmp_path / "m.onnx"))
    rng = np.random.default_rng(7)
    for scale, n in ((1.0, 1), (1.0, 300), (30.0, 64)):  # batch 1, a big batch, large inputs
        x = (scale * rng.standard_normal((n, 40))).astype(dtype)
        (logits,) = sess.run(None, {"x": x})
        assert logits.dtype == dtype and logits.shape == (n, 10)
        assert normwise(logits, model.forward(x)[0]) <= TOL[dtype]


@needs_ort
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("hidden", [[32], [64, 32], [64, 32, 16]])
def test_onnxruntime_equals_forward_on_real_inputs_after_training(tmp_path, digits, activation,
                                                                  hidden):
    X_train, y_train, X_test = digits
    model = MLP([64, *hidden, 10], activation=activation, rng=0)
    minikd.fit(model, X_train, y_train, epochs=3, batch_size=64, rng=0, verbose=False)
    (logits,) = session(export_onnx(model, tmp_path / "m.onnx")).run(None, {"x": X_test})
    reference = model.forward(X_test)[0]
    assert normwise(logits, reference) <= 1e-5
    assert np.array_equal(logits.argmax(axis=1), model.predict(X_test))


@needs_ort
@pytest.mark.parametrize("temperature", [0.5, 4.0, 20.0])
def test_softmax_output_is_predict_proba_at_that_temperature(tmp_path, temperature):
    model = MLP([10, 16, 5], activation="tanh", rng=2)
    x = (3 * np.random.default_rng(1).standard_normal((50, 10))).astype(np.float32)
    path = export_onnx(model, tmp_path / "m.onnx", softmax_temperature=temperature)
    logits, proba = session(path).run(None, {"x": x})
    assert normwise(logits, model.forward(x)[0]) <= 1e-5
    assert normwise(proba, model.predict_proba(x, temperature=temperature)) <= 1e-5
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-6)


# -- metadata -------------------------------------------------------------------------------

@needs_onnx
def test_metadata_names_the_model_and_the_minikd_version(tmp_path):
    model = MLP([40, 64, 10], activation="tanh", dropout=0.25, dtype=np.float64, rng=0)
    meta = read_onnx_metadata(export_onnx(model, tmp_path / "m.onnx", opset=17))
    assert meta["minikd_version"] == minikd.__version__
    assert json.loads(meta["sizes"]) == [40, 64, 10]
    assert meta["activation"] == "tanh" and meta["dtype"] == "float64"
    assert int(meta["n_params"]) == 40 * 64 + 64 + 64 * 10 + 10
    assert float(meta["training_dropout"]) == 0.25
    assert "softmax_temperature" not in meta
    assert meta["producer"] == f"minikd {minikd.__version__}"
    # ONNX's versioning table: opset 17 shipped with IR version 8 (onnx 1.12)
    assert meta["opset"] == "17" and meta["ir_version"] == "8"
    meta = read_onnx_metadata(export_onnx(model, tmp_path / "p.onnx", softmax_temperature=4,
                                          opset=13))
    assert float(meta["softmax_temperature"]) == 4.0 and meta["opset"] == "13"
    assert meta["nodes"].split() == ["MatMul", "Add", "Tanh", "MatMul", "Add", "Div", "Softmax"]


# -- atomic writes and bad paths ----------------------------------------------------------

@needs_onnx
def test_export_replaces_a_file_atomically_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    export_onnx(MLP([3, 2], rng=0), path)
    assert read_onnx_metadata(path)["sizes"] == "[3, 2]"
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(onnx_export.os, "replace", broken_replace)
    with pytest.raises(PermissionError, match="Cannot write the ONNX file .*m.onnx"):
        export_onnx(MLP([3, 5, 2], rng=0), path)
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]  # and no temporary is left


@needs_onnx
def test_unwritable_paths_name_the_file(tmp_path):
    model = MLP([3, 2], rng=0)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder").mkdir()
    for path, error in ((tmp_path / "missing" / "m.onnx", FileNotFoundError),
                        (tmp_path / "a_file" / "m.onnx", NotADirectoryError),
                        (tmp_path / "a_folder", IsADirectoryError)):
        with pytest.raises(error, match="Cannot write the ONNX file"):
            export_onnx(model, path)
    assert sorted(os.listdir(tmp_path)) == ["a_file", "a_folder"]
    assert os.listdir(tmp_path / "a_folder") == []


# -- bad arguments --------------------------------------------------------------------------

@needs_onnx
@pytest.mark.parametrize("kwargs,error,match", [
    ({"model": "not a model"}, TypeError, "'model' parameter of export_onnx must be a minikd.MLP"),
    ({"path": 3}, TypeError, "'path' parameter of export_onnx"),
    ({"opset": 12}, ValueError, r"'opset' parameter of export_onnx must be an int in the range "
                                r"\[13, "),
    ({"opset": 10_000}, ValueError, "'opset' parameter"),
    ({"opset": 17.0}, TypeError, "'opset' parameter"),
    ({"opset": True}, TypeError, "'opset' parameter"),
    ({"softmax_temperature": -1.0}, ValueError, "'softmax_temperature' parameter"),
    ({"softmax_temperature": float("nan")}, ValueError, "'softmax_temperature' parameter"),
    ({"softmax_temperature": "4"}, TypeError, "'softmax_temperature' parameter"),
])
def test_bad_arguments_are_clear_errors(tmp_path, kwargs, error, match):
    args = {"model": MLP([3, 4, 2], rng=0), "path": tmp_path / "m.onnx", **kwargs}
    model, path = args.pop("model"), args.pop("path")
    with pytest.raises(error, match=match):
        export_onnx(model, path, **args)
    assert not os.listdir(tmp_path)


@needs_onnx
def test_a_model_with_bad_parameters_is_refused(tmp_path):
    model = MLP([3, 4, 2], rng=0)
    model.params["W2"][1, 0] = np.nan
    with pytest.raises(ValueError, match="finite parameters. Got NaN or inf in 'W2'"):
        export_onnx(model, tmp_path / "m.onnx")
    model = MLP([3, 4, 2], rng=0)
    model.params["b1"] = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match=r"'b1' has shape \(4,\) and dtype float32. Got shape "
                                         r"\(5,\)"):
        export_onnx(model, tmp_path / "m.onnx")
    model.params["b1"] = np.zeros(4, np.float64)
    with pytest.raises(ValueError, match="dtype float64"):
        export_onnx(model, tmp_path / "m.onnx")
    assert not os.listdir(tmp_path)


@needs_onnx
def test_read_metadata_of_a_non_onnx_file_is_a_clear_error(tmp_path):
    (tmp_path / "text.onnx").write_text("not a protobuf at all \x00\xff")
    with pytest.raises(ValueError, match="Cannot read an ONNX model from .*text.onnx"):
        read_onnx_metadata(tmp_path / "text.onnx")
    with pytest.raises(ValueError, match="no such file"):
        read_onnx_metadata(tmp_path / "missing.onnx")


def test_missing_extra_is_an_import_error_that_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"export_onnx needs the 'onnx' package.*"
                                          r"pip install 'minikd\[onnx\]'"):
        export_onnx(MLP([3, 2], rng=0), tmp_path / "m.onnx")
    assert not os.listdir(tmp_path)


# -- the command ----------------------------------------------------------------------------

def test_command_without_the_extra_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    MLP([3, 2], rng=0).save(tmp_path / "m.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)
    status = export_cli([str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "m.onnx")])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.startswith("minikd export: ") and err.count("\n") == 1
    assert "pip install 'minikd[onnx]'" in err
    assert not (tmp_path / "m.onnx").exists()


@needs_ort
def test_command_turns_a_saved_student_into_onnx_that_runs_to_its_logits(tmp_path, capfd):
    model = MLP([40, 64, 10], rng=0)
    model.save(tmp_path / "distilled_seed0.npz")
    out_path = tmp_path / "student.onnx"
    status = export_cli([str(tmp_path / "distilled_seed0.npz"), "--onnx", str(out_path),
                         "--softmax", "4"])
    out, err = capfd.readouterr()
    assert status == 0 and err == ""  # nothing on stderr but errors, C++ logs included
    assert "MatMul, Add, Relu, MatMul, Add, Div, Softmax" in out and "-> ok" in out
    x = np.random.default_rng(5).standard_normal((17, 40)).astype(np.float32)
    logits, proba = session(out_path).run(None, {"x": x})
    loaded = MLP.load(tmp_path / "distilled_seed0.npz")
    assert normwise(logits, loaded.forward(x)[0]) <= 1e-5
    assert normwise(proba, loaded.predict_proba(x, temperature=4.0)) <= 1e-5


@needs_ort
def test_command_json_reports_the_check(tmp_path, capsys):
    MLP([8, 6, 3], activation="tanh", dtype=np.float64, rng=0).save(tmp_path / "m.npz")
    status = export_cli([str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "m.onnx"),
                         "--json", "--opset", "13"])
    result = json.loads(capsys.readouterr().out)
    assert status == 0
    assert result["sizes"] == [8, 6, 3] and result["metadata"]["opset"] == "13"
    assert result["check"]["ok"] and result["check"]["errors"]["logits"] <= 1e-12
    assert result["bytes"] == os.path.getsize(tmp_path / "m.onnx")


@needs_ort
def test_command_check_catches_a_graph_that_is_not_the_model(tmp_path, monkeypatch, capsys):
    # Negative control: run the check against another model's graph; it must fail (exit 1).
    MLP([8, 6, 3], rng=0).save(tmp_path / "m.npz")
    export_onnx(MLP([8, 6, 3], rng=1), tmp_path / "other.onnx")
    real = onnx_export.onnx_session
    monkeypatch.setattr(onnx_export, "onnx_session", lambda path: real(tmp_path / "other.onnx"))
    status = export_cli([str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "m.onnx")])
    assert status == 1 and "FAILED" in capsys.readouterr().out


@needs_onnx
def test_command_no_check_needs_only_onnx(tmp_path, monkeypatch, capsys):
    MLP([3, 2], rng=0).save(tmp_path / "m.npz")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    status = export_cli([str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "m.onnx"),
                         "--no-check"])
    assert status == 0 and "check: skipped" in capsys.readouterr().out
    status = export_cli([str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "n.onnx")])
    err = capsys.readouterr().err
    assert status == 2 and "'onnxruntime' package" in err and "--no-check" in err


@needs_onnx
def test_command_bad_files_are_one_line_exit_2_before_any_work(tmp_path, capsys):
    MLP([3, 2], rng=0).save(tmp_path / "m.npz")
    (tmp_path / "notes.txt").write_text("not a model")
    np.savez(tmp_path / "arrays.npz", a=np.zeros(3))
    (tmp_path / "folder").mkdir()
    cases = [
        ([str(tmp_path / "notes.txt"), "--onnx", str(tmp_path / "o.onnx")], "Cannot load an MLP"),
        ([str(tmp_path / "arrays.npz"), "--onnx", str(tmp_path / "o.onnx")], "unexpected member"),
        ([str(tmp_path / "none.npz"), "--onnx", str(tmp_path / "o.onnx")], "no such file"),
        ([str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "no" / "o.onnx")], "no such folder"),
        ([str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "folder")],
         "is a folder; expected a file name"),
        ([str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "notes.txt" / "o.onnx")],
         "no such folder"),
        ([str(tmp_path / "m.npz"), "--onnx", str(tmp_path / "notes.txt")], "add --force"),
    ]
    for argv, match in cases:
        status = export_cli(argv)
        out, err = capsys.readouterr()
        assert status == 2 and out == "", argv
        assert err.startswith("minikd export: ") and err.count("\n") == 1, err
        assert match in err, err
    assert sorted(os.listdir(tmp_path)) == ["arrays.npz", "folder", "m.npz", "notes.txt"]


@pytest.mark.parametrize("argv", [["--softmax", "0"], ["--softmax", "x"], ["--opset", "12"],
                                  ["--tol", "-1"], ["--tol", "inf"]])
def test_command_bad_options_are_rejected_by_the_parser(argv, capsys):
    assert export_cli(["m.npz", "--onnx", "o.onnx", *argv]) == 2
    assert capsys.readouterr().err.count("\n") == 1
