"""minikd.diagnose: every catalog variant, computed by its naive twin, is named first and alone.

The user's side of every test is ``tests/naive_variants.py`` (loops from the formulas, no minikd):
what a user's own code would return. Checked here:

* each variant's closed-form gradient against central finite differences (hypothesis: T away from
  1, alpha, shapes), and its value and gradient against the naive twin;
* on ``diagnose_inputs`` every variant is named first and uniquely, with and without the
  gradient, for a blended loss and for the soft term alone; the inputs really separate every two
  different variants by 1 % (measured with the twins);
* on arbitrary inputs the right variant ranks first or the tie is reported, and the correct loss
  is never ranked below a bug, also from float32 code and when the correct loss is 0;
* ties name what separates them (T = 1, alpha = 0.5, N = 1, Keras' clipping, student = teacher);
* no match is said so; bad input is a clear error; the CLI and the docs page.
"""

from __future__ import annotations

import argparse
import doctest
import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from naive_variants import NAMES, naive_loss

import minikd
from minikd import cli, gradcheck
from minikd.cli import diagnose as cli_diagnose
from minikd.verify.diagnosis import catalog as diagnose_catalog
from minikd.verify.diagnosis import format_diagnosis
from minikd.verify.diagnosis import probes as diagnose_probes
from minikd.verify.diagnosis.catalog import catalog

ISSUE_NAMES = ["correct", "reduction_mean", "reduction_sum", "numel_norm", "missing_t2",
               "t_not_t2", "probs_as_input", "reversed_kl", "student_t1", "teacher_t1",
               "ce_not_kl", "teacher_vs_teacher", "alpha_swapped"]
# The formulas that are one and the same on (N, C) logits, whatever the inputs.
IDENTICAL = {"soft": [{"correct", "repdistiller", "mdistiller", "hf_distilbert"},
                      {"reduction_mean", "numel_norm", "pytorch_kldivloss_mean"},
                      {"missing_t2", "torchdistill"}],
             "blend": [{"correct", "repdistiller", "mdistiller", "hf_distilbert", "torchdistill"},
                       {"reduction_mean", "numel_norm", "pytorch_kldivloss_mean"}]}
DOCS = Path(__file__).resolve().parent.parent / "docs"


def _names(alpha):
    return [v.name for v in catalog(alpha is not None)]


def _group(name, alpha):
    for g in IDENTICAL["soft" if alpha is None else "blend"]:
        if name in g:
            return g
    return {name}


def _user(name, x, alpha="file"):
    """(loss, grad) a user's code implementing ``name`` returns on the inputs x."""
    a = x["alpha"] if alpha == "file" else alpha
    return naive_loss(name, x["student_logits"], x["teacher_logits"], x["labels"],
                      x["temperature"], a)


def _diagnose(x, loss, grad=None, **kw):
    return minikd.diagnose(x["student_logits"], x["teacher_logits"], x["labels"],
                           temperature=x["temperature"], alpha=x["alpha"], loss=loss, grad=grad,
                           **kw)


def _inputs(z_s, z_t, labels, T, alpha):
    return {"student_logits": z_s, "teacher_logits": z_t, "labels": labels, "temperature": T,
            "alpha": alpha}


# ---------------------------------------------------------------- the catalog

def test_catalog_has_every_issue_name_and_every_preset():
    assert _names(0.7) == ISSUE_NAMES + list(minikd.CONVENTIONS["kd"])
    assert _names(None) == [n for n in ISSUE_NAMES if n != "alpha_swapped"] + list(
        minikd.CONVENTIONS["kd"])
    assert sorted(NAMES) == sorted(_names(0.7)), "a variant without a naive twin"
    for v in catalog(True):
        assert v.source and v.explanation and v.code


def _draw_case(draw, alpha_none_ok=True):
    n = draw(st.integers(1, 3))
    c = draw(st.integers(2, 4))
    T = draw(st.one_of(st.floats(0.3, 0.9), st.floats(1.1, 12.0), st.sampled_from([0.5, 4.0])))
    alpha = draw(st.one_of(st.none(), st.floats(0.05, 0.95))) if alpha_none_ok else 0.6
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    z_s = rng.normal(size=(n, c)) * 1.5 * T
    z_t = rng.normal(size=(n, c)) * 1.5 * T
    return z_s, z_t, rng.integers(0, c, size=n), T, alpha


