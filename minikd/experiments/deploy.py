r"""``minikd deploy``: the teacher, the distilled student and its int8 version in onnxruntime,
side by side: file size on disk, latency per sample, test accuracy, and DistilBERT's triple.

Sanh et al. (2019, arXiv:1910.01108v4) summarise DistilBERT as "40% smaller, 60% faster, retains
97%": 66 M against BERT-base's 110 M parameters, a full pass over the STS-B dev set at batch 1
on a CPU in 410 s against 668 s (§4.1, Table 3), and 77.0 against 79.5 GLUE macro-score (§4,
Table 1). The same three ratios here, from numbers this module measures in one run:

.. math::

    \text{smaller} = 1 - \frac{\text{bytes}_s}{\text{bytes}_t}, \qquad
    \text{faster}_B = \frac{t_t(B)}{t_s(B)} - 1, \qquad
    \text{kept} = \frac{\overline{\text{acc}}_s}{\overline{\text{acc}}_t}

with :math:`t(B)` the median wall time per sample at batch B in onnxruntime (DistilBERT's
"60 % faster" is 668 / 410 - 1 = 0.63 at batch 1) and accuracies on the test split.

Each seed's models are trained (or loaded), exported, quantized and scored in its own process
(:func:`minikd.experiments.parallel.map_runs`), on one BLAS thread so the numbers do not depend
on ``jobs``. The timings run afterwards in this process, one model after the other, interleaved
block by block so that a change of load on a shared machine touches every model alike
(:func:`minikd.experiments.timing.seconds_per_call`).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, replace

import numpy as np

from .._threads import blas_threads
from .._validation import check_choice, check_int, param_error
from ..nn.mlp import MLP
from ..nn.onnx_export import (
    DEFAULT_OPSET,
    export_onnx,
    import_optional,
    onnx_session,
    quantize_int8,
)
from ..verify.gradcheck import normwise_error
from .data import load_dataset
from .distill_job import run_distill
from .parallel import default_jobs, map_runs
from .setup import DistillSetup
from .timing import CLOCKS, describe_machine, load_average, seconds_per_call

__all__ = ["BATCH_SIZES", "CLOCKS", "MODELS", "describe_machine", "model_files", "normwise_error",
           "run_deploy", "seconds_per_call"]

MODELS = ("teacher", "student", "student_int8")
BATCH_SIZES = (1, 256)


def model_files(folder, seed):
    """The files of one seed: the ``.npz`` that ``minikd distill --save`` writes, and the
    ``.onnx`` files written here."""
    names = {"teacher_npz": "teacher_seed{}.npz", "student_npz": "distilled_seed{}.npz",
             "teacher": "teacher_seed{}.onnx", "student": "distilled_seed{}.onnx",
             "student_int8": "distilled_int8_seed{}.onnx"}
    return {key: os.path.join(folder, name.format(seed)) for key, name in names.items()}


def run_deploy(setup=None, *, model_dir=None, out_dir=None, repeats=7, threads=1, clock="wall",
               jobs=None, **overrides):
    r"""Teacher, distilled student and int8 distilled student in onnxruntime: size on disk,
    latency per sample at batch 1 and 256 (and NumPy's, for reference), test accuracy, and the
    tutorial's three ratios.

    Parameters
    ----------
    setup : DistillSetup, optional
        Data set and seeds (``dataset``, ``seeds``, ``first_seed``) and, when the models are
        trained here, everything else; defaults to ``DistillSetup(seeds=1)``.
    model_dir : str, optional
        Read ``teacher_seed{S}.npz`` and ``distilled_seed{S}.npz`` from this folder (what
        ``minikd distill --save DIR`` writes) instead of training them; ``setup.dataset`` must
        be the data they were trained on.
    out_dir : str, optional
        Keep the ``.onnx`` files (and the trained ``.npz``) there; by default a temporary folder.
    repeats : int, default 7
        Timed blocks per model and batch size (medians are reported).
    threads : int, default 1
        Threads of onnxruntime and of NumPy's BLAS while timing.
    clock : {"wall", "cpu"}, default "wall"
        Wall time, or this process's CPU time (one thread on a busy machine; see
        :func:`seconds_per_call`).
    jobs : int, optional
        Processes for the seeds (default: the cores); the results do not depend on it.
    **overrides
        Fields of :class:`DistillSetup`.

    Returns
    -------
    dict
        ``setup``, ``machine``, ``data``, ``per_seed`` (accuracies and file sizes), ``models``
        (per model: sizes, parameters, bytes, accuracy mean/std, ``latency`` in seconds per
        sample by runtime and batch size), ``triple`` (``student`` and ``student_int8`` against
        the teacher, and ``int8_vs_float``), ``runtime_overhead`` (seconds per onnxruntime
        call of a graph that returns its input, batch 1), ``files`` (the ``.onnx`` paths per
        seed when ``out_dir`` is given) and ``seconds``.
    """
    func = "run_deploy"
    setup = replace(setup or DistillSetup(seeds=1), **overrides).checked()
    repeats = check_int(repeats, "repeats", func, low=1)
    threads = check_int(threads, "threads", func, low=1)
    check_choice(clock, "clock", func, tuple(CLOCKS))
    jobs = default_jobs() if jobs is None else check_int(jobs, "jobs", func, low=1)
    import_optional("onnx", func)
    import_optional("onnxruntime.quantization", func)
    machine = {**describe_machine(threads), "clock": clock}
    start = time.perf_counter()
    data = load_dataset(setup.dataset, data_dir=setup.data_dir, n_train=setup.n_train)
    seeds = list(range(setup.first_seed, setup.first_seed + setup.seeds))
    if model_dir is not None:  # every file checked before any work
        for seed in seeds:
            for key in ("teacher_npz", "student_npz"):
                _check_model_file(model_files(model_dir, seed)[key], setup, data, func)
    with tempfile.TemporaryDirectory() as tmp:
        folder = tmp if out_dir is None else out_dir
        os.makedirs(folder, exist_ok=True)
        tasks = [(asdict(setup), seed, model_dir, folder) for seed in seeds]
        per_seed = map_runs(_seed_job, tasks, jobs=jobs)
        machine["load_average_before_timing"] = load_average()
        latency = _time_models(model_files(folder, seeds[0]),
                               model_files(model_dir or folder, seeds[0]), data.X_test,
                               repeats, threads, clock)
    models = _summarise_models(per_seed, latency)
    triple = {name: _triple(models["teacher"], models[name]) for name in MODELS[1:]}
    triple["int8_vs_float"] = _triple(models["student"], models["student_int8"])
    return {"setup": {**asdict(setup), "model_dir": model_dir, "trained_here": model_dir is None,
                      "repeats": repeats},
            "machine": machine,
            "data": {"dataset": setup.dataset, "split": "test", "n_test": int(data.X_test.shape[0]),
                     "n_features": int(data.X_test.shape[1])},
            "per_seed": per_seed, "models": models, "triple": triple, "timed_seed": seeds[0],
            "runtime_overhead": latency["overhead"]["onnxruntime"]["1"],
            "files": None if out_dir is None else
            {s: {k: model_files(out_dir, s)[k] for k in MODELS} for s in seeds},
            "seconds": time.perf_counter() - start}


def _check_model_file(path, setup, data, func):
    """Load ``path`` (a ValueError naming it if it is not a model) and check it fits the data."""
    model = MLP.load(path)
    if model.dtype != np.float32:
        raise param_error("model_dir", func, "float32 models (int8 quantization starts from "
                          "float32)", f"a {model.dtype} model in '{path}'")
    if model.sizes[0] != data.X_test.shape[1]:
        raise param_error("model_dir", func, f"models of the {setup.dataset} data "
                          f"({data.X_test.shape[1]} features)",
                          f"'{path}' with {model.sizes[0]} inputs")


def _seed_job(setup_fields, seed, model_dir, folder):
    """One seed, in a worker: train or load, export, quantize, score on the test split."""
    setup = DistillSetup(**{**setup_fields, "seeds": 1, "first_seed": seed})
    with blas_threads(1):
        if model_dir is None:
            run_distill(setup, verbose=False, save_dir=folder)
        src, files = model_files(model_dir or folder, seed), model_files(folder, seed)
        data = load_dataset(setup.dataset, data_dir=setup.data_dir, n_train=setup.n_train)
        record, preds = {"seed": seed, "sizes": {}}, {}
        for name in ("teacher", "student"):
            model = MLP.load(src[f"{name}_npz"])
            export_onnx(model, files[name])
            record["sizes"][name] = list(model.sizes)
            record[f"{name}_numpy_acc"] = float(np.mean(model.predict(data.X_test)
                                                        == data.y_test))
            record[f"{name}_npz_bytes"] = os.path.getsize(src[f"{name}_npz"])
        quantize_int8(files["student"], files["student_int8"])
        for name in MODELS:
            logits = onnx_session(files[name]).run(["logits"], {"x": data.X_test})[0]  # (M, C)
            preds[name] = logits.argmax(axis=1)
            record[f"{name}_acc"] = float(np.mean(preds[name] == data.y_test))
            record[f"{name}_bytes"] = os.path.getsize(files[name])
    record["int8_agrees_with_float"] = float(np.mean(preds["student_int8"] == preds["student"]))
    return record


def _time_models(files, npz_files, X_test, repeats, threads, clock):
    """Seconds per sample of every model at each batch size, in onnxruntime and in NumPy, and
    onnxruntime's fixed cost per call (a graph that returns its input, at batch 1)."""
    fns, keys = [], []
    with blas_threads(threads), tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            session = onnx_session(files[name], threads=threads)
            model = None if name == "student_int8" else MLP.load(npz_files[f"{name}_npz"])
            for b in BATCH_SIZES:
                x = np.ascontiguousarray(X_test[:b])  # (b, D)
                fns.append(lambda s=session, x=x: s.run(["logits"], {"x": x}))
                keys.append((name, "onnxruntime", b))
                if model is not None:
                    fns.append(lambda m=model, x=x: m.logits_unchecked(x))
                    keys.append((name, "numpy", b))
        identity = onnx_session(_identity_onnx(os.path.join(tmp, "identity.onnx"),
                                               X_test.shape[1]), threads=threads)
        fns.append(lambda: identity.run(["logits"], {"x": X_test[:1]}))
        keys.append(("overhead", "onnxruntime", 1))
        seconds = seconds_per_call(fns, repeats=repeats, clock=clock)
    latency = {name: {"onnxruntime": {}, "numpy": {}} for name in (*MODELS, "overhead")}
    for (name, runtime, b), s in zip(keys, seconds, strict=True):
        latency[name][runtime][str(b)] = s / min(b, X_test.shape[0])
    return latency


