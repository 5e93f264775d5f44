"""Measure each distillation loss's natural scale at initialisation; writes docs/loss_scales.md.

A teacher MLP [64, 256, 128, 10] is trained on the UCI digits shipped with minikd; a student
MLP [64, 128, 10] is freshly initialised. Over mini-batches of 64 (RepDistiller's batch size)
and several student seeds, for each loss we record its value and the norm of its gradient with
respect to all the student's parameters (the feature/relation gradient enters the student
through ``MLP.backward(..., dhidden=...)``). Feature and relation losses compare the student's
hidden layer 0 (128 units) with the teacher's hidden layer 1 (128 units): equal widths, so
attention transfer applies; FitNets still passes the student through a fresh linear regressor.

Run:  python docs/scripts/loss_scales.py          (about 20 s of CPU; prints the tables too)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import minikd  # noqa: E402
from minikd import data  # noqa: E402
from minikd.training.distiller import DEFAULT_BETA  # noqa: E402

SEED = 0
BATCH = 64
N_BATCHES = 10
STUDENT_SEEDS = (1, 2, 3)
TEMPERATURE = 4.0
PAIR = (0, 1)  # (student hidden layer, teacher hidden layer)

# (name, how it is computed, weight used by RepDistiller's scripts / mdistiller configs)
LOSSES = [
    ("cross_entropy (hard labels)", "ce", 1.0, "CE weight gamma = 1 (0.1 with KD)"),
    ("kd_loss, T = 4", "kd", 0.9, "alpha = 0.9"),
    ("hint_loss (FitNets, after a regressor)", "hint", 100.0, "beta = 100"),
    ("attention_transfer_loss, code mode", "at", 1000.0, "beta = 1000"),
    ("sp_loss", "sp", 3000.0, "beta = 3000"),
    ("rkd_distance_loss", "rkd_d", 25.0, "w_d = 25"),
    ("rkd_angle_loss", "rkd_a", 50.0, "w_a = 50"),
    ("pkt_loss", "pkt", 30000.0, "beta = 30000"),
    ("cosine_loss (DistilBERT)", "cos", 1.0, "alpha_cos = 1 (HF README)"),
]


def grad_norm(grads):
    return float(np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values())))


def term(kind, student, teacher_h, z_t, xb, yb, reg):
    """Loss value and student-parameter gradient norm of one term on one batch."""
    z_s, cache = student.forward(xb)
    h_s = cache.hidden[PAIR[0]].astype(np.float64)
    zeros = np.zeros_like(z_s)
    if kind == "ce":
        loss, dz = minikd.cross_entropy(z_s, yb)
        return loss, grad_norm(student.backward(dz, cache))
    if kind == "kd":
        loss, dz = minikd.kd_loss(z_s, z_t, temperature=TEMPERATURE)
        return loss, grad_norm(student.backward(dz, cache))
    if kind == "hint":
        r, rcache = minikd.regressor_forward(h_s, reg["W"], reg["b"])
        loss, dr = minikd.hint_loss(r, teacher_h)
        dh = minikd.regressor_backward(dr, rcache)[0]
    elif kind == "at":
        loss, dmap = minikd.attention_transfer_loss(h_s[:, None, :], teacher_h[:, None, :])
        dh = dmap[:, 0, :]
    else:
        fn = {"sp": minikd.sp_loss, "rkd_d": minikd.rkd_distance_loss,
              "rkd_a": minikd.rkd_angle_loss, "pkt": minikd.pkt_loss,
              "cos": minikd.cosine_loss}[kind]
        loss, dh = fn(h_s, teacher_h)
    grads = student.backward(zeros, cache, dhidden={PAIR[0]: dh.astype(student.dtype)})
    return loss, grad_norm(grads)


def measure():
    X, y = data.load_digits()
    split = data.train_val_split(X, y, val_fraction=0.2, rng=SEED)
    teacher = minikd.MLP([64, 256, 128, 10], rng=SEED)
    minikd.fit(teacher, split.X_train, split.y_train, epochs=30, batch_size=64, rng=SEED,
               verbose=False)
    teacher_acc = float(np.mean(teacher.predict(split.X_test) == split.y_test))
    rng = np.random.default_rng(SEED)
    results = {kind: ([], []) for _, kind, _, _ in LOSSES}
    for seed in STUDENT_SEEDS:
        student = minikd.MLP([64, 128, 10], rng=seed)
        reg = minikd.init_regressor(128, 128, rng=seed)
        for _ in range(N_BATCHES):
            idx = rng.choice(split.X_train.shape[0], BATCH, replace=False)
            xb, yb = split.X_train[idx], split.y_train[idx]
            z_t, tcache = teacher.forward(xb)
            teacher_h = tcache.hidden[PAIR[1]].astype(np.float64)
            for _, kind, _, _ in LOSSES:
                loss, norm = term(kind, student, teacher_h, z_t, xb, yb, reg)
                results[kind][0].append(loss)
                results[kind][1].append(norm)
    means = {k: (float(np.mean(v[0])), float(np.mean(v[1]))) for k, v in results.items()}
    return teacher_acc, means, teacher, split


TRAIN_METHODS = ["fitnets", "at", "sp", "rkd", "pkt", "cosine"]


def after_training(teacher, split):
    """Distil briefly with the library weight and a tenth of it; agreement and live ReLUs."""
    rows = []
    X_tr, y_tr = split.X_train[:600], split.y_train[:600]
    t_pred = teacher.predict(split.X_test)
    for method in TRAIN_METHODS:
        row = [method]
        for scale in (1.0, 0.1):
            student = minikd.MLP([64, 128, 10], rng=1)
            beta = DEFAULT_BETA[method] * scale
            minikd.distill(teacher, student, X_tr, y_tr, method=method, layers=[PAIR],
                           beta=beta, epochs=8, batch_size=BATCH, rng=SEED, verbose=False)
            agree = float(np.mean(student.predict(split.X_test) == t_pred))
            live = float(np.mean(student.forward(split.X_test)[1].hidden[0] > 0))
            row += [beta, agree, live]
        rows.append(row)
    return rows


def render(teacher_acc, results):
    ce_norm = results["ce"][1]
    lines = [
        "| loss | value at init | ‖∂L/∂θ_student‖ at init | library weight | "
        "weight × value | weight × ‖grad‖ | ÷ CE's ‖grad‖ |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, kind, weight, where in LOSSES:
        value, norm = results[kind]
        ratio = weight * norm / ce_norm
        lines.append(f"| `{name}` | {value:.3g} | {norm:.3g} | {weight:g} ({where}) | "
                     f"{weight * value:.3g} | {weight * norm:.3g} | {ratio:.2g} |")
    header = (f"Teacher MLP [64, 256, 128, 10] trained 30 epochs on UCI digits "
              f"(validation accuracy {teacher_acc:.3f}); student MLP [64, 128, 10] at "
              f"initialisation (seeds {', '.join(map(str, STUDENT_SEEDS))}); means over "
              f"{N_BATCHES} mini-batches of {BATCH} per seed. Feature and relation terms pair "
              f"student hidden layer {PAIR[0]} with teacher hidden layer {PAIR[1]} (128 units "
              f"each).")
    return header, "\n".join(lines)


PAGE = """# The natural scale of each distillation loss

