"""The repository's own references resolve for a reader of the repository.

* Every "spec N.N" (or "spec N", "spec 6.1-6.3", "spec 7.1/7.2", "§N.N") in the Python
  files, the configs, the READMEs and docs/ names a numbered heading of docs/reference.md.
* Every link of a README or a docs/ page to a repository file points at an existing file
  inside the repository (and at an existing heading, when it has a #fragment).
* Every repository path written as inline code in a README or a docs/ page exists.
* Nothing names the shared reference that docs/reference.md replaces.

Pure Python (no TensorFlow); the checks run on any directory, so the tests below also show
on small made-up trees that each check reports what it must.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path("docs") / "reference.md"
# The document docs/reference.md replaces; it is not in the repository.
UNSHIPPED_REFERENCE = "electra-reference.md"
# This file quotes references and names on purpose (the examples of the tests below).
THIS_FILE = Path("tests") / "test_docs.py"

# Directories that are not the project's sources: VCS, caches, build output and the local
# run data (data/ at the top holds training runs and corpora, untracked).
SKIPPED_DIRS = {"__pycache__", "build", "dist", "node_modules", "venv"}
SKIPPED_TOP_DIRS = {"data"}
ROOT_CONFIG_SUFFIXES = {".cfg", ".ini", ".toml"}

_NUMBER = r"\d+(?:\.\d+)*"
_SEPARATOR = r"[ \t]*(?:,|/|\+|-|–|\band\b)[ \t]*"
# "spec 3.2", "Spec 2, 3.5, 3.8, 7", "spec 6.1-6.3", "spec 4.1 + 4.2", "§7". A following word
# ("spec 1.1 step 7", "spec 6.5 post-processing 3") ends the list.
SPEC_REFERENCE = re.compile(
    rf"(?:\bspecs?[ \t]+|§[ \t]*)({_NUMBER}(?:{_SEPARATOR}{_NUMBER})*)",
    re.IGNORECASE)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
NUMBERED_HEADING = re.compile(rf"^({_NUMBER})\.?(?:[ \t]|$)")
FENCE = re.compile(r"^[ \t]*(```|~~~)")
# [text](target "title") and ![alt](target); the target may hold one level of (...).
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*"
                         r"(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"
                         r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REFERENCE_LINK = re.compile(r"^[ \t]{0,3}\[[^\]]+\]:[ \t]*(<[^>]*>|\S+)", re.MULTILINE)
HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:name|id)=[\"']([^\"']+)[\"']", re.IGNORECASE)
URL_SCHEME = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# A relative path with at least one "/" and nothing that marks a placeholder, a pattern or
# an ellipsis (".../ckpt-N").
_COMPONENT = r"\.*[\w-][\w.-]*"
PATH_LIKE = re.compile(rf"^(?:\.{{1,2}}/)*{_COMPONENT}(?:/{_COMPONENT})+/?$")


# ---------------------------------------------------------------------------
# Walking the repository
# ---------------------------------------------------------------------------

def source_files(root: Path):
    """Every file of the project under ``root`` (relative paths), sorted."""
    found = []
    for directory, dirs, files in os.walk(root):
        here = Path(directory).relative_to(root)
        dirs[:] = [d for d in dirs
                   if not d.startswith(".") and d not in SKIPPED_DIRS
                   and not d.endswith(".egg-info")
                   and not (here == Path(".") and d in SKIPPED_TOP_DIRS)]
        found.extend(here / name for name in files)
    return sorted(found)


def is_readme_or_doc(path: Path) -> bool:
    return ((path.name.upper().startswith("README") and path.suffix.lower() == ".md")
            or (path.parts[0] == "docs" and path.suffix.lower() == ".md"))


def cites_spec(path: Path) -> bool:
    """Python files, configs, READMEs and docs/ pages: where "spec N.N" may appear."""
    if path == THIS_FILE:
        return False
    return (path.suffix == ".py" or path.parts[0] == "configs" or is_readme_or_doc(path)
            or (len(path.parts) == 1 and path.suffix in ROOT_CONFIG_SUFFIXES))


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


# ---------------------------------------------------------------------------
# Spec references
# ---------------------------------------------------------------------------

def _expand(first: str, last: str) -> list:
    """``3.2``-``3.5`` -> 3.2, 3.3, 3.4, 3.5 (same parent); other ranges give both ends."""
    a, b = first.split("."), last.split(".")
    if len(a) == len(b) and a[:-1] == b[:-1] and int(a[-1]) <= int(b[-1]):
        return [".".join(a[:-1] + [str(k)]) for k in range(int(a[-1]), int(b[-1]) + 1)]
    return [first, last]


def spec_references(text: str) -> list:
    """``[(line number, section)]`` of every section that a "spec ..." in ``text`` names."""
    found = []
    for match in SPEC_REFERENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        tokens = re.findall(rf"{_NUMBER}|-|–", match.group(1))
        sections, previous_was_range = [], False
        for token in tokens:
            if token in "-–":
                previous_was_range = True
                continue
            if previous_was_range and sections:
                sections[-1:] = _expand(sections[-1], token)
            else:
                sections.append(token)
            previous_was_range = False
        found.extend((line, section) for section in sections)
    return found


def _headings(markdown: str):
    """The text of every heading outside fenced code blocks, in order."""
    in_fence = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match:
            yield match.group(2)


def numbered_sections(markdown: str) -> set:
    """Section numbers of headings such as ``## 3. Pre-training`` or ``### 3.2 Masking``."""
    numbers = set()
    for heading in _headings(markdown):
        match = NUMBERED_HEADING.match(heading)
        if match:
            numbers.add(match.group(1))
    return numbers