def _identity_onnx(path, n_features):
    """A graph whose output is its input: what a call to onnxruntime costs by itself."""
    from onnx import TensorProto, helper, save

    shape = ["N", n_features]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["logits"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, shape)])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)],
                           ir_version=8), path)
    return path


def _summarise_models(per_seed, latency):
    sizes = per_seed[0]["sizes"]
    models = {}
    for name in MODELS:
        kind = "teacher" if name == "teacher" else "student"
        accs = np.array([r[f"{name}_acc"] for r in per_seed])
        models[name] = {
            "sizes": sizes[kind], "n_params": MLP(sizes[kind], rng=0).n_params,
            "onnx_bytes": per_seed[0][f"{name}_bytes"],
            "acc": {"mean": float(accs.mean()),
                    "std": float(accs.std(ddof=1)) if accs.size > 1 else 0.0,
                    "per_seed": accs.tolist()},
            "latency": latency[name]}
        if name != "student_int8":
            models[name]["npz_bytes"] = per_seed[0][f"{name}_npz_bytes"]
            models[name]["numpy_acc"] = [r[f"{name}_numpy_acc"] for r in per_seed]
    models["student_int8"]["agrees_with_float"] = [r["int8_agrees_with_float"]
                                                  for r in per_seed]
    return models


def _triple(big, small):
    """DistilBERT's three ratios of ``small`` against ``big`` (see the module docstring)."""
    ort_big, ort_small = big["latency"]["onnxruntime"], small["latency"]["onnxruntime"]
    return {"smaller": 1.0 - small["onnx_bytes"] / big["onnx_bytes"],
            "size_ratio": big["onnx_bytes"] / small["onnx_bytes"],
            "params_ratio": big["n_params"] / small["n_params"],
            "faster": {b: ort_big[b] / ort_small[b] - 1.0 for b in ort_big},
            "kept": small["acc"]["mean"] / big["acc"]["mean"]}
