"""Golden vectors: the shipped file (package data) equals what minikd computes now, the file is
self-describing (each case re-evaluates from its own fields), writing is atomic, and a vectors
file that could make the checker pass without checking anything is refused, in one line."""

import fnmatch
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import minikd
from minikd import cli
from minikd.verify import selfcheck, vectors, vectors_schema

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "minikd" / "verify" / "datafiles" / "golden_vectors.json"
REGENERATE = ("regenerate with: python -c \"from minikd.verify.vectors import "
              "write_golden_vectors; write_golden_vectors('minikd/verify/datafiles/"
              "golden_vectors.json')\" (only if the change is intended and re-derived)")


def _named(case):
    """A case's inputs under today's parameter names (files may use minikd 0.1.0's)."""
    return {vectors_schema.parameter_name(case["function"], k): v
            for k, v in case["inputs"].items()}


def test_shipped_golden_file_matches_minikd_now():
    shipped = vectors.load_golden()
    now = vectors.golden_vectors()
    assert [c["name"] for c in shipped["cases"]] == [c["name"] for c in now["cases"]], REGENERATE
    for old, new in zip(shipped["cases"], now["cases"], strict=True):
        assert old["function"] == new["function"] and old["params"] == new["params"]
        assert _named(old) == _named(json.loads(json.dumps(new))), old["name"]
        assert math.isclose(old["loss"], new["loss"], rel_tol=1e-12, abs_tol=1e-12), \
            f"{old['name']}: {REGENERATE}"
        np.testing.assert_allclose(old["grad"], new["grad"], rtol=1e-12, atol=1e-12,
                                   err_msg=f"{old['name']}: {REGENERATE}")


def test_every_case_re_evaluates_from_its_own_fields():
    rows = vectors.compare_vectors(vectors.load_golden())
    assert rows and all(r["loss_error"] <= 1e-12 and r["grad_error"] <= 1e-12 for r in rows)


def test_golden_file_covers_every_loss_and_every_preset():
    doc = vectors.load_golden()
    assert {c["function"] for c in doc["cases"]} == set(selfcheck.LOSSES)
    for family in ("kd", "at", "rkd"):
        presets = {c["params"]["convention"] for c in doc["cases"]
                   if c["function"] == f"{family}_loss_as"}
        assert presets == set(minikd.CONVENTIONS[family]), family


def test_golden_values_agree_with_an_independent_computation():
    """These values were computed from the libraries' formulas in float64, not by minikd."""
    cases = {c["name"]: c for c in vectors.load_golden()["cases"]}
    assert cases["kd_loss/T=1"]["loss"] == pytest.approx(0.6510139477, abs=1e-10)
    assert cases["kd_loss/T=4"]["loss"] == pytest.approx(0.7579994684, abs=1e-10)
    assert cases["kd_loss/mean"]["loss"] == pytest.approx(0.2526664895, abs=1e-10)
    assert cases["soft_cross_entropy/T=4"]["loss"] == pytest.approx(1.1299462990, abs=1e-10)
    assert cases["kd_loss_as/kd_lib/T=4-soft-only"]["loss"] == pytest.approx(0.1677027773,
                                                                            abs=1e-10)
    assert cases["cross_entropy"]["loss"] == pytest.approx(1.0744586306, abs=1e-10)
    np.testing.assert_allclose(cases["kd_loss/T=4"]["grad"],
                               [[-0.3299074780, 0.0, 0.3299074780],
                                [-0.0503447831, -0.0974538332, 0.1477986164]], atol=1e-10)


# ---------------------------------------------------------------- package data