def unresolved_spec_references(root: Path) -> list:
    """``"file:line: spec N.N"`` for every reference with no heading in docs/reference.md."""
    reference = root / REFERENCE
    sections = numbered_sections(read_text(reference)) if reference.is_file() else set()
    problems = []
    for path in source_files(root):
        if cites_spec(path):
            for line, section in spec_references(read_text(root / path)):
                if section not in sections:
                    problems.append(f"{path}:{line}: spec {section}")
    return problems


# ---------------------------------------------------------------------------
# Links and paths in READMEs and docs/
# ---------------------------------------------------------------------------

def _without_code(markdown: str, keep_spans: bool = False) -> str:
    """``markdown`` with fenced blocks blanked (line numbers kept) and, unless
    ``keep_spans``, inline code spans removed."""
    lines, in_fence = [], False
    for line in markdown.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            lines.append("")
            continue
        if in_fence:
            lines.append("")
        else:
            lines.append(line if keep_spans else CODE_SPAN.sub("", line))
    return "\n".join(lines)


def heading_anchors(markdown: str) -> set:
    """The #fragments GitHub gives the headings (and explicit HTML anchors) of a page."""
    anchors, seen = set(), {}
    for heading in _headings(markdown):
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    anchors.update(HTML_ANCHOR.findall(markdown))
    return anchors


def _link_targets(markdown: str):
    """``(line, target)`` of inline, image and reference-definition links outside code."""
    text = _without_code(markdown)
    for pattern in (INLINE_LINK, REFERENCE_LINK):
        for match in pattern.finditer(text):
            target = match.group(1)
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1]
            yield text.count("\n", 0, match.start()) + 1, target


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def broken_links(root: Path) -> list:
    """``"file:line: target (why)"`` for every README/docs link to a repository file that
    points nowhere: a missing file, a file outside the repository or a missing heading."""
    problems = []
    for path in filter(is_readme_or_doc, source_files(root)):
        page = read_text(root / path)
        for line, target in _link_targets(page):
            if not target or URL_SCHEME.match(target):
                continue
            file_part, _, fragment = target.partition("#")
            file_part = urllib.parse.unquote(file_part)
            if file_part.startswith("/"):
                resolved = root / file_part.lstrip("/")
            elif file_part:
                resolved = (root / path).parent / file_part
            else:
                resolved = root / path
            where = f"{path}:{line}: {target}"
            if not _inside(root, resolved):
                problems.append(f"{where} (outside the repository)")
            elif not resolved.exists():
                problems.append(f"{where} (no such file)")
            elif (fragment and resolved.suffix.lower() == ".md"
                  and urllib.parse.unquote(fragment) not in heading_anchors(read_text(resolved))):
                problems.append(f"{where} (no such heading)")
    return problems


def _judged_path(root: Path, base: Path, written: str):
    """``base / written`` normalised, or None when it is outside the repository or in the
    local run data, where nothing can be judged."""
    candidate = Path(os.path.normpath(base / written))
    if not _inside(root, candidate):
        return None
    parts = candidate.resolve().relative_to(root.resolve()).parts
    return candidate if parts and parts[0] not in SKIPPED_TOP_DIRS else None


