"""docs/bad_input.md runs: every row's example does what the row says (the table cannot go stale).

A row is ``| input | behaviour | `example` |``. A behaviour that starts with an exception's name in
backticks means the example raises it (or a subclass) with every double-quoted phrase of the
behaviour in its message; otherwise the example's last expression must be true and every quoted
phrase must appear in what the example printed. No example may warn.
"""

import ast
import builtins
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import minikd

PAGE = Path(__file__).resolve().parent.parent / "docs" / "bad_input.md"


def table_rows(text):
    """``(line number, input, behaviour, example)`` of every table row of the page."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("| ") or line.startswith(("| ---", "| Input |")):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        assert len(cells) == 3, f"bad_input.md:{number}: a row has three cells"
        example = re.fullmatch(r"`(.+)`", cells[2])
        assert example, f"bad_input.md:{number}: the example is one `code` span"
        rows.append((number, cells[0], cells[1], example.group(1)))
    return rows


ROWS = table_rows(PAGE.read_text(encoding="utf-8"))


def expected_error(behaviour):
    """The exception class a behaviour names first in backticks, or None."""
    m = re.match(r"`(\w+)`", behaviour)
    if m is None:
        return None
    return getattr(builtins, m.group(1), None) or getattr(minikd, m.group(1))


def run(example, namespace):
    """Execute the example's statements; return the value of its last expression (or None)."""
    tree = ast.parse(example)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "bad_input.md", "exec"), namespace)  # noqa: S102 - the page is the test
    if last is not None:
        return eval(compile(ast.Expression(last.value), "bad_input.md", "eval"), namespace)  # noqa: S307
    return None


def test_the_page_has_its_rows():
    assert len(ROWS) >= 30
    behaviours = " ".join(row[2] for row in ROWS)
    for words in ("NaN", "ragged", "read-only", "uint64", "truncated", "vectors --check"):
        assert words in " ".join(f"{r[1]} {r[2]} {r[3]}" for r in ROWS), words
    assert "`ValueError`" in behaviours and "`TypeError`" in behaviours


def test_the_parser_reads_a_row_and_the_runner_can_fail():
    (row,) = table_rows('| x | `ValueError`: "bad" | `int("a")` |\n| --- | --- | --- |\n')
    assert row[1:] == ("x", '`ValueError`: "bad"', 'int("a")')
    assert expected_error(row[2]) is ValueError
    assert expected_error("returns 0.0") is None
    assert run("a = 2; a + 1", {}) == 3
    with pytest.raises(ValueError):
        run(row[3], {})


@pytest.mark.parametrize("number, what, behaviour, example", ROWS,
                         ids=[f"line{r[0]}" for r in ROWS])
def test_row(number, what, behaviour, example, tmp_path, capsys):
    namespace = {"np": np, "minikd": minikd, "os": __import__("os"), "tmp": tmp_path}
    phrases = re.findall(r'"([^"]+)"', behaviour)
    error = expected_error(behaviour)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if error is not None:
            with pytest.raises(error) as info:
                run(example, namespace)
            for phrase in phrases:
                assert phrase in str(info.value), f"bad_input.md:{number}: {info.value}"
        else:
            assert run(example, namespace), f"bad_input.md:{number}: {example} is not true"
            printed = "".join(capsys.readouterr())
            for phrase in phrases:
                assert phrase in printed, f"bad_input.md:{number}: {printed!r}"


def test_the_verify_page_links_to_this_page_and_to_diagnose():
    verify = (PAGE.parent / "verify.md").read_text(encoding="utf-8")
    for target in ("bad_input.md", "diagnose.md"):
        assert f"]({target})" in verify, target
        assert (PAGE.parent / target).is_file(), target
