"""minikd lm: the shipped names, the examples and splits, the teacher file, the job's pairing and
independence from --jobs, and the command's routes (table, JSON, bad input, diverged, teacher)."""

import argparse
import doctest
import gzip
import importlib.util
import json
import math

import numpy as np
import pytest

from minikd.cli import lm as cli_lm
from minikd.experiments import lm_teacher, names
from minikd.experiments.lm import LMSetup, run_lm, train_student
from minikd.experiments.lm_teacher import (
    TeacherRecipe,
    load_teacher,
    params_sha256,
    train_teacher,
)
from minikd.experiments.names import (
    NamesData,
    decode,
    encode,
    load_names,
    load_names_data,
    make_examples,
    split_names,
)
from minikd.nn import char_lm, embedding
from minikd.nn.char_lm import CharLM

TINY = TeacherRecipe(embed_dim=4, hidden=(16,), epochs=1, batch_size=512, lr=1e-2, seed=5)


@pytest.fixture(scope="module")
def data():
    return load_names_data()


@pytest.fixture(scope="module")
def tiny_teacher(data, tmp_path_factory):
    """A small teacher trained on the first 20,000 training characters (seconds, not minutes)."""
    small = data._replace(X_train=data.X_train[:20000], y_train=data.y_train[:20000])
    teacher, _ = train_teacher(small, TINY)
    path = tmp_path_factory.mktemp("teacher") / "tiny.npz"
    teacher.save(path)
    return path


# -- the data ----------------------------------------------------------------------------------

def test_shipped_names_are_the_census_lists_as_documented():
    all_names = load_names()
    assert len(all_names) == 91910  # the count after merging, computed from the sdist
    assert all_names == sorted(set(all_names))
    assert {len(n) for n in all_names} == set(range(2, 14))
    assert set("".join(all_names)) == set("abcdefghijklmnopqrstuvwxyz")
    for surname_or_first in ("smith", "mary", "james", "zyskowski"):
        assert surname_or_first in all_names


def test_a_damaged_names_file_is_refused(monkeypatch):
    monkeypatch.setattr(names, "NAMES_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="does not match its recorded sha256"):
        load_names()


def test_names_from_another_file(tmp_path):
    good, bad = tmp_path / "good.txt.gz", tmp_path / "bad.txt.gz"
    good.write_bytes(gzip.compress(b"ann\nbob\n"))
    bad.write_bytes(gzip.compress(b"ann\nBob\n"))
    assert load_names(good) == ["ann", "bob"]
    with pytest.raises(ValueError, match="lower-case a-z names, one a line. Got 'Bob'"):
        load_names(bad)


def test_encode_decode_round_trip():
    assert encode("abz") == [1, 2, 26]
    assert decode([0, 1, 26]) == ".az"
    assert decode(encode("zyskowski")) == "zyskowski"


@pytest.mark.parametrize("context", [1, 3, 8, 15])
def test_examples_match_a_string_twin(context, data):
    """From the docstring: the K characters before each position of '.'*K + name + '.'."""
    sample = ["ann", "bo", "zyskowski", *data.names.test[:300]]
    X, y = make_examples(sample, context=context)
    want = [(("." * context + n)[j:j + context], (n + ".")[j])
            for n in sample for j in range(len(n) + 1)]
    assert [(decode(row), decode([t])) for row, t in zip(X, y, strict=True)] == want
    assert X.shape == (sum(len(n) + 1 for n in sample), context) and X.dtype == np.int64


def test_examples_refuse_what_is_not_a_name():
    X, y = make_examples([], context=3)
    assert X.shape == (0, 3) and y.shape == (0,)
    for bad in (["ann", ""], ["Ann"], ["an n"], ["åsa"], [3]):
        with pytest.raises(ValueError, match="'names' parameter of make_examples must be "
                                             "non-empty strings of lower-case a-z"):
            make_examples(bad)


def test_splits_are_disjoint_cover_every_name_and_follow_the_seed():
    all_names = load_names()
    split = split_names(all_names)
    assert [len(part) for part in split] == [73528, 9191, 9191]
    assert set(split.train) | set(split.val) | set(split.test) == set(all_names)
    assert not (set(split.train) & set(split.val) or set(split.train) & set(split.test)
                or set(split.val) & set(split.test))
    assert split_names(all_names) == split
    assert split_names(all_names, rng=1).test != split.test
    with pytest.raises(ValueError, match="'val_fraction' parameter of split_names"):
        split_names(all_names, val_fraction=0.6, test_fraction=0.5)


def test_names_data_holds_the_examples_of_each_split(data):
    assert isinstance(data, NamesData)
    for X, y, part in ((data.X_train, data.y_train, data.names.train),
                       (data.X_test, data.y_test, data.names.test)):
        assert X.shape == (sum(len(n) + 1 for n in part), 8) and y.shape == (X.shape[0],)
        assert (y == 0).sum() == len(part)  # one end-of-name target per name


# -- the teacher ---------------------------------------------------------------------------------

def test_params_checksum_sees_every_change_and_ignores_key_order():
    params = {"E": np.zeros((2, 2), np.float32), "b1": np.ones(3, np.float32)}
    digest = params_sha256(params)
    assert params_sha256(dict(reversed(list(params.items())))) == digest
    changed = {**params, "b1": np.array([1, 1, np.nextafter(np.float32(1), 2)], np.float32)}
    assert params_sha256(changed) != digest
    assert params_sha256({**params, "E": params["E"].astype(np.float64)}) != digest


def test_shipped_teacher_matches_its_recorded_checksum():
    teacher, info = load_teacher()
    assert info["source"] == "shipped" and info["sha256"] == lm_teacher.TEACHER_SHA256
    recipe = lm_teacher.TEACHER
    assert (teacher.context, teacher.embed_dim, teacher.hidden, teacher.dropout) == (
        recipe.context, recipe.embed_dim, tuple(recipe.hidden), recipe.dropout)


def test_a_damaged_teacher_is_refused(monkeypatch):
    monkeypatch.setattr(lm_teacher, "TEACHER_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="does not match its recorded sha256"):
        load_teacher()


def test_model_file_round_trip_and_refusals(tmp_path):
    model = CharLM(context=3, embed_dim=2, hidden=(4, 5), activation="relu", dropout=0.2, rng=0)
    model.save(tmp_path / "m.npz")
    again = CharLM.load(tmp_path / "m.npz")
    assert again.config == model.config
    assert params_sha256(again.params) == params_sha256(model.params)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="Cannot load a CharLM from .*junk.npz"):
        CharLM.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", W1=np.ones(2))
    with pytest.raises(ValueError, match="no format version"):
        CharLM.load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="no such file"):
        CharLM.load(tmp_path / "missing.npz")
    config = json.dumps({**model.config, "hidden": [2**40]})  # refused before any allocation
    np.savez(tmp_path / "huge.npz", format_version=np.array(1), config=np.array(config),
             **model.params)
    with pytest.raises(ValueError, match=r"arrays \['E', 'W1', 'W2', 'W3', 'b1', 'b2', 'b3'\], "
                                         r"expected \['E', 'W1', 'W2', 'b1', 'b2'\]"):
        CharLM.load(tmp_path / "huge.npz")
    bad = {**model.params, "W1": np.full((6, 4), np.nan, np.float32)}
    np.savez(tmp_path / "nan.npz", format_version=np.array(1),
             config=np.array(json.dumps(model.config)), **bad)
    with pytest.raises(ValueError, match="array 'W1' holds NaN or inf"):
        CharLM.load(tmp_path / "nan.npz")


