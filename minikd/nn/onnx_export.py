r"""The MLP as an ONNX graph: the file a device runtime reads.

ONNX is the interchange format of on-device inference: onnxruntime runs it on phones and edge
boards, and the converters to TFLite and Core ML start from it. The graph is the MLP's inference
forward pass, one node per term of its equation (``docs/on_device.md``):

.. math::

    h_0 = x, \qquad a_k = h_{k-1} W_k + b_k, \qquad h_k = \sigma(a_k) \;(k < L), \qquad z = a_L,
    \qquad p = \mathrm{softmax}(z / T) \;\text{(optional)}

``MatMul`` then ``Add`` for :math:`a_k` (the product, then the bias: NumPy's order in
:meth:`minikd.MLP.forward`), ``Relu`` or ``Tanh`` for :math:`\sigma`, and no dropout (the model's
dropout acts in training only). With ``softmax_temperature=T`` a second output ``probabilities``
is ``Div`` by T then ``Softmax`` over the classes. The parameters keep their names (``W1``,
``b1``, ...) and the model's dtype; the batch axis is dynamic (``N``). Every graph passes
``onnx.checker`` (with shape inference) before it is written, atomically.

Beside the export: :func:`read_onnx_metadata`, :func:`onnx_session` (an onnxruntime session on
a file) and :func:`quantize_int8` (onnxruntime's dynamic int8 quantization of a file). The
``onnx`` and ``onnxruntime`` packages are optional (``pip install 'minikd[onnx]'``); without
them these functions raise an ImportError that says so.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import tempfile

import numpy as np

from .._validation import check_int, check_temperature, param_error
from .mlp import MLP
from .modelio import check_path

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "export_onnx", "import_optional", "onnx_model_proto",
           "onnx_session", "quantize_int8", "read_onnx_metadata"]

# Opset 17 (onnxruntime >= 1.12, 2022) is read by every current device runtime; 13 is the first
# opset whose Softmax normalises one axis (older ones flatten to 2-D, the same for (N, C)).
DEFAULT_OPSET = 17
MIN_OPSET = 13
_EXTRA = "pip install 'minikd[onnx]'"


def import_optional(name, func):
    """Import the optional package ``name`` (onnx, onnxruntime, ...) for ``func``, or raise an
    ImportError whose one line says which package is missing and how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        top = name.split(".")[0]
        raise ImportError(f"{func} needs the '{top}' package, which is not installed "
                          f"({_EXTRA})") from err


def export_onnx(model, path, *, opset=DEFAULT_OPSET, softmax_temperature=None):
    r"""Write ``model`` to ``path`` as an ONNX graph, atomically.

    .. math::

        a_k = h_{k-1} W_k + b_k,\; h_k = \sigma(a_k)\;(k < L),\; z = a_L \;\to\;
        \texttt{logits};\qquad p = \mathrm{softmax}(z / T) \;\to\; \texttt{probabilities}

    The graph has one input ``x`` of shape (N, D), N dynamic, and the output ``logits`` (N, C);
    with ``softmax_temperature=T`` also ``probabilities`` (N, C), which equals
    :meth:`MLP.predict_proba` at that T. The file's metadata holds the minikd version, the
    model's sizes, activation, dtype, parameter count and training dropout. It is written to a
    temporary file in the same folder and moved over ``path`` with ``os.replace``.

    Parameters
    ----------
    model : MLP
        Its parameters must be finite and match its ``sizes`` and ``dtype``.
    path : str or os.PathLike
        The ``.onnx`` file to write (the name is used as given).
    opset : int, default 17
        ONNX operator set, in [13, the newest the installed ``onnx`` knows]. The file declares
        the oldest IR version that carries this opset, so older runtimes can read it.
    softmax_temperature : float, optional
        T in [1e-6, 1e6] for the ``probabilities`` output; None leaves it out.

    Returns
    -------
    str
        ``path``, as a string.

    Raises
    ------
    ImportError
        When the ``onnx`` package is missing (``pip install 'minikd[onnx]'``).
    OSError
        When ``path`` cannot be written (no such folder, no permission, a folder by that name).

    References
    ----------
    ONNX operators: https://onnx.ai/onnx/operators/ (MatMul-13, Add-14, Relu-14, Tanh-13,
    Div-14, Softmax-13).

    Examples
    --------
    >>> import os, tempfile
    >>> model = MLP([4, 8, 3], rng=0)
    >>> path = export_onnx(model, os.path.join(tempfile.mkdtemp(), "mlp.onnx"))
    >>> meta = read_onnx_metadata(path)
    >>> meta["sizes"], meta["activation"], meta["opset"]
    ('[4, 8, 3]', 'relu', '17')
    """
    func = "export_onnx"
    if not isinstance(model, MLP):
        raise param_error("model", func, "a minikd.MLP", type(model).__name__, TypeError)
    path = check_path(path, func)
    if softmax_temperature is not None:
        softmax_temperature = check_temperature(softmax_temperature, func,
                                                "softmax_temperature")
    onnx = import_optional("onnx", func)
    opset = check_int(opset, "opset", func, low=MIN_OPSET, high=onnx.defs.onnx_opset_version())
    _check_params(model, func)
    proto = onnx_model_proto(model, opset=opset, softmax_temperature=softmax_temperature)
    onnx.checker.check_model(proto, full_check=True)
    _write_atomically(path, proto.SerializeToString())
    return os.fspath(path)