def missing_code_paths(root: Path) -> list:
    """``"file:line: path"`` for inline-code paths in READMEs and docs/ that name a file or
    directory of the repository which does not exist.

    ``./x`` and ``../x`` are relative to the page and always judged (unless they leave the
    repository). Other paths are tried against the page's directory and the repository
    root, and judged where their first component exists (``configs/x.json``); paths of
    other trees (``models/electra_small``, a run directory) are not.
    """
    problems = []
    for path in filter(is_readme_or_doc, source_files(root)):
        page_dir = (root / path).parent
        text = _without_code(read_text(root / path), keep_spans=True)
        for match in CODE_SPAN.finditer(text):
            written = match.group(2).strip()
            if not PATH_LIKE.match(written):
                continue
            if written.startswith("."):
                candidates = [_judged_path(root, page_dir, written)]
            else:
                first = written.split("/")[0]
                candidates = [_judged_path(root, base, written) for base in (page_dir, root)
                              if (base / first).exists()]
            candidates = [c for c in candidates if c is not None]
            if candidates and not any(c.exists() for c in candidates):
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{path}:{line}: {written}")
    return problems


def unshipped_reference_mentions(root: Path) -> list:
    """``"file:line"`` wherever a project file names the document reference.md replaces."""
    problems = []
    for path in source_files(root):
        if cites_spec(path) or (path.suffix == ".md" and path != REFERENCE):
            for number, line in enumerate(read_text(root / path).splitlines(), start=1):
                if UNSHIPPED_REFERENCE in line:
                    problems.append(f"{path}:{number}")
    return problems


def _report(problems: list) -> str:
    return f"{len(problems)} problem(s):\n  " + "\n  ".join(problems)


# ---------------------------------------------------------------------------
# The repository
# ---------------------------------------------------------------------------

def test_reference_starts_by_saying_what_it_is_and_covers_sections_1_to_11():
    text = read_text(REPO / REFERENCE)
    first_paragraph = text.split("\n\n")[1]
    assert '"spec N.N"' in first_paragraph and "section N.N" in first_paragraph
    sections = numbered_sections(text)
    assert {str(n) for n in range(1, 12)} <= sections
    assert {"1.7", "2.7", "3.13", "4.4", "5.4", "6.8", "7.4"} <= sections


def test_every_spec_reference_resolves():
    references = [ref for path in source_files(REPO) if cites_spec(path)
                  for ref in spec_references(read_text(REPO / path))]
    assert len(references) > 100, "the scan found almost no spec references: is it broken?"
    problems = unresolved_spec_references(REPO)
    assert not problems, ("references to sections that docs/reference.md does not have; "
                          "fix the reference or add the section: " + _report(problems))


def test_readme_and_docs_links_resolve():
    problems = broken_links(REPO)
    assert not problems, _report(problems)


def test_readme_and_docs_code_paths_exist():
    problems = missing_code_paths(REPO)
    assert not problems, "paths written in READMEs/docs that do not exist: " + _report(problems)


def test_nothing_names_the_unshipped_reference():
    problems = unshipped_reference_mentions(REPO)
    assert not problems, (f"{UNSHIPPED_REFERENCE} is not in the repository; point at "
                          "docs/reference.md instead: " + _report(problems))


# ---------------------------------------------------------------------------
# The checks themselves, on made-up trees
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("(spec 3.1)", ["3.1"]),
    ("Spec 2, 3.5, 3.8, 7.", ["2", "3.5", "3.8", "7"]),
    ("spec 6.1-6.3): featurise", ["6.1", "6.2", "6.3"]),
    ("spec 3.2-3.11", [f"3.{k}" for k in range(2, 12)]),
    ("spec 7.1/7.2 and", ["7.1", "7.2"]),
    ("Spec 3.10 / 11.9: the", ["3.10", "11.9"]),
    ("of spec 4.1 + 4.2 + 4.3 written", ["4.1", "4.2", "4.3"]),
    ("(spec 1.1 step 7)", ["1.1"]),
    ("(spec 6.5 post-processing 3)", ["6.5"]),
    ("spec 8's table", ["8"]),
    ("(spec 1.3, 2)", ["1.3", "2"]),
    ("(`x.md` §7); more", ["7"]),
    ("specs 3.2 and 3.3", ["3.2", "3.3"]),
    ("the spec's rules; tf.TensorSpec 3; type_spec 4; FeatureSpecs 5", []),
])
def test_spec_reference_parsing(text, expected):
    assert [section for _, section in spec_references(text)] == expected


