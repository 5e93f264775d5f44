"""The ``minikd`` command line (also ``python -m minikd``).

One module per command, each with ``HELP``, ``DESCRIPTION``, ``add_arguments(parser)`` and
``run(args) -> exit status``; this module builds the parser from them and runs one. The commands
only parse arguments, call the library, and print tables, JSON or plots: no math here. Every
argument, and every file to write, is checked before any work; a bad one is one line on stderr
and exit status 2. Heavy imports happen inside :func:`main`, so Ctrl-C at any time is
"minikd: interrupted", exit status 130.
"""

from __future__ import annotations

import importlib
import os
import sys

from .common import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Parser,
    UsageError,
    first_line,
)

__all__ = ["build_parser", "main"]

# command -> module of this package, in the order --help lists them
COMMANDS = {
    "distill": "distill",
    "omit-class": "omit_class",
    "sweep": "sweep",
    "lm": "lm",
    "temperature": "temperature",
    "gradcheck": "gradcheck",
    "vectors": "vectors",
    "diagnose": "diagnose",
    "export": "export",
    "deploy": "deploy",
}


def build_parser():
    """The argument parser of ``minikd`` and its subcommands."""
    from .. import __version__

    parser = Parser(prog="minikd", description="Knowledge distillation from scratch in NumPy: "
                                               "experiments, self-checks and diagnosis.")
    parser.add_argument("--version", action="version", version=f"minikd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f".{module_name}", __name__)
        p = sub.add_parser(name, help=module.HELP, description=module.DESCRIPTION)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv=None):
    """Entry point of the ``minikd`` command. Returns the exit status."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError("minikd: error: give a command, e.g. 'minikd distill' (see "
                             "'minikd --help')")
        return args.run(args)
    except UsageError as err:
        print(str(err), file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `minikd distill | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the flush at exit must not fail again
        return EXIT_OK
    except (ValueError, TypeError, OSError) as err:
        # Boundary validation in the library names the parameter; one line, no traceback.
        print(f"minikd: error: {first_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except ArithmeticError as err:  # training diverged (NonFiniteLossError names where)
        print(f"minikd: training failed: {first_line(err)}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("minikd: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
