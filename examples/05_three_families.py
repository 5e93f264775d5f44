"""05 - Three families of distillation: copy the answers, the features, or the relations.

* response-based: the student matches the teacher's softened outputs (Hinton et al. 2015);
* feature-based: a student hidden layer, mapped by a learned linear regressor, matches a teacher
  hidden layer (FitNets, Romero et al. 2015; DistilBERT's cosine loss);
* relation-based: the student matches how the teacher's features relate examples to each other:
  pairwise distances and angles (RKD, Park et al. 2019), batch similarity matrices (SP, Tung &
  Mori 2019), or probability distributions over neighbours (PKT, Passalis & Tefas 2018).

Part 1 shows each loss on one mini-batch at initialisation: their natural scales differ by
orders of magnitude, which is why the libraries weight them by 1 to 30000. Part 2 trains one
student per family on the shipped UCI digits (all on top of the response blend) over a few seeds.
(RKD is left out of part 2: its angle term costs O(B^3) per batch, too slow for a quick demo.)

Run: python examples/05_three_families.py   (a few seconds, deterministic)
MINIKD_EXAMPLE_QUICK=1 runs a much shorter version (the smoke test uses it).
"""

import os

import numpy as np

import minikd
from minikd import MLP
from minikd.experiments import distill_job as experiments
from minikd.experiments import sweeps

SEED = 0
BATCH = 64
SEEDS = 2
SETTINGS = dict(dataset="digits", teacher_hidden=(128, 128), teacher_dropout=0.3,
                teacher_epochs=15, student_hidden=(16,), epochs=25, batch_size=64)
if os.environ.get("MINIKD_EXAMPLE_QUICK") == "1":  # the smoke test's short run
    SEEDS = 1
    SETTINGS.update(teacher_epochs=3, epochs=3)
VARIANTS = [
    ("response only (KD)", {"family": "response"}),
    ("+ feature: FitNets (x100)", {"family": "feature", "feature_loss": "fitnets"}),
    ("+ relation: PKT (x30000)", {"family": "relation", "relation_loss": "pkt"}),
    ("+ relation: SP (x3000)", {"family": "relation", "relation_loss": "sp"}),
]


def part1():
    X, _, _, _ = experiments.load_dataset("digits")
    xb = X[:BATCH].astype(np.float64)
    teacher = MLP([64, 128, 128, 10], dtype=np.float64, rng=SEED)
    student = MLP([64, 16, 10], dtype=np.float64, rng=SEED + 1)
    z_t, c_t = teacher.forward(xb)
    z_s, c_s = student.forward(xb)
    h_t, h_s = c_t.hidden[-1], c_s.hidden[-1]  # (B, 128), (B, 16)
    reg = minikd.init_regressor(16, 128, rng=SEED)
    r, _ = minikd.regressor_forward(h_s, reg["W"], reg["b"])  # (B, 128)
    print(f"Part 1: each loss at initialisation, one batch of {BATCH} digits "
          f"(student features {h_s.shape[1]}-d, teacher {h_t.shape[1]}-d)")
    rows = [
        ("response  kd_loss(T=4)", minikd.kd_loss(z_s, z_t, temperature=4.0)),
        ("feature   hint_loss(regressor(h_s), h_t)", minikd.hint_loss(r, h_t)),
        ("feature   cosine_loss(regressor(h_s), h_t)", minikd.cosine_loss(r, h_t)),
        ("relation  rkd_distance_loss(h_s, h_t)", minikd.rkd_distance_loss(h_s, h_t)),
        ("relation  rkd_angle_loss(h_s, h_t)", minikd.rkd_angle_loss(h_s, h_t)),
        ("relation  sp_loss(h_s, h_t)", minikd.sp_loss(h_s, h_t)),
        ("relation  pkt_loss(h_s, h_t)", minikd.pkt_loss(h_s, h_t)),
    ]
    print(f"  {'loss':45s} {'value':>10s} {'max |gradient|':>15s}")
    for name, (value, grad) in rows:
        print(f"  {name:45s} {value:10.3g} {np.abs(grad).max():15.3g}")


def part2():
    result = sweeps.run_variants(
        experiments.DistillSetup(seeds=SEEDS, **SETTINGS),
        [v for _, v in VARIANTS], verbose=False)
    b = result["baseline"]
    print(f"\nPart 2: UCI digits, students {SETTINGS['student_hidden']}, {SEEDS} seeds; "
          f"teacher {100 * b['teacher']['mean']:.1f}%, scratch student "
          f"{100 * b['scratch']['mean']:.1f} ± {100 * b['scratch']['std']:.1f}%")
    print(f"  {'distilled student':32s} {'accuracy (%)':>13s} {'gain (points)':>14s} "
          f"{'wins':>5s}")
    for (label, _), row in zip(VARIANTS, result["variants"], strict=True):
        g = row["gain_vs_scratch"]
        print(f"  {label:32s} {100 * row['acc']['mean']:6.1f} ± {100 * row['acc']['std']:3.1f} "
              f"{100 * g['mean']:+7.1f} ± {100 * g['std']:3.1f} {g['wins']:3d}/{SEEDS}")
    print("  Small data, small student: differences within a point or two are noise here;")
    print("  docs/results.md compares the families on MNIST-1D over more seeds.")


if __name__ == "__main__":
    part1()
    part2()
