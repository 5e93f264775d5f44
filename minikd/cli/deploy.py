"""``minikd deploy``: teacher, distilled student and int8 distilled student in onnxruntime, side
by side, with the tutorial's size / speed / accuracy triple computed from the measured numbers.

By default the command trains one seed's teacher and distilled student itself, exactly as
``minikd distill`` does (10 s on a quiet 2-core machine); ``--models DIR`` reads the ``.npz``
files that ``minikd distill --save DIR`` wrote instead. The job is
:func:`minikd.experiments.deploy.run_deploy`; this module parses and prints. It needs the
optional ``onnx`` and ``onnxruntime`` packages (``pip install 'minikd[onnx]'``).
"""

from __future__ import annotations

import os

from .common import EXIT_OK, UsageError, first_line, nonneg_int, positive_int, print_json
from .outputs import check_output_dir

HELP = "teacher, distilled student and int8 student in onnxruntime: size, speed, accuracy"
DESCRIPTION = ("Export the teacher and the distilled student to ONNX, quantize the student to "
               "int8 (onnxruntime's dynamic quantization), and print, for the three: file size "
               "on disk, latency per sample at batch 1 and 256 in onnxruntime (and in NumPy for "
               "reference), test accuracy, the three ratios DistilBERT's '40% smaller, 60% "
               "faster, 97% kept' are made of, and the machine. By default one seed's models "
               "are trained here as 'minikd distill' trains them. Needs pip install "
               "'minikd[onnx]'.")


def add_arguments(parser):
    parser.add_argument("--models", metavar="DIR",
                        help="read teacher_seed{S}.npz and distilled_seed{S}.npz from DIR "
                             "(written by 'minikd distill --save DIR') instead of training")
    parser.add_argument("--dataset", choices=["mnist1d", "digits", "idx"], default="mnist1d",
                        help="the data the models are (or were) trained on; accuracies are on "
                             "its test split (default: mnist1d)")
    parser.add_argument("--data-dir", metavar="FOLDER", help="IDX files (with --dataset idx)")
    parser.add_argument("--seeds", type=positive_int, default=1, metavar="S",
                        help="number of seeds; accuracy is their mean, timings are of the "
                             "first seed's files (default: 1)")
    parser.add_argument("--first-seed", type=nonneg_int, default=0, metavar="S0",
                        help="the first seed (default: 0)")
    parser.add_argument("--out", metavar="DIR",
                        help="keep the .onnx files (and any trained .npz) in DIR; by default "
                             "they go to a temporary folder")
    parser.add_argument("--repeats", type=positive_int, default=7, metavar="R",
                        help="timed blocks per model and batch size; medians are shown "
                             "(default: 7)")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N",
                        help="onnxruntime and BLAS threads while timing (default: 1)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="time with the wall clock, or with this process's CPU time, which "
                             "on a busy machine approximates an idle one's wall time with one "
                             "thread (default: wall)")
    parser.add_argument("--jobs", type=positive_int, metavar="N",
                        help="processes for the seeds (default: the cores); the numbers do not "
                             "depend on it, timings run afterwards in one process")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args):
    """Run ``minikd deploy``; returns the exit status."""
    from ..nn.onnx_export import import_optional

    try:
        for package in ("onnx", "onnxruntime.quantization"):
            import_optional(package, "minikd deploy")
    except ImportError as err:
        raise UsageError(f"minikd deploy: {first_line(err)}") from None
    if args.dataset == "idx" and not args.data_dir:
        raise UsageError("minikd deploy: --dataset idx needs --data-dir FOLDER")
    if args.models is not None and not os.path.isdir(args.models):
        raise UsageError(f"minikd deploy: --models: there is no folder '{args.models}'")
    check_output_dir(args, "out")
    from ..experiments.deploy import run_deploy
    from ..experiments.setup import DistillSetup

    setup = DistillSetup(dataset=args.dataset, data_dir=args.data_dir, seeds=args.seeds,
                         first_seed=args.first_seed)
    try:
        result = run_deploy(setup, model_dir=args.models, out_dir=args.out,
                            repeats=args.repeats, threads=args.threads, clock=args.clock,
                            jobs=args.jobs)
    except (ValueError, TypeError, OSError) as err:
        raise UsageError(f"minikd deploy: {first_line(err)}") from None
    if args.json:
        print_json(result)
    else:
        from ..experiments.report import deploy_report

        print(deploy_report(result))
    return EXIT_OK
