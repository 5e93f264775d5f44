"""The README is a newcomer's map: it links every page of docs/ and names every command."""

from pathlib import Path

from minikd.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_docs_page_is_linked_from_the_readme():
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert pages, "docs/ has pages"
    missing = [p for p in pages if f"(docs/{p})" not in README]
    assert missing == []


def test_every_command_has_its_line():
    missing = [c for c in COMMANDS if f"| `minikd {c}` |" not in README]
    assert missing == []


def test_the_performance_section_is_delimited_for_its_owner():
    begin = README.index("<!-- performance: begin")
    end = README.index("<!-- performance: end -->")
    assert begin < README.index("## Performance") < end
