"""``minikd vectors``: write the golden vectors, or check a vectors file against minikd."""

from __future__ import annotations

import math
import sys

from .common import EXIT_FAIL, EXIT_OK, positive_float, print_json
from .outputs import check_output_file

HELP = "write the golden vectors, or check a vectors file against minikd"
DESCRIPTION = ("Print (or write with --out) the golden vectors: small fixed inputs with float64 "
               "losses and gradients of every loss, as JSON, for testing any implementation. "
               "With --check FILE, run minikd on every case of FILE and print the errors; exit "
               "status 1 if any exceeds --tol.")


def add_arguments(p):
    p.add_argument("--out", metavar="FILE.json", help="write the vectors to FILE (atomically)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.add_argument("--check", metavar="FILE.json", help="compare minikd with a vectors file")
    p.add_argument("--tol", type=positive_float, default=1e-10,
                   help="largest relative loss / normwise gradient error (default: 1e-10)")
    p.add_argument("--json", action="store_true", help="with --check: print JSON")


def run(args):
    from ..experiments.report import format_table
    from ..verify import vectors

    if args.check:
        doc = vectors.load_vectors(args.check)  # a file that is not one: ValueError, exit 2
        rows = vectors.compare_vectors(doc)
        for r in rows:  # written so that NaN or inf never passes
            ok = r["loss_error"] <= args.tol and r["grad_error"] <= args.tol
            r["result"] = "pass" if ok else "FAIL"
        bad = [r for r in rows if r["result"] == "FAIL"]
        if args.json:
            for r in rows:  # JSON has no infinity: a non-finite error is null (and a FAIL)
                for key in ("loss_error", "grad_error"):
                    r[key] = r[key] if math.isfinite(r[key]) else None
            print_json({"file": args.check, "tol": args.tol, "rows": rows, "failed": len(bad)})
        else:
            table = [[r["name"], f"{r['loss_error']:.1e}", f"{r['grad_error']:.1e}",
                      r["result"]] for r in rows]
            print(format_table(["case", "loss error", "gradient error", "result"], table))
            print(f"{len(rows) - len(bad)} passed, {len(bad)} failed (tol {args.tol:g}) "
                  f"against {args.check}")
        return EXIT_FAIL if bad else EXIT_OK
    if args.out:
        check_output_file(args, "out")
        path = vectors.write_golden_vectors(args.out)
        print(f"wrote {len(vectors.golden_cases())} cases to {path}", file=sys.stderr)
    else:
        print_json(vectors.golden_vectors())
    return EXIT_OK
