"""Independent runs (seeds, sweep cells) in parallel processes, through joblib.

Every run is a call ``fn(*task)`` whose randomness comes from its own arguments (its seed), never
from the order in which runs finish, so the results are the same, bit for bit, whatever ``jobs``
and ``backend`` are. joblib's backends: ``"loky"`` (processes on this machine, the default),
``"dask"`` (a ``distributed`` cluster, with ``scheduler=`` its address) and ``"ray"`` (a Ray
cluster), where those packages are installed. Each loky worker runs with one BLAS thread: these
networks are small, and a process per run uses the cores better than threads inside one.
Runs are collected as they finish (``on_done`` sees them then, e.g. to move a progress bar) and
returned in the order of the tasks.
"""

from __future__ import annotations

import os

from .._validation import check_choice, check_int, param_error

__all__ = ["BACKENDS", "default_jobs", "map_runs"]

BACKENDS = ("loky", "dask", "ray")


def default_jobs():
    """The number of cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _connect(backend, scheduler, func):
    """Register a cluster backend with joblib; returns the object that keeps it alive."""
    if backend == "dask":
        try:
            from distributed import Client
        except ImportError as err:
            raise param_error("backend", func, "'dask' only with dask.distributed installed "
                              "(pip install 'minikd[dask]')", "'dask'") from err
        return Client(scheduler) if scheduler else Client(processes=True)
    try:
        import ray
    except ImportError as err:
        raise param_error("backend", func, "'ray' only with ray installed "
                          "(pip install 'minikd[ray]')", "'ray'") from err
    from ray.util.joblib import register_ray

    register_ray()
    if not ray.is_initialized():
        ray.init(address=scheduler or None)
    return ray


def _indexed(fn, i, *args):
    """``(i, fn(*args))``: a run tagged with its task's index, whatever order runs finish in."""
    return i, fn(*args)


def map_runs(fn, tasks, *, jobs=None, backend="loky", scheduler=None, on_done=None):
    """``[fn(*task) for task in tasks]``, the calls spread over processes.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled to the workers).
    tasks : iterable of tuple
        The arguments of each call.
    jobs : int, optional
        Number of worker processes; default :func:`default_jobs`. ``jobs=1`` runs in this
        process, without a pool.
    backend : {"loky", "dask", "ray"}, default "loky"
    scheduler : str, optional
        The cluster's address for ``"dask"`` (``tcp://host:8786``) or ``"ray"``; without it a
        local cluster is started.
    on_done : callable, optional
        ``on_done(i, result)``, called in this process as run ``i`` finishes (in the order runs
        finish, which varies; the returned list does not).

    Returns
    -------
    list
        The results, in the order of ``tasks``.
    """
    func = "map_runs"
    tasks = [tuple(t) for t in tasks]
    check_choice(backend, "backend", func, BACKENDS)
    jobs = default_jobs() if jobs is None else check_int(jobs, "jobs", func, low=1)
    on_done = on_done or (lambda i, result: None)
    results = [None] * len(tasks)
    if backend == "loky" and (jobs == 1 or len(tasks) <= 1):
        for i, t in enumerate(tasks):
            results[i] = fn(*t)
            on_done(i, results[i])
        return results
    from joblib import Parallel, delayed, parallel_config

    cluster = None if backend == "loky" else _connect(backend, scheduler, func)
    try:
        with parallel_config(backend=backend, n_jobs=min(jobs, len(tasks)),
                             inner_max_num_threads=1 if backend == "loky" else None):
            done = Parallel(return_as="generator_unordered")(
                delayed(_indexed)(fn, i, *t) for i, t in enumerate(tasks))
            for i, result in done:
                results[i] = result
                on_done(i, result)
        return results
    finally:
        if backend == "dask" and cluster is not None:
            cluster.close()
