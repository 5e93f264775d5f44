"""The MLP's model files: round trips, atomic saves and their clean-up, and files refused with a
clear error before any of their data is read."""

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

from minikd import MLP


def _saved(tmp_path, **kwargs):
    model = MLP([4, 6, 3], activation="tanh", dropout=0.2, rng=0, **kwargs)
    path = tmp_path / "model.npz"
    model.save(path)
    return model, path


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip_is_bitwise(tmp_path, dtype):
    model, path = _saved(tmp_path, dtype=dtype)
    model.params["b1"] += 0.25  # not just the initial values
    model.save(path)
    loaded = MLP.load(path)
    assert (loaded.sizes, loaded.activation, loaded.dropout, loaded.dtype) == \
           (model.sizes, model.activation, model.dropout, model.dtype)
    assert list(loaded.params) == list(model.params)
    for key, p in model.params.items():
        assert loaded.params[key].dtype == p.dtype
        assert loaded.params[key].tobytes() == p.tobytes()
    x = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_array_equal(loaded.forward(x)[0], model.forward(x)[0])
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary file left behind


def _rewrite(path, change):
    with np.load(path) as npz:
        data = {k: npz[k] for k in npz.files}
    change(data)
    with open(path, "wb") as f:
        np.savez(f, **data)


def _bad_files():
    def truncated(path):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    def random_bytes(path):
        path.write_bytes(np.random.default_rng(0).bytes(500))

    def empty(path):
        path.write_bytes(b"")

    def npy_not_npz(path):
        with open(path, "wb") as f:
            np.save(f, np.ones(3))

    def corrupt_member(path):  # flip bytes inside the stored W1 array: CRC mismatch
        data = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("W1.npy")
        start = info.header_offset + 30 + len(info.filename) + 80
        data[start:start + 16] = bytes(16)
        path.write_bytes(bytes(data))

    def set_(key, value):
        return lambda path: _rewrite(path, lambda d: d.__setitem__(key, value))

    def drop(key):
        return lambda path: _rewrite(path, lambda d: d.pop(key))

    return {
        "truncated": (truncated, "truncated or corrupt|not a valid|not an .npz"),
        "random bytes": (random_bytes, "not an .npz file"),
        "empty": (empty, "not an .npz|truncated or corrupt"),
        "npy": (npy_not_npz, "single .npy array"),
        "corrupt member": (corrupt_member, "truncated or corrupt"),
        "wrong version": (set_("format_version", np.array(2)), "format version 2"),
        "version not int": (set_("format_version", np.array("1")), "format_version"),
        "W1 wrong shape": (set_("W1", np.ones((4, 5), np.float32)), "array 'W1' has shape"),
        "W2 wrong dtype": (set_("W2", np.ones((6, 3), np.float64)),
                           "array 'W2' has dtype float64; the file says float32"),
        "sizes disagree": (set_("sizes", np.array([4, 7, 3])), "array 'W1' has shape"),
        "sizes bad": (set_("sizes", np.array([4])), "inconsistent architecture"),
        "activation bad": (set_("activation", np.array("gelu")), "inconsistent architecture"),
        "dtype bad": (set_("dtype", np.array("int8")), "inconsistent architecture"),
        "object array": (set_("b1", np.array([None, 1], dtype=object)), "object array"),
        "missing b2": (drop("b2"), "missing \\['b2'\\]"),
        "missing sizes": (drop("sizes"), "missing key"),
        "extra W3": (set_("W3", np.ones((3, 3), np.float32)), "unexpected \\['W3'\\]"),
        "nan weight": (set_("b1", np.full(6, np.nan, np.float32)), "NaN or inf"),
    }


@pytest.mark.parametrize("name", list(_bad_files()))
def test_bad_files_are_refused_with_a_clear_error(tmp_path, name):
    corrupt, message = _bad_files()[name]
    _, path = _saved(tmp_path)
    corrupt(path)
    with pytest.raises(ValueError, match=message) as info:
        MLP.load(path)
    assert str(path) in str(info.value)


