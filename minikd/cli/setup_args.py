"""The arguments the experiment commands (distill, omit-class, sweep) share, and the setup
they describe."""

from __future__ import annotations

import os
import re

from .common import (
    UsageError,
    dropout_float,
    first_line,
    nonneg_float,
    nonneg_int,
    open_unit_float,
    positive_float,
    positive_int,
    temperature_float,
    unit_float,
)
from .runs import add_run_arguments

__all__ = ["add_setup_arguments", "setup_from_args"]


def add_setup_arguments(p, defaults, omit=False, sweep=False):
    """The options shared by the experiment commands; defaults shown from their setup."""
    d = defaults
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=["mnist1d", "digits", "idx"],
                   help=f"built-in MNIST-1D, the shipped UCI digits, or IDX files "
                        f"(default: {d.dataset})")
    g.add_argument("--data-dir", metavar="FOLDER", help="folder of the MNIST/Fashion-MNIST "
                   "IDX files (with --dataset idx)")
    g.add_argument("--n-train", type=positive_int, metavar="N",
                   help="use only the first N training examples")
    g = p.add_argument_group("models and training")
    g.add_argument("--seeds", type=positive_int, metavar="S",
                   help=f"number of seeds (default: {d.seeds})")
    g.add_argument("--threads", type=positive_int, default=1, metavar="N",
                   help="BLAS threads while training (default: 1; these networks are too small "
                        "for more threads to pay, and float32 results depend on the count)")
    g.add_argument("--first-seed", type=nonneg_int, metavar="S",
                   help=f"first seed (default: {d.first_seed})")
    g.add_argument("--teacher-hidden", type=positive_int, nargs="+", metavar="H",
                   help=f"teacher hidden widths (default: {' '.join(map(str, d.teacher_hidden))})")
    g.add_argument("--student-hidden", type=positive_int, nargs="+", metavar="H",
                   help=f"student hidden widths (default: {' '.join(map(str, d.student_hidden))})")
    g.add_argument("--teacher-dropout", type=dropout_float, metavar="P",
                   help=f"teacher dropout (default: {d.teacher_dropout:g})")
    g.add_argument("--teacher-epochs", type=positive_int, metavar="E",
                   help=f"teacher epochs (default: {d.teacher_epochs})")
    g.add_argument("--epochs", type=positive_int, metavar="E",
                   help=f"epochs of every student (default: {d.epochs})")
    g.add_argument("--lr", type=positive_float, help=f"Adam learning rate (default: {d.lr:g})")
    g.add_argument("--batch-size", type=positive_int, metavar="B",
                   help=f"mini-batch size (default: {d.batch_size})")
    if omit:
        g.add_argument("--omit", type=nonneg_int, metavar="CLASS",
                       help=f"the class left out of the transfer set (default: {d.omit})")
        g.add_argument("--val-fraction", type=open_unit_float, metavar="F",
                       help=f"share of the training data held out to choose the validation "
                            f"shift (default: {d.val_fraction:g})")
        g = p.add_argument_group("distillation")
        g.add_argument("--temperature", "--t", type=temperature_float, metavar="T",
                       help=f"temperature T (default: {d.temperature:g})")
        g.add_argument("--alpha", type=unit_float,
                       help=f"weight of the soft term in [0, 1] (default: {d.alpha:g})")
        add_run_arguments(p)
        return
    g.add_argument("--weight-decay", type=nonneg_float, metavar="W",
                   help=f"decoupled (AdamW) weight decay of the regularised scratch student "
                        f"(default: {d.weight_decay:g}, the best of 0.01 to 1 for it on "
                        f"validation data)")
    g = p.add_argument_group("distillation")
    g.add_argument("--family", choices=["response", "feature", "relation"],
                   help=f"what the student copies besides the soft targets (default: {d.family})")
    if sweep:
        g.add_argument("--t", "--temperature", "--temperatures", dest="sweep_t", nargs="+",
                       type=temperature_float, metavar="T", default=[1.0, 2.0, 4.0, 8.0],
                       help="temperatures (default: 1 2 4 8)")
        g.add_argument("--alpha", "--alphas", dest="sweep_alpha", nargs="+", type=unit_float,
                       metavar="A", default=[0.5, 0.9, 1.0],
                       help="weights of the soft term (default: 0.5 0.9 1)")
    else:
        g.add_argument("--temperature", "--t", type=temperature_float, metavar="T",
                       help=f"temperature T (default: {d.temperature:g})")
        g.add_argument("--alpha", type=unit_float,
                       help=f"weight of the soft term in [0, 1] (default: {d.alpha:g})")
    g.add_argument("--beta", type=nonneg_float,
                   help="weight of the feature or relation term (default: the libraries' "
                        "weight for that loss: cosine 1, at 1000, rkd 1 with 25 x distance + "
                        "50 x angle inside, sp 3000, pkt 30000; fitnets 10: the libraries' 100 "
                        "lets the hint swamp the KD term on these small networks)")
    g.add_argument("--feature-loss", choices=["fitnets", "cosine", "at"],
                   help=f"with --family feature: FitNets hint through a learned regressor, "
                        f"cosine or attention transfer (the last two need equal widths) "
                        f"(default: {d.feature_loss})")
    g.add_argument("--relation-loss", choices=["rkd", "sp", "pkt"],
                   help=f"with --family relation: PKT, similarity-preserving, or RKD (slow: "
                        f"its angle term is O(B^3) per batch) (default: {d.relation_loss})")
    add_run_arguments(p)


