"""02 - Temperature: softmax(z / T) and what a higher T does.

Dividing the logits by T > 1 before the softmax flattens the distribution, so the small
probabilities of the wrong classes (the dark knowledge of example 01) become large enough to
learn from (Hinton et al. 2015, §2, eq. 1).

Tutorials often print a T = 1 row and a "T = 4" row side by side. The T = 4 row is usually
illustrative: it does not follow from the T = 1 row. It cannot be chosen freely, because
softmax(z / T) is proportional to softmax(z) ** (1 / T): the T = 1 row fixes every other row.
This script prints the real rows.

Run: python examples/02_temperature.py   [--plot temperature.png]  (needs matplotlib to draw)
"""

import sys

import numpy as np

from minikd import softmax

CLASSES = ["cat", "dog", "car", "horse"]
# A T = 1 row and a T = 4 row of the kind tutorials print side by side (illustrative numbers,
# not computed from each other; put your tutorial's rows here).
TUTORIAL_T1 = [0.90, 0.07, 0.005, 0.025]
TUTORIAL_T4 = [0.60, 0.25, 0.05, 0.10]
TEMPERATURES = [1.0, 2.0, 4.0, 10.0, 20.0]


def fmt(values):
    return "  ".join(f"{v:7.4f}" for v in values)


def main(argv):
    # Logits that give the T = 1 row exactly: z = log p, up to a constant that softmax ignores.
    logits = np.log(TUTORIAL_T1)
    print("logits recovered from the T = 1 row: z = log p = " + ", ".join(f"{v:.3f}"
                                                                     for v in logits))
    print("\n          " + "  ".join(f"{c:>7}" for c in CLASSES))
    for t in TEMPERATURES:
        print(f"T = {t:<5g} {fmt(softmax(logits, temperature=t))}")

    real_t4 = softmax(logits, temperature=4.0)
    print(f"\nThe tutorial's illustrative T = 4 row: {fmt(TUTORIAL_T4)}")
    print(f"The real T = 4 row from its T = 1 row: {fmt(real_t4)}")
    print(f"Largest difference: {np.max(np.abs(real_t4 - np.array(TUTORIAL_T4))):.3f}. "
          "The T = 4 row is illustrative; it does not follow from the T = 1 row.")

    # The same fact without logits: p_T is proportional to p_1 ** (1 / T).
    by_power = np.power(TUTORIAL_T1, 1 / 4.0)
    by_power /= by_power.sum()
    print(f"Check, p_4 = p_1 ** (1/4) normalised:   {fmt(by_power)}")

    # Which T gives the tutorial's top probability of 0.60? Scan a fine grid.
    grid = np.geomspace(1.0, 20.0, 2000)
    top = np.array([softmax(logits, temperature=t)[0] for t in grid])
    t_match = grid[np.argmin(np.abs(top - TUTORIAL_T4[0]))]
    print(f"A top probability of {TUTORIAL_T4[0]:.2f} needs T = {t_match:.2f}, and then the row "
          f"is {fmt(softmax(logits, temperature=t_match))}.")

    if "--plot" in argv:
        from minikd.experiments import plots

        path = argv[argv.index("--plot") + 1]
        dense = np.geomspace(0.5, 50.0, 60)
        table = np.stack([softmax(logits, temperature=t) for t in dense])
        plots.plot_temperature(dense, table, CLASSES, path=path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