def test_missing_file_and_bad_path_type(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        MLP.load(tmp_path / "absent.npz")
    with pytest.raises(TypeError, match="'path' parameter of MLP.save"):
        MLP([2, 2]).save(3)


def test_exception_mid_write_leaves_old_file_and_no_temp_file(tmp_path, monkeypatch):
    model, path = _saved(tmp_path)
    before = path.read_bytes()
    saved_W1 = model.params["W1"].copy()

    def broken_savez(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    model.params["W1"] += 1.0
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(MLP.load(path).params["W1"], saved_W1)


def test_save_to_a_new_file_with_a_failing_writer_leaves_nothing(tmp_path, monkeypatch):
    def broken_savez(file, **arrays):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        MLP([2, 2]).save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# -- issue 13: what a file that is not a model file is ---------------------------------------


@pytest.mark.parametrize("content, message", [
    (b"hello world, not a model\n", r"not an .npz file \(it is a text file starting with "
                                    r"'hello world, not a model\\n'\); expected an archive "
                                    r"written by MLP.save"),
    (b"\x80\x04\x95\x10\x00\x00", "it looks like a pickle, which minikd never reads"),
    (b"PK\x03\x04 and then nothing", "a zip archive, truncated or corrupt"),
])
def test_a_file_that_is_not_an_npz_is_described(tmp_path, content, message):
    path = tmp_path / "model.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        MLP.load(path)


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(ValueError, match="it is a folder"):
        MLP.load(tmp_path)


# -- issue 14, item 10: files left open, temporary files left behind --------------------------


@pytest.mark.parametrize("damage", ["truncated", "corrupt member", "object array"])
def test_a_refused_file_is_closed(tmp_path, damage):
    corrupt, _ = _bad_files()[damage]
    _, path = _saved(tmp_path)
    corrupt(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(ValueError):
            MLP.load(path)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


_SLOW_SAVE = textwrap.dedent("""
    import sys, time
    import numpy as np
    from minikd import MLP

    def stuck_savez(file, **arrays):
        file.write(b"PK\\x03\\x04 half an archive")
        file.flush()
        time.sleep(60)

    np.savez = stuck_savez
    MLP([4, 6, 3], rng=0).save(sys.argv[1])
""")


def _killed_save(path):
    """Start a save in another process, SIGKILL it mid-write; its temporary file's name."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(path)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not [n for n in os.listdir(path.parent) if n.endswith(".tmp")]:
            assert child.poll() is None and time.monotonic() < deadline, "no save started"
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    (tmp,) = [n for n in os.listdir(path.parent) if n.endswith(".tmp")]
    return tmp, child.pid


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and process ids are POSIX")
def test_the_next_save_removes_what_killed_saves_left_and_keeps_live_ones(tmp_path):
    path = tmp_path / "model.npz"
    left, dead_pid = _killed_save(path)
    assert left.startswith(".model.npz.minikd-") and f"-{dead_pid}-" in left
    # a temporary file of a writer that still runs, one of another host (recent, and a day
    # old), and a file that is not minikd's
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = left.split(".minikd-")[1].split("-")[0]
        running = f".other.npz.minikd-{host}-{live.pid}-abc123.tmp"
        other_host = "0" * 8 if host != "0" * 8 else "1" * 8
        recent, old = (f".m.npz.minikd-{other_host}-1-{s}.tmp" for s in ("new", "old"))
        for name in (running, recent, old, "notes.tmp"):
            (tmp_path / name).write_bytes(b"x")
        two_days_ago = time.time() - 2 * 24 * 3600
        os.utime(tmp_path / old, (two_days_ago, two_days_ago))
        MLP([2, 2], rng=0).save(tmp_path / "another.npz")  # any save to the folder
        assert sorted(os.listdir(tmp_path)) == sorted(
            ["another.npz", running, recent, "notes.tmp"])
    finally:
        live.kill()
        live.wait()


# -- issue 14, item 11: nothing is read before the archive is checked -------------------------


def _add_member(path, name, header_shape, data):
    """Append a member whose .npy header declares a float64 array of ``header_shape`` and
    whose data is the bytes ``data``."""
    header = {"descr": "<f8", "fortran_order": False, "shape": header_shape}
    with open(path, "r+b") as f, zipfile.ZipFile(f, "a") as z:
        with z.open(name, "w", force_zip64=True) as m:
            np.lib.format.write_array_header_1_0(m, header)
            m.write(data)


def _peak_bytes_of(call):
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_an_extra_member_is_refused_before_it_is_read(tmp_path):
    _, path = _saved(tmp_path)
    n = 6_000_000  # 48 MB of zeros, about 50 kB deflated
    with open(path, "r+b") as f, zipfile.ZipFile(f, "a", zipfile.ZIP_DEFLATED) as z:
        with z.open("junk.npy", "w", force_zip64=True) as m:
            np.lib.format.write_array(m, np.zeros(n))
    assert path.stat().st_size < 1_000_000

    def load():
        with pytest.raises(ValueError, match="unexpected member 'junk.npy'"):
            MLP.load(path)

    assert _peak_bytes_of(load) < 8 * n / 10  # before: the 48 MB member was read first


def test_a_header_declaring_a_huge_array_is_refused_without_allocating_it(tmp_path):
    _, path = _saved(tmp_path)
    with np.load(path) as npz:
        data = {k: npz[k] for k in npz.files if k != "W1"}
    with open(path, "wb") as f:
        np.savez(f, **data)
    _add_member(path, "W1.npy", (4, 10**12), b"\0" * 64)  # 32 TB declared, 64 bytes given

    def load():
        with pytest.raises(ValueError, match=r"array 'W1' declares shape \(4, 1000000000000\)"):
            MLP.load(path)

    assert _peak_bytes_of(load) < 1_000_000