def setup_from_args(args, cls=None):
    """The checked setup of the command's arguments; a :class:`UsageError` naming the flag
    (``--temperature``, ``--student-hidden``) when a value is refused."""
    from ..experiments.setup import DistillSetup

    cls = cls or DistillSetup
    fields = cls.__dataclass_fields__
    values = {k: getattr(args, k) for k in fields if getattr(args, k, None) is not None}
    for k in ("teacher_hidden", "student_hidden"):
        if k in values:
            values[k] = tuple(values[k])
    where = f"minikd {args.command}: error:"
    if values.get("dataset") == "idx" and not values.get("data_dir"):
        raise UsageError(f"{where} --dataset idx needs --data-dir FOLDER")
    try:
        setup = cls(**values).checked()
    except (ValueError, TypeError) as err:
        raise UsageError(f"{where} {in_flags(first_line(err))}") from None
    for k in ("teacher_hidden", "student_hidden"):
        check_memory(where, k, getattr(setup, k), setup.batch_size)
    if getattr(setup, "family", None) == "feature" and setup.feature_loss in ("cosine", "at") \
            and setup.student_hidden[-1] != setup.teacher_hidden[-1]:
        raise UsageError(
            f"{where} --feature-loss {setup.feature_loss} compares the last hidden layers, so "
            f"--student-hidden and --teacher-hidden must end with the same width; got "
            f"{setup.student_hidden[-1]} and {setup.teacher_hidden[-1]} (e.g. --student-hidden "
            f"{setup.teacher_hidden[-1]}, or --feature-loss fitnets)")
    return setup


_PARAM = re.compile(r"The '(\w+)' parameter of \w+ must be (.*)")


def in_flags(message):
    """A setup's error message in the command's words: "The 'first_seed' parameter of
    DistillSetup must be ..." becomes "--first-seed must be ..."."""
    m = _PARAM.match(message)
    if m is None:
        return message
    return f"--{m.group(1).replace('_', '-')} must be {m.group(2)}"


def check_memory(where, name, hidden, batch_size):
    """Refuse hidden widths whose weights, with Adam's two moments (float32, input and output
    widths at their smallest), cannot fit in this machine's memory: a lower bound."""
    widths = [1, *hidden, 2]
    n_params = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    need = 4 * (3 * n_params + batch_size * sum(hidden))  # bytes
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not on this OS
        return
    if need > have:
        flag = "--" + name.replace("_", "-")
        raise UsageError(f"{where} {flag} {' '.join(map(str, hidden))} needs at least "
                         f"{need / 2**30:.1f} GiB (weights and Adam's moments); this machine "
                         f"has {have / 2**30:.1f} GiB")
