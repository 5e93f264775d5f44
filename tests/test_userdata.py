"""Your own data and teacher logits: the loaders (minikd.experiments.userdata) and
``minikd distill --data FILE --teacher-logits FILE``."""


import numpy as np
import pytest

from minikd.experiments.userdata import load_teacher_logits, load_user_data, load_user_files

N, D, C = 60, 4, 3


def _raw(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D))  # (N, D)
    X[:, 0] = np.arange(N)  # a feature that is the row number: rows can be traced
    y = np.arange(N) % C  # (N,) 20 rows of each class
    return X, y


def _csv(path, X, y, header=None, label_at=None):
    header = header or [f"f{j}" for j in range(D)] + ["label"]
    cols = [[repr(float(v)) for v in X[:, j]] for j in range(D)]
    cols.insert(D if label_at is None else label_at, [str(v) for v in y])
    path.write_text(",".join(header) + "\n"
                    + "".join(",".join(r) + "\n" for r in zip(*cols, strict=True)))
    return path


# -- the data loader ------------------------------------------------------------------------

def test_npz_with_its_own_test_is_standardised_with_the_training_statistics(tmp_path):
    X, y = _raw()
    Xt = np.random.default_rng(1).standard_normal((9, D)) * 3 + 1
    np.savez(tmp_path / "d.npz", X=X, y=y, X_test=Xt, y_test=np.arange(9) % C)
    s = load_user_data(tmp_path / "d.npz")
    mu, sd = X.mean(axis=0), X.std(axis=0)
    assert s.X_train.dtype == np.float32 and s.y_train.dtype == np.int64
    np.testing.assert_allclose(s.X_train, (X - mu) / sd, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s.X_test, (Xt - mu) / sd, rtol=1e-6, atol=1e-6)
    assert s.y_test.tolist() == (np.arange(9) % C).tolist()


def test_csv_and_npz_of_the_same_table_give_the_same_split(tmp_path):
    X, y = _raw()
    np.savez(tmp_path / "d.npz", X=X, y=y)
    a = load_user_data(tmp_path / "d.npz", rng=5)
    b = load_user_data(_csv(tmp_path / "d.csv", X, y), rng=5)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-6)
    # stratified: round(0.2 * 20) = 4 test rows of each class
    assert np.bincount(a.y_test).tolist() == [4, 4, 4]
    c = load_user_data(tmp_path / "d.npz", rng=6)  # another seed, another split
    assert not np.array_equal(a.X_test, c.X_test)


@pytest.mark.parametrize("label_column, header_label, at", [
    (None, "label", 1), (None, "y", 2), (None, "target", D), ("target", "target", 0),
    (0, "target", 0), ("0", "target", 0), (-1, "target", D)])
def test_csv_label_column(tmp_path, label_column, header_label, at):
    X, y = _raw()
    X[:, 1] = 10.0 * y
    header = [f"f{j}" for j in range(D)]
    header.insert(at, header_label)
    s = load_user_data(_csv(tmp_path / "d.csv", X, y, header, at), label_column=label_column)
    # feature f1 is 10 x the label, so every label stayed with its row iff each class has one
    # value of f1 (standardised), increasing with the class
    values = [np.unique(s.X_train[s.y_train == k, 1]) for k in range(C)]
    assert all(v.size == 1 for v in values) and values[0] < values[1] < values[2]


# -- the logits loader and the rows they follow -----------------------------------------------

def test_logits_follow_the_rows_of_a_split_made_by_minikd(tmp_path):
    X, y = _raw()
    np.savez(tmp_path / "d.npz", X=X, y=y)
    z = np.zeros((N, C))
    z[:, 0] = np.arange(N)  # logit 0 is the row number in the file
    np.save(tmp_path / "z.npy", z)
    split, (z_tr, z_te) = load_user_files(tmp_path / "d.npz", tmp_path / "z.npy", rng=3)
    assert z_tr.shape == (48, C) and z_te.shape == (12, C)
    rows_tr, rows_te = z_tr[:, 0].astype(int), z_te[:, 0].astype(int)
    assert sorted([*rows_tr, *rows_te]) == list(range(N))  # every file row once
    assert (split.y_train == y[rows_tr]).all() and (split.y_test == y[rows_te]).all()
    # feature 0 (the row number, standardised with the training rows) is one affine map of the
    # logits' row number, on the training and the test rows alike
    mu, sd = rows_tr.mean(), rows_tr.std()
    np.testing.assert_allclose(split.X_train[:, 0], (rows_tr - mu) / sd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(split.X_test[:, 0], (rows_te - mu) / sd, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layout", ["train only", "train then test", "npz", "npz train"])
def test_logits_layouts(tmp_path, layout):
    rng = np.random.default_rng(2)
    tr, te = rng.standard_normal((10, C)), rng.standard_normal((4, C))
    path = tmp_path / ("z.npz" if "npz" in layout else "z.npy")
    if layout == "train only":
        np.save(path, tr)
    elif layout == "train then test":
        np.save(path, np.vstack([tr, te]))
    else:
        np.savez(path, train=tr, **({"test": te} if layout == "npz" else {}))
    got_tr, got_te = load_teacher_logits(path, 10, 4, C)
    assert np.array_equal(got_tr, tr)
    assert (got_te is None) == (layout in ("train only", "npz train"))
    if got_te is not None:
        assert np.array_equal(got_te, te)