def onnx_model_proto(model, *, opset, softmax_temperature):
    """The ``onnx.ModelProto`` of ``model``; arguments already checked (see :func:`export_onnx`)."""
    from onnx import helper, numpy_helper

    from .. import __version__

    elem = helper.np_dtype_to_tensor_dtype(model.dtype)
    n_layers = len(model.sizes) - 1
    nodes, weights = [], []
    h = "x"  # h_0 = x, (N, D)
    for k in range(1, n_layers + 1):
        W, b = f"W{k}", f"b{k}"
        weights += [numpy_helper.from_array(model.params[W], W),
                    numpy_helper.from_array(model.params[b], b)]
        a = "logits" if k == n_layers else f"a{k}"
        nodes += [helper.make_node("MatMul", [h, W], [f"hW{k}"], name=f"layer{k}/MatMul"),
                  helper.make_node("Add", [f"hW{k}", b], [a], name=f"layer{k}/Add")]  # (N, H_k)
        if k < n_layers:
            op = "Relu" if model.activation == "relu" else "Tanh"
            nodes.append(helper.make_node(op, [a], [f"h{k}"], name=f"layer{k}/{op}"))
            h = f"h{k}"
    n_out = model.sizes[-1]
    outputs = [helper.make_tensor_value_info("logits", elem, ["N", n_out])]
    if softmax_temperature is not None:
        weights.append(numpy_helper.from_array(np.array(softmax_temperature, model.dtype), "T"))
        nodes += [helper.make_node("Div", ["logits", "T"], ["logits_over_T"], name="z/T"),
                  helper.make_node("Softmax", ["logits_over_T"], ["probabilities"], axis=-1,
                                   name="softmax")]  # (N, C)
        outputs.append(helper.make_tensor_value_info("probabilities", elem, ["N", n_out]))
    graph = helper.make_graph(
        nodes, "minikd_mlp", [helper.make_tensor_value_info("x", elem, ["N", model.sizes[0]])],
        outputs, weights,
        doc_string=f"{model!r} at inference: MatMul, Add and {model.activation} per layer")
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="minikd",
                              producer_version=__version__)
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    meta = {"minikd_version": __version__, "sizes": json.dumps(list(model.sizes)),
            "activation": model.activation, "dtype": model.dtype.name,
            "n_params": str(model.n_params), "training_dropout": repr(float(model.dropout))}
    if softmax_temperature is not None:
        meta["softmax_temperature"] = repr(float(softmax_temperature))
    helper.set_model_props(proto, meta)
    return proto


