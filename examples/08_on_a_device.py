"""08 - The student on a device: ONNX, onnxruntime, int8.

A distilled student is only useful where the teacher cannot go: a phone, an edge board, a
browser. Those run ONNX graphs (onnxruntime directly; TFLite and Core ML through converters that
start from ONNX). Here a student distilled on the UCI digits becomes an ONNX file, onnxruntime
runs it to the same logits as minikd's NumPy forward pass, and onnxruntime's dynamic int8
quantization shrinks it further, with the accuracy measured, not assumed.

Timings are left to `minikd deploy` (they are not deterministic; see docs/on_device.md).
Needs: pip install 'minikd[onnx]'   (onnx and onnxruntime)
Run: python examples/08_on_a_device.py   (a few seconds, deterministic)
MINIKD_EXAMPLE_QUICK=1 runs a shorter version (the smoke test uses it).
"""

import importlib.util
import os
import tempfile

import numpy as np

import minikd
from minikd import MLP, Adam, data

SEED = 0
TEACHER = [64, 256, 256, 10]
STUDENT = [64, 16, 10]
TEMPERATURE = 4.0
ALPHA = 0.9
EPOCHS = 40
if os.environ.get("MINIKD_EXAMPLE_QUICK") == "1":  # the smoke test's short run
    EPOCHS = 10


def normwise(a, b):
    """max|a - b| / max(|a|_inf, |b|_inf): the error measure of every minikd check."""
    return np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max())


def main():
    if not all(importlib.util.find_spec(p) for p in ("onnx", "onnxruntime")):
        print("this example needs onnx and onnxruntime: pip install 'minikd[onnx]'")
        return
    import onnxruntime as ort

    from minikd.nn.onnx_export import quantize_int8, read_onnx_metadata

    # 1. A teacher and a distilled student (examples 04 and 05 explain these lines).
    X, y = data.load_digits()
    X_train, y_train, X_test, y_test = data.train_val_split(X, y, val_fraction=0.3, rng=SEED)
    X_train, X_test = data.standardize(X_train, X_test)
    X_train, X_test = X_train.astype(np.float32), X_test.astype(np.float32)
    teacher = MLP(TEACHER, dropout=0.3, rng=SEED)
    minikd.fit(teacher, X_train, y_train, epochs=EPOCHS, optimizer=Adam(teacher.params,
               lr=3e-3), rng=SEED, verbose=False)
    student = MLP(STUDENT, rng=SEED)
    minikd.distill(teacher, student, X_train, y_train, temperature=TEMPERATURE, alpha=ALPHA,
                   epochs=EPOCHS, optimizer=lambda p: Adam(p, lr=3e-3), rng=SEED, verbose=False)

    tmp = tempfile.TemporaryDirectory(prefix="minikd_08_")
    folder = tmp.name
    paths = {name: os.path.join(folder, f"{name}.onnx")
             for name in ("teacher", "student", "student_int8")}

    # 2. Export: the forward equation as a graph, one node per term.
    teacher.to_onnx(paths["teacher"])
    student.to_onnx(paths["student"], softmax_temperature=1.0)
    meta = read_onnx_metadata(paths["student"])
    print(f"student {'-'.join(map(str, STUDENT))} as ONNX (opset {meta['opset']}): "
          f"x -> {meta['nodes'].replace(' ', ' -> ')}")
    print(f"metadata: minikd {meta['minikd_version']}, sizes {meta['sizes']}, "
          f"{meta['activation']}, {meta['dtype']}, {meta['n_params']} parameters")

    # 3. onnxruntime runs it to minikd's logits.
    sessions = {}

    def run(name, x):
        if name not in sessions:
            sessions[name] = ort.InferenceSession(paths[name],
                                                  providers=["CPUExecutionProvider"])
        return sessions[name].run(["logits"], {"x": x})[0]  # (N, C)

    err = normwise(run("student", X_test), student.forward(X_test)[0])
    print(f"onnxruntime's logits against MLP.forward on {X_test.shape[0]} test digits: "
          f"normwise error {err:.0e} -> {'ok' if err <= 1e-5 else 'FAILED'} (tolerance 1e-5)")

    # 4. int8: weights stored as one byte each, activations quantized on the fly.
    quantize_int8(paths["student"], paths["student_int8"])
    print(f"\n{'model':24s} {'file':>10s} {'test acc':>9s}")
    preds = {}
    for name, label in (("teacher", "teacher"), ("student", "student, float32"),
                        ("student_int8", "student, int8")):
        preds[name] = run(name, X_test).argmax(axis=1)
        size = os.path.getsize(paths[name]) / 1024
        print(f"{label:24s} {size:8.1f} KiB {100 * np.mean(preds[name] == y_test):8.1f}%")
    same = np.mean(preds["student_int8"] == preds["student"])
    ratio = os.path.getsize(paths["student"]) / os.path.getsize(paths["student_int8"])
    print(f"\nint8 file {ratio:.1f}x smaller than float32; same prediction on "
          f"{100 * same:.1f}% of the test digits")
    print("(latency on this machine, and the size / speed / accuracy triple: minikd deploy)")
    tmp.cleanup()


if __name__ == "__main__":
    main()
