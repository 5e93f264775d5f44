"""The experiment jobs: the same numbers whatever --jobs and wherever the runs go, in seed order,
with one progress bar on a terminal and nothing else on stderr."""

import io
import sys

import pytest

from minikd import cli
from minikd.experiments import distill_job, omit_class, sweeps
from minikd.experiments.parallel import map_runs
from minikd.experiments.progress import progress_bar, shows_progress

SMALL = {"dataset": "digits", "seeds": 2, "teacher_hidden": (32,), "teacher_epochs": 3,
         "student_hidden": (8,), "epochs": 3, "n_train": 400}


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal, as a console's stderr does."""

    def isatty(self):
        return True


def _numbers(result):
    """Everything of a result but its clocks (wall time, inference time)."""
    out = {k: v for k, v in result.items() if k not in ("seconds", "models", "triple")}
    out.pop("verdict", None)
    return out


def _slow_square(x, wait):
    import time

    time.sleep(wait)
    return x * x


def test_runs_come_back_in_task_order_whatever_finishes_first():
    done = []
    # The first task sleeps longest, so with two workers it finishes after the second.
    out = map_runs(_slow_square, [(3, 1.0), (4, 0.0), (5, 0.0)], jobs=2,
                   on_done=lambda i, r: done.append((i, r)))
    assert out == [9, 16, 25]
    assert sorted(done) == [(0, 9), (1, 16), (2, 25)]
    assert done[0][0] != 0  # collected as they finished, not in order


def test_distill_is_bitwise_the_same_with_one_or_two_jobs():
    one = distill_job.run_distill(verbose=False, jobs=1, **SMALL)
    two = distill_job.run_distill(verbose=False, jobs=2, **SMALL)
    assert _numbers(one) == _numbers(two)
    assert [r["seed"] for r in two["per_seed"]] == [0, 1]
    # Two seeds train different models: the comparison above is not of identical copies.
    assert one["curves"]["teacher"][0] != one["curves"]["teacher"][1]


def test_sweep_and_omit_class_are_bitwise_the_same_with_one_or_two_jobs():
    grid = {"temperatures": (1.0, 4.0), "alphas": (0.5,)}
    one = sweeps.run_sweep(verbose=False, jobs=1, **grid, **SMALL)
    two = sweeps.run_sweep(verbose=False, jobs=2, **grid, **SMALL)
    assert _numbers(one) == _numbers(two)
    assert one["gain"][0] != one["gain"][1]  # the two cells are different runs
    fields = {**SMALL, "teacher_dropout": 0.0}
    one = omit_class.run_omit_class(verbose=False, jobs=1, **fields)
    two = omit_class.run_omit_class(verbose=False, jobs=2, **fields)
    assert _numbers(one) == _numbers(two)
    assert [r["seed"] for r in two["per_seed"]] == [0, 1]


def test_a_sweep_on_a_dask_cluster_gives_the_local_numbers():
    distributed = pytest.importorskip("distributed")
    grid = {"temperatures": (2.0,), "alphas": (0.9,), "seeds": 1}
    fields = {**SMALL, **grid}
    here = sweeps.run_sweep(verbose=False, jobs=1, **fields)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        there = sweeps.run_sweep(verbose=False, jobs=2, backend="dask",
                                 scheduler=cluster.scheduler_address, **fields)
    assert _numbers(here) == _numbers(there)


def test_the_progress_bar_counts_runs_and_names_the_last_one(monkeypatch):
    fake = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    with progress_bar(3, desc="distill", unit="seed") as step:
        for seed in range(3):
            step(f"seed {seed}")
    text = fake.getvalue()
    assert "distill" in text and "3/3" in text and "last: seed 2" in text
    assert shows_progress(True) and not shows_progress(False)


def test_no_bar_when_stderr_is_not_a_terminal_or_when_disabled(monkeypatch):
    for stream, enabled in ((io.StringIO(), True), (FakeTerminal(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        with progress_bar(2, enabled=enabled) as step:
            step("seed 0")
            step("seed 1")
        assert stream.getvalue() == ""


def test_run_distill_draws_one_bar_over_its_seeds_and_no_epoch_lines(monkeypatch):
    fake = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    distill_job.run_distill(verbose=True, jobs=1, **SMALL)
    text = fake.getvalue()
    assert "2/2" in text and "last: seed 1" in text
    assert "epoch" not in text  # the trainers print nothing


TINY = ["--dataset", "digits", "--seeds", "2", "--teacher-hidden", "16", "--teacher-epochs",
        "2", "--student-hidden", "8", "--epochs", "2", "--n-train", "300", "--jobs", "1"]


@pytest.mark.parametrize("flags", [[], ["-q"], ["--json"]], ids=["plain", "-q", "--json"])
def test_the_cli_draws_the_bar_on_a_terminal_only_without_q_or_json(flags, capsys,
                                                                    monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    status = cli.main(["distill", *TINY, *flags])
    out, err = capsys.readouterr()
    assert status == 0 and out
    if flags:
        assert err == ""
    else:
        assert "2/2" in err and "last: seed 1" in err


def test_the_cli_prints_nothing_on_stderr_when_it_is_not_a_terminal(capsys):
    assert cli.main(["sweep", *TINY, "--t", "2", "--alpha", "0.9"]) == 0
    out, err = capsys.readouterr()
    assert "scratch + weight decay" in out and err == ""


def test_one_seed_reports_no_spread(capsys):
    assert cli.main(["distill", *TINY, "--seeds", "1"]) == 0  # the last --seeds counts
    out = capsys.readouterr().out
    assert "a spread needs at least 2 seeds" in out
    assert "exceed" not in out and "± 0.0 points" not in out


def _blas_threads_now(*args, **kwargs):
    from threadpoolctl import threadpool_info

    return sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})


def test_the_experiment_functions_limit_blas_threads_in_their_own_process(monkeypatch):
    from threadpoolctl import threadpool_limits

    from minikd.training import blas_threads

    seen = []

    def record(*args, **kwargs):
        seen.append(_blas_threads_now())
        raise KeyboardInterrupt  # stop before any training

    for module, name in ((distill_job, "run_distill"), (sweeps, "run_variants"),
                         (omit_class, "run_omit_class")):
        monkeypatch.setattr(module, "map_runs", record)
        func = getattr(module, name)
        kwargs = {"variants": [{"temperature": 2.0}]} if name == "run_variants" else {}
        # The caller's process has two BLAS threads (set without minikd's blas_threads block).
        with threadpool_limits(limits=2, user_api="blas"):
            assert _blas_threads_now() == [2]
            with pytest.raises(KeyboardInterrupt):
                func(verbose=False, jobs=1, **kwargs, **SMALL)
            with blas_threads(3), pytest.raises(KeyboardInterrupt):
                func(verbose=False, jobs=1, **kwargs, **SMALL)
            assert _blas_threads_now() == [2]  # restored afterwards
    assert seen == [[1], [3]] * 3  # one thread by default, the enclosing block's count inside one


def test_json_with_save_prints_only_the_result(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert cli.main(["distill", *TINY, "--json", "--save", str(tmp_path / "m")]) == 0
    out, err = capsys.readouterr()
    assert out.lstrip().startswith("{") and err == ""
    assert (tmp_path / "m" / "distilled_seed1.npz").exists()
