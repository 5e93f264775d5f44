"""Every ```python block in docs/**/*.md runs, so each "check a reader can paste" stays true.

Per Markdown file, the ``python``-fenced blocks run in order in one shared namespace (a later block
may use names from an earlier one), in a temporary working directory, with matplotlib's
non-interactive backend. Blocks fenced as ```text, ```bash, ```console or bare ``` are not run.
A block that raises (an ``assert`` included) fails the test and names the file and line.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})[ \t]*(?P<lang>[^\s`]*)[^\n]*$")


def python_blocks(text):
    """[(first line number, source)] of the ```python blocks of a Markdown text, in order."""
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
            blocks.append((start + 1, textwrap.dedent("\n".join(body))))
    return blocks


def _pages():
    return sorted(p for p in DOCS.rglob("*.md") if python_blocks(p.read_text(encoding="utf-8")))


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_doc_page_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": f"docs_{page.stem}"}
    for line, source in python_blocks(page.read_text(encoding="utf-8")):
        code = compile(source, f"{page.relative_to(DOCS.parent)}:{line}", "exec")
        exec(code, namespace)  # noqa: S102 - running the docs is the point


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
        """)
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
