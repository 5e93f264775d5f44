"""``minikd distill``: teacher, scratch students and distilled student over seeds."""

from __future__ import annotations

import sys

from .common import EXIT_OK, print_json
from .outputs import check_output_dir
from .plotting import check_plot, draw_plot
from .setup_args import add_setup_arguments, setup_from_args
from .user_files import add_user_file_arguments, load_user_files_from_args

HELP = "teacher vs scratch student vs distilled student, over seeds"
DESCRIPTION = ("Train a teacher, a student from scratch (plain and with weight decay) and a "
               "distilled student on each seed, and print one table: accuracy mean ± std, the "
               "distilled student's gain and per-seed wins, agreement with the teacher, "
               "parameters, bytes, inference time, and the DistilBERT-style triple. Progress "
               "goes to stderr.")


def add_arguments(p):
    from ..experiments.setup import DistillSetup

    add_setup_arguments(p, DistillSetup())
    add_user_file_arguments(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--save", metavar="DIR", help="save every model (.npz) in DIR")
    p.add_argument("--plot", metavar="FILE.png", help="draw test accuracy per epoch")
    p.add_argument("--force", action="store_true",
                   help="overwrite files that --save or --plot would replace")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def run(args):
    from .._threads import blas_threads
    from ..experiments import distill_job, plots
    from ..experiments.report import ROW_NAMES, distill_report

    user = load_user_files_from_args(args)  # before any training: a bad file fails here
    setup = setup_from_args(args)
    check_plot(args)
    check_output_dir(args, "save", distill_job.saved_model_names(setup))
    with blas_threads(args.threads):
        result = distill_job.run_distill(setup, verbose=not args.quiet, save_dir=args.save,
                                         **user)
    if args.json:
        print_json(result)
    else:
        print(distill_report(result))
    if args.save and not args.quiet:
        print(f"models saved in {args.save}", file=sys.stderr)
    curves = {ROW_NAMES[k]: result["curves"][k] for k in ("scratch", "scratch_wd", "distilled")}
    draw_plot(args, plots.plot_training_curves, curves)
    return EXIT_OK
