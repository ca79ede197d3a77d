"""The documentation's cross-references resolve: relative links in the README and docs/, and the
docs/*.md files that code and configs name in their comments (chapters move; their readers should
not land on nothing)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")            # [text](target) or [text](target#anchor)
NAMED = re.compile(r"\bdocs/[\w.-]+\.md\b")                   # docs/chapter.md named in code or config


def broken_links(md: Path, root: Path = ROOT) -> list[str]:
    """Relative link targets of one markdown file that do not exist (web links are not checked)."""
    return [f"{md.relative_to(root)}: {target}" for target in LINK.findall(md.read_text())
            if not re.match(r"[a-z]+:", target) and not (md.parent / target).exists()]


def missing_chapters(path: Path, root: Path = ROOT) -> list[str]:
    """docs/*.md files a source or config file names that do not exist."""
    return [f"{path.relative_to(root)}: {name}" for name in NAMED.findall(path.read_text())
            if not (root / name).exists()]


def test_every_relative_link_in_the_docs_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) > 5
    assert [bad for page in pages for bad in broken_links(page)] == []


def test_every_chapter_named_in_code_or_config_exists():
    files = [p for folder in ("mot", "association", "detectors", "scripts", "configs", "tests")
             for p in sorted((ROOT / folder).rglob("*"))
             if p.suffix in (".py", ".yaml") and p != Path(__file__).resolve()]   # this file names made-up ones
    assert len(files) > 50
    assert [bad for path in files for bad in missing_chapters(path)] == []


def test_the_checks_see_a_broken_link_and_a_missing_chapter(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "here.md").write_text("# here\n")
    page = docs / "page.md"
    page.write_text("[ok](here.md) [anchor](here.md#x) [web](https://example.org/a.md) [gone](gone.md#y)\n")
    assert broken_links(page, tmp_path) == ["docs/page.md: gone.md"]
    code = tmp_path / "probe.py"
    code.write_text("# see docs/here.md and docs/no-such-chapter.md\n")
    assert missing_chapters(code, tmp_path) == ["probe.py: docs/no-such-chapter.md"]
