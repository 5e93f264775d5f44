"""``minikd export MODEL.npz --onnx OUT.onnx``: a saved model as an ONNX graph, checked.

The command writes the graph (:func:`minikd.nn.onnx_export.export_onnx`), then, unless
``--no-check``, runs it in onnxruntime on seeded random rows and compares its logits with
:meth:`minikd.MLP.forward` (normwise error, exit status 1 above ``--tol``). It needs the optional
``onnx`` and ``onnxruntime`` packages (``pip install 'minikd[onnx]'``); without them it is a
one-line error, exit status 2, like every bad argument or file, before any work.
"""

from __future__ import annotations

import os

import numpy as np

from .common import (
    EXIT_FAIL,
    EXIT_OK,
    UsageError,
    first_line,
    int_at_least,
    positive_float,
    print_json,
    temperature_float,
)
from .outputs import check_output_file

HELP = "write a saved model as an ONNX graph and check it in onnxruntime"
DESCRIPTION = ("Write a model saved by 'minikd distill --save' (or MLP.save) as an ONNX graph: "
               "MatMul + Add and ReLU/tanh per layer, no dropout, a dynamic batch axis, the "
               "model's sizes and the minikd version in its metadata; written atomically, "
               "checked by onnx.checker, then run in onnxruntime and compared with minikd's "
               "logits. Needs pip install 'minikd[onnx]'.")
CHECK_ROWS = 256


def add_arguments(parser):
    parser.add_argument("model", metavar="MODEL.npz", help="a model file written by MLP.save")
    parser.add_argument("--onnx", required=True, metavar="OUT.onnx",
                        help="the ONNX file to write (replaced atomically if it exists)")
    parser.add_argument("--softmax", type=temperature_float, metavar="T",
                        help="also output softmax(logits / T) as 'probabilities'")
    from ..nn.onnx_export import DEFAULT_OPSET

    parser.add_argument("--opset", type=int_at_least(13), default=DEFAULT_OPSET,
                        help=f"ONNX operator set (default: {DEFAULT_OPSET}; at least 13)")
    parser.add_argument("--no-check", action="store_true",
                        help="do not compare onnxruntime's logits with minikd's")
    parser.add_argument("--tol", type=positive_float, default=1e-5,
                        help="largest normwise error of the check (default: 1e-05)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing OUT.onnx")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args):
    """Run ``minikd export``; returns the exit status."""
    from ..nn.mlp import MLP
    from ..nn.onnx_export import export_onnx, import_optional, read_onnx_metadata

    try:
        import_optional("onnx", "minikd export")
        if not args.no_check:
            import_optional("onnxruntime", "minikd export (or pass --no-check)")
    except ImportError as err:
        raise UsageError(f"minikd export: {first_line(err)}") from None
    check_output_file(args, "onnx")
    out = args.onnx
    try:
        model = MLP.load(args.model)
        export_onnx(model, out, opset=args.opset, softmax_temperature=args.softmax)
        meta = read_onnx_metadata(out)
    except (ValueError, TypeError, OSError) as err:
        raise UsageError(f"minikd export: {first_line(err)}") from None
    result = {"model": args.model, "onnx": out, "bytes": os.path.getsize(out),
              "npz_bytes": os.path.getsize(args.model), "sizes": list(model.sizes),
              "activation": model.activation, "dtype": model.dtype.name,
              "n_params": model.n_params, "metadata": meta, "check": None}
    if not args.no_check:
        result["check"] = _check(model, out, args.softmax, args.tol)
    if args.json:
        print_json(result)
    else:
        print(_report(result))
    return EXIT_FAIL if result["check"] and not result["check"]["ok"] else EXIT_OK


def _check(model, path, temperature, tol):
    """onnxruntime against MLP.forward (and predict_proba) on seeded random rows."""
    import onnxruntime

    from ..experiments.deploy import normwise_error
    from ..nn.onnx_export import onnx_session

    x = np.random.default_rng(0).standard_normal((CHECK_ROWS, model.sizes[0]))  # (N, D)
    x = x.astype(model.dtype)
    outputs = onnx_session(path).run(None, {"x": x})
    errors = {"logits": normwise_error(outputs[0], model.forward(x)[0])}
    if temperature is not None:
        errors["probabilities"] = normwise_error(
            outputs[1], model.predict_proba(x, temperature=temperature))
    return {"runtime": f"onnxruntime {onnxruntime.__version__}", "rows": CHECK_ROWS,
            "inputs": "standard normal, seed 0", "errors": errors, "tol": tol,
            "ok": max(errors.values()) <= tol}


def _report(r):
    meta = r["metadata"]
    sizes = "-".join(str(s) for s in r["sizes"])
    outputs = f"logits (N, {r['sizes'][-1]})"
    if "softmax_temperature" in meta:
        outputs += f", probabilities at T = {float(meta['softmax_temperature']):g}"
    lines = [
        f"minikd export: {r['model']} -> {r['onnx']} ({r['bytes'] / 1024:.1f} KiB; the .npz is "
        f"{r['npz_bytes'] / 1024:.1f} KiB)",
        f"model: MLP {sizes}, {r['activation']}, {r['dtype']}, {r['n_params']:,} parameters",
        f"graph: opset {meta['opset']}, IR version {meta['ir_version']}; x (N, {r['sizes'][0]}) "
        f"-> {meta['nodes'].replace(' ', ', ')} -> {outputs}; onnx.checker passed",
    ]
    c = r["check"]
    if c is None:
        lines.append("check: skipped (--no-check)")
    else:
        errs = ", ".join(f"{k} {v:.1e}" for k, v in c["errors"].items())
        lines.append(f"check: {c['runtime']} against MLP.forward on {c['rows']} random rows: "
                     f"normwise error {errs} (tolerance {c['tol']:g}) -> "
                     f"{'ok' if c['ok'] else 'FAILED'}")
    return "\n".join(lines)
