"""01 - Hard labels versus soft labels: what "dark knowledge" is.

A hard label says "this is a cat" and nothing else: every wrong class gets 0. A trained teacher's
softmax says more: this cat looks a bit like a dog, much less like a horse, and nothing like a
car. Those small probabilities of wrong classes are what Hinton, Vinyals and Dean (2015, §1-2)
call dark knowledge; a student trained on them learns how the teacher generalises.

Run: python examples/01_hard_vs_soft_labels.py   (numpy only, well under a second)
"""

import numpy as np

from minikd import softmax

CLASSES = ["cat", "dog", "car", "horse"]
# Teacher logits for three pictures (made up, but of the kind a trained network produces).
PICTURES = {
    "a cat": [6.0, 3.5, -2.0, 1.0],
    "a cat that looks like a dog": [4.0, 3.6, -2.5, 0.5],
    "a car": [-1.0, -1.5, 7.0, -0.5],
}
LABELS = {"a cat": 0, "a cat that looks like a dog": 0, "a car": 2}
TEMPERATURE = 4.0


def row(values):
    return "  ".join(f"{v:7.4f}" for v in values)


def main():
    print("classes:              " + "  ".join(f"{c:>7}" for c in CLASSES))
    for picture, logits in PICTURES.items():
        hard = np.eye(len(CLASSES))[LABELS[picture]]
        soft1 = softmax(logits)
        soft_t = softmax(logits, temperature=TEMPERATURE)
        print(f"\n{picture}:")
        print(f"  hard label          {row(hard)}")
        print(f"  teacher, T = 1      {row(soft1)}")
        print(f"  teacher, T = {TEMPERATURE:g}      {row(soft_t)}")
        wrong = [c for c in range(len(CLASSES)) if c != LABELS[picture]]
        ranked = sorted(wrong, key=lambda c: -soft1[c])
        a, b = ranked[0], ranked[-1]
        print(f"  dark knowledge: '{CLASSES[a]}' is {soft1[a] / soft1[b]:.0f} times more likely "
              f"than '{CLASSES[b]}'; the hard label says both are 0.")

    # The same student logits pushed by the two kinds of target. The gradient of
    # cross-entropy with respect to the logits is (p_student - target).
    student = np.array([2.0, 2.0, 2.0, 2.0])  # a student that knows nothing yet
    p_s = softmax(student)
    teacher = softmax(PICTURES["a cat"])
    print("\nA student that knows nothing yet (equal logits), shown 'a cat':")
    print(f"  gradient from the hard label   {row(p_s - np.eye(4)[0])}")
    print(f"  gradient from the soft label   {row(p_s - teacher)}")
    print("  The hard label pushes dog, car and horse down by the same amount;")
    print("  the soft label pushes car down hardest and dog least: it teaches similarity.")

    # How much each target says, in bits (entropy): a one-hot target has none to spare.
    for name, target in [("hard label", np.eye(4)[0]), ("teacher, T = 1", teacher),
                         (f"teacher, T = {TEMPERATURE:g}",
                          softmax(PICTURES["a cat"], temperature=TEMPERATURE))]:
        nz = target[target > 0]
        print(f"  entropy of the {name:15s} {-(nz * np.log2(nz)).sum() + 0.0:.3f} bits")


if __name__ == "__main__":
    main()