# -- the job -----------------------------------------------------------------------------------

def _numbers(result):
    """The result without the wall times (which differ between runs)."""
    return {k: v for k, v in result.items() if k != "seconds"} | {
        "runs": [{k: v for k, v in r.items() if k != "seconds"} for r in result["runs"]]}


def test_job_is_paired_and_does_not_depend_on_jobs(tiny_teacher):
    kwargs = dict(teacher=str(tiny_teacher), seeds=2, train_names=1500, batch_size=64,
                  n_samples=20, methods=("forward_kl", "reverse_kl"))
    here, pooled = run_lm(jobs=1, **kwargs), run_lm(jobs=2, **kwargs)
    assert _numbers(here) == _numbers(pooled)
    json.dumps(here, allow_nan=False)
    runs = {(r["method"], r["seed"]): r for r in here["runs"]}
    for m in ("scratch", "forward_kl", "reverse_kl"):
        s = here["summary"][m]
        nll = [runs[m, seed]["test_nll"] for seed in (0, 1)]
        gain = [runs["scratch", seed]["test_nll"] - runs[m, seed]["test_nll"] for seed in (0, 1)]
        assert s["test_nll"]["mean"] == pytest.approx(np.mean(nll))
        assert s["test_nll"]["std"] == pytest.approx(np.std(nll, ddof=1))
        assert s["bits"]["mean"] == pytest.approx(np.mean(nll) / math.log(2))
        assert s["gain"]["per_seed"] == pytest.approx(gain)
        assert len(s["samples"]) == 8
    assert here["summary"]["scratch"]["gain"]["per_seed"] == [0.0, 0.0]
    assert here["data"]["names"][0] == 1500 and here["teacher"]["source"] == str(tiny_teacher)


def test_train_student_refuses_an_unknown_method_or_a_missing_teacher(data):
    setup = LMSetup().checked()
    with pytest.raises(ValueError, match="'method' parameter of train_student"):
        train_student("kd", 0, setup, data)
    with pytest.raises(ValueError, match="'teacher_logits' parameter of train_student"):
        train_student("reverse_kl", 0, setup, data)


def test_train_student_checks_its_teacher_logits_and_labels_once(data):
    setup = LMSetup().checked()
    m = data.X_train.shape[0]
    with pytest.raises(ValueError, match=rf"teacher_logits.*shape \({m}, 27\).*\({m}, 26\)"):
        train_student("forward_kl", 0, setup, data, np.zeros((m, 26)))
    z_t = np.zeros((m, 27))
    z_t[5, 3] = np.nan
    with pytest.raises(ValueError, match="teacher_logits.*finite"):
        train_student("forward_kl", 0, setup, data, z_t)
    bad = data._replace(y_train=np.where(np.arange(m) == 7, 27, data.y_train))
    with pytest.raises(ValueError, match="data.y_train.*train_student"):
        train_student("scratch", 0, setup, bad)