@pytest.mark.parametrize("name", NAMES)
@given(case=st.data())
@example(case=None)
def test_variant_gradient_matches_finite_differences_and_its_twin(name, case):
    if case is None:  # pinned: the issue's kind of inputs, T = 4, alpha = 0.9
        z_s = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
        z_t = np.array([[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]])
        labels, T, alpha = np.array([2, 0]), 4.0, 0.9
    else:
        z_s, z_t, labels, T, alpha = _draw_case(case.draw)
    if name == "alpha_swapped" and alpha is None:
        alpha = 0.3
    variant = {v.name: v for v in catalog(alpha is not None)}[name]
    loss, grad = variant.loss(z_s, z_t, labels, T, alpha)
    twin_loss, twin_grad = naive_loss(name, z_s, z_t, labels, T, alpha)
    assert loss == pytest.approx(twin_loss, rel=1e-10, abs=1e-12)
    # p - e_y at a saturated softmax cancels: allow the absolute round-off of p (~1e-16)
    assert np.abs(grad - twin_grad).max() <= 1e-10 * np.abs(twin_grad).max() + 1e-15
    gradcheck.assert_gradient(lambda z: variant.loss(z, z_t, labels, T, alpha).loss, z_s, grad,
                              scale=T, atol=1e-9)


# ---------------------------------------------------------------- named first and uniquely

@pytest.mark.parametrize("alpha, seed", [(0.7, 0), (None, 1)], ids=["blend", "soft"])
@pytest.mark.parametrize("with_grad", [True, False], ids=["grad", "value"])
def test_every_variant_is_named_first_and_uniquely_on_diagnose_inputs(alpha, with_grad, seed):
    x = minikd.diagnose_inputs(rng=seed, alpha=alpha)
    for name in _names(alpha):
        loss, grad = _user(name, x)
        matches = _diagnose(x, loss, grad if with_grad else None)
        first = matches[0]
        assert {first.name, *first.same_as} == _group(name, alpha), name
        assert first.matched and first.value_error <= 1e-12, name
        assert not any(m.matched for m in matches[1:]), (name, [m.name for m in matches[:3]])
        assert first.ties == ()


@pytest.mark.parametrize("alpha", [0.3, None], ids=["blend", "soft"])
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_diagnose_inputs_separate_every_two_different_variants(alpha, seed):
    x = minikd.diagnose_inputs(rng=seed, n_samples=4, n_classes=6, temperature=2.5, alpha=alpha)
    z_s = x["student_logits"]
    assert z_s.shape == (4, 6) and z_s.dtype == np.float64 and x["labels"].dtype == np.int64
    T = x["temperature"]
    p_s = np.exp(z_s / T - z_s.max(1, keepdims=True) / T)
    p_s /= p_s.sum(1, keepdims=True)
    assert p_s.min() < 1e-7  # a probability Keras clips
    values = {n: _user(n, x)[0] for n in _names(alpha)}
    scale = 1e-3 * max(abs(values["correct"]), T**2 * math.log(6))
    for a in values:
        for b in values:
            if a < b and _group(a, alpha) != _group(b, alpha):
                gap = abs(values[a] - values[b]) / max(abs(values[a]), abs(values[b]), scale)
                assert gap >= 0.01, (a, b, gap)


def test_diagnose_inputs_are_reproducible_and_checked():
    a, b = minikd.diagnose_inputs(rng=7), minikd.diagnose_inputs(rng=7)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    bad = [({"temperature": 1.0}, "'temperature' parameter of diagnose_inputs"),
           ({"alpha": 0.5}, "'alpha' parameter"), ({"alpha": 1.0}, "'alpha' parameter"),
           ({"n_classes": 5}, "'n_classes' parameter"), ({"n_samples": 1}, "'n_samples'"),
           ({"temperature": -2.0}, "'temperature' parameter")]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            minikd.diagnose_inputs(**kwargs)
    with pytest.raises(ValueError, match="could not separate 'reduction_mean' from 'missing_t2'"):
        minikd.diagnose_inputs(n_samples=3, n_classes=4, temperature=2.0)  # C = T²: identical