def read_onnx_metadata(path):
    """The metadata of an ONNX file as a dict of str: the keys :func:`export_onnx` writes, and
    ``producer``, ``opset``, ``ir_version`` and ``nodes`` (the graph's operators, in order).

    Parameters
    ----------
    path : str or os.PathLike

    Raises
    ------
    ValueError
        Naming the file, when it is missing or not an ONNX model.
    """
    func = "read_onnx_metadata"
    path = check_path(path, func)
    onnx = import_optional("onnx", func)
    try:
        proto = onnx.load(path, load_external_data=False)
    except FileNotFoundError as err:
        raise ValueError(f"Cannot read an ONNX model from '{os.fspath(path)}': no such "
                         "file.") from err
    except Exception as err:  # protobuf's DecodeError and friends: not an ONNX file
        raise ValueError(f"Cannot read an ONNX model from '{os.fspath(path)}': not an ONNX "
                         f"file ({type(err).__name__}).") from err
    meta = {p.key: p.value for p in proto.metadata_props}
    meta["producer"] = f"{proto.producer_name} {proto.producer_version}".strip()
    meta["opset"] = str(max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                            default=0))
    meta["ir_version"] = str(proto.ir_version)
    meta["nodes"] = " ".join(node.op_type for node in proto.graph.node)
    return meta


def onnx_session(path, *, threads=1):
    """An onnxruntime CPU session on ``path`` with ``threads`` intra-op threads, warnings off."""
    ort = import_optional("onnxruntime", "onnx_session")
    options = ort.SessionOptions()
    options.intra_op_num_threads = check_int(threads, "threads", "onnx_session", low=1)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: nothing on stderr but errors
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def quantize_int8(src, dst):
    """Quantize the float32 ONNX model ``src`` to ``dst`` with onnxruntime's dynamic int8
    quantization: weights stored as int8 with one scale per tensor, activations quantized on
    the fly (``DynamicQuantizeLinear`` + ``MatMulInteger``). Written atomically; the metadata of
    ``src`` is kept and ``quantization`` added."""
    onnx = import_optional("onnx", "quantize_int8")
    quant = import_optional("onnxruntime.quantization", "quantize_int8")
    folder = os.path.dirname(os.path.abspath(dst))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(dst)}.", suffix=".tmp")
    os.close(fd)
    logging.disable(logging.WARNING)  # its "consider pre-processing" advice goes to stderr
    try:
        quant.quantize_dynamic(os.fspath(src), tmp, weight_type=quant.QuantType.QInt8)
        q, meta = onnx.load(tmp), onnx.load(os.fspath(src)).metadata_props
        props = {p.key: p.value for p in meta}
        props["quantization"] = "dynamic int8 (onnxruntime quantize_dynamic, QInt8 weights)"
        del q.metadata_props[:]
        onnx.helper.set_model_props(q, props)
        onnx.save(q, tmp)
        os.replace(tmp, dst)
    finally:
        logging.disable(logging.NOTSET)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return os.fspath(dst)


def _check_params(model, func):
    """Raise unless every parameter has the shape and dtype of ``model.sizes`` and is finite."""
    for k in range(1, len(model.sizes)):
        for key, shape in ((f"W{k}", (model.sizes[k - 1], model.sizes[k])),
                           (f"b{k}", (model.sizes[k],))):
            arr = model.params.get(key)
            if not isinstance(arr, np.ndarray) or arr.shape != shape or arr.dtype != model.dtype:
                got = "missing" if arr is None else \
                    f"shape {np.shape(arr)} and dtype {getattr(arr, 'dtype', type(arr).__name__)}"
                raise param_error("model", func, f"a model whose '{key}' has shape {shape} and "
                                  f"dtype {model.dtype}", got)
            if not np.isfinite(arr).all():
                raise param_error("model", func, "a model with finite parameters",
                                  f"NaN or inf in '{key}'")


def _write_atomically(path, data):
    """Write bytes to a temporary file beside ``path``, then ``os.replace`` it over ``path``."""
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.",
                                   suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise type(err)(f"Cannot write the ONNX file '{target}': "
                            f"{err.strerror or err}.") from err
        raise
