"""03 - The distillation loss and its gradient, by hand, then checked three ways.

For student logits z_s, teacher logits z_t, temperature T and N examples (Hinton et al. 2015, §2):

    p_s = softmax(z_s / T),  p_t = softmax(z_t / T)
    KD  = T^2 * (1/N) * sum_n KL(p_t || p_s)            (batchmean, T^2 inside the soft loss)
    dKD / dz_s = (T / N) * (p_s - p_t)
    L   = alpha * KD + (1 - alpha) * CE(z_s, y)           (hard term at T = 1)
    dL / dz_s = alpha * (T / N) (p_s - p_t) + (1 - alpha) (1/N) (softmax(z_s) - onehot(y))

This script computes each line with plain numpy, then compares with minikd.kd_loss and
minikd.distillation_loss, with central finite differences (minikd.gradcheck), and with the
golden values computed independently of minikd (the definitions evaluated in mpmath at 40 digits,
rounded to 10 decimals; the same values as tests/test_losses.py).

Run: python examples/03_loss_and_gradient_by_hand.py   (well under a second)
"""

import numpy as np

import minikd
from minikd import gradcheck

Z_S = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])  # student logits (N, C) = (2, 3)
Z_T = np.array([[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]])  # teacher logits
Y = np.array([2, 0])  # hard labels
T = 4.0
ALPHA = 0.9
# Golden values (RepDistiller/mdistiller/torchdistill convention, batchmean * T^2).
GOLDEN_KD_T4 = 0.7579994684
GOLDEN_CE = 1.0744586306
GOLDEN_GRAD_T4 = np.array([[-0.3299074780, 0.0, 0.3299074780],
                           [-0.0503447831, -0.0974538332, 0.1477986164]])


def softmax_by_hand(z, t):
    u = z / t
    e = np.exp(u - u.max(axis=1, keepdims=True))  # shift by the row max: never overflows
    return e / e.sum(axis=1, keepdims=True)


def main():
    np.set_printoptions(precision=6, suppress=True)
    n = Z_S.shape[0]
    print(f"z_s =\n{Z_S}\nz_t =\n{Z_T}\ny = {Y}, T = {T:g}, alpha = {ALPHA:g}\n")

    p_s, p_t = softmax_by_hand(Z_S, T), softmax_by_hand(Z_T, T)
    print(f"step 1  p_t = softmax(z_t / T) =\n{p_t}")
    print(f"step 2  p_s = softmax(z_s / T) =\n{p_s}")
    kl_rows = np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1)
    print(f"step 3  KL(p_t || p_s) per example = {kl_rows}")
    kd = T**2 * kl_rows.mean()
    print(f"step 4  KD = T^2 * mean = {T**2:g} * {kl_rows.mean():.6f} = {kd:.10f}")
    dkd = (T / n) * (p_s - p_t)
    print(f"step 5  dKD/dz_s = (T/N)(p_s - p_t) =\n{dkd}")

    p1 = softmax_by_hand(Z_S, 1.0)
    ce = -np.mean(np.log(p1[np.arange(n), Y]))
    dce = (p1 - np.eye(Z_S.shape[1])[Y]) / n
    print(f"step 6  CE(z_s, y) at T = 1 = {ce:.10f}")
    loss = ALPHA * kd + (1 - ALPHA) * ce
    grad = ALPHA * dkd + (1 - ALPHA) * dce
    print(f"step 7  L = alpha KD + (1 - alpha) CE = {loss:.10f}")
    print(f"        dL/dz_s =\n{grad}\n")

    # Check 1: the golden values, computed independently in float64.
    print(f"KD   by hand {kd:.10f}   golden {GOLDEN_KD_T4:.10f}   "
          f"{'agree' if abs(kd - GOLDEN_KD_T4) < 1e-9 else 'DIFFER'}")
    print(f"CE   by hand {ce:.10f}   golden {GOLDEN_CE:.10f}   "
          f"{'agree' if abs(ce - GOLDEN_CE) < 1e-9 else 'DIFFER'}")
    err = np.max(np.abs(dkd - GOLDEN_GRAD_T4))
    print(f"dKD  by hand vs golden: max difference {err:.1e}   "
          f"{'agree' if err < 1e-9 else 'DIFFER'}")

    # Check 2: minikd's vectorised code.
    kd_m, dkd_m = minikd.kd_loss(Z_S, Z_T, temperature=T)
    loss_m, grad_m = minikd.distillation_loss(Z_S, Z_T, Y, temperature=T, alpha=ALPHA)
    print(f"minikd.kd_loss           {kd_m:.10f}   gradient max difference "
          f"{np.max(np.abs(dkd_m - dkd)):.1e}")
    print(f"minikd.distillation_loss {loss_m:.10f}   gradient max difference "
          f"{np.max(np.abs(grad_m - grad)):.1e}")

    # Check 3: central finite differences, step h (T + |z|) (the loss depends on z / T).
    def f(z):
        return minikd.distillation_loss(z, Z_T, Y, temperature=T, alpha=ALPHA).loss

    result = gradcheck.check_gradient(f, Z_S, grad, scale=T)
    print(f"finite differences: normwise error {result.error:.1e} -> "
          f"{'ok' if result.ok else 'FAILED'}")

    # Why T^2: without it the soft gradient shrinks like 1/T (Hinton et al. 2015, §2).
    for t in (1.0, 4.0, 20.0):
        g = minikd.kl_divergence(Z_S, Z_T, temperature=t).grad
        g2 = minikd.kd_loss(Z_S, Z_T, temperature=t).grad
        print(f"T = {t:>4g}: |grad| of KL alone {np.abs(g).max():.5f}, "
              f"with T^2 {np.abs(g2).max():.5f}")


if __name__ == "__main__":
    main()
