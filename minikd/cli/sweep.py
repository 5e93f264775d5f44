"""``minikd sweep``: the distilled student's gain over a temperature x alpha grid."""

from __future__ import annotations

import numpy as np

from .common import print_json
from .plotting import check_plot, draw_plot
from .setup_args import add_setup_arguments, setup_from_args

HELP = "the distilled student's gain over a temperature x alpha grid"
DESCRIPTION = ("Train one teacher and the scratch students per seed, then one distilled student "
               "per (T, alpha), and print the gain over scratch on the grid.")


def add_arguments(p):
    from ..experiments.setup import DistillSetup

    add_setup_arguments(p, DistillSetup(), sweep=True)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw the grid as a heat map")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def run(args):
    from .._threads import blas_threads
    from ..experiments import plots, sweeps
    from ..experiments.report import sweep_report

    setup = setup_from_args(args)
    check_plot(args)
    with blas_threads(args.threads):
        result = sweeps.run_sweep(setup, temperatures=args.sweep_t, alphas=args.sweep_alpha,
                                  verbose=not args.quiet)
    if args.json:
        print_json(result)
    else:
        print(sweep_report(result))
    return draw_plot(args, plots.plot_sweep, result["temperatures"], result["alphas"],
                     100 * np.asarray(result["gain"]))