Why do the libraries weight PKT by 30000, SP by 3000, attention transfer by 1000 and FitNets by
100, but KD by 0.9? Because the losses live on wildly different scales, and a weight is mostly a
unit conversion: it brings each term's gradient to the size of the cross-entropy's, so that one
learning rate serves all of them. The table measures that on minikd's own MLPs.

{header}

{table}

Produced by `python docs/scripts/loss_scales.py` (it rewrites this file). The numbers depend on
the architecture, the layer, the batch size and the data; the orders of magnitude are the point.

## Reading the table

* **Means over many entries make small numbers.** PKT averages a KL over all N² pairs (not a row
  sum over N), and its probabilities are each about 1/N: with N = 64 its value and gradient are
  tiny, hence 30000. SP divides a squared Frobenius distance by N², and its normalised Gram rows
  hold entries of order 1/√N. RKD averages over N² (distance) and N³ (angle) entries.
* **Normalised features make bounded losses.** AT compares L2-normalised maps with a mean over
  N·S entries, so each squared difference is of order 1/S: a weight of 1000 undoes that average.
* **FitNets' MSE is an element mean** (`nn.MSELoss()`), so its gradient on each element is
  2/(N·H) times a difference: 100 brings it up.
* **KD and CE are already in logit units.** KD carries the T² factor (Hinton et al. 2015, §2),
  which keeps its gradient comparable to the hard-label term's across temperatures; its weight
  is a blend proportion, not a unit conversion.
* The last column is the weighted gradient norm divided by the cross-entropy's: values of order
  0.1-10 mean the library weight puts that term on the same footing as the labels. A loss whose
  weighted gradient is orders of magnitude larger would dominate training; one orders of
  magnitude smaller would do nothing.
* The weights were tuned for CIFAR-100 ResNets, where feature maps and batch statistics differ;
  treat them as starting points and check the weighted gradient norms on your own model, as this
  script does.

## What the weights do in training

The same teacher and student, distilled for 8 epochs on 600 labelled training digits with
`minikd.distill` (default blend: 0.1 CE + 0.9 KD at T = 4, plus β times the term; SGD lr 0.05,
momentum 0.9), once with the library β and once with a tenth of it. Agreement: fraction of
validation digits on which the student's prediction equals the teacher's. Live ReLUs: fraction of
the student's hidden units active on the validation digits (a dead student has none).

{training}

A term whose weighted gradient is far above the cross-entropy's (the last column of the first
table) can push a ReLU student's units below zero in the first steps, after which they never
recover: look for a collapse of the live-ReLU fraction and of the agreement. `minikd.distill`
keeps the library weights as defaults (`minikd.distill.DEFAULT_BETA`) so that its runs compare with
the literature; pass `beta=` to change them.
"""


def write_atomically(path, text):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def render_training(rows):
    lines = ["| method | library β | agreement | live ReLUs | β / 10 | agreement | live ReLUs |",
             "|---|---|---|---|---|---|---|"]
    for method, b1, a1, l1, b2, a2, l2 in rows:
        lines.append(f"| {method} | {b1:g} | {a1:.3f} | {l1:.2f} | {b2:g} | {a2:.3f} | "
                     f"{l2:.2f} |")
    return "\n".join(lines)


def main():
    teacher_acc, results, teacher, split = measure()
    header, table = render(teacher_acc, results)
    training = render_training(after_training(teacher, split))
    print(header)
    print(table)
    print(training)
    write_atomically(ROOT / "docs" / "loss_scales.md",
                     PAGE.format(header=header, table=table, training=training))


if __name__ == "__main__":
    main()
