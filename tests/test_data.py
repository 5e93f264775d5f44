"""Tests of minikd.data: MNIST-1D against a naive twin and the mnist1d package, IDX files the tests
write, the shipped digits, and the transfer-set tools."""

import gzip
import hashlib
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.ndimage import gaussian_filter

from minikd import data
from minikd.experiments import mnist1d as _mnist1d
from minikd.experiments.data import (
    load_digits,
    load_idx,
    load_mnist,
    make_mnist1d,
    mnist1d_templates,
    omit_classes,
    standardize,
    train_val_split,
)

# ---------------------------------------------------------------------------------------------
# MNIST-1D
# ---------------------------------------------------------------------------------------------


def _global_state():
    s = np.random.get_state()  # noqa: NPY002 (the global state is what is tested)
    return s[0], s[1].copy(), s[2], s[3], s[4]


def _same_global_state(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


def _naive_mnist1d(n_samples, seed, *, train_fraction=0.8, padding=(36, 60), scale_coeff=0.4,
                   max_translation=48, corr=0.25, iid=0.02, shear=0.75, length=40):
    """The recipe of make_mnist1d's docstring, one example at a time, with np.interp."""
    rs = np.random.RandomState(seed)
    raw = _mnist1d._TEMPLATES_RAW
    xs, ys = [], []
    for c in range(10):
        for _ in range(n_samples // 10):
            t = raw[c] - raw[c].mean()
            t = t / t.std()
            t = (t - t[0]) / 6.0 + 1e-8                                   # step 1
            p = padding[0] + int(rs.rand() * (padding[1] - padding[0] + 1))
            x = np.concatenate([t, np.zeros(p)])                          # step 2
            big = 12 + padding[1]
            x = np.interp(np.linspace(0, 1, big), np.linspace(0, 1, x.size), x)  # step 3
            x = x * (1 + scale_coeff * (rs.rand() - 0.5))                 # step 4
            x = np.roll(x, rs.randint(max_translation))                   # step 5
            noise = gaussian_filter(corr * rs.randn(big), 2)              # step 6
            x = np.array([xi if xi != 0 else ni for xi, ni in zip(x, noise, strict=True)])
            x = x + iid * rs.randn(big)                                   # step 7
            x = x - shear * (rs.rand() - 0.5) * np.linspace(-0.5, 0.5, big)  # step 8
            x = np.interp(np.linspace(0, 1, length), np.linspace(0, 1, big), x)  # step 9
            xs.append(x)
            ys.append(c)
    perm = rs.permutation(len(ys))
    X, y = np.array(xs)[perm], np.array(ys)[perm]
    X = (X - X.mean()) / X.std()
    k = int(len(y) * train_fraction)
    return X[:k], y[:k], X[k:], y[k:]


@pytest.mark.parametrize("kwargs", [
    dict(n_samples=200, seed=3),
    dict(n_samples=137, seed=11, train_fraction=0.5, padding=(0, 5), scale_coeff=1.0,
         max_translation=3, corr=1.0, iid=0.5, shear=2.0, length=13),
])
def test_mnist1d_matches_naive_twin(kwargs):
    seed = kwargs.pop("seed")
    twin = _naive_mnist1d(kwargs.pop("n_samples"), seed, **kwargs)
    names = {"corr": "corr_noise_scale", "iid": "iid_noise_scale", "shear": "shear_scale"}
    mk = {names.get(k, k): v for k, v in kwargs.items()}
    ours = make_mnist1d(len(twin[1]) + len(twin[3]), rng=seed, dtype=np.float64, **mk)
    for a, b in zip(ours, twin, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_mnist1d_reproduces_the_mnist1d_package():
    mnist1d_data = pytest.importorskip("mnist1d.data")
    cases = [
        # The package's defaults (seed 42) but 200 samples instead of 5000 to stay fast (a
        # bitwise check needs no more); the full default set was also compared once, bitwise
        # equal, when this test was written.
        (dict(num_samples=200), dict(n_samples=200)),
        (dict(num_samples=150, seed=5, train_split=0.7, padding=[10, 20], scale_coeff=0.9,
              max_translation=7, corr_noise_scale=0.5, iid_noise_scale=0.1, shear_scale=1.5,
              shuffle_seq=True, final_seq_length=25),
         dict(n_samples=150, rng=5, train_fraction=0.7, padding=(10, 20), scale_coeff=0.9,
              max_translation=7, corr_noise_scale=0.5, iid_noise_scale=0.1, shear_scale=1.5,
              shuffle_seq=True, length=25)),
    ]
    for theirs_kw, ours_kw in cases:
        args = mnist1d_data.get_dataset_args()
        for k, v in theirs_kw.items():
            setattr(args, k, v)
        ref = mnist1d_data.make_dataset(args)
        ours_kw = {"rng": 42, **ours_kw}
        before = _global_state()
        ours = make_mnist1d(**ours_kw, dtype=np.float64)
        assert _same_global_state(before, _global_state())
        # The same float64 operations in the same order: bitwise equal with scipy 1.17 (whose
        # interp1d hands 1-D linear interpolation to np.interp, as _resample does); an older
        # scipy interpolates with its own formula, which may differ in the last bits.
        np.testing.assert_allclose(ours.X_train, ref["x"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours.X_test, ref["x_test"], rtol=0, atol=1e-12)
        np.testing.assert_array_equal(ours.y_train, ref["y"])
        np.testing.assert_array_equal(ours.y_test, ref["y_test"])
        np.testing.assert_array_equal(mnist1d_templates(), ref["templates"]["x"])


def test_mnist1d_never_touches_the_global_rng():
    np.random.seed(123)  # noqa: NPY002 (the global state is what is tested)
    before = _global_state()
    a = make_mnist1d(100, rng=7)
    make_mnist1d(100, rng=np.random.default_rng(1))
    make_mnist1d(100)
    assert _same_global_state(before, _global_state())
    np.random.seed(999)  # noqa: NPY002 (the output must not depend on it)
    b = make_mnist1d(100, rng=7)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


def test_mnist1d_shapes_balance_and_standardisation():
    X, y, Xt, yt = make_mnist1d(rng=np.random.default_rng(0), dtype=np.float64)
    assert X.shape == (4000, 40) and Xt.shape == (1000, 40)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(np.concatenate([y, yt])), [500] * 10)
    both = np.concatenate([X, Xt])
    assert abs(both.mean()) < 1e-12 and abs(both.std() - 1) < 1e-12
    X32 = make_mnist1d(rng=np.random.default_rng(0)).X_train
    assert X32.dtype == np.float32
    np.testing.assert_array_equal(X32, X.astype(np.float32))
    assert not np.array_equal(X, make_mnist1d(rng=np.random.default_rng(1), dtype=float)[0])


def test_mnist1d_templates_are_whitened_and_start_at_zero():
    t = mnist1d_templates()
    assert t.shape == (10, 12)
    np.testing.assert_array_equal(t[:, 0], 0.0)
    np.testing.assert_allclose(t.std(axis=1), 1 / 6, rtol=1e-12)
    # Argmax positions by eye from the paper's Fig. 1: 0 bulges up mid-signal, 6 dips mid-signal.
    assert 3 <= t[0].argmax() <= 7 and 3 <= t[6].argmin() <= 7


@given(m=st.integers(2, 90), n=st.integers(2, 90), rows=st.integers(1, 4), data_=st.data())
def test_resample_equals_np_interp(m, n, rows, data_):
    y = data_.draw(arrays(np.float64, (rows, m), elements=st.floats(-1e4, 1e4)))
    got = _mnist1d._resample(y, n)
    for r in range(rows):
        want = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, m), y[r])
        np.testing.assert_array_equal(got[r], want)


@pytest.mark.parametrize("kwargs, exc", [
    (dict(n_samples=9), ValueError),
    (dict(n_samples=100.0), TypeError),
    (dict(n_samples=True), TypeError),
    (dict(train_fraction=1.0), ValueError),
    (dict(train_fraction=0.001, n_samples=100), ValueError),
    (dict(padding=(5, 2)), ValueError),
    (dict(padding=(-1, 2)), ValueError),
    (dict(padding=3), ValueError),
    (dict(scale_coeff=-0.1), ValueError),
    (dict(scale_coeff=float("nan")), ValueError),
    (dict(iid_noise_scale="big"), TypeError),
    (dict(max_translation=0), ValueError),
    (dict(max_translation=73), ValueError),
    (dict(length=1), ValueError),
    (dict(shuffle_seq=1), TypeError),
    (dict(rng=-1), ValueError),
    (dict(rng=2**32), ValueError),
    (dict(rng=1.5), TypeError),
    (dict(rng="seed"), TypeError),
    (dict(dtype=np.int32), TypeError),
])
def test_mnist1d_bad_arguments(kwargs, exc):
    with pytest.raises(exc, match="make_mnist1d"):
        make_mnist1d(**kwargs)


# ---------------------------------------------------------------------------------------------
# digits
# ---------------------------------------------------------------------------------------------

def test_digits_shape_range_and_class_counts():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(X * 16, np.round(X * 16))  # counts 0..16 out of 16
    # The per-class counts published for the UCI test split.
    np.testing.assert_array_equal(np.bincount(y),
                                  [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])


def test_digits_file_is_the_documented_one():
    blob = (data._DATAFILES / "digits.csv.gz").read_bytes()
    readme = (data._DATAFILES / "README.md").read_text()
    assert hashlib.sha256(blob).hexdigest() in readme
    assert "CC BY 4.0" in readme and "Alpaydin" in readme


def test_digits_equal_scikit_learn():
    datasets = pytest.importorskip("sklearn.datasets")
    ref = datasets.load_digits()
    X, y = load_digits()
    np.testing.assert_array_equal(X, ref.data / 16)
    np.testing.assert_array_equal(y, ref.target)


# ---------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------

_CODES = {np.dtype(np.uint8): 8, np.dtype(np.int8): 9, np.dtype(np.int16): 11,
          np.dtype(np.int32): 12, np.dtype(np.float32): 13, np.dtype(np.float64): 14}


def _idx_bytes(arr):
    """IDX encoding written from the format description, independent of load_idx."""
    head = bytes([0, 0, _CODES[arr.dtype], arr.ndim]) + b"".join(
        struct.pack(">I", d) for d in arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def _write(path, blob, gz=False):
    path.write_bytes(gzip.compress(blob) if gz else blob)
    return path


@pytest.mark.parametrize("dtype", list(_CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_round_trip(tmp_path, dtype, gz):
    base = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    if dtype == np.uint8:
        arr = (base + 200).astype(dtype)  # above 127: catches a signed read
    elif np.dtype(dtype).kind == "f":
        arr = ((base - 7) * 1.5).astype(dtype)
    else:
        arr = ((base - 7) * 3).astype(dtype)  # negatives: catches an unsigned read
    f = _write(tmp_path / "x-idx3-ubyte", _idx_bytes(arr), gz)
    got = load_idx(f)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


@pytest.mark.parametrize("blob, match", [
    (b"", "bad magic"),
    (bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]), "bad magic"),
    (bytes([0, 0, 7, 1, 0, 0, 0, 1, 5]), "type byte"),
    (bytes([0, 0, 8, 3, 0, 0, 0, 1]), "truncated header"),
    (bytes([0, 0, 8, 0]), "truncated header"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 4, 5, 6]), "truncated"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 1, 5, 6]), "longer than its header"),
    (gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4]))[:-6], "gzipped"),
])
def test_load_idx_malformed(tmp_path, blob, match):
    f = _write(tmp_path / "bad-idx1-ubyte", blob)
    with pytest.raises(ValueError, match=match) as info:
        load_idx(f)
    assert "bad-idx1-ubyte" in str(info.value)


