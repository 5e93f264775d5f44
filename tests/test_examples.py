"""Smoke-run every script in examples/ (subprocess, timeout, one BLAS thread) and check that it
prints what it teaches."""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")

# Key content each script must print: facts derived independently (by hand or by the math the
# script teaches), not copied from the script's output.
EXPECTED = {
    "01_hard_vs_soft_labels.py": [
        "hard label           1.0000   0.0000   0.0000   0.0000",
        # softmax([6, 3.5, -2, 1]) at T = 1: e^6 / (e^6 + e^3.5 + e^-2 + e^1) = 0.9181
        "teacher, T = 1       0.9181",
        "dark knowledge",
    ],
    "02_temperature.py": [
        # p_4 proportional to p_1^(1/4) for p_1 = (0.9, 0.07, 0.005, 0.025): 0.9^0.25 / sum
        "T = 4      0.4526   0.2390   0.1236   0.1848",
        "does not follow from the T = 1 row",
    ],
    "03_loss_and_gradient_by_hand.py": [
        # The golden values of tests/test_losses.py (mpmath at 40 digits, independent of minikd).
        "KD   by hand 0.7579994684   golden 0.7579994684   agree",
        "CE   by hand 1.0744586306   golden 1.0744586306   agree",
        "minikd.kd_loss           0.7579994684",
        "-> ok",
    ],
    "04_training_walkthrough.py": [
        "step 1  data:", "step 3", "step 4", "step 6-9 epoch  10", "step 10 test accuracy",
        # Parameter counts by hand: 64*256 + 256 + 256*256 + 256 + 256*10 + 10 and
        # 64*16 + 16 + 16*10 + 10.
        "85,002 parameters", "1,210 parameters (70x fewer)",
    ],
    "05_three_families.py": [
        "response  kd_loss(T=4)", "feature   hint_loss", "relation  sp_loss",
        "+ relation: PKT (x30000)", "Part 2: UCI digits",
    ],
    "06_omitted_class.py": [
        "scratch student, hard labels, no 3s", "shift chosen on the test set (paper)",
        "shift chosen on a validation split", "shift matching the class prior",
        "that is dark knowledge",
    ],
    "07_diagnose_a_kd_loss.py": [
        # .mean(1) averages the C = 7 per-class KL terms where the KL sums them: exactly C
        "kd_loss / yours = 7.0000   (C = 7 classes)",
        "verdict: reduction_mean",
        "fix:   loss = F.kl_div(F.log_softmax(z_s / T, dim=1), F.softmax(z_t / T, dim=1), "
        "reduction='batchmean') * T**2",
    ],
    "08_on_a_device.py": [
        # the forward equation of a 64-16-10 ReLU student, plus softmax(z / T): one node a term
        "x -> MatMul -> Add -> Relu -> MatMul -> Add -> Div -> Softmax",
        # 64*16 + 16 + 16*10 + 10
        "sizes [64, 16, 10], relu, float32, 1210 parameters",
        "-> ok (tolerance 1e-5)", "student, int8",
    ],
    "09_distill_a_tiny_language_model.py": [
        # ln 27 and log2 27, by hand
        "log 27 = 3.2958 nats = 4.7549 bits per character",
        # the K = 8 characters before each of e, m, m, a and the end of "emma"
        "'emma' gives 5 examples: ........ -> e, .......e -> m, ......em -> m, .....emm -> a, "
        "....emma -> .",
        "embedding gradient vs finite differences",
        "-> ok",
        "scratch   student: test NLL", "distilled student: test NLL",
    ],
    "10_bring_your_own_teacher.py": [
        # the digits' class counts 178 182 177 183 181 182 181 179 174 180, 30 % of each to
        # test, rounded: 53 55 53 55 54 55 54 54 52 54 = 539, and 1797 - 539 = 1258
        "1258 train rows, 539 test rows, 64 features, 10 classes",
        "shape (1797, 10) (training rows, then test rows)",  # 1258 + 539 rows, 10 logits
        "teacher (from its test logits)", "student 64-16-10, scratch",
        "student 64-16-10, distilled",
    ],
    "token_distillation.py": [
        # lengths 8 + 6 + 5 + 3 = 22 real tokens of 4 x 8 positions
        "positions selected: 22 of 32",
        # KL(p || uniform) = log V - H(p), computed in the script by a loop over positions
        "-> ok",
        "padding positions get exactly zero gradient: True",
        "top-4 forward_kl, tail=bucket",
    ],
}

NEEDS = {"08_on_a_device.py": ("onnx", "onnxruntime")}  # optional packages: minikd[onnx]


def _env():
    # One BLAS thread (float32 results depend on it); the training examples' short version.
    return dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                MINIKD_EXAMPLE_QUICK="1",
                PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def run_example(name, *args, timeout=120):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args],
                          capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT)


PLOTTING = ("02_temperature.py", "04_training_walkthrough.py")  # they take --plot FILE.png


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """Where the examples that draw put their pictures (None without matplotlib)."""
    return tmp_path_factory.mktemp("pictures") if _has_matplotlib() else None


def _argv(name, pictures):
    argv = [sys.executable, os.path.join(EXAMPLES, name)]
    if pictures is not None and name in PLOTTING:
        argv += ["--plot", str(pictures / name.replace(".py", ".png"))]
    return argv


@pytest.fixture(scope="module")
def outputs(pictures):
    """Run every example once, all at the same time (they are independent), with a timeout."""
    procs = {name: subprocess.Popen(_argv(name, pictures),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=_env(), cwd=ROOT)
             for name in sorted(EXPECTED)}
    done = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += "\n(timed out)"
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


def test_every_example_is_covered():
    scripts = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py"))
    assert scripts == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_and_prints_its_point(name, outputs):
    missing = [p for p in NEEDS.get(name, ()) if importlib.util.find_spec(p) is None]
    if missing:
        pytest.skip(f"{name} needs {', '.join(missing)} (pip install 'minikd[onnx]')")
    proc = outputs[name]
    assert proc.returncode == 0, proc.stderr
    for snippet in EXPECTED[name]:
        assert snippet in proc.stdout, f"{name} did not print {snippet!r}"


@pytest.mark.parametrize("name", PLOTTING)
def test_examples_draw_their_pictures(name, outputs, pictures):
    if pictures is None:
        pytest.skip("matplotlib is not installed")
    path = pictures / name.replace(".py", ".png")
    assert outputs[name].returncode == 0, outputs[name].stderr
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert outputs[name].stdout.endswith(f"wrote {path}\n")


def test_example_is_deterministic(outputs, pictures):
    proc = run_example("02_temperature.py")
    assert proc.returncode == 0, proc.stderr
    expected = outputs["02_temperature.py"].stdout
    if pictures is not None:  # the fixture's run also drew; drop its last line
        expected = expected[:expected.rstrip("\n").rfind("\n") + 1]
    assert proc.stdout == expected
