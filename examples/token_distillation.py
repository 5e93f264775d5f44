"""Token-level distillation of a tiny "language model" over a padded batch: logits (N, L, V).

A teacher gives a next-token distribution at every position of 4 sequences of different lengths
(the rest is padding). A student that sees only D_S of the teacher's D features, z_s = X_s @ W (one
linear layer to V logits), so it cannot match the teacher exactly, is fitted to the teacher with
each token divergence of minikd by plain gradient descent, using dL/dW = X_s^T (dL/dz_s): the
gradient each loss returns. Padding is excluded with labels = -100, as Hugging Face does. Then
the same with only the teacher's top-k stored (logits, or log-probabilities at T).

It prints: the positions selected, a check that a uniform student's forward KL is
log V - H(teacher), a check that padding gets exactly zero gradient, and for each divergence the
forward and reverse KL to the full teacher and the top-1 agreement after 300 plain gradient
steps (each objective wins on its own measure; the JSD, whose gradient is bounded, is the
slowest to converge; top-k with a tail bucket stays close to the full forward KL, renormalising
over the top-k loses the tail). See
docs/token_losses.md for the definitions.

Run: python examples/token_distillation.py      (deterministic, about a second)
"""

import numpy as np

import minikd

N, L, V, D = 4, 8, 16, 12           # sequences, positions, vocabulary, features per position
D_S = 6                             # the features the student sees
LENGTHS = [8, 6, 5, 3]              # real tokens per sequence; the rest is padding
TOP_K = 4                           # stored teacher logits per token, for the top-k runs
STEPS, LR, SEED = 300, 0.5, 0
T = 1.0                             # the loss temperature

rng = np.random.default_rng(SEED)
X = rng.normal(size=(N, L, D))                                  # (N, L, D) position features
z_t = 3.0 * X @ rng.normal(size=(D, V)) / np.sqrt(D)            # (N, L, V) teacher logits
labels = rng.integers(0, V, size=(N, L))                        # next tokens (unused but shape)
for n, length in enumerate(LENGTHS):
    labels[n, length:] = -100                                   # padding: ignored everywhere
keep = labels != -100                                           # (N, L)
X_s = X[..., :D_S]                                              # (N, L, D_S) student features


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def train(loss_fn):
    """Gradient descent on W from zero; returns W."""
    W = np.zeros((D_S, V))
    for _ in range(STEPS):
        _, dz = loss_fn(X_s @ W)                                # dz: (N, L, V)
        W -= LR * np.einsum("nld,nlv->dv", X_s, dz)             # dL/dW = X_s^T dz
    return W


def report(name, W):
    z_s = X_s @ W
    fkl = minikd.forward_kl(z_s, z_t, labels=labels, t2_scale=False).loss
    rkl = minikd.reverse_kl(z_s, z_t, labels=labels, t2_scale=False).loss
    agree = (z_s.argmax(-1) == z_t.argmax(-1))[keep].mean()
    print(f"{name:34s} {fkl:8.4f} {rkl:8.4f} {agree:10.2f}")


print(f"positions selected: {keep.sum()} of {N * L}")

# A uniform student (W = 0): KL(p || uniform) = log V - H(p) per position, by hand.
p = softmax(z_t)
by_hand = np.mean([np.log(V) + np.sum(p[n, t] * np.log(p[n, t]))
                   for n in range(N) for t in range(LENGTHS[n])])
got = minikd.forward_kl(np.zeros_like(z_t), z_t, labels=labels, t2_scale=False).loss
print(f"uniform student: forward KL {got:.10f}, log V - H(teacher) {by_hand:.10f} -> "
      f"{'ok' if abs(got - by_hand) < 1e-12 else 'MISMATCH'}")

_, dz = minikd.generalized_jsd(X_s @ rng.normal(size=(D_S, V)), z_t, labels=labels, beta=0.5)
print(f"padding positions get exactly zero gradient: {not dz[~keep].any()}")

print(f"\n{'trained with':34s} {'fwd KL':>8s} {'rev KL':>8s} {'top-1 agr':>10s}   "
      "(to the full teacher)")
kw = dict(labels=labels, temperature=T)
runs = [
    ("forward_kl", lambda z: minikd.forward_kl(z, z_t, **kw)),
    ("reverse_kl", lambda z: minikd.reverse_kl(z, z_t, **kw)),
    ("generalized_jsd beta=0.5", lambda z: minikd.generalized_jsd(z, z_t, beta=0.5, **kw)),
    ("skew_kl alpha=0.1", lambda z: minikd.skew_kl(z, z_t, alpha=0.1, **kw)),
    ("skew_reverse_kl alpha=0.1", lambda z: minikd.skew_reverse_kl(z, z_t, alpha=0.1, **kw)),
]
for name, fn in runs:
    report(name, train(fn))

# Only the teacher's top-k per token stored (values + indices), e.g. cached to disk.
idx = np.argsort(-z_t, axis=-1)[..., :TOP_K]                            # (N, L, K)
top_logits = np.take_along_axis(z_t, idx, -1)                           # divided by T
log_p = z_t / T - np.log(np.exp(z_t / T).sum(-1, keepdims=True))       # at T: used as is
top_logprobs = np.take_along_axis(log_p, idx, -1)                       # (the bucket needs these)
report(f"top-{TOP_K} forward_kl, tail=renorm", train(lambda z: minikd.topk_divergence(
    z, top_logits, idx, tail="renorm", values_kind="logits", **kw)))
report(f"top-{TOP_K} forward_kl, tail=bucket", train(lambda z: minikd.topk_divergence(
    z, top_logprobs, idx, tail="bucket", values_kind="log_probs", **kw)))