# ---------------------------------------------------------------- arbitrary inputs, ties

@given(case=st.data(), name=st.sampled_from(NAMES), special=st.sampled_from(
    ["none", "T=1", "alpha=0.5", "N=1", "same"]))
def test_value_alone_ranks_the_variant_first_or_reports_the_tie(case, name, special):
    z_s, z_t, labels, T, alpha = _draw_case(case.draw)
    if special == "T=1":
        T = 1.0
    elif special == "alpha=0.5" and alpha is not None:
        alpha = 0.5
    elif special == "N=1":
        z_s, z_t, labels = z_s[:1], z_t[:1], labels[:1]
    elif special == "same":
        z_t = z_s.copy()
    if name == "alpha_swapped" and alpha is None:
        alpha = 0.3
    x = _inputs(z_s, z_t, labels, T, alpha)
    matches = _diagnose(x, _user(name, x)[0])
    mine = next(m for m in matches if name in (m.name, *m.same_as))
    assert mine.matched
    assert mine is matches[0] or mine.name in dict(matches[0].ties)


@given(case=st.data(), special=st.sampled_from(["none", "T=1", "alpha=0.5", "N=1", "same"]),
       float32=st.booleans())
def test_the_correct_loss_is_never_diagnosed_as_a_bug(case, special, float32):
    z_s, z_t, labels, T, alpha = _draw_case(case.draw)
    T = 1.0 if special == "T=1" else T
    alpha = 0.5 if special == "alpha=0.5" and alpha is not None else alpha
    if special == "N=1":
        z_s, z_t, labels = z_s[:1], z_t[:1], labels[:1]
    if special == "same":
        z_t = z_s.copy()
    x = _inputs(z_s, z_t, labels, T, alpha)
    loss, grad = _float32_correct(x) if float32 else _user("correct", x)
    for g in (grad, None):
        matches = _diagnose(x, loss, g)
        assert matches[0].name == "correct" and matches[0].matched, format_diagnosis(matches)


def _float32_correct(x):
    """The correct loss in float32 the way PyTorch's F.kl_div(log_softmax, softmax) computes it:
    ``p_t * (log(p_t) - log_p_s)`` with ``p_t`` from a softmax (what a PyTorch user gets)."""
    f = np.float32
    z_s, z_t = x["student_logits"].astype(f), x["teacher_logits"].astype(f)
    T, N = f(x["temperature"]), z_s.shape[0]

    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    e = np.exp(z_t / T - (z_t / T).max(axis=1, keepdims=True))
    p_t = e / e.sum(axis=1, keepdims=True)  # F.softmax
    log_p_s = log_softmax(z_s / T)
    kl = np.where(p_t > 0, p_t * (np.log(np.where(p_t > 0, p_t, 1)) - log_p_s), 0)  # xlogy
    loss = kl.sum() / f(N) * T * T
    grad = (np.exp(log_p_s) - p_t) * T / f(N)
    if x["alpha"] is not None:
        a = f(x["alpha"])
        log_p = log_softmax(z_s)
        ce = -log_p[np.arange(N), x["labels"]].sum() / f(N)
        onehot = np.eye(z_s.shape[1], dtype=f)[x["labels"]]
        loss, grad = a * loss + (1 - a) * ce, a * grad + (1 - a) * (np.exp(log_p) - onehot) / f(N)
    return float(loss), grad.astype(np.float64)


def _tie_of(x, name, other):
    matches = _diagnose(x, *_user(name, x))
    first = matches[0]
    assert first.name == name and first.matched
    return dict(first.ties)[other]