def test_alpha_zero_distilled_student_is_the_scratch_student(data):
    """alpha = 0 leaves only the cross-entropy: the same weights, bit for bit (paired runs)."""
    small = data._replace(X_train=data.X_train[:3000], y_train=data.y_train[:3000])
    z_t = np.random.default_rng(0).standard_normal((3000, 27)).astype(np.float32)
    setup = LMSetup(alpha=0.0, lr=0.01, scratch_lr=0.01, batch_size=100).checked()
    scratch, _ = train_student("scratch", 3, setup, small)
    distilled, history = train_student("forward_kl", 3, setup, small, z_t)
    for key, value in scratch.params.items():
        np.testing.assert_array_equal(distilled.params[key], value)
    assert history[-1]["soft"] > 0  # the soft term was computed, with weight 0


# -- the command -------------------------------------------------------------------------------

def _parse(*argv):
    parser = argparse.ArgumentParser(prog="minikd lm")
    cli_lm.add_arguments(parser)
    return parser.parse_args(list(argv))


QUICK = ("--train-names", "800", "--batch-size", "64", "--seeds", "2", "--samples", "10",
         "--jobs", "1")


def test_command_prints_a_table_and_json(tiny_teacher, capsys):
    assert cli_lm.run(_parse("--teacher", str(tiny_teacher), *QUICK)) == 0
    out, err = capsys.readouterr()
    assert err == ""
    for row in ("teacher", "student, scratch", "student, forward KL", "student, reverse KL",
                "student, JSD", "bits/char", "sampled names (seed 0):", "verdict:"):
        assert row in out
    assert cli_lm.run(_parse("--teacher", str(tiny_teacher), *QUICK, "--json",
                             "--methods", "forward_kl")) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert err == "" and list(doc["summary"]) == ["scratch", "forward_kl"]


@pytest.mark.parametrize("argv, message", [
    (("--teacher", "missing.npz"), "minikd lm: error: --teacher: no such file: missing.npz"),
    (("--teacher-out", "t.npz"), "minikd lm: error: --teacher-out FILE needs --train-teacher"),
    (("--teacher", "x.npz", "--train-teacher"), "minikd lm: error: give --teacher FILE or "
                                                "--train-teacher, not both"),
    (("--train-teacher", "--teacher-out", "no/such/dir/t.npz"),
     "minikd lm: error: --teacher-out no/such/dir/t.npz: no such folder"),
    (("--train-teacher", "--teacher-out", "pyproject.toml"),
     "minikd lm: error: --teacher-out pyproject.toml exists; remove it or add --force"),
])
def test_bad_input_is_one_line_and_exit_2_before_any_work(argv, message, capsys):
    assert cli_lm.run(_parse(*argv)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(message) and err.count("\n") == 1


@pytest.mark.skipif(importlib.util.find_spec("distributed") is not None,
                    reason="dask.distributed is installed")
def test_a_missing_cluster_backend_is_bad_input(capsys):
    assert cli_lm.run(_parse("--backend", "dask")) == 2
    assert capsys.readouterr().err == ("minikd lm: error: --backend dask needs distributed (pip "
                                       "install 'minikd[dask]')\n")


def test_a_file_that_is_not_a_teacher_is_refused(tmp_path, capsys):
    (tmp_path / "junk.npz").write_bytes(b"junk")
    assert cli_lm.run(_parse("--teacher", str(tmp_path / "junk.npz"))) == 2
    err = capsys.readouterr().err
    assert err.startswith("minikd lm: error: Cannot load a CharLM from") and err.count("\n") == 1


@pytest.mark.parametrize("argv", [("--alpha", "2"), ("--methods", "kl"), ("--seeds", "0"),
                                  ("--temperature", "nan"), ("--lr", "0")])
def test_argument_types_refuse_nonsense(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        _parse(*argv)
    assert exc.value.code == 2


def test_diverged_training_exits_1(tiny_teacher, capsys):
    argv = ("--teacher", str(tiny_teacher), *QUICK, "--methods", "forward_kl",
            "--scratch-lr", "1e30")
    assert cli_lm.run(_parse(*argv)) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("minikd lm: training failed: seed 0 scratch: epoch 1")


def test_train_teacher_route_saves_the_teacher_it_reports(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(lm_teacher, "TEACHER", TINY)
    out_file = tmp_path / "teacher.npz"
    argv = ("--train-teacher", "--teacher-out", str(out_file), *QUICK, "--methods",
            "forward_kl", "--json")
    assert cli_lm.run(_parse(*argv)) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["teacher"]["source"] == "trained" and doc["teacher"]["recipe"]["seed"] == 5
    assert doc["teacher"]["sha256"] == params_sha256(CharLM.load(out_file).params)


@pytest.mark.parametrize("module", [embedding, char_lm, names, lm_teacher])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
