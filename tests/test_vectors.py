"""Golden vectors: the shipped tests/data/golden_vectors.json equals what minikd computes now, the
file is self-describing (each case re-evaluates from its own fields), and writing is atomic."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

import minikd
from minikd.verify import vectors

DATA = Path(__file__).resolve().parent / "data"
GOLDEN = DATA / "golden_vectors.json"
REGENERATE = ("regenerate with: python -c \"from minikd.verify.vectors import "
              "write_golden_vectors; write_golden_vectors('tests/data/golden_vectors.json')\" "
              "(only if the change is intended)")


def test_shipped_golden_file_matches_minikd_now():
    shipped = vectors.load_vectors(GOLDEN)
    now = vectors.golden_vectors()
    assert [c["name"] for c in shipped["cases"]] == [c["name"] for c in now["cases"]], REGENERATE
    for old, new in zip(shipped["cases"], now["cases"], strict=True):
        assert old["function"] == new["function"] and old["params"] == new["params"]
        assert old["inputs"] == json.loads(json.dumps(new["inputs"])), old["name"]
        assert math.isclose(old["loss"], new["loss"], rel_tol=1e-12, abs_tol=1e-12), \
            f"{old['name']}: {REGENERATE}"
        np.testing.assert_allclose(old["grad"], new["grad"], rtol=1e-12, atol=1e-12,
                                   err_msg=f"{old['name']}: {REGENERATE}")


def test_every_case_re_evaluates_from_its_own_fields():
    rows = vectors.compare_vectors(vectors.load_vectors(GOLDEN))
    assert rows and all(r["loss_error"] <= 1e-12 and r["grad_error"] <= 1e-12 for r in rows)


def test_golden_file_covers_every_loss_and_every_preset():
    doc = vectors.load_vectors(GOLDEN)
    functions = {c["function"] for c in doc["cases"]}
    assert {"cross_entropy", "soft_cross_entropy", "kl_divergence", "kd_loss",
            "distillation_loss", "dkd_loss", "kd_loss_as", "hint_loss", "cosine_loss",
            "attention_transfer_loss", "rkd_distance_loss", "rkd_angle_loss", "sp_loss",
            "pkt_loss", "at_loss_as", "rkd_loss_as", "forward_kl", "reverse_kl",
            "generalized_jsd", "skew_kl", "skew_reverse_kl", "topk_divergence"} <= functions
    for family in ("kd", "at", "rkd"):
        presets = {c["params"]["convention"] for c in doc["cases"]
                   if c["function"] == f"{family}_loss_as"}
        assert presets == set(minikd.CONVENTIONS[family]), family


def test_golden_values_agree_with_kd_anchors_table():
    """kd-anchors.md §1.1 computed these independently of minikd."""
    cases = {c["name"]: c for c in vectors.load_vectors(GOLDEN)["cases"]}
    assert cases["kd_loss/T=1"]["loss"] == pytest.approx(0.6510139477, abs=1e-10)
    assert cases["kd_loss/T=4"]["loss"] == pytest.approx(0.7579994684, abs=1e-10)
    assert cases["kd_loss/mean"]["loss"] == pytest.approx(0.2526664895, abs=1e-10)
    assert cases["soft_cross_entropy/T=4"]["loss"] == pytest.approx(1.1299462990, abs=1e-10)
    assert cases["kd_loss_as/kd_lib/T=4-soft-only"]["loss"] == pytest.approx(0.1677027773,
                                                                            abs=1e-10)
    assert cases["cross_entropy"]["loss"] == pytest.approx(1.0744586306, abs=1e-10)
    np.testing.assert_allclose(cases["kd_loss/T=4"]["grad"],
                               [[-0.3299074780, 0.0, 0.3299074780],
                                [-0.0503447831, -0.0974538332, 0.1477986164]], atol=1e-10)


def test_floats_round_trip_exactly(tmp_path):
    path = vectors.write_golden_vectors(tmp_path / "g.json")
    doc = vectors.load_vectors(path)
    now = vectors.golden_vectors()
    for a, b in zip(doc["cases"], now["cases"], strict=True):
        assert a["loss"] == b["loss"] and a["grad"] == b["grad"]  # bit-for-bit through JSON


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "g.json"
    path.write_text("old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(vectors.os, "replace", boom)
    with pytest.raises(OSError):
        vectors.write_golden_vectors(path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.update(format="something-else"), "not a minikd vectors file"),
    (lambda d: d.update(format_version=99), "format_version 99"),
    (lambda d: d["cases"][0].pop("grad"), "lacks"),
    (lambda d: d["cases"][0].update(grad=[[0.0]]), "shape"),
])
def test_load_rejects_wrong_format_version_and_shapes(tmp_path, edit, match):
    doc = json.loads(GOLDEN.read_text())
    edit(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=match):
        vectors.load_vectors(path)


def test_evaluate_case_refuses_a_function_minikd_does_not_export():
    with pytest.raises(ValueError, match="public minikd loss"):
        vectors.evaluate_case({"name": "x", "function": "os_system", "inputs": {}, "params": {}})
