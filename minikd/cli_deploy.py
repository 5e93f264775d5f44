"""``minikd deploy``: teacher, distilled student and int8 distilled student in onnxruntime, side
by side, with the tutorial's size / speed / accuracy triple computed from the measured numbers.

By default the command trains one seed's teacher and distilled student itself, exactly as
``minikd distill`` does (10 s on a quiet 2-core machine); ``--models DIR`` reads the ``.npz``
files that ``minikd distill --save DIR`` wrote instead. The job is
:func:`minikd.experiments.deploy.run_deploy`; this module parses and prints. It needs the
optional ``onnx`` and ``onnxruntime`` packages (``pip install 'minikd[onnx]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

__all__ = ["add_arguments", "run"]


def _int_at_least(low):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return v
    return parse


def add_arguments(parser):
    """The arguments of ``minikd deploy``."""
    parser.description = (
        "Export the teacher and the distilled student to ONNX, quantize the student to int8 "
        "(onnxruntime's dynamic quantization), and print, for the three: file size on disk, "
        "latency per sample at batch 1 and 256 in onnxruntime (and in NumPy for reference), "
        "test accuracy, the three ratios DistilBERT's '40% smaller, 60% faster, 97% "
        "kept' are made of, and the machine. By default one seed's models are trained here "
        "as 'minikd distill' trains them. Needs pip install 'minikd[onnx]'.")
    parser.add_argument("--models", metavar="DIR",
                        help="read teacher_seed{S}.npz and distilled_seed{S}.npz from DIR "
                             "(written by 'minikd distill --save DIR') instead of training")
    parser.add_argument("--dataset", choices=["mnist1d", "digits", "idx"], default="mnist1d",
                        help="the data the models are (or were) trained on; accuracies are on "
                             "its test split (default: mnist1d)")
    parser.add_argument("--data-dir", metavar="FOLDER", help="IDX files (with --dataset idx)")
    parser.add_argument("--seeds", type=_int_at_least(1), default=1, metavar="S",
                        help="number of seeds; accuracy is their mean, timings are of the "
                             "first seed's files (default: 1)")
    parser.add_argument("--first-seed", type=_int_at_least(0), default=0, metavar="S0",
                        help="the first seed (default: 0)")
    parser.add_argument("--out", metavar="DIR",
                        help="keep the .onnx files (and any trained .npz) in DIR; by default "
                             "they go to a temporary folder")
    parser.add_argument("--repeats", type=_int_at_least(1), default=7, metavar="R",
                        help="timed blocks per model and batch size; medians are shown "
                             "(default: 7)")
    parser.add_argument("--threads", type=_int_at_least(1), default=1, metavar="N",
                        help="onnxruntime and BLAS threads while timing (default: 1)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="time with the wall clock, or with this process's CPU time, which "
                             "on a busy machine approximates an idle one's wall time with one "
                             "thread (default: wall)")
    parser.add_argument("--jobs", type=_int_at_least(1), metavar="N",
                        help="processes for the seeds (default: the cores); the numbers do not "
                             "depend on it, timings run afterwards in one process")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _fail(message):
    print(f"minikd deploy: {message}", file=sys.stderr)
    return EXIT_USAGE


def _first_line(err):
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def run(args):
    """Run ``minikd deploy``; returns the exit status."""
    from .nn.onnx_export import import_optional

    try:
        for package in ("onnx", "onnxruntime.quantization"):
            import_optional(package, "minikd deploy")
    except ImportError as err:
        return _fail(_first_line(err))
    if args.dataset == "idx" and not args.data_dir:
        return _fail("--dataset idx needs --data-dir FOLDER")
    if args.models is not None and not os.path.isdir(args.models):
        return _fail(f"--models: there is no folder '{args.models}'")
    if args.out is not None and os.path.exists(args.out) and not os.path.isdir(args.out):
        return _fail(f"--out: '{args.out}' exists and is not a folder")
    from .experiments.deploy import run_deploy
    from .experiments.distill_job import DistillSetup

    setup = DistillSetup(dataset=args.dataset, data_dir=args.data_dir, seeds=args.seeds,
                         first_seed=args.first_seed)
    try:
        result = run_deploy(setup, model_dir=args.models, out_dir=args.out,
                            repeats=args.repeats, threads=args.threads, clock=args.clock,
                            jobs=args.jobs)
    except (ValueError, TypeError, OSError) as err:
        return _fail(_first_line(err))
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        print(deploy_report(result))
    return EXIT_OK


def _speed(faster):
    """``faster`` = t_big / t_small - 1 as DistilBERT words it: "1.63x as fast (+63%)"."""
    return f"{1 + faster:.2f}x as fast ({100 * faster:+.0f}%)"


def deploy_report(r):
    """The text table of :func:`minikd.experiments.deploy.run_deploy`'s result."""
    from .experiments.report import DATASET_NAMES, format_table

    st, m, d, mach = r["setup"], r["models"], r["data"], r["machine"]
    seeds = list(range(st["first_seed"], st["first_seed"] + st["seeds"]))
    origin = (f"models read from {st['model_dir']}" if st["model_dir"] else
              f"models trained here as 'minikd distill' trains them (T = {st['temperature']:g}, "
              f"alpha = {st['alpha']:g})")
    lines = [
        f"minikd deploy: {DATASET_NAMES[d['dataset']]}, accuracy on the test split "
        f"({d['n_test']} rows); seed{'s' if len(seeds) > 1 else ''} "
        f"{', '.join(map(str, seeds))}; {origin}; {r['seconds']:.1f} s",
        f"machine: {mach['cpu']}, {mach['cores']} cores, {mach['arch']}, {mach['system']}; load "
        f"average {mach['load_average']} at the start, {mach['load_average_before_timing']} "
        f"before timing; onnxruntime {mach['onnxruntime']} and NumPy {mach['numpy']} on "
        f"{mach['threads']} thread{'s' if mach['threads'] > 1 else ''}; latencies are medians "
        f"of {st['repeats']} interleaved blocks, {mach['clock']} clock (seed "
        f"{r['timed_seed']}'s files)",
        "",
    ]
    names = {"teacher": f"teacher {'-'.join(map(str, m['teacher']['sizes']))}",
             "student": f"distilled student {'-'.join(map(str, m['student']['sizes']))}",
             "student_int8": "distilled student, int8"}
    rows = []
    for key, name in names.items():
        acc = m[key]["acc"]
        lat = m[key]["latency"]
        acc_text = f"{100 * acc['mean']:.1f}" + (f" ± {100 * acc['std']:.1f}"
                                                 if len(seeds) > 1 else "")
        rows.append([name, f"{m[key]['n_params']:,}", f"{m[key]['onnx_bytes'] / 1024:.1f} KiB",
                     acc_text]
                    + [f"{1e6 * lat['onnxruntime'][b]:.3f}" for b in ("1", "256")]
                    + [f"{1e6 * lat['numpy'][b]:.3f}" if b in lat["numpy"] else "-"
                       for b in ("1", "256")])
    lines.append(format_table(["model", "params", ".onnx file", "test acc (%)",
                               "ORT µs/sample b=1", "b=256", "NumPy µs/sample b=1", "b=256"],
                              rows))
    lines.append(f"onnxruntime's own cost per call (a graph that returns its input, batch 1): "
                 f"{1e6 * r['runtime_overhead']:.3f} µs")
    lines += ["", "The tutorial's triple (DistilBERT, Sanh et al. 2019: 40% smaller, 60% faster "
                  "at batch 1 = 668 s / 410 s, 97% of the score kept), measured here against "
                  "the teacher:"]
    for key, label in (("student", "float32 student"), ("student_int8", "int8 student")):
        t = r["triple"][key]
        lines.append(
            f"  {label}: {100 * t['smaller']:.0f}% smaller on disk ({t['size_ratio']:.1f}x), "
            f"{_speed(t['faster']['1'])} at batch 1 and {_speed(t['faster']['256'])} at "
            f"batch 256 in onnxruntime, keeps {100 * t['kept']:.1f}% of the teacher's test "
            "accuracy")
    t = r["triple"]["int8_vs_float"]
    agree = sum(m["student_int8"]["agrees_with_float"]) / len(seeds)
    drop = 100 * (m["student_int8"]["acc"]["mean"] - m["student"]["acc"]["mean"])
    lines.append(
        f"  int8 against the float32 student: {100 * t['smaller']:.0f}% smaller, "
        f"{_speed(t['faster']['1'])} at batch 1 and {_speed(t['faster']['256'])} at batch "
        f"256, same prediction on {100 * agree:.1f}% of the test rows, accuracy {drop:+.1f} "
        "points")
    return "\n".join(lines)