def test_golden_vectors_ship_as_package_data():
    """After a non-editable install only what package-data names exists next to the code."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["minikd"]
    relative = GOLDEN.relative_to(ROOT / "minikd").as_posix()
    assert any(fnmatch.fnmatch(relative, p) for p in patterns), patterns
    assert vectors.load_golden() == json.loads(GOLDEN.read_text())


def test_verify_page_reads_no_file_from_the_source_tree():
    text = (ROOT / "docs" / "verify.md").read_text()
    blocks = [b.split("```")[0] for b in text.split("```python\n")[1:]]
    assert blocks and all("tests/" not in code and "__file__" not in code for code in blocks)


# ---------------------------------------------------------------- writing

def test_floats_round_trip_exactly(tmp_path):
    path = vectors.write_golden_vectors(tmp_path / "g.json")
    doc = vectors.load_vectors(path)
    now = vectors.golden_vectors()
    for a, b in zip(doc["cases"], now["cases"], strict=True):
        assert a["loss"] == b["loss"] and a["grad"] == b["grad"]  # bit-for-bit through JSON


def test_the_writer_reproduces_the_shipped_files_byte_for_byte(tmp_path):
    for path in (GOLDEN, ROOT / "tests" / "data" / "torch_fixtures.json"):
        out = vectors.write_vectors(json.loads(path.read_text()), tmp_path / path.name)
        assert out.read_bytes() == path.read_bytes(), path.name


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "g.json"
    path.write_text("old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(vectors.os, "replace", boom)
    with pytest.raises(OSError):
        vectors.write_golden_vectors(path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


def test_write_to_a_folder_says_so(tmp_path, capsys):
    assert cli.main(["vectors", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path} is a folder; expected a file name" in err
    assert not list(tmp_path.iterdir()) and len(err.strip().splitlines()) == 1


def test_write_refuses_a_document_with_nan(tmp_path):
    doc = json.loads(GOLDEN.read_text())
    doc["cases"][0]["loss"] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        vectors.write_vectors(doc, tmp_path / "x.json")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- a checker that can fail

def _case(name="kd_loss/T=4"):
    doc = json.loads(GOLDEN.read_text())
    return doc, next(c for c in doc["cases"] if c["name"] == name)


def _edit_nan_loss(doc, case):
    case["loss"] = float("nan")


def _edit_inf_grad(doc, case):
    case["grad"][0][0] = float("inf")


def _edit_lossgrad(doc, case):  # LossGrad(loss=..., grad=...) returns its inputs: checks nothing
    case.update(function="LossGrad", inputs={"loss": 1.0, "grad": [1.0]}, grad_wrt="grad",
                loss=1.0, grad=[1.0])


def _edit_teacher_grad(doc, case):  # the student's numbers, labelled as the teacher's
    case["grad_wrt"] = "teacher_logits"


BAD_DOCUMENTS = [  # (edit, words the one-line message must contain)
    (_edit_nan_loss, "'loss', the expected value, must be a finite number"),
    (_edit_inf_grad, "must be finite"),
    (_edit_lossgrad, "'function' must name one of minikd's losses"),
    (lambda d, c: c.update(function="MLP"), "'function' must name one of minikd's losses"),
    (lambda d, c: c.update(function="softmax"), "'function' must name one of minikd's losses"),
    (lambda d, c: c.update(function="_validation"), "'function' must name one of"),
    (lambda d, c: c.update(grad_wrt="nope"), "'grad_wrt' must name the student input"),
    (_edit_teacher_grad, "'grad_wrt' must name the student input of kd_loss"),
    (lambda d, c: c["inputs"].update(student_logitz=[[1.0]]), "is not a parameter of kd_loss"),
    (lambda d, c: c["params"].update(temperature={"T": 4}), "params['temperature'] must be"),
    (lambda d, c: c["params"].update(temperature=float("inf")), "params['temperature'] must be"),
    (lambda d, c: c["inputs"].update(teacher_logits=[[1.0], [1.0, 2.0]]), "rectangular"),
    (lambda d, c: c["inputs"].update(teacher_logits=[["a", "b"]]), "numbers or booleans"),
    (lambda d, c: c.update(loss="0.75"), "must be a finite number"),
    (lambda d, c: c.update(loss=True), "must be a finite number"),
    (lambda d, c: c.update(grad=[[0.0]]), "shaped like its input"),
    (lambda d, c: c.update(grad=None), "'grad', the expected gradient, must be an array"),
    (lambda d, c: c.pop("grad"), "lacks grad"),
    (lambda d, c: c.update(inputs=[1]), "'inputs' must be a JSON object"),
    (lambda d, c: d["cases"].append(dict(c)), "unique in the file"),
    (lambda d, c: d["cases"].append([1, 2]), "must be a JSON object. Got list"),
    (lambda d, c: d.update(cases=[]), "a file with no case checks nothing"),
    (lambda d, c: d.update(cases={"a": 1}), "'cases' must be a non-empty list"),
    (lambda d, c: d.update(format="something-else"), "not a minikd vectors file"),
    (lambda d, c: d.update(format_version=99), "format_version 99"),
    (lambda d, c: d.update(format_version="1"), "format_version '1'"),
    (lambda d, c: d.update(dtype="float16"), "are float64"),
]


@pytest.mark.parametrize("edit, words", BAD_DOCUMENTS)
def test_a_file_that_checks_nothing_is_refused_in_one_line(tmp_path, capsys, edit, words):
    doc, case = _case()
    edit(doc, case)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError) as info:
        vectors.load_vectors(path)
    assert words in str(info.value) and str(path) in str(info.value)
    assert cli.main(["vectors", "--check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and words in err


BAD_FILES = [  # (file content or None for a folder, words of the message)
    (None, "is a folder; expected a minikd vectors file"),
    (b"\x93NUMPY\x01\x00" + bytes(100), "is a NumPy .npy file; expected"),
    (b"PK\x03\x04" + bytes(60), "is a zip archive"),
    (bytes(range(256)), "is a binary file; expected"),
    ("caf\xe9".encode("latin-1"), "is not UTF-8 text (byte 0xe9 at offset 3)"),
    ("{\"format\": ", "is not JSON (Expecting value at line 1, column 12)"),
    ("[" * 100_000 + "]" * 100_000, "nests its JSON too deeply to read"),
    ('{"a":' * 50_000 + "1" + "}" * 50_000, "nests its JSON too deeply to read"),
    ("null", "not a minikd vectors file"),
    ("NaN", "not a minikd vectors file"),
]


@pytest.mark.parametrize("content, words", BAD_FILES)
def test_a_file_that_is_not_a_vectors_file_says_what_it_is(tmp_path, capsys, content, words):
    path = tmp_path / "vectors.json"
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ValueError, match="expected a minikd vectors file|not a minikd"):
        vectors.load_vectors(path)
    assert cli.main(["vectors", "--check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and words in err, err


def test_missing_and_oversized_files(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="cannot be read .No such file"):
        vectors.load_vectors(tmp_path / "nope.json")
    path = tmp_path / "big.json"
    path.write_text(GOLDEN.read_text())
    monkeypatch.setattr(vectors_schema, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ValueError, match=r"MB; expected a minikd vectors file \(JSON text\) of"):
        vectors.load_vectors(path)


def test_a_corrupted_expected_value_fails_the_check_with_exit_1(tmp_path, capsys):
    doc, case = _case()
    case["loss"] *= 1 + 1e-6
    path = tmp_path / "off.json"
    path.write_text(json.dumps(doc))
    assert cli.main(["vectors", "--check", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == 1
    assert [r["name"] for r in report["rows"] if r["result"] == "FAIL"] == ["kd_loss/T=4"]


def test_a_loss_that_refuses_its_inputs_is_a_bad_file(tmp_path, capsys):
    doc, case = _case()
    case["params"]["temperature"] = -1.0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    assert cli.main(["vectors", "--check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "case 'kd_loss/T=4': kd_loss refused its inputs: The 'temperature'" in err


def test_files_with_the_0_1_0_parameter_names_still_check():
    doc = json.loads(GOLDEN.read_text())
    for case in doc["cases"]:
        if case["function"] == "rkd_loss_as":
            case["inputs"] = {"s": case["inputs"]["student_features"],
                              "t": case["inputs"]["teacher_features"]}
            case["grad_wrt"] = "s"
    rows = vectors.compare_vectors(doc)
    assert max(max(r["loss_error"], r["grad_error"]) for r in rows) <= 1e-12


def test_evaluate_case_refuses_a_function_minikd_does_not_list_as_a_loss():
    for name in ("os_system", "LossGrad", "MLP", "fit", "kd_loss_kernel", "__import__"):
        with pytest.raises(ValueError, match="must name one of minikd's losses"):
            vectors.evaluate_case({"name": "x", "function": name, "inputs": {}, "params": {}})


# ---------------------------------------------------------------- fuzz (hypothesis)

_scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=4)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)
_FIELDS = ("name", "function", "inputs", "params", "grad_wrt", "loss", "grad")


@given(value=_json)
def test_random_json_is_never_a_vectors_file(value):
    with pytest.raises(ValueError):
        vectors.parse_vectors(json.dumps(value))


@given(index=st.integers(0, 74), field=st.sampled_from(_FIELDS), value=_json)
@example(index=3, field="params", value={})  # T = 1 written out, then left to its default
def test_a_case_with_a_random_field_is_refused_or_fails(index, field, value):
    """Whatever replaces one field of one golden case: a ValueError, or that case fails the
    comparison, or the document is still the same document (a ValueError's only alternatives)."""
    doc = json.loads(GOLDEN.read_text())
    index = min(index, len(doc["cases"]) - 1)
    case = doc["cases"][index]
    before = json.dumps(case)
    case[field] = value
    try:
        rows = vectors.compare_vectors(doc)
    except ValueError:
        return
    row = rows[index]
    passed = row["loss_error"] <= 1e-10 and row["grad_error"] <= 1e-10
    if passed and field in ("params", "inputs", "grad_wrt"):
        # The same computation written differently (params {} where T = 1 is the default) may
        # pass: it must then compute exactly what the original case computes.
        original = vectors.evaluate_case(json.loads(before))
        mutated = vectors.evaluate_case(case)
        assert mutated.loss == original.loss, (field, value)
        np.testing.assert_array_equal(mutated.grad, original.grad)
        return
    assert not passed or field == "name" or json.dumps(case) == before, (field, value)
