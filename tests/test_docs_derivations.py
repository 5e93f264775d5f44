"""The derivation pages of the feature, relation and distillation losses stay true.

Each page in ``docs/derivations/`` listed below has two kinds of fenced blocks:

* ```python blocks — the "check it yourself" snippets: executed here, in order, in one namespace
  per page (a failing assert or exception fails the page);
* ```py blocks — "the exact code": every such block must appear verbatim in minikd's source, so
  the page cannot drift from the implementation.
"""

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["hint.md", "cosine.md", "attention_transfer.md", "rkd_distance.md", "rkd_angle.md",
         "sp.md", "pkt.md", "distill_objective.md"]
FENCE = re.compile(r"^```(python|py)\n(.*?)^```", re.M | re.S)


def blocks(page, kind):
    text = (ROOT / "docs" / "derivations" / page).read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == kind]


def existing(pages):
    return [p for p in pages if (ROOT / "docs" / "derivations" / p).exists()]


@pytest.mark.parametrize("page", existing(PAGES))
def test_check_blocks_run(page, capsys):
    runnable = blocks(page, "python")
    assert runnable, f"{page} has no ```python check block"
    namespace = {"__name__": f"docs_{page}"}
    for body in runnable:
        exec(compile(body, f"docs/derivations/{page}", "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize("page", existing(PAGES))
def test_code_blocks_are_verbatim(page):
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "minikd").glob("*.py"))
    for body in blocks(page, "py"):
        assert textwrap.dedent(body).strip("\n") in textwrap.dedent(source) or \
            body.strip("\n") in source, f"{page}: a ```py block is not in minikd's source:\n{body}"
