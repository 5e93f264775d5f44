"""Every ```python block in docs/**/*.md runs, so each "check a reader can paste" stays true.

Per Markdown file, the ``python``-fenced blocks run in order in one shared namespace (a later block
may use names from an earlier one), in a temporary working directory, with matplotlib's
non-interactive backend. Blocks fenced as ```text, ```bash, ```console or bare ``` are not run.
A block that raises (an ``assert`` included) fails the test and names the file and line.

A page that quotes library code marks the fence ```python source=minikd.losses.response.kd_loss:
such a block is not run; instead its lines must appear, contiguous and verbatim (up to
indentation), in the source of that object, so "the exact code" on a page cannot drift from the
code.
"""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})[ \t]*(?P<lang>[^\s`]*)"
                   r"(?P<info>[^\n]*)$")
SOURCE = re.compile(r"\bsource=(?P<name>[\w.]+)")


def python_blocks(text, *, quotes=False):
    """[(first line number, source)] of the ```python blocks of a Markdown text, in order.

    Blocks marked ``source=NAME`` are left out, or, with ``quotes=True``, are the only ones
    returned, as (line, NAME, source).
    """
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, ticks, lang = m["indent"], m["ticks"], m["lang"].lower()
        start, body = i + 1, []
        i += 1
        while i < len(lines):
            close = FENCE.match(lines[i])
            if close and close["ticks"][0] == ticks[0] and len(close["ticks"]) >= len(ticks) \
                    and not close["lang"]:
                break
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1  # past the closing fence
        if lang in ("python", "py", "python3"):
            quoted = SOURCE.search(m["info"])
            code = textwrap.dedent("\n".join(body))
            if quotes and quoted:
                blocks.append((start + 1, quoted["name"], code))
            elif not quotes and not quoted:
                blocks.append((start + 1, code))
    return blocks


def _resolve(dotted):
    module_name, _, attr = dotted.rpartition(".")
    while module_name:
        try:
            obj = importlib.import_module(module_name)
        except ImportError:
            module_name, _, head = module_name.rpartition(".")
            attr = f"{head}.{attr}"
            continue
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def _is_excerpt(quote, source):
    """True when the quote's lines appear contiguously in the source (indentation ignored)."""
    q = [line.strip() for line in quote.strip().splitlines()]
    s = [line.strip() for line in source.splitlines()]
    return any(s[i : i + len(q)] == q for i in range(len(s) - len(q) + 1))


def _pages(quotes=False):
    return sorted(p for p in DOCS.rglob("*.md")
                  if python_blocks(p.read_text(encoding="utf-8"), quotes=quotes))


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_doc_page_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": f"docs_{page.stem}"}
    for line, source in python_blocks(page.read_text(encoding="utf-8")):
        code = compile(source, f"{page.relative_to(DOCS.parent)}:{line}", "exec")
        exec(code, namespace)  # noqa: S102 - running the docs is the point


@pytest.mark.parametrize("page", _pages(quotes=True), ids=lambda p: str(p.relative_to(DOCS)))
def test_quoted_code_is_the_exact_code(page):
    for line, name, quote in python_blocks(page.read_text(encoding="utf-8"), quotes=True):
        source = inspect.getsource(_resolve(name))
        assert _is_excerpt(quote, source), (
            f"{page.relative_to(DOCS.parent)}:{line}: the block marked source={name} is not an "
            f"excerpt of {name}'s current source; update the page")


def test_excerpt_check():
    assert _is_excerpt("b = 2\nc = 3", "def f():\n    a = 1\n    b = 2\n    c = 3\n")
    assert not _is_excerpt("b = 2\nc = 4", "def f():\n    a = 1\n    b = 2\n    c = 3\n")
    assert _resolve("minikd.losses.response.kd_loss").__name__ == "kd_loss"


def test_block_extraction():
    text = textwrap.dedent("""\
        Intro.

        ```python
        x = 1
        ```

        ```text
        not run
        ```

        - a list item:

          ```python
          y = x + 1
          ```

        ````markdown
        ```python
        nested, not run
        ```
        ````
        ```
        bare, not run
        ```

        ```python source=minikd.losses.response._kl_columns
        quoted, not run
        ```
        """)
    assert python_blocks(text, quotes=True) == [
        (27, "minikd.losses.response._kl_columns", "quoted, not run")]
    blocks = python_blocks(text)
    assert [src for _, src in blocks] == ["x = 1", "y = x + 1"]
    assert blocks[0][0] == 4  # line of the first code line
    ns = {}
    for _, src in blocks:
        exec(src, ns)  # noqa: S102
    assert ns["y"] == 2


def test_a_failing_block_fails(tmp_path):
    page = tmp_path / "bad.md"
    page.write_text("```python\nassert 1 + 1 == 3, 'arithmetic'\n```\n", encoding="utf-8")
    ((line, source),) = python_blocks(page.read_text())
    with pytest.raises(AssertionError, match="arithmetic"):
        exec(compile(source, f"bad.md:{line}", "exec"), {})  # noqa: S102


def test_readme_example_prints_what_the_readme_says(capsys):
    """The README's python block, run, prints exactly the ```text block that follows it."""
    text = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    blocks = python_blocks(text)
    assert len(blocks) == 1, "the README has one python example"
    line, source = blocks[0]
    after = text.splitlines()[line:]
    start = next(i for i, row in enumerate(after) if row.strip() == "```text")
    stop = next(i for i in range(start + 1, len(after)) if after[i].strip() == "```")
    expected = "\n".join(after[start + 1 : stop])
    exec(compile(source, f"README.md:{line}", "exec"), {"__name__": "readme"})  # noqa: S102
    assert capsys.readouterr().out.rstrip("\n") == expected
