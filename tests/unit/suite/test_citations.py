"""Tests cite what a maintainer of this repository can open: vendor pages, or files in it.

The research notes the project started from live outside the repository; citations such as
"reference §3" or "error-codes.md" pointed there. Test docstrings now name the vendor's page
(title, URL) and the project's own summary, docs/vendor-facts.md. This keeps it that way.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
TESTS = REPO / "tests"
OUTSIDE = re.compile(r"reference\s+(§|[A-D]\.\d+|[A-D]\b)|§\s*\d|\.\./shared|shared/reference")
MARKDOWN = re.compile(r"[\w./-]+\.md\b")


def repository_markdown() -> set[str]:
    """Names (and repo-relative paths) of the Markdown files in the repository."""
    found: set[str] = set()
    for path in REPO.rglob("*.md"):
        if any(part in (".venv", ".venv-infra", "node_modules", ".git") for part in path.parts):
            continue
        found |= {path.name, str(path.relative_to(REPO))}
    return found


def test_no_test_cites_notes_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line) and path != Path(__file__)
    ]
    assert offenders == []


def test_every_markdown_file_a_test_names_is_in_the_repository() -> None:
    known = repository_markdown()
    missing = [
        f"{path.relative_to(REPO)}:{number}: {name}"
        for path in sorted(TESTS.rglob("*.py"))
        if path != Path(__file__)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        for name in MARKDOWN.findall(line)
        if name not in known and name.split("/")[-1] not in known
    ]
    assert missing == []


def test_the_vendor_facts_summary_names_its_sources() -> None:
    """Every fact row of docs/vendor-facts.md ends with a page title (and usually a URL)."""
    text = (REPO / "docs" / "vendor-facts.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    facts = [row for row in rows if not row.startswith("| Fact |")]
    assert len(facts) >= 20
    for row in facts:
        source = row.rstrip(" |").rsplit(" | ", 1)[-1]
        assert '"' in source or "http" in source, row
