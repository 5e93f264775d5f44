"""09 - Distil a tiny language model: a student learns the next character from a teacher's
whole distribution over the next character, not only from the one character that came next.

This is how smaller chat models are made from big ones (per-token KD: Kim & Rush 2016; MiniLLM;
GKD), shrunk to names: the US Census 1990 names shipped with minikd, a 27-token vocabulary
(a-z and "." for the name's boundary), and the teacher shipped with minikd (k=8 characters of
context, 24-wide embeddings, 512 hidden units). Two students of 3,187 parameters start from the
same weights and see the same mini-batches; one learns from the data (cross-entropy), one from
the teacher (forward KL per character). Everything is public minikd; the loop is written out.

Run: python examples/09_distill_a_tiny_language_model.py   (under 10 s)
MINIKD_EXAMPLE_QUICK=1 trains on 5,000 names only (the smoke test uses it).
`minikd lm` runs the full comparison (3 seeds, reverse KL and JSD too).
"""

import math
import os

import numpy as np

import minikd
from minikd.experiments.lm_teacher import load_teacher, mean_nll
from minikd.experiments.names import decode, load_names_data, make_examples
from minikd.nn.char_lm import CharLM
from minikd.nn.embedding import embedding_backward, embedding_forward
from minikd.training import blas_threads

SEED = 0
CONTEXT, EMBED, HIDDEN = 8, 8, (32,)  # the student: k=8, d=8, h=32
LR_SCRATCH, LR_DISTILLED = 5e-3, 1e-2  # Adam; minikd lm's defaults, tuned on validation names
BATCH = 256
TEMPERATURE = 1.0
QUICK = os.environ.get("MINIKD_EXAMPLE_QUICK") == "1"
N_NAMES = 5000 if QUICK else None  # None: all 73,528 training names (one epoch each)


def main():
    data = load_names_data(context=CONTEXT)
    print(f"uniform guess over 27 tokens: log 27 = {math.log(27):.4f} nats = "
          f"{math.log2(27):.4f} bits per character")

    # 1. A name is a sequence of next-character predictions, each from the previous K.
    X1, y1 = make_examples(["emma"], context=CONTEXT)
    print("'emma' gives", len(y1), "examples:",
          ", ".join(f"{decode(x)} -> {decode([t])}" for x, t in zip(X1, y1, strict=True)))
    X, y = data.X_train, data.y_train
    if N_NAMES is not None:
        m = sum(len(n) + 1 for n in data.names.train[:N_NAMES])
        X, y = X[:m], y[:m]

    # 2. The embedding layer's backward is a scatter-add; check it by finite differences.
    E = np.random.default_rng(SEED).standard_normal((27, 3))
    dout = np.random.default_rng(SEED + 1).standard_normal((4, CONTEXT, 3))
    _, cache = embedding_forward(X[:4], E)
    result = minikd.gradcheck.check_gradient(lambda v: embedding_forward(X[:4], v)[0], E,
                                             embedding_backward(dout, cache), dout=dout)
    print(f"embedding gradient vs finite differences: error {result.error:.1e} -> "
          f"{'ok' if result.ok else 'FAILED'}")

    # 3. The teacher scores every training context once; its logits are kept.
    teacher, info = load_teacher()
    z_teacher = teacher.logits(X)  # (M, 27)
    print(f"teacher ({teacher.n_params:,} parameters): test NLL "
          f"{mean_nll(teacher, data.X_test, data.y_test):.3f} nats/char")

    # 4. Two students, one loop: the only difference is the loss.
    students = {}
    for name, lr in (("scratch", LR_SCRATCH), ("distilled", LR_DISTILLED)):
        student = CharLM(CONTEXT, EMBED, HIDDEN, rng=SEED)  # the same start for both
        opt = minikd.Adam(student.params, lr=lr)
        order = np.random.default_rng(SEED + 1).permutation(len(y))  # the same mini-batches
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            z_s, cache = student.forward(X[idx], train=True)  # (B, 27)
            if name == "scratch":  # the data's next character: -log q(y)
                loss, dz = minikd.cross_entropy(z_s, y[idx])
            else:  # the teacher's whole distribution: T^2 KL(p_teacher || q_student)
                loss, dz = minikd.forward_kl(z_s, z_teacher[idx], temperature=TEMPERATURE)
            opt.step(student.backward(dz, cache))
        students[name] = student

    # 5. Score on the test names, in nats and bits per character, and sample a few names.
    nll = {name: mean_nll(s, data.X_test, data.y_test) for name, s in students.items()}
    for name, s in students.items():
        names = [decode(t) for t in s.sample(8, rng=SEED)]
        print(f"{name:9} student: test NLL {nll[name]:.3f} nats/char "
              f"({nll[name] / math.log(2):.3f} bits); samples: {' '.join(names)}")
    gain = nll["scratch"] - nll["distilled"]
    print(f"gain of distillation (scratch's NLL minus the distilled student's): {gain:+.3f} "
          f"nats/char; {'the teacher helped' if gain > 0 else 'no help from the teacher'} on "
          "this seed (`minikd lm` gives the spread over seeds)")


if __name__ == "__main__":
    # The loop above is written out, so minikd's trainers do not limit BLAS threads for it: do
    # it here. On (256, 64) x (64, 32) products a second OpenBLAS thread mostly spins (32 s
    # against 9 s on a busy 2-core machine).
    with blas_threads(1):
        main()