def test_load_idx_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_idx(tmp_path / "nope")


def _mnist_folder(tmp_path, prefix="train", n=5, n_labels=None, gz=False, dot=False,
                  labels=None):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 4, 3)).astype(np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    if labels is None:
        labels = (np.arange(n if n_labels is None else n_labels) % 10).astype(np.uint8)
    sep = "." if dot else "-"
    end = ".gz" if gz else ""
    _write(tmp_path / f"{prefix}-images{sep}idx3-ubyte{end}", _idx_bytes(images), gz)
    _write(tmp_path / f"{prefix}-labels{sep}idx1-ubyte{end}", _idx_bytes(labels), gz)
    return images, labels


@pytest.mark.parametrize("kind, prefix", [("train", "train"), ("test", "t10k")])
@pytest.mark.parametrize("gz, dot", [(False, False), (True, False), (False, True)])
def test_load_mnist(tmp_path, kind, prefix, gz, dot):
    images, labels = _mnist_folder(tmp_path, prefix, gz=gz, dot=dot)
    X, y = load_mnist(tmp_path, kind=kind)
    assert X.shape == (5, 12) and X.dtype == np.float32 and y.dtype == np.int64
    assert X[0, 0] == 0.0 and X[0, 1] == 1.0
    np.testing.assert_allclose(X, images.reshape(5, 12) / 255.0, rtol=1e-7)
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder"):
        load_mnist(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    _mnist_folder(tmp_path, n=5, n_labels=4)
    with pytest.raises(ValueError, match="5 images but .* 4 labels"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        load_mnist(tmp_path, kind="test")
    with pytest.raises(ValueError, match="'kind'"):
        load_mnist(tmp_path, kind="val")


def test_load_mnist_bad_content(tmp_path):
    _mnist_folder(tmp_path, labels=np.array([1, 2, 3, 4, 12], dtype=np.uint8))
    with pytest.raises(ValueError, match="label 12"):
        load_mnist(tmp_path)
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(np.zeros((5, 2, 2), np.float32)))
    with pytest.raises(ValueError, match="3-D uint8"):
        load_mnist(tmp_path)


# ---------------------------------------------------------------------------------------------
# transfer-set tools
# ---------------------------------------------------------------------------------------------

def test_omit_classes():
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.array([0, 3, 1, 3, 2, 1])
    Xk, yk = omit_classes(X, y, 3)
    np.testing.assert_array_equal(yk, [0, 1, 2, 1])
    np.testing.assert_array_equal(Xk, X[[0, 2, 4, 5]])
    assert Xk.dtype == np.float32
    Xk, yk = omit_classes(X, y, [1, 3])
    np.testing.assert_array_equal(yk, [0, 2])
    with pytest.raises(ValueError, match="class 7"):
        omit_classes(X, y, 7)
    with pytest.raises(ValueError, match="no example"):
        omit_classes(X, y, [0, 1, 2, 3])
    with pytest.raises(TypeError, match="classes"):
        omit_classes(X, y, 1.0)
    with pytest.raises(TypeError, match="classes"):
        omit_classes(X, y, [])
    with pytest.raises(ValueError, match="shape"):
        omit_classes(X, y[:3], 1)


@given(counts=st.lists(st.integers(1, 30), min_size=1, max_size=5),
       frac=st.floats(0.05, 0.95), seed=st.integers(0, 2**32 - 1))
def test_train_val_split_is_stratified_and_a_partition(counts, frac, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    y = y[np.random.default_rng(seed).permutation(y.size)]
    X = np.arange(y.size, dtype=np.float64)[:, None]  # row ids
    want_val = np.floor(frac * np.array(counts) + 0.5).astype(int)
    if want_val.sum() in (0, y.size):
        with pytest.raises(ValueError, match="empty split"):
            train_val_split(X, y, val_fraction=frac, rng=seed)
        return
    Xtr, ytr, Xv, yv = train_val_split(X, y, val_fraction=frac, rng=seed)
    ids = np.concatenate([Xtr[:, 0], Xv[:, 0]])
    np.testing.assert_array_equal(np.sort(ids), np.arange(y.size))
    np.testing.assert_array_equal(y[Xtr[:, 0].astype(int)], ytr)
    np.testing.assert_array_equal(np.bincount(yv, minlength=len(counts)), want_val)
    assert np.all(np.diff(Xtr[:, 0]) > 0) and np.all(np.diff(Xv[:, 0]) > 0)


def test_train_val_split_rng():
    X, y = np.zeros((100, 1)), np.repeat(np.arange(4), 25)
    X[:, 0] = np.arange(100)
    a = train_val_split(X, y, val_fraction=0.2, rng=1)
    b = train_val_split(X, y, val_fraction=0.2, rng=1)
    c = train_val_split(X, y, val_fraction=0.2, rng=2)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    assert not np.array_equal(a.X_test, c.X_test)
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(X, y, val_fraction=1.0)
    with pytest.raises(TypeError, match="rng"):
        train_val_split(X, y, rng=np.random.RandomState(0))


def test_standardize():
    rng = np.random.default_rng(0)
    A = rng.normal(3.0, 2.0, size=(50, 3))
    A[:, 2] = 5.0  # constant column: only centred
    B = rng.normal(size=(7, 3))
    a, b = standardize(A, B)
    np.testing.assert_allclose(a[:, :2].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(a[:, :2].std(0), 1, rtol=1e-12)
    np.testing.assert_array_equal(a[:, 2], 0.0)
    for j in range(2):  # the formula, column by column, with statistics from A only
        mu = sum(A[:, j]) / 50
        sd = (sum((A[:, j] - mu) ** 2) / 50) ** 0.5
        np.testing.assert_allclose(b[:, j], (B[:, j] - mu) / sd, rtol=1e-10)
    np.testing.assert_allclose(b[:, 2], B[:, 2] - 5.0)
    (a32,) = standardize(A.astype(np.float32))
    assert a32.dtype == np.float32
    with pytest.raises(ValueError, match="columns"):
        standardize(A, B[:, :2])


@pytest.mark.parametrize("bad, exc", [
    (np.array([[np.nan, 1.0]]), ValueError),
    (np.array([[np.inf, 1.0]]), ValueError),
    (np.ones((2, 2), dtype=bool), TypeError),
    (np.ones((2, 2), dtype=complex), TypeError),
    (np.array([[object(), 1]], dtype=object), TypeError),
    (np.ones(3), ValueError),
    (np.ones((0, 2)), ValueError),
    ([[1.0, 2.0], [3.0]], TypeError),
])
def test_bad_feature_arrays(bad, exc):
    n = len(bad)
    y = np.zeros(n, dtype=np.int64)
    with pytest.raises(exc):
        omit_classes(bad, y, 0)
    with pytest.raises(exc):
        train_val_split(bad, y)
    with pytest.raises(exc):
        standardize(bad)


def test_bad_labels():
    X = np.ones((4, 2))
    with pytest.raises(TypeError, match="'y'"):
        omit_classes(X, np.array([0.0, 1.0, 0.0, 1.0]), 0)
    with pytest.raises(TypeError, match="'y'"):
        train_val_split(X, np.array([True, False, True, False]))


# ---------------------------------------------------------------------------------------------
# sizes and files that used to fail late, silently or inside numpy
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["scale_coeff", "corr_noise_scale", "iid_noise_scale",
                                  "shear_scale"])
def test_mnist1d_scales_that_overflow_are_refused(name):
    # 1e300 gave an all-zero data set after an overflow warning
    with pytest.raises(ValueError, match=rf"'{name}' parameter of make_mnist1d.*1e\+100"):
        data.make_mnist1d(n_samples=100, rng=0, **{name: 1e300})
    X = data.make_mnist1d(n_samples=100, rng=0, **{name: 1e100}).X_train  # the bound itself
    assert np.isfinite(X).all() and X.std() > 0.5


@pytest.mark.parametrize("kwargs, name", [({"n_samples": 10**12}, "n_samples"),
                                          ({"length": 10**9}, "length"),
                                          ({"padding": (0, 10**6)}, "padding")])
def test_mnist1d_sizes_beyond_memory_are_refused_before_allocating(kwargs, name):
    with pytest.raises(ValueError, match=rf"'{name}' parameter of make_mnist1d.*GiB"):
        data.make_mnist1d(**kwargs)


def test_idx_header_declaring_more_than_memory_is_refused_before_inflating(tmp_path):
    # a small gzip claiming 10**9 images of 28 x 28: the header is read from the stream first
    head = bytes([0, 0, 8, 3]) + struct.pack(">III", 10**9, 28, 28)
    f = _write(tmp_path / "train-images-idx3-ubyte.gz", head + bytes(4096), gz=True)
    assert f.stat().st_size < 1000
    with pytest.raises(ValueError, match=r"declares shape \(1000000000, 28, 28\).*memory"):
        load_idx(f)


def test_idx_dimensions_whose_product_wraps_in_int64_are_sized_exactly(tmp_path):
    # (2**16)**4 = 2**64 wraps to 0 in int64: numpy then said "cannot reshape array of size 0"
    head = bytes([0, 0, 8, 4]) + struct.pack(">IIII", *[2**16] * 4)
    f = _write(tmp_path / "x-idx3-ubyte", head)
    with pytest.raises(ValueError, match="x-idx3-ubyte declares shape"):
        load_idx(f)
    head = bytes([0, 0, 8, 2]) + struct.pack(">II", 2**16, 2**16)  # 2**32 bytes declared
    f = _write(tmp_path / "y-idx3-ubyte", head + bytes(16))
    with pytest.raises(ValueError, match="y-idx3-ubyte is truncated"):
        load_idx(f)


def test_load_mnist_names_what_it_was_given(tmp_path):
    with pytest.raises(TypeError, match="'folder' parameter of load_mnist.*Got None"):
        load_mnist(None)
    _mnist_folder(tmp_path)
    with pytest.raises(ValueError, match="is a file; expected the folder"):
        load_mnist(tmp_path / "train-images-idx3-ubyte")
