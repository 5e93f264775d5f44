"""``minikd omit-class``: Hinton's dark-knowledge experiment, a class never in the transfer set."""

from __future__ import annotations

from .common import EXIT_OK, print_json
from .runs import run_options, shows_progress
from .setup_args import add_setup_arguments, setup_from_args

HELP = "Hinton's dark-knowledge experiment: a class never in the transfer set"
DESCRIPTION = ("Hinton et al. (2015), §3: distil a student on a transfer set with no example "
               "of one class, then report its accuracy on that class before and after shifting "
               "the class's output bias (the paper's test-optimised shift, a shift chosen on a "
               "validation split, and one matching the class prior that looks at no label).")


def add_arguments(p):
    from ..experiments.omit_class import OmitSetup

    add_setup_arguments(p, OmitSetup(), omit=True)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar on stderr, only the result")


def run(args):
    from .._threads import blas_threads
    from ..experiments import omit_class
    from ..experiments.report import omit_report

    setup = setup_from_args(args, omit_class.OmitSetup)
    options = run_options(args)
    with blas_threads(args.threads):
        result = omit_class.run_omit_class(setup, verbose=shows_progress(args), **options)
    if args.json:
        print_json(result)
    else:
        print(omit_report(result))
    return EXIT_OK
