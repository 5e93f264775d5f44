"""10 - Bring your own teacher: distil a minikd student from logits a PyTorch model wrote.

The common case: your teacher lives in another framework, your data in a file. minikd needs
only the teacher's logits, one row per row of your data, saved with NumPy. This script

1. makes a small data set file (the shipped UCI 8x8 digits, split 70 / 30, as my_data.npz with
   X, y, X_test, y_test),
2. trains a teacher in PyTorch when torch is importable (else a minikd MLP stands in, and the
   output says so) and exports its logits: ``model.eval()``, ``torch.no_grad()``, ``np.save``,
3. loads both files through minikd's checked loaders and distils a small student from the
   logits with ``minikd.distill(None, student, X, y, teacher_logits=...)``, next to a scratch
   student with the same initial weights and mini-batch order.

Run: python examples/10_bring_your_own_teacher.py   (a few seconds)
The same from the command line: minikd distill --data my_data.npz --teacher-logits
teacher_logits.npy (docs/bring_your_own.md).
"""

import os
import tempfile

import numpy as np

import minikd
from minikd.experiments.data import load_digits, train_val_split
from minikd.experiments.userdata import load_user_files

SEED = 0
QUICK = os.environ.get("MINIKD_EXAMPLE_QUICK") == "1"
TEACHER_EPOCHS, STUDENT_EPOCHS = (10, 20) if QUICK else (20, 30)


def train_torch_teacher(X, y, n_classes):
    """A 64-256-256-C PyTorch MLP with dropout, trained with Adam; returns the model."""
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # a small network: more threads only contend
    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 256), torch.nn.ReLU(), torch.nn.Dropout(0.3),
        torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Dropout(0.3),
        torch.nn.Linear(256, n_classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(TEACHER_EPOCHS):
        model.train()
        for idx in torch.randperm(len(yt), generator=gen).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(Xt[idx]), yt[idx]).backward()
            opt.step()
    return model


def torch_logits(model, X):
    """The export: evaluation mode (no dropout), no autograd graph, a NumPy array (N, C)."""
    import torch

    model.eval()
    with torch.no_grad():
        return model(torch.tensor(X, dtype=torch.float32)).numpy()


def main():
    with tempfile.TemporaryDirectory(prefix="minikd-byo-") as folder:
        run(folder)


def run(folder):
    data_file = os.path.join(folder, "my_data.npz")
    logits_file = os.path.join(folder, "teacher_logits.npy")

    # 1. your data, in a file: features X (N, D) and integer labels y (N,), a test part too
    X, y = load_digits()
    X_tr, y_tr, X_te, y_te = train_val_split(X, y, val_fraction=0.3, rng=SEED)
    np.savez(data_file, X=X_tr, y=y_tr, X_test=X_te, y_test=y_te)
    print(f"data: my_data.npz: {len(y_tr)} train rows, {len(y_te)} test rows, "
          f"{X.shape[1]} features, {y.max() + 1} classes")

    # 2. your teacher, anywhere: only its logits on the rows of the data file travel
    try:
        import torch  # noqa: F401

        teacher = train_torch_teacher(X_tr, y_tr, int(y.max()) + 1)
        z_tr, z_te = torch_logits(teacher, X_tr), torch_logits(teacher, X_te)
        print(f"teacher: a PyTorch 64-256-256-10 MLP ({TEACHER_EPOCHS} epochs, dropout 0.3)")
    except ImportError:
        teacher = minikd.MLP([X.shape[1], 256, 256, 10], dropout=0.3, rng=SEED)
        minikd.fit(teacher, X_tr, y_tr, epochs=TEACHER_EPOCHS, batch_size=64,
                   optimizer=minikd.Adam(teacher.params, lr=1e-3), rng=SEED, verbose=False)
        z_tr, z_te = teacher.forward(X_tr)[0], teacher.forward(X_te)[0]
        print("teacher: PyTorch is not installed, so a minikd MLP stands in for it "
              "(64-256-256-10, dropout 0.3); its logits are exported the same way")
    np.save(logits_file, np.vstack([z_tr, z_te]))  # training rows, then test rows
    print(f"wrote {os.path.basename(logits_file)}: shape {np.load(logits_file).shape} "
          "(training rows, then test rows)")

    # 3. minikd: both files read and checked, then a student distilled from the logits
    split, (t_train, t_test) = load_user_files(data_file, logits_file)
    teacher_acc = np.mean(t_test.argmax(axis=1) == split.y_test)
    sizes = [split.X_train.shape[1], 16, 10]
    results = {}
    for name in ("scratch", "distilled"):
        student = minikd.MLP(sizes, rng=SEED + 1)  # the same initial weights for both
        optimizer = minikd.Adam(student.params, lr=3e-3)
        if name == "scratch":
            minikd.fit(student, split.X_train, split.y_train, epochs=STUDENT_EPOCHS,
                       batch_size=64, optimizer=optimizer, rng=SEED, verbose=False)
        else:
            minikd.distill(None, student, split.X_train, split.y_train, teacher_logits=t_train,
                           temperature=4.0, alpha=0.9, epochs=STUDENT_EPOCHS, batch_size=64,
                           optimizer=optimizer, rng=SEED, verbose=False)
        pred = student.predict(split.X_test)
        results[name] = (np.mean(pred == split.y_test), np.mean(pred == t_test.argmax(axis=1)))
    print(f"\n{'model':<30} {'test acc':>8} {'agrees w/ teacher':>18}")
    print(f"{'teacher (from its test logits)':<30} {100 * teacher_acc:7.1f}%")
    for name, (acc, agree) in results.items():
        print(f"{f'student 64-16-10, {name}':<30} {100 * acc:7.1f}% {100 * agree:17.1f}%")
    print("(one seed: the gain over scratch is noisy; 'minikd distill --data my_data.npz "
          "--teacher-logits teacher_logits.npy' reports it over 5 seeds with its spread)")


if __name__ == "__main__":
    main()
