"""Where an experiment's runs go (``--jobs``, ``--backend``, ``--scheduler``) and whether its
progress bar is drawn; shared by ``distill``, ``sweep`` and ``omit-class``."""

from __future__ import annotations

import importlib.util

from .common import UsageError, positive_int

__all__ = ["add_run_arguments", "run_options", "shows_progress"]

BACKEND_MODULES = {"dask": "distributed", "ray": "ray"}  # backend -> the module it needs


def add_run_arguments(p):
    """``--jobs``, ``--backend`` and ``--scheduler``."""
    g = p.add_argument_group("where the runs go")
    g.add_argument("--jobs", type=positive_int, metavar="N",
                   help="runs at once, each in its own process with one BLAS thread (default: "
                        "the cores); the numbers do not depend on it")
    g.add_argument("--backend", choices=["loky", "dask", "ray"], default="loky",
                   help="local processes (loky, the default), or a dask or ray cluster "
                        "(pip install 'minikd[dask]' / 'minikd[ray]'); see docs/scaling_out.md")
    g.add_argument("--scheduler", metavar="ADDR",
                   help="the cluster's address with --backend dask (tcp://host:8786) or ray "
                        "(host:6379); without it a local cluster is started")


def run_options(args):
    """``jobs``, ``backend`` and ``scheduler`` for the experiment function, checked now."""
    module = BACKEND_MODULES.get(args.backend)
    if module is not None and importlib.util.find_spec(module) is None:
        raise UsageError(f"minikd {args.command}: error: --backend {args.backend} needs "
                         f"{module} (pip install 'minikd[{args.backend}]')")
    if args.scheduler and module is None:
        raise UsageError(f"minikd {args.command}: error: --scheduler {args.scheduler} needs "
                         "--backend dask or --backend ray")
    return {"jobs": args.jobs, "backend": args.backend, "scheduler": args.scheduler}


def shows_progress(args):
    """A progress bar unless ``-q`` or ``--json`` (and only on a terminal: the library checks)."""
    return not (getattr(args, "quiet", False) or getattr(args, "json", False))
