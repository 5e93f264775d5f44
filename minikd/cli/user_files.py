"""``minikd distill --data FILE --teacher-logits FILE``: the flags and their files, read and
checked before any training (a bad file: one line on stderr naming the flag, exit 2)."""

from __future__ import annotations

import os

from .common import UsageError, first_line, open_unit_float

__all__ = ["add_user_file_arguments", "load_user_files_from_args"]


def add_user_file_arguments(p):
    g = p.add_argument_group("your own data and teacher (docs/bring_your_own.md)")
    g.add_argument("--data", metavar="FILE", help="your data set instead of --dataset: .npz "
                   "with X, y (and optionally X_test, y_test) or .csv with a header row and a "
                   "label column; without a test part, a stratified split with --first-seed")
    g.add_argument("--label-column", metavar="C", help="CSV only: the label column's name or "
                   "0-based index (default: the column named label or y, else the last)")
    g.add_argument("--test-fraction", type=open_unit_float, metavar="F", default=0.2,
                   help="share of each class held out for testing when --data has no test part "
                        "(default: 0.2)")
    g.add_argument("--teacher-logits", metavar="FILE", help="your teacher's logits (from any "
                   "framework) instead of training one: .npy with one row per row of --data "
                   "(training rows, optionally then test rows) or .npz with train (and test)")


def load_user_files_from_args(args):
    """The keywords of :func:`run_distill` from ``--data`` / ``--teacher-logits``: ``data``,
    ``teacher_logits``, ``data_name`` ({} without ``--data``). Every problem is a
    :class:`UsageError` naming the flag and the file."""
    from ..experiments.userdata import load_user_data, load_user_files

    prog = f"minikd {args.command}"
    if args.data is None:
        for flag in ("teacher_logits", "label_column"):
            if getattr(args, flag) is not None:
                raise UsageError(f"{prog}: error: --{flag.replace('_', '-')} needs --data FILE")
        return {}
    if args.dataset is not None or args.data_dir is not None:
        raise UsageError(f"{prog}: error: --data replaces --dataset and --data-dir; give one")
    if args.label_column is not None and not args.data.lower().endswith(".csv"):
        raise UsageError(f"{prog}: error: --label-column is for a .csv --data file, not "
                         f"'{args.data}' (an .npz holds its labels as y)")
    if args.teacher_logits is not None and args.family not in (None, "response"):
        raise UsageError(f"{prog}: error: --teacher-logits works with --family response only "
                         f"(--family {args.family} needs the teacher network's hidden layers)")
    kwargs = {"label_column": args.label_column, "test_fraction": args.test_fraction,
              "rng": args.first_seed or 0}
    try:
        split = load_user_data(args.data, **kwargs)
    except (ValueError, TypeError, OSError) as err:
        raise UsageError(f"{prog}: error: --data: {first_line(err)}") from err
    logits = None
    if args.teacher_logits is not None:
        try:
            split, logits = load_user_files(args.data, args.teacher_logits, **kwargs)
        except (ValueError, TypeError, OSError) as err:
            raise UsageError(f"{prog}: error: --teacher-logits: {first_line(err)}") from err
    return {"data": split, "teacher_logits": logits, "data_name": os.path.basename(args.data)}