def test_ties_name_what_separates_them():
    base = minikd.diagnose_inputs(rng=0)
    x = dict(base, temperature=1.0)
    assert _tie_of(x, "correct", "missing_t2").startswith("a temperature other than T = 1")
    x = dict(base, alpha=0.5)
    assert _tie_of(x, "correct", "alpha_swapped").startswith("an alpha other than 0.5")
    x = {k: v[:1] if k.endswith(("logits", "labels")) else v for k, v in base.items()}
    assert _tie_of(x, "correct", "reduction_sum").startswith("a batch of another size")
    x = dict(base, student_logits=base["student_logits"][1:], teacher_logits=base[
        "teacher_logits"][1:], labels=base["labels"][1:])  # no clipped probability left
    assert _tie_of(x, "correct", "keras").startswith("a student probability below 1e-7")
    x = dict(base, teacher_logits=base["student_logits"], alpha=None)
    matches = _diagnose(x, 0.0, np.zeros((5, 7)))  # student = teacher: the correct loss is 0
    assert matches[0].name == "correct"
    assert dict(matches[0].ties)["teacher_vs_teacher"].startswith("other logits")
    report = format_diagnosis(matches)
    assert report.startswith("verdict: a tie between") and "diagnose_inputs()" in report


def test_a_correct_loss_of_zero_is_compared_with_a_floor():
    x = dict(minikd.diagnose_inputs(rng=1, alpha=None))
    x["teacher_logits"] = x["student_logits"]
    loss, grad = _float32_correct(x)  # round-off around 0, not 0
    assert loss != 0.0
    matches = _diagnose(x, loss, grad)
    assert matches[0].name == "correct" and matches[0].matched
    # every divergence of p_t from p_s is 0 here too; what is not 0 must not match
    matched = {m.name for m in matches if m.matched}
    assert {"teacher_vs_teacher", "reversed_kl", "kd_lib", "missing_t2"} <= matched
    assert not matched & {"ce_not_kl", "textbrewer", "probs_as_input", "student_t1"}
    ties = dict(matches[0].ties)
    assert ties["teacher_vs_teacher"].startswith("other logits")
    assert ties["keras"].startswith("a student probability below 1e-7")  # only clipping


def test_a_printed_loss_with_four_digits_still_matches():
    x = minikd.diagnose_inputs(rng=3)
    loss, _ = _user("reduction_mean", x)
    matches = _diagnose(x, float(f"{loss:.4g}"))
    assert matches[0].name == "reduction_mean" and matches[0].matched
    assert matches[0].explanation.endswith("C = 7 times too small.")


def test_probs_as_input_is_negative_and_still_named():
    x = minikd.diagnose_inputs(rng=0, alpha=None)
    loss, grad = _user("probs_as_input", x)
    assert loss < 0
    assert _diagnose(x, loss, grad)[0].name == "probs_as_input"


def test_no_match_is_said_and_shows_the_closest():
    x = minikd.diagnose_inputs(rng=0)
    loss, grad = _user("correct", x)
    matches = _diagnose(x, 1.37 * loss, grad)  # no variant is 1.37 times the correct one
    assert not any(m.matched for m in matches)
    report = format_diagnosis(matches, top=3)
    assert report.startswith("verdict: no variant matches within the tolerance")
    assert len(report.split("\n\n")[1].splitlines()) == 4  # header + 3 rows
    assert matches[0].value_error <= matches[1].value_error


