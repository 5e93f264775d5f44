"""Your own data and teacher logits: the loaders (minikd.experiments.userdata) and
``minikd distill --data FILE --teacher-logits FILE``."""

import json
import re
import zipfile

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


# -- bad files: a ValueError naming the file and what was expected ----------------------------

def _npy_bytes_declaring(shape):
    """An .npy whose header declares ``shape`` of float64 but that holds 16 data bytes."""
    import io
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue() + b"\0" * 16


def _bad_data(tmp_path, case):
    X, y = _raw()
    p = tmp_path / ("d.csv" if case.startswith("csv") else "d.npz")
    if case == "missing y":
        np.savez(p, X=X)
    elif case == "unexpected key":
        np.savez(p, X=X, y=y, labels=y)
    elif case == "X 1-D":
        np.savez(p, X=X[:, 0], y=y)
    elif case == "y 2-D":
        np.savez(p, X=X, y=y[:, None])
    elif case == "rows differ":
        np.savez(p, X=X, y=y[:-1])
    elif case == "X_test alone":
        np.savez(p, X=X, y=y, X_test=X)
    elif case == "negative label":
        y[7] = -1
        np.savez(p, X=X, y=y)
    elif case == "fractional label":
        np.savez(p, X=X, y=np.where(np.arange(N) == 5, 1.5, y))
    elif case == "test label outside":
        np.savez(p, X=X, y=y, X_test=X[:3], y_test=np.array([0, 1, C]))
    elif case == "NaN feature":
        X[4, 2] = np.nan
        np.savez(p, X=X, y=y)
    elif case == "object array":
        np.savez(p, X=X, y=np.array([None] * N, dtype=object))
    elif case == "inflated member":
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("X.npy", _npy_bytes_declaring((10**6, D)))
            z.writestr("y.npy", _npy_bytes_declaring((2,)))
    elif case == "too few rows to split":
        np.savez(p, X=X[:4], y=y[:4])  # classes of 2, 1, 1 rows: 20 % of each rounds to 0
    elif case == "a pickle":
        p.write_bytes(b"\x80\x04\x95" + b"\0" * 20)
    elif case == "csv text cell":
        _csv(p, X, y)
        lines = p.read_text().splitlines()
        cells = lines[3].split(",")
        cells[2] = "abc"
        lines[3] = ",".join(cells)
        p.write_text("\n".join(lines) + "\n")
    elif case == "csv text cell after a blank line":
        _csv(p, X, y)
        lines = p.read_text().splitlines()
        lines.insert(2, "")
        lines[5] = lines[5].replace(lines[5].split(",")[0], "x1", 1)
        p.write_text("\n".join(lines) + "\n")
    elif case == "csv nan cell":
        _csv(p, X, y)
        p.write_text(p.read_text().replace("\n0.0,", "\nnan,", 1))  # row 2, column f0
    elif case == "csv ragged row":
        _csv(p, X, y)
        p.write_text(p.read_text() + "1,2\n")
    elif case == "csv no such label column":
        _csv(p, X, y, header=[f"f{j}" for j in range(D)] + ["class"])
    return p


