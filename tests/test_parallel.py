"""minikd.experiments.parallel: runs in processes give the numbers of runs in this process."""

import numpy as np
import pytest

from minikd.experiments.parallel import default_jobs, map_runs


def _draw(seed, n):
    """A run whose randomness is its own seed's."""
    return np.random.default_rng(seed).standard_normal(n).sum()


def test_results_do_not_depend_on_jobs_and_keep_task_order():
    tasks = [(seed, 1000) for seed in (5, 3, 9, 1)]
    here = map_runs(_draw, tasks, jobs=1)
    pooled = map_runs(_draw, tasks, jobs=2)
    assert here == pooled  # bit for bit, in the order of the tasks
    assert here == [_draw(*t) for t in tasks]


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="'backend' parameter of map_runs"):
        map_runs(_draw, [(0, 1)], backend="threads")
    with pytest.raises(ValueError, match="'jobs' parameter of map_runs"):
        map_runs(_draw, [(0, 1)], jobs=0)
    assert default_jobs() >= 1