def test_a_gradient_separates_what_the_value_does_not():
    # ce_not_kl and correct differ by T² H(p_t); scale the user's value so that only the
    # gradient can tell: a loss whose value is ce_not_kl's but whose gradient is twice correct.
    x = minikd.diagnose_inputs(rng=0, alpha=None)
    loss, grad = _user("ce_not_kl", x)
    assert _diagnose(x, loss)[0].name == "ce_not_kl"
    assert not _diagnose(x, loss, 2 * grad)[0].matched


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"loss": float("nan")}, ValueError, "The 'loss' parameter of diagnose must be a finite"),
    ({"loss": "0.1"}, TypeError, "The 'loss' parameter of diagnose must be a real number"),
    ({"loss": [0.1, 0.2]}, TypeError, "'loss' parameter of diagnose .* Got an array"),
    ({"grad": np.zeros((5, 6))}, ValueError, "The 'grad' parameter of diagnose"),
    ({"grad": np.full((5, 7), np.nan)}, ValueError, "The 'grad' parameter of diagnose"),
    ({"labels": None}, ValueError, "The 'labels' parameter of diagnose .* when alpha is given"),
    ({"labels": np.full(5, 7)}, ValueError, "The 'labels' parameter of diagnose"),
    ({"temperature": 0.0}, ValueError, "The 'temperature' parameter of diagnose"),
    ({"alpha": 1.5}, ValueError, "The 'alpha' parameter of diagnose"),
    ({"tol": 0.0}, ValueError, "The 'tol' parameter of diagnose"),
    ({"student_logits": np.zeros((2, 5, 7))}, ValueError, "'student_logits' parameter of diag"),
    ({"teacher_logits": np.zeros((5, 6))}, ValueError, "must have the same shape"),
])
def test_bad_input_is_a_clear_error(kwargs, exc, message):
    x = minikd.diagnose_inputs(rng=0)
    args = {"student_logits": x["student_logits"], "teacher_logits": x["teacher_logits"],
            "labels": x["labels"], "temperature": 3.0, "alpha": 0.7, "loss": 1.0, **kwargs}
    with pytest.raises(exc, match=message):
        minikd.diagnose(args.pop("student_logits"), args.pop("teacher_logits"),
                        args.pop("labels"), **args)


def test_doctests_of_the_diagnose_modules():
    diagnose_module = importlib.import_module("minikd.verify.diagnosis.match")
    for module in (diagnose_module, diagnose_probes, diagnose_catalog):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__


# ---------------------------------------------------------------- the command line

