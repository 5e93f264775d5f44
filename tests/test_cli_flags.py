"""The command line speaks in its own flags and refuses bad arguments and outputs before any
work: one line on stderr naming the flag, exit status 2, the experiment never started."""

import pytest

from minikd import cli
from minikd.experiments import distill_job, omit_class, sweeps


@pytest.fixture
def no_work(monkeypatch):
    """Make every experiment fail the test if it is started."""
    def started(*args, **kwargs):
        raise AssertionError("the experiment started before the arguments were checked")

    monkeypatch.setattr(distill_job, "run_distill", started)
    monkeypatch.setattr(sweeps, "run_sweep", started)
    monkeypatch.setattr(omit_class, "run_omit_class", started)


def _refused(argv, capsys):
    status = cli.main(argv)
    out, err = capsys.readouterr()
    assert status == 2 and out == "", argv
    assert err.count("\n") == 1, err
    return err


BAD_FLAGS = [
    (["distill", "--temperature", "1e9"], "--temperature"),
    (["sweep", "--temperature", "2", "1e9"], "--temperature"),
    (["omit-class", "--t", "0"], "--temperature"),
    (["distill", "--n-train", "1"], "--n-train must be an int"),  # DistillSetup's own check
    (["omit-class", "--n-train", "1"], "--n-train must be an int"),
    (["distill", "--family", "feature", "--feature-loss", "cosine"], "--student-hidden"),
    (["distill", "--family", "feature", "--feature-loss", "at", "--student-hidden", "32"],
     "--teacher-hidden"),
    (["distill", "--teacher-hidden", str(10**9)], "--teacher-hidden 1000000000 needs at least"),
    (["sweep", "--student-hidden", str(10**6), str(10**6)], "GiB"),
    (["distill", "--scheduler", "tcp://localhost:8786"], "--scheduler"),
    (["omit-class", "--jobs", "0"], "--jobs"),
    (["sweep", "--backend", "threads"], "--backend"),
]


@pytest.mark.parametrize("argv, words", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_a_bad_value_is_one_line_naming_the_flag(argv, words, capsys, no_work):
    err = _refused(argv, capsys)
    assert err.startswith(f"minikd {argv[0]}: error: ") and words in err
    assert "parameter of" not in err  # the library's words stay out of the command line


def test_sweep_takes_temperature_like_its_siblings():
    args = cli.build_parser().parse_args(["sweep", "--temperature", "2", "3", "--alphas", "1"])
    assert args.sweep_t == [2.0, 3.0] and args.sweep_alpha == [1.0]


def test_every_output_is_checked_before_any_work(tmp_path, capsys, no_work):
    existing = tmp_path / "exists.png"
    existing.write_text("x")
    missing = tmp_path / "no" / "such" / "out"
    cases = [
        (["distill", "--save", str(existing)], "is a file; expected a folder"),
        (["distill", "--save", str(missing)], "no such folder"),
        (["distill", "--plot", str(existing)], "--plot"),
        (["sweep", "--plot", str(existing)], "--plot"),
        (["temperature", "1", "0", "--plot", str(existing)], "--plot"),
        (["vectors", "--out", str(existing)], "exists; remove it or add --force"),
        (["diagnose", "--make-inputs", str(existing)], "exists; remove it or add --force"),
        (["export", str(existing), "--onnx", str(existing)], "exists; remove it or add --force"),
        (["lm", "--train-teacher", "--teacher-out", str(existing)], "--teacher-out"),
        (["deploy", "--out", str(existing)], "is a file; expected a folder"),
    ]
    for argv, words in cases:
        err = _refused(argv, capsys)
        assert words in err, (argv, err)


def test_a_distill_save_folder_holding_models_needs_force(tmp_path, capsys, no_work):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "teacher_seed0.npz").write_text("x")
    err = _refused(["distill", "--save", str(folder)], capsys)
    assert "already holds teacher_seed0.npz" in err and "--force" in err