def _tree(root: Path, files: dict) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content, encoding="utf-8")
    return root


REFERENCE_PAGE = "# Reference\n\n## 1. One\n\n### 1.1 First\n\n## 2. Two\n"


def test_unresolved_spec_references_are_reported(tmp_path):
    root = _tree(tmp_path, {
        "docs/reference.md": REFERENCE_PAGE,
        "pkg/good.py": '"""Fine (spec 1.1, 2)."""\n',
        "pkg/bad.py": "x = 1\n# see spec 1.2 and spec 3\n",
        "configs/a.json": '{"note": "spec 9.9"}\n',
        "README.md": "As spec 2 says, and §4.\n",
        "docs/guide.md": "Covered (spec 1.1-1.3).\n",
        "notes.txt": "spec 7 is not scanned here\n",
        "data/run/x.py": "# spec 8: the run data is not the project's\n",
    })
    assert sorted(unresolved_spec_references(root)) == sorted([
        "pkg/bad.py:2: spec 1.2", "pkg/bad.py:2: spec 3", "configs/a.json:1: spec 9.9",
        "README.md:1: spec 4", "docs/guide.md:1: spec 1.2", "docs/guide.md:1: spec 1.3"])


def test_without_a_reference_every_spec_reference_is_unresolved(tmp_path):
    root = _tree(tmp_path, {"a.py": "# spec 1.1\n"})
    assert unresolved_spec_references(root) == ["a.py:1: spec 1.1"]


def test_broken_links_are_reported(tmp_path):
    root = _tree(tmp_path, {
        "docs/reference.md": REFERENCE_PAGE,
        "docs/guide.md": ("[ok](reference.md#11-first) [ok](../README.md) "
                          "[web](https://example.org/x.md) [self](#guide)\n\n# Guide\n\n"
                          "[gone](../electra_tf/old.py) [bad anchor](reference.md#9-nine)\n"
                          "```\n[in code](nowhere.md)\n```\n`[span](nowhere.md)`\n"
                          "[out](../../elsewhere.md)\n[ref]: missing.png\n"),
        "README.md": "![plot](benchmarks/plot.png) [doc](docs/reference.md)\n",
    })
    assert sorted(broken_links(root)) == sorted([
        "docs/guide.md:5: ../electra_tf/old.py (no such file)",
        "docs/guide.md:5: reference.md#9-nine (no such heading)",
        "docs/guide.md:10: ../../elsewhere.md (outside the repository)",
        "docs/guide.md:11: missing.png (no such file)",
        "README.md:1: benchmarks/plot.png (no such file)"])


def test_heading_anchors_follow_github():
    page = "## 1.1 Pre-training config (`PretrainingConfig`)\n## Notes\n## Notes\n"
    assert heading_anchors(page) == {"11-pre-training-config-pretrainingconfig",
                                     "notes", "notes-1"}


def test_missing_code_paths_are_reported(tmp_path):
    root = _tree(tmp_path, {
        "configs/small.json": "{}\n",
        "pkg/mod.py": "\n",
        "tests/data/a/README.md": "`../b/make.py` `../a/README.md`\n",
        "README.md": ("`configs/small.json` `configs/huge.json` `pkg/mod.py` `pkg/gone.py`\n"
                      "`models/electra_small` `$DATA/models/x` `configs/<size>.json` "
                      "`../shared/data` `data/run/x.py` `.../ckpt-N`\n"
                      "```\n`pkg/in_fence.py`\n```\n"),
        "data/run/.keep": "",
    })
    assert sorted(missing_code_paths(root)) == sorted([
        "README.md:1: configs/huge.json", "README.md:1: pkg/gone.py",
        "tests/data/a/README.md:1: ../b/make.py"])


def test_mentions_of_the_unshipped_reference_are_reported(tmp_path):
    root = _tree(tmp_path, {
        "a.py": "# see shared/docs/" + UNSHIPPED_REFERENCE + "\n",
        "tests/data/x/README.md": "ok\n(`shared/docs/" + UNSHIPPED_REFERENCE + "` §7)\n",
        "docs/reference.md": REFERENCE_PAGE,
    })
    assert sorted(unshipped_reference_mentions(root)) == ["a.py:1",
                                                          "tests/data/x/README.md:2"]