def _cli(argv, capsys):
    status = cli.main(["diagnose", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def _results(tmp_path, capsys, name, *, soft_only=False, grad=True, **changes):
    """Make inputs with the CLI, run the naive ``name`` on them, write results.npz."""
    inputs = tmp_path / "inputs.npz"
    argv = ["--make-inputs", str(inputs)] + (["--soft-only"] if soft_only else [])
    status, out, err = _cli(argv, capsys)
    assert status == 0 and err == "" and out.startswith(f"wrote {inputs}")
    with np.load(inputs, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    assert sorted(data) == sorted(cli_diagnose.KEYS)
    alpha = None if np.isnan(data["alpha"]) else float(data["alpha"])
    assert (alpha is None) == soft_only
    loss, g = naive_loss(name, data["student_logits"], data["teacher_logits"], data["labels"],
                         float(data["temperature"]), alpha)
    data.update(loss=loss, **({"grad": g} if grad else {}))
    data.update(changes)
    path = tmp_path / "results.npz"
    np.savez(path, **data)
    return str(path)


def test_cli_names_the_bug_from_a_results_file(tmp_path, capsys):
    path = _results(tmp_path, capsys, "missing_t2")
    status, out, err = _cli([path], capsys)
    assert status == 0 and err == ""
    assert out.startswith("verdict: missing_t2 (value error")
    assert "  fix:   loss = alpha * F.kl_div(" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs.npz", "results.npz"]


def test_cli_json_lists_every_variant_best_first(tmp_path, capsys):
    path = _results(tmp_path, capsys, "reversed_kl", soft_only=True)
    status, out, err = _cli([path, "--json", "--soft-only"], capsys)
    assert status == 0 and err == ""
    doc = json.loads(out)
    rows = doc["matches"]
    assert rows[0]["name"] == "reversed_kl" and rows[0]["matched"] is True
    assert {"name", "value_error", "grad_error", "explanation", "fix", "source", "same_as",
            "ties"} <= set(rows[0])
    named = [n for r in rows for n in [r["name"], *r["same_as"]]]
    assert sorted(named) == sorted(_names(None))
    assert doc["alpha"] is None and doc["gradient_given"] is True


def test_cli_says_when_nothing_matches(tmp_path, capsys):
    path = _results(tmp_path, capsys, "correct", grad=False)
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    np.savez(path, **dict(data, loss=data["loss"] * 1.37))
    status, out, err = _cli([path], capsys)
    assert status == 1 and err == "" and out.startswith("verdict: no variant matches")


@pytest.mark.parametrize("change, message", [
    ({"loss": np.nan}, "The 'loss' parameter of diagnose must be a finite real number"),
    ({"grad": np.zeros((5, 3))}, "The 'grad' parameter of diagnose"),
    ({"temperature": np.array([1.0, 2.0])}, "'temperature' must be a single number"),
    ({"labels": np.zeros(4, np.int64)}, "The 'labels' parameter of diagnose"),
    ({"loss": None}, "has no 'loss'"),
])
def test_cli_bad_results_file_is_one_line_exit_2(tmp_path, capsys, change, message):
    path = _results(tmp_path, capsys, "correct")
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    data.update({k: v for k, v in change.items() if v is not None})
    for key in [k for k, v in change.items() if v is None]:
        del data[key]
    np.savez(path, **data)
    status, out, err = _cli([path], capsys)
    assert status == 2 and out == ""
    assert err.startswith("minikd diagnose: ") and err.count("\n") == 1 and message in err


def test_cli_bad_arguments_and_unreadable_files(tmp_path, capsys):
    (tmp_path / "text.npz").write_text("not a zip")
    cases = [([], "give either RESULTS.npz or --make-inputs"),
             ([str(tmp_path / "missing.npz")], "cannot read"),
             ([str(tmp_path / "text.npz")], "is not an .npz file"),
             (["--make-inputs", str(tmp_path / "x.npz"), "--temperature", "1"],
              "'temperature' parameter of diagnose_inputs"),
             (["--make-inputs", str(tmp_path / "no" / "x.npz")], "no such folder"),
             (["--make-inputs", str(tmp_path / "text.npz")], "exists; remove it or add --force"),
             ([str(tmp_path / "a.npz"), "--make-inputs", str(tmp_path / "b.npz")], "either")]
    for argv, message in cases:
        status, out, err = _cli(argv, capsys)
        assert status == 2 and out == "", argv
        assert err.startswith("minikd diagnose: ") and err.count("\n") == 1 and message in err
    status, out, err = _cli(["x.npz", "--tol", "2"], capsys)
    assert status == 2 and "--tol" in err and err.count("\n") == 1
    parser = argparse.ArgumentParser(prog="minikd diagnose")
    cli_diagnose.add_arguments(parser)
    assert all(a.help for a in parser._actions)


# ---------------------------------------------------------------- the docs page, with PyTorch

def _fenced_blocks(text):
    """[(language, first line, code)] of every fenced block of a Markdown page, in order."""
    blocks, lang, start, body = [], None, 0, []
    for i, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            if lang is None:
                lang, start, body = line[3:].strip() or "plain", i + 1, []
            else:
                blocks.append((lang, start, "\n".join(body)))
                lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def test_docs_page_prints_what_it_shows(capsys):
    """docs/diagnose.md: each python block, run in order, prints the text block that follows."""
    blocks = _fenced_blocks((DOCS / "diagnose.md").read_text(encoding="utf-8"))
    namespace, checked = {"__name__": "docs_diagnose"}, 0
    for k, (lang, line, code) in enumerate(blocks):
        if lang != "python":
            continue
        exec(compile(code, f"docs/diagnose.md:{line}", "exec"), namespace)  # noqa: S102
        out = capsys.readouterr().out
        if k + 1 < len(blocks) and blocks[k + 1][0] == "text":
            assert out.rstrip("\n") == blocks[k + 1][2], f"docs/diagnose.md:{line}"
            checked += 1
    assert checked == 4


def test_docs_catalog_table_lists_every_bug():
    text = (DOCS / "diagnose.md").read_text(encoding="utf-8")
    rows = [line.split("|")[1].strip().strip("`") for line in text.splitlines()
            if line.startswith("| `")]
    assert rows == ISSUE_NAMES


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")  # that is the bug
def test_docs_pytorch_blocks_name_the_bug_with_the_gradient(capsys):
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.nn import functional as F  # noqa: N812

    blocks = _fenced_blocks((DOCS / "diagnose.md").read_text(encoding="utf-8"))
    namespace = {"__name__": "docs_diagnose", "torch": torch, "nn": nn, "F": F}
    first_torch = [k for k, b in enumerate(blocks) if b[0] == "python-torch"][:2]
    for k, (lang, line, code) in enumerate(blocks):
        if lang == "python" or k in first_torch:  # the repository's loss, then its gradient
            exec(compile(code, f"docs/diagnose.md:{line}", "exec"), namespace)  # noqa: S102
    assert "\nreduction_mean True True\n" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")  # that is the bug
@pytest.mark.parametrize("name", ISSUE_NAMES)
def test_pytorch_spelling_of_each_bug_computes_it(name):
    torch = pytest.importorskip("torch")
    from torch.nn import functional as F  # noqa: N812

    alpha = 0.7 if name == "alpha_swapped" else None
    x = minikd.diagnose_inputs(rng=5, alpha=alpha)
    variant = {v.name: v for v in catalog(alpha is not None)}[name]
    zs = torch.tensor(x["student_logits"], requires_grad=True)
    ns = {"F": F, "torch": torch, "z_s": zs, "z_t": torch.tensor(x["teacher_logits"]),
          "y": torch.tensor(x["labels"]), "T": x["temperature"], "alpha": alpha}
    loss = eval(variant.code, ns)  # noqa: S307 - the catalog's PyTorch line is the test
    if loss.requires_grad:
        loss.backward()
    grad = np.zeros_like(x["student_logits"]) if zs.grad is None else zs.grad.numpy()
    assert (zs.grad is None) == (name == "teacher_vs_teacher")  # no gradient reaches z_s
    mine = variant.loss(x["student_logits"], x["teacher_logits"], x["labels"],
                        x["temperature"], alpha)
    assert loss.item() == pytest.approx(mine.loss, rel=1e-12, abs=1e-14)
    assert np.abs(grad - mine.grad).max() <= 1e-12 * max(np.abs(mine.grad).max(), 1.0)
    fix = minikd.diagnose(x["student_logits"], x["teacher_logits"], x["labels"],
                          temperature=x["temperature"], alpha=alpha, loss=1.0)[0].fix
    ns["z_s"] = torch.tensor(x["student_logits"])
    exec(fix, ns)  # noqa: S102 - the fix line computes minikd's loss
    assert ns["loss"].item() == pytest.approx(mine.loss if name == "correct" else minikd.
                                              distillation_loss(x["student_logits"],
                                                                x["teacher_logits"],
                                                                x["labels"], temperature=x[
                                                                    "temperature"],
                                                                alpha=alpha or 1.0).loss,
                                              rel=1e-12)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")
def test_float32_pytorch_bugs_are_named_uniquely():
    """The catalog's PyTorch lines run in float32 (PyTorch's default) are still named alone."""
    torch = pytest.importorskip("torch")
    from torch.nn import functional as F  # noqa: N812

    x = minikd.diagnose_inputs(rng=11, alpha=None)
    worst = 0.0
    for name in [n for n in ISSUE_NAMES if n != "alpha_swapped"]:
        variant = {v.name: v for v in catalog(False)}[name]
        zs = torch.tensor(x["student_logits"], dtype=torch.float32, requires_grad=True)
        ns = {"F": F, "torch": torch, "z_s": zs, "T": x["temperature"],
              "z_t": torch.tensor(x["teacher_logits"], dtype=torch.float32)}
        loss = eval(variant.code, ns)  # noqa: S307
        if loss.requires_grad:
            loss.backward()
        grad = np.zeros((5, 7)) if zs.grad is None else zs.grad.numpy()
        matches = minikd.diagnose(x["student_logits"], x["teacher_logits"],
                                  temperature=x["temperature"], loss=loss.item(), grad=grad)
        assert name in (matches[0].name, *matches[0].same_as), name
        assert sum(m.matched for m in matches) == 1, name
        worst = max(worst, matches[0].value_error, matches[0].grad_error)
    assert worst < 1e-4  # float32 round-off, ten times below the default tolerance at least
