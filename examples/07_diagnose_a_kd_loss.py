"""Diagnose a KD loss that disagrees: from the numbers it returns to the bug and the fix.

The loss below is the soft term of HikariTJU/LD (``mmdet/models/losses/kd_loss.py``), as its
issue #74 quotes it::

    kd_loss = F.kl_div(F.log_softmax(pred / T, dim=1), target, reduction='none').mean(1) * (T * T)

followed by a mean over the batch. It looks right; minikd.diagnose says what it computes. The
loss is treated as a black box: its gradient comes from finite differences here, from autograd
in the PyTorch half (run when torch is installed).

Run: python examples/07_diagnose_a_kd_loss.py
"""

import numpy as np

import minikd
from minikd.verify.diagnosis import format_diagnosis

SEED = 0  # the seed of diagnose_inputs: N = 5 rows, C = 7 classes, T = 3


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def ld_soft_loss(pred, soft_target_logits, T):
    """HikariTJU/LD's soft term in NumPy: the KL per entry, .mean(1), then a batch mean."""
    target = np.exp(log_softmax(soft_target_logits / T))  # (N, C)
    kl = target * (np.log(target) - log_softmax(pred / T))  # (N, C), F.kl_div's reduction='none'
    return (kl.mean(axis=1) * (T * T)).mean()


def torch_half(z_s, z_t, T):
    """The same loss in PyTorch, gradient from autograd; None when torch is not installed."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    pred = torch.tensor(z_s, requires_grad=True)
    target = F.softmax(torch.tensor(z_t) / T, dim=1)
    loss = (F.kl_div(F.log_softmax(pred / T, dim=1), target, reduction="none").mean(1)
            * (T * T)).mean()
    loss.backward()
    return torch.__version__, loss.item(), pred.grad.numpy()


def main():
    x = minikd.diagnose_inputs(rng=SEED, alpha=None)  # a soft term alone: no alpha
    z_s, z_t, T = x["student_logits"], x["teacher_logits"], x["temperature"]
    N, C = z_s.shape

    print("Step 1: the numbers disagree")
    yours = ld_soft_loss(z_s, z_t, T)
    reference = minikd.kd_loss(z_s, z_t, temperature=T).loss
    print(f"  your loss  {yours:.6f}")
    print(f"  kd_loss    {reference:.6f}   (T² KL, mean over the {N} rows)")
    print(f"  kd_loss / yours = {reference / yours:.4f}   (C = {C} classes)")

    print("\nStep 2: diagnose, value and finite-difference gradient of the black box")
    grad = minikd.gradcheck.numerical_gradient(lambda z: ld_soft_loss(z, z_t, T), z_s, scale=T)
    matches = minikd.diagnose(z_s, z_t, temperature=T, loss=yours, grad=grad)
    print(format_diagnosis(matches, top=3))

    print("\nStep 3: the same loss in PyTorch, gradient from autograd")
    result = torch_half(z_s, z_t, T)
    if result is None:
        print("  PyTorch is not installed: this step is skipped")
    else:
        version, loss, torch_grad = result
        best = minikd.diagnose(z_s, z_t, temperature=T, loss=loss, grad=torch_grad)[0]
        print(f"  torch {version}: {best.name}, value error {best.value_error:.1e}, "
              f"gradient error {best.grad_error:.1e}")


if __name__ == "__main__":
    main()