BAD_DATA = {
    "missing y": r"missing array\(s\) \['y'\]",
    "unexpected key": "unexpected member 'labels.npy'",
    "X 1-D": "'X' must be 2-D",
    "y 2-D": "'y' must be 1-D",
    "rows differ": "'X' has 60 rows but 'y' 59 labels",
    "X_test alone": "'X_test' and 'y_test' come together",
    "negative label": "outside the classes.*-1 at row 7",
    "fractional label": "outside the classes.*1.5 at row 5",
    "test label outside": "'y_test' holds label 3 at row 2, outside.*classes 0..2",
    "NaN feature": r"NaN or inf \(first at row 4, column 2\)",
    "object array": "object array",
    "inflated member": r"declares shape \(1000000, 4\)",
    "a pickle": "looks like a pickle",
    "too few rows to split": "no X_test, and minikd cannot split it.*empty split",
    "csv text cell": "row 4, column 'f2': 'abc' is not a number",
    "csv text cell after a blank line": "row 6, column 'f0': 'x1'",  # line 6 of the file
    "csv ragged row": "row 62 has 2 cells, the header 5",
    "csv nan cell": "row 2, column 'f0': 'nan' is not a finite number",
    "csv no such label column": "no label column 'label'",
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_files_are_refused_naming_the_file(tmp_path, case):
    path = _bad_data(tmp_path, case)
    label = "label" if case == "csv no such label column" else None
    with pytest.raises(ValueError, match=BAD_DATA[case]) as info:
        load_user_data(path, label_column=label)
    assert f"Cannot read a data set from '{path}'" in str(info.value)


def _bad_logits(tmp_path, case, n=48, m=12):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((n + m, C))
    p = tmp_path / ("z.npz" if case.startswith("npz") else "z.npy")
    if case == "rows":
        np.save(p, z[:n - 1])
    elif case == "classes":
        np.save(p, np.hstack([z, z[:, :1]]))
    elif case in ("NaN", "inf"):
        z[n + 3, 1] = np.nan if case == "NaN" else -np.inf
        np.save(p, z)
    elif case == "1-D":
        np.save(p, z[:, 0])
    elif case == "object":
        np.save(p, np.array([[None] * C] * n, dtype=object), allow_pickle=True)
    elif case == "text":
        p.write_text("0.1,0.2,0.3\n")
    elif case == "npz missing train":
        np.savez(p, test=z[n:])
    elif case == "npz test rows":
        np.savez(p, train=z[:n], test=z[n + 1:])
    elif case == "inflated":
        p.write_bytes(_npy_bytes_declaring((n, C)))
    return p


BAD_LOGITS = {
    "rows": "'logits' has 47 rows; the data needs 48 .* or 60",
    "classes": "'logits' has 4 columns .* the labels have 3 classes",
    "NaN": r"the test logits hold NaN or inf \(first at row 3, column 1\)",
    "inf": r"the test logits hold NaN or inf \(first at row 3, column 1\)",
    "1-D": "'logits' must be 2-D",
    "object": "object array",
    "text": "not an .npy or .npz file .*text file",
    "npz missing train": r"missing array\(s\) \['train'\]",
    "npz test rows": "'test' has 11 rows",
    "inflated": r"declares shape \(48, 3\)",
}


@pytest.mark.parametrize("case", sorted(BAD_LOGITS))
def test_bad_logits_files_are_refused_naming_the_file(tmp_path, case):
    path = _bad_logits(tmp_path, case)
    with pytest.raises(ValueError, match=BAD_LOGITS[case]) as info:
        load_teacher_logits(path, 48, 12, C)
    assert f"Cannot read teacher logits from '{path}'" in str(info.value)


# -- the command line -------------------------------------------------------------------------

def _main(argv, capsys):
    from minikd import cli
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def _good_files(tmp_path):
    """A small 3-class task, its .npz with a test part, and a teacher's logits (train, test)."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((150, 5))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    W = np.zeros((5, C))
    W[0], W[1] = [-3, 1, 2], [-1, -1, 4]  # a hand-made teacher, right on most rows
    z = X @ W
    np.savez(tmp_path / "d.npz", X=X[:120], y=y[:120], X_test=X[120:], y_test=y[120:])
    np.savez(tmp_path / "z.npz", train=z[:120], test=z[120:])
    return y, z


def test_cli_distills_from_given_logits_without_training_a_teacher(tmp_path, capsys):
    y, z = _good_files(tmp_path)
    status, out, err = _main(["distill", "--data", str(tmp_path / "d.npz"), "--teacher-logits",
                              str(tmp_path / "z.npz"), "--seeds", "2", "--epochs", "3",
                              "--json"], capsys)
    assert status == 0, err
    r = json.loads(out)
    teacher_acc = np.mean(z[120:].argmax(axis=1) == y[120:])  # from the test logits
    assert r["summary"]["teacher"]["mean"] == pytest.approx(teacher_acc)
    assert r["summary"]["teacher"]["std"] == 0.0
    assert r["teacher_source"] == "given logits" and r["data"]["source"] == "d.npz"
    assert [p["seed"] for p in r["per_seed"]] == [0, 1]
    assert r["data"]["n_train"] == 120 and r["data"]["n_test"] == 30
    assert r["curves"]["teacher"] == [[], []]  # no teacher trained on either seed
    assert r["models"]["teacher"]["n_params"] is None
    assert len(r["curves"]["distilled"][0]) == 3
    status, out, _ = _main(["distill", "--data", str(tmp_path / "d.npz"), "--teacher-logits",
                            str(tmp_path / "z.npz"), "--seeds", "2", "--epochs", "3", "-q"],
                           capsys)
    assert status == 0
    assert "teacher: given logits" in out and f"{100 * teacher_acc:.1f} ± 0.0" in out
    for row in ("student, scratch", "student, scratch + weight decay", "student, distilled"):
        assert row in out


CLI_BAD = [  # (files to break, case, flag)
    ("data", "missing y", "--data"),
    ("data", "X 1-D", "--data"),
    ("data", "csv text cell", "--data"),
    ("data", "negative label", "--data"),
    ("data", "test label outside", "--data"),
    ("logits", "rows", "--teacher-logits"),
    ("logits", "classes", "--teacher-logits"),
    ("logits", "NaN", "--teacher-logits"),
    ("logits", "1-D", "--teacher-logits"),
    ("logits", "npz missing train", "--teacher-logits"),
]


@pytest.mark.parametrize("which, case, flag", CLI_BAD)
def test_cli_bad_file_is_one_line_naming_flag_and_file_before_training(tmp_path, capsys,
                                                                      which, case, flag):
    bad = tmp_path / "bad"
    bad.mkdir()
    if which == "data":
        data, logits = _bad_data(bad, case), None
    else:  # 48 training rows and 12 test rows, as _bad_logits expects
        np.savez(tmp_path / "d.npz", X=np.ones((48, 2)) * np.arange(48)[:, None],
                 y=np.arange(48) % C, X_test=np.ones((12, 2)), y_test=np.arange(12) % C)
        data, logits = tmp_path / "d.npz", _bad_logits(bad, case)
    argv = ["distill", "--data", str(data), "--seeds", "1", "--epochs", "1"]
    if logits is not None:
        argv += ["--teacher-logits", str(logits)]
    status, out, err = _main(argv, capsys)
    assert status == 2 and out == ""
    assert err.count("\n") == 1  # one line: no progress line, so no training began
    bad_file = data if which == "data" else logits
    assert err.startswith(f"minikd distill: error: {flag}: ") and f"'{bad_file}'" in err
    pattern = (BAD_DATA if which == "data" else BAD_LOGITS)[case]
    assert re.search(pattern, err), err


@pytest.mark.parametrize("argv, match", [
    (["--teacher-logits", "z.npy"], "--teacher-logits needs --data FILE"),
    (["--label-column", "y"], "--label-column needs --data FILE"),
    (["--data", "d.npz", "--label-column", "y"], "--label-column is for a .csv --data file"),
    (["--data", "d.npz", "--dataset", "digits"], "--data replaces --dataset"),
    (["--data", "d.npz", "--teacher-logits", "z.npz", "--family", "relation"],
     "--teacher-logits works with --family response only"),
    (["--data", "nowhere.npz"], "--data: Cannot read a data set from 'nowhere.npz': no such"),
])
def test_cli_flag_combinations_refused_in_one_line(capsys, argv, match):
    status, out, err = _main(["distill", *argv], capsys)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert match in err


def test_cli_csv_split_by_minikd_with_logits_for_every_row(tmp_path, capsys):
    X, y = _raw()  # 60 rows, 20 of each of 3 classes
    header = ["species"] + [f"f{j}" for j in range(D)]
    _csv(tmp_path / "d.csv", X, y, header, 0)
    z = np.eye(C)[y] * 5.0  # a teacher right on every row: one-hot logits of the label
    np.save(tmp_path / "z.npy", z)
    status, out, err = _main(["distill", "--data", str(tmp_path / "d.csv"), "--label-column",
                              "species", "--teacher-logits", str(tmp_path / "z.npy"),
                              "--test-fraction", "0.25", "--seeds", "1", "--epochs", "2",
                              "--json", "-q"], capsys)
    assert status == 0, err
    r = json.loads(out)
    # round(0.25 * 20) = 5 test rows per class: 15 test rows, 45 training rows
    assert (r["data"]["n_train"], r["data"]["n_test"]) == (45, 15)
    assert r["summary"]["teacher"]["mean"] == 1.0  # its logits follow the rows they belong to
