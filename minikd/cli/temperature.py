"""``minikd temperature``: the softmax of some logits at several temperatures."""

from __future__ import annotations

from .common import EXIT_OK, UsageError, finite_float, positive_float, print_json
from .plotting import check_plot, draw_plot

HELP = "the softmax of some logits at several temperatures"
DESCRIPTION = ("Print softmax(z / T) of the given logits at each temperature T, one row per T "
               "(Hinton et al. 2015, §2).")


def add_arguments(p):
    p.add_argument("logits", nargs="+", type=finite_float, metavar="LOGIT",
                   help="the logits z (at least two)")
    p.add_argument("--t", "--temperature", nargs="+", type=positive_float,
                   default=[1.0, 2.0, 4.0, 20.0], metavar="T", dest="t",
                   help="temperatures (default: 1 2 4 20)")
    p.add_argument("--names", nargs="+", metavar="NAME", help="a name for each class")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", metavar="FILE.png", help="draw probability vs temperature")
    p.add_argument("--force", action="store_true", help="overwrite an existing --plot file")
    p.add_argument("-q", "--quiet", action="store_true", help="no messages on stderr")


def run(args):
    from ..experiments import plots
    from ..experiments.report import format_table
    from ..experiments.temperature import temperature_table

    if len(args.logits) < 2:
        raise UsageError("minikd temperature: error: give at least two logits")
    names = args.names or [f"class {i}" for i in range(len(args.logits))]
    if len(names) != len(args.logits):
        raise UsageError(f"minikd temperature: error: --names has {len(names)} entries for "
                         f"{len(args.logits)} logits")
    check_plot(args)
    table = temperature_table(args.logits, args.t)
    if args.json:
        print_json({"logits": list(args.logits), "names": names,
                    "rows": [{"temperature": t, "probabilities": [float(p) for p in row]}
                             for t, row in zip(args.t, table, strict=True)]})
    else:
        print("softmax(z / T) for z = " + ", ".join(f"{v:g}" for v in args.logits))
        rows = [[f"T = {t:g}"] + [f"{p:.4f}" for p in row]
                for t, row in zip(args.t, table, strict=True)]
        print(format_table(["", *names], rows))
    draw_plot(args, plots.plot_temperature, args.t, table, names)
    return EXIT_OK
