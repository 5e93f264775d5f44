"""``python -m minikd`` and the ``minikd`` command: :func:`minikd.cli.main`.

The command line is imported inside :func:`run`, so that Ctrl-C while it loads (NumPy, SciPy:
a good part of a second) is "minikd: interrupted", exit status 130, not a traceback.
"""

import sys


def run():
    """Import and run the command line; returns its exit status."""
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("minikd: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
