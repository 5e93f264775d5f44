"""The derivation pages of the feature, relation and distillation losses stay true.

Each page listed below has two kinds of fenced blocks:

* ```python blocks — the "check it yourself" snippets, run by ``tests/test_docs.py`` (every page
  here must have at least one);
* ```text blocks — "the exact code": each must appear verbatim in minikd's source, so the page
  cannot drift from the implementation.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["hint.md", "cosine.md", "attention_transfer.md", "rkd_distance.md", "rkd_angle.md",
         "sp.md", "pkt.md", "distill_objective.md"]
FENCE = re.compile(r"^```(python|text)\n(.*?)^```", re.M | re.S)


def blocks(page, kind):
    text = (ROOT / "docs" / "derivations" / page).read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == kind]


def existing(pages):
    return [p for p in pages if (ROOT / "docs" / "derivations" / p).exists()]


@pytest.mark.parametrize("page", existing(PAGES))
def test_page_has_a_check_and_the_code(page):
    assert blocks(page, "python"), f"{page} has no ```python check block"
    assert blocks(page, "text"), f"{page} has no ```text block with the exact code"


@pytest.mark.parametrize("page", existing(PAGES))
def test_code_blocks_are_verbatim(page):
    files = sorted((ROOT / "minikd").rglob("*.py"))
    source = "\n".join(p.read_text(encoding="utf-8") for p in files)
    for body in blocks(page, "text"):
        assert body.strip("\n") in source, \
            f"{page}: a ```text code block is not verbatim in minikd's source:\n{body}"


def test_verbatim_check_can_fail():
    source = "def f(x):\n    return x + 1\n"
    assert "    return x + 1" in source and "    return x + 2" not in source
