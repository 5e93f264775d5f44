"""The command line: help, one-line errors with exit status 2, JSON output, the tables' content.

Commands that train run in-process: the experiment commands train on one BLAS thread by default
(``--threads 1``; float32 results depend on the thread count). Tests assert on structure and on
gains averaged over seeds, never on exact accuracies.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax

from minikd import LossGrad, cli
from minikd.experiments import omit_class
from minikd.experiments import report as _report
from minikd.verify import selfcheck

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(argv, capsys):
    """Call cli.main in-process; return (status, stdout, stderr)."""
    try:
        status = cli.main(argv)
    except SystemExit as exc:  # --help exits through argparse
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def run_subprocess(args, timeout=120):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "minikd", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


COMMANDS = [name for name in cli.build_parser()._subparsers._group_actions[0].choices]


def test_the_documented_commands_exist():
    for name in ("distill", "temperature", "omit-class", "gradcheck"):
        if name in ("distill", "omit-class") and name not in COMMANDS:
            pytest.skip("the experiment commands land with minikd.distill")
        assert name in COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    status, out, err = run_main([command, "--help"], capsys)
    assert status == 0
    assert out.startswith("usage: minikd " + command)
    assert err == ""


def test_top_level_help_lists_every_command(capsys):
    status, out, _ = run_main(["--help"], capsys)
    assert status == 0
    for command in COMMANDS:
        assert command in out


def test_python_dash_m_runs_the_same_main():
    proc = run_subprocess(["temperature", "1", "0", "--t", "1", "--json"])
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)["rows"][0]["probabilities"]
    np.testing.assert_allclose(row, scipy_softmax([1.0, 0.0]), rtol=1e-12)


BAD_ARGS = [
    ["temperature", "1", "2", "--t", "-1"],
    ["temperature", "1", "2", "--t", "0"],
    ["temperature", "1", "2", "--t", "inf"],
    ["temperature", "1", "2", "--t", "abc"],
    ["temperature", "1", "nan"],
    ["temperature", "1", "x"],
    ["temperature", "3"],
    ["temperature"],
    ["temperature", "1", "2", "--names", "a"],
    ["gradcheck", "--tol", "-1"],
    ["gradcheck", "--t", "0"],
    ["gradcheck", "--seed", "-3"],
    ["gradcheck", "--bogus"],
    ["no-such-command"],
]


@pytest.mark.parametrize("argv", BAD_ARGS, ids=[" ".join(a) for a in BAD_ARGS])
def test_bad_arguments_exit_2_with_one_line(argv, capsys):
    status, out, err = run_main(argv, capsys)
    assert status == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error" in lines[0]
    assert "Traceback" not in err


def test_no_command_is_one_line_and_exit_2(capsys):
    status, out, err = run_main([], capsys)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "give a command" in err and "minikd --help" in err


def test_version(capsys):
    from minikd import __version__

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"minikd {__version__}"


# -- temperature --------------------------------------------------------------------------------

def test_temperature_table_matches_scipy(capsys):
    logits = [5.0, 3.0, 1.0, 0.5]
    status, out, _ = run_main(["temperature", *map(str, logits), "--t", "1", "4", "--json"],
                              capsys)
    assert status == 0
    data = json.loads(out)
    assert [r["temperature"] for r in data["rows"]] == [1.0, 4.0]
    for r in data["rows"]:
        # softmax(z / T), from scipy: an oracle independent of minikd.
        expected = scipy_softmax(np.array(logits) / r["temperature"])
        np.testing.assert_allclose(r["probabilities"], expected, rtol=1e-12)


def test_temperature_text_table_has_names_and_rows(capsys):
    status, out, _ = run_main(["temperature", "2", "0", "--names", "cat", "dog",
                               "--t", "1", "20"], capsys)
    assert status == 0
    lines = out.splitlines()
    assert "cat" in lines[1] and "dog" in lines[1]
    # T = 1: e^2 / (e^2 + 1) = 0.8808; T = 20: e^0.1 / (e^0.1 + 1) = 0.5250.
    assert "0.8808" in out and "0.1192" in out
    assert "0.5250" in out and "0.4750" in out


def test_negative_logits_are_accepted(capsys):
    status, out, _ = run_main(["temperature", "-1.5", "2", "--json"], capsys)
    assert status == 0
    assert json.loads(out)["logits"] == [-1.5, 2.0]


def test_temperature_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "t.png"
    status, _, err = run_main(["temperature", "1", "0", "--plot", str(path)], capsys)
    assert status == 0, err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("command", [["temperature", "1", "0"], ["distill", "--seeds", "1"],
                                     ["sweep", "--seeds", "1"]])
def test_plot_without_matplotlib_fails_before_any_work(tmp_path, capsys, monkeypatch, command):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    path = tmp_path / "t.png"
    status, out, err = run_main([*command, "--plot", str(path)], capsys)
    assert status == 2 and out == ""  # nothing computed, nothing printed
    assert "--plot needs matplotlib" in err and err.count("\n") == 1
    assert not path.exists()


# -- gradcheck ------------------------------------------------------------------------------------

def test_gradcheck_command_passes_on_every_public_loss(capsys):
    status, out, err = run_main(["gradcheck", "--t", "0.5", "4", "--json"], capsys)
    data = json.loads(out)
    assert status == 0, err
    assert data["failed"] == 0
    assert {r["loss"] for r in data["rows"]} == {c.name for c in selfcheck.SELF_CHECKS}


def _kd_like(student_logits, teacher_logits, *, temperature=1.0, broken=False):
    """T^2 KL(p_t || p_s) batchmean with its gradient (T/N)(p_s - p_t); ``broken`` drops a T."""
    n = student_logits.shape[0]
    p_s = scipy_softmax(student_logits / temperature, axis=1)
    p_t = scipy_softmax(teacher_logits / temperature, axis=1)
    loss = temperature**2 * float(np.sum(p_t * (np.log(p_t) - np.log(p_s)))) / n
    grad = (temperature / n) * (p_s - p_t)
    return LossGrad(loss, grad / temperature if broken else grad)


def test_gradcheck_reports_a_broken_gradient_as_failed(capsys, monkeypatch):
    def broken_loss(student_logits, teacher_logits, *, temperature=1.0):
        return _kd_like(student_logits, teacher_logits, temperature=temperature, broken=True)

    def good_loss(student_logits, teacher_logits, *, temperature=1.0):
        return _kd_like(student_logits, teacher_logits, temperature=temperature)

    monkeypatch.setattr(selfcheck, "SELF_CHECKS", (
        selfcheck.SelfCheck("broken_loss", broken_loss, selfcheck.logit_pair, selfcheck.soft),
        selfcheck.SelfCheck("good_loss", good_loss, selfcheck.logit_pair, selfcheck.soft)))
    status, out, _ = run_main(["gradcheck", "--t", "2", "4"], capsys)
    assert status == 1
    lines = [line for line in out.splitlines() if line.startswith(("broken", "good"))]
    assert [line.split()[-1] for line in lines] == ["FAIL", "FAIL", "pass", "pass"]
    assert "2 passed, 2 failed" in out


def test_gradcheck_at_t1_cannot_see_a_missing_factor_of_t():
    # A negative control for the negative control: at T = 1 the broken gradient is right.
    def broken_loss(student_logits, teacher_logits, *, temperature=1.0):
        return _kd_like(student_logits, teacher_logits, temperature=temperature, broken=True)

    check = selfcheck.SelfCheck("b", broken_loss, selfcheck.logit_pair, selfcheck.soft)
    rows = selfcheck.gradcheck_losses(temperatures=[1.0, 3.0], checks=[check], rng=0)
    assert [r["status"] for r in rows] == ["pass", "FAIL"]


def test_gradcheck_reports_a_loss_that_raises_as_failed():
    def odd_loss(a_string, *args):
        raise TypeError("needs a string")

    check = selfcheck.SelfCheck("odd_loss", odd_loss, selfcheck.logit_pair, None)
    rows = selfcheck.gradcheck_losses(checks=[check], rng=0)
    assert [r["status"] for r in rows] == ["FAIL"] and "needs a string" in rows[0]["detail"]


# -- the experiment commands (tiny runs in a subprocess with one BLAS thread) --------------------

TINY = ["--dataset", "digits", "--seeds", "2", "--teacher-hidden", "32", "--teacher-epochs", "4",
        "--student-hidden", "8", "--epochs", "4", "--batch-size", "128"]


def test_distill_json_has_every_field(capsys):
    status, out, err = run_main(["distill", *TINY, "--json", "-q"], capsys)
    assert status == 0, err
    assert err == ""  # -q: no progress
    r = json.loads(out)
    assert [s["seed"] for s in r["per_seed"]] == [0, 1]
    for name in ("teacher", "scratch", "scratch_wd", "distilled"):
        assert 0.0 <= r["summary"][name]["mean"] <= 1.0
        assert r["summary"][name]["std"] >= 0.0
    # The gain is the paired per-seed difference, recomputed here from the per-seed records.
    diffs = [s["distilled"]["acc"] - s["scratch"]["acc"] for s in r["per_seed"]]
    assert r["gain"]["vs_scratch"]["per_seed"] == pytest.approx(diffs)
    assert r["gain"]["vs_scratch"]["mean"] == pytest.approx(np.mean(diffs))
    assert r["gain"]["vs_scratch"]["wins"] == sum(d > 0 for d in diffs)
    # Parameter counts from the architecture, by hand: 64-32-10 and 64-8-10 with biases.
    assert r["models"]["teacher"]["n_params"] == 64 * 32 + 32 + 32 * 10 + 10
    assert r["models"]["student"]["n_params"] == 64 * 8 + 8 + 8 * 10 + 10
    assert r["models"]["student"]["nbytes"] == 4 * r["models"]["student"]["n_params"]
    assert r["triple"]["smaller"] == pytest.approx(1 - 610 / 2410)
    assert r["triple"]["kept"] == pytest.approx(r["summary"]["distilled"]["mean"]
                                                / r["summary"]["teacher"]["mean"])
    assert len(r["curves"]["distilled"]) == 2 and len(r["curves"]["distilled"][0]) == 4


def test_distill_table_save_and_plot(tmp_path, capsys):
    from minikd import MLP

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        has_matplotlib = False
    else:
        has_matplotlib = True
    plot = tmp_path / "curves.png"
    status, out, err = run_main(["distill", *TINY, "--save", str(tmp_path / "models"),
                                 *(["--plot", str(plot)] if has_matplotlib else [])], capsys)
    assert status == 0, err
    for field in ("test acc (%)", "agrees w/ teacher (%)", "params", "µs/sample",
                  "student, scratch + weight decay", "student, distilled",
                  "gain of the distilled student over scratch:",
                  "gain of the distilled student over scratch + weight decay:",
                  "better on", "DistilBERT-style:", "smaller", "per sample", "of the teacher's"):
        assert field in out, field
    saved = sorted(os.listdir(tmp_path / "models"))
    assert saved == sorted(f"{m}_seed{s}.npz" for m in ("teacher", "scratch", "scratch_wd",
                                                         "distilled") for s in (0, 1))
    assert list(MLP.load(tmp_path / "models" / "distilled_seed1.npz").sizes) == [64, 8, 10]
    if has_matplotlib:
        assert plot.read_bytes()[:4] == b"\x89PNG"
    # the same folder again: refused before training unless --force
    status, out, err = run_main(["distill", *TINY, "--save", str(tmp_path / "models")], capsys)
    assert status == 2 and out == "" and "already holds" in err and "--force" in err


def test_omit_class_distilled_student_recognises_the_unseen_class(capsys):
    status, out, err = run_main(["omit-class", "--seeds", "2", "--teacher-hidden", "64",
                                 "--teacher-epochs", "20", "--student-hidden", "32",
                                 "--epochs", "30", "--json", "-q"], capsys)
    assert status == 0, err
    r = json.loads(out)
    s = r["summary"]
    # A student that never saw a 3 with hard labels cannot predict it; dark knowledge can.
    # Averaged over seeds, with a margin a broken transfer cannot meet.
    gain = s["distilled_none"]["class_acc"]["mean"] - s["scratch"]["class_acc"]["mean"]
    assert gain > 0.3
    assert s["distilled_none"]["shift"]["mean"] == 0.0
    for rule in ("test_optimised", "validation", "class_prior"):
        assert f"distilled_{rule}" in s


def test_omit_class_text_names_the_three_rules(capsys, monkeypatch):
    fake = {"setup": {"omit": 3, "dataset": "digits", "seeds": 1, "teacher_hidden": [8],
                      "teacher_dropout": 0.3, "teacher_epochs": 1, "student_hidden": [4],
                      "epochs": 1, "temperature": 20.0, "alpha": 1.0, "val_fraction": 0.2},
            "data": {"n_train": 10, "n_test": 5, "n_test_class": 2, "n_classes": 10,
                     "n_features": 64},
            "summary": {k: {"class_acc": {"mean": 0.5, "std": 0.0},
                            "acc": {"mean": 0.5, "std": 0.0}} for k in _report.OMIT_ROWS},
            "seconds": 1.0}
    for k in _report.OMIT_ROWS:
        if k.startswith("distilled"):
            fake["summary"][k]["shift"] = {"mean": 1.5, "std": 0.0}
    monkeypatch.setattr(omit_class, "run_omit_class", lambda setup, verbose: fake)
    status, out, _ = run_main(["omit-class", "-q"], capsys)
    assert status == 0
    assert "TEST set (the paper's; optimistic)" in out
    assert "validation split" in out
    assert "class prior (no labels)" in out
    assert "+1.50" in out


BAD_EXPERIMENT_ARGS = [
    ["distill", "--seeds", "0"],
    ["distill", "--seeds", "-2"],
    ["distill", "--t", "-1"],
    ["distill", "--temperature", "0"],
    ["distill", "--alpha", "1.5"],
    ["distill", "--epochs", "2.5"],
    ["distill", "--teacher-dropout", "1"],
    ["distill", "--family", "telepathy"],
    ["distill", "--dataset", "idx"],
    ["distill", "--dataset", "idx", "--data-dir", "/nonexistent/folder"],
    ["distill", "--student-hidden"],
    ["omit-class", "--seeds", "0"],
    ["omit-class", "--omit", "-1"],
    ["omit-class", "--val-fraction", "1"],
    ["omit-class", "--omit", "12", "--seeds", "1", "--teacher-epochs", "1", "--epochs", "1"],
    ["sweep", "--alpha", "2"],
    ["sweep", "--t", "0", "1"],
]


@pytest.mark.parametrize("argv", BAD_EXPERIMENT_ARGS, ids=[" ".join(a) for a in
                                                           BAD_EXPERIMENT_ARGS])
def test_bad_experiment_arguments_exit_2_with_one_line(argv, capsys):
    status, out, err = run_main([*argv, "-q"], capsys)
    assert status == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error" in lines[0] and "Traceback" not in err


# -- vectors --------------------------------------------------------------------------------------

def test_vectors_round_trip_and_check(tmp_path, capsys):
    from minikd.verify import vectors

    path = tmp_path / "golden.json"
    status, out, err = run_main(["vectors", "--out", str(path)], capsys)
    assert status == 0 and out == ""
    doc = vectors.load_vectors(path)
    status, out, _ = run_main(["vectors", "--check", str(path), "--json"], capsys)
    assert status == 0
    assert json.loads(out)["failed"] == 0
    # A corrupted expected loss must be caught.
    doc["cases"][0]["loss"] += 1e-3
    path.write_text(json.dumps(doc))
    status, out, _ = run_main(["vectors", "--check", str(path)], capsys)
    assert status == 1
    assert out.splitlines()[2].split()[-1] == "FAIL"
    assert f"1 failed (tol 1e-10) against {path}" in out


@pytest.mark.parametrize("argv", [["vectors", "--check", "/nonexistent/vectors.json"],
                                  ["vectors", "--tol", "0"]])
def test_vectors_bad_arguments_exit_2(argv, capsys):
    status, out, err = run_main(argv, capsys)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1


def test_vectors_check_rejects_a_foreign_file(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text('{"format": "something-else"}')
    status, _, err = run_main(["vectors", "--check", str(path)], capsys)
    assert status == 2
    assert "not a minikd vectors file" in err


def _write_idx(path, array):
    """IDX by hand (the MNIST page's layout): 0, 0, type 0x08, ndim, big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_distill_on_idx_files(tmp_path, capsys):
    from minikd import data

    X, y = data.load_digits()  # 8x8 images in [0, 1] stand in for MNIST
    images = np.round(X * 255).reshape(-1, 8, 8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", images[:1200])
    _write_idx(tmp_path / "train-labels-idx1-ubyte", y[:1200])
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images[1200:])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", y[1200:])
    status, out, err = run_main(["distill", "--dataset", "idx", "--data-dir", str(tmp_path),
                                 "--seeds", "1", "--teacher-hidden", "16", "--teacher-epochs",
                                 "2", "--student-hidden", "8", "--epochs", "2", "--json", "-q"],
                                capsys)
    assert status == 0, err
    r = json.loads(out)
    assert r["data"] == {"n_train": 1200, "n_test": 597, "n_features": 64, "n_classes": 10}


def test_distill_on_a_folder_without_idx_files_is_one_line(tmp_path, capsys):
    status, out, err = run_main(["distill", "--dataset", "idx", "--data-dir", str(tmp_path),
                                 "-q"], capsys)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "found in" in err


def test_diverged_training_is_one_line_and_exit_1(capsys, monkeypatch):
    from minikd import NonFiniteLossError
    from minikd.experiments import distill_job as experiments

    def diverge(setup, verbose, save_dir):
        raise NonFiniteLossError("seed 0 distilled: epoch 3, step 7/32: loss term 'loss' is nan",
                                 epoch=3, step=7)

    monkeypatch.setattr(experiments, "run_distill", diverge)
    status, out, err = run_main(["distill", "-q"], capsys)
    assert status == 1 and out == ""
    assert err.strip() == ("minikd: training failed: seed 0 distilled: epoch 3, step 7/32: "
                           "loss term 'loss' is nan")


def test_one_seed_is_singular(capsys):
    status, out, _ = run_main(["distill", *TINY[:2], "--seeds", "1", *TINY[4:], "-q"], capsys)
    assert status == 0
    assert ", 1 seed, " in out.splitlines()[0]


def test_ctrl_c_while_the_command_line_loads_is_one_line_and_130(monkeypatch, capsys):
    # the `minikd` command's entry point imports the (heavy) command line inside its try
    import builtins

    from minikd import __main__ as entry

    real_import = builtins.__import__

    def interrupted(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 1 and name == "cli":
            raise KeyboardInterrupt
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert entry.run() == 130
    out, err = capsys.readouterr()
    assert out == "" and err == "minikd: interrupted\n"


def test_import_minikd_loads_no_floor_until_a_name_is_used():
    code = ("import sys, minikd; assert 'numpy' not in sys.modules, 'numpy'; "
            "minikd.kd_loss; assert 'minikd.losses.response' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
