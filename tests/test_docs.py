"""The documentation points at things that exist: every relative link in every Markdown file (and the heading it
names), every repository path the docs name in backticks, every docs page a config or script comment names; and the
README stays an operator's page (under 15 KB)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
README_LIMIT = 15_000  # bytes
SKIPPED_DIRS = {"build", "dist", "node_modules", "__pycache__"}
TOP_LEVEL = {path.name for path in ROOT.iterdir() if path.name not in SKIPPED_DIRS and path.name != ".git"}

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
# A docs page named in a comment of a config file or script (`See docs/agent.md`).
DOCS_MENTION = re.compile(r"\b(docs/[\w./-]+\.md)\b")
TEXT_SUFFIXES = {".yml", ".yaml", ".sh", ".py", ".toml", ".example", ".Dockerfile", ".cfg", ".ini"}


def tracked(pattern: str) -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob(pattern)
        if path.is_file()
        and not any(part.startswith(".") or part in SKIPPED_DIRS for part in path.relative_to(ROOT).parts[:-1])
    )


MARKDOWN = tracked("*.md")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (but `-` and `_`), spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading anchors by its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(heading) for heading in HEADING.findall(FENCE.sub("", path.read_text()))}


def prose(text: str) -> str:
    return FENCE.sub("", text)


def links(path: Path) -> list[str]:
    text = prose(path.read_text())
    return LINK.findall(text) + REFERENCE.findall(text)


def is_external(target: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*:", target) is not None  # http:, https:, mailto:...


def resolve(source: Path, target: str) -> tuple[Path, str]:
    path, _, fragment = target.partition("#")
    return (source.parent / path).resolve() if path else source, fragment


def looks_like_a_repo_path(span: str) -> bool:
    """A backticked span that names a file or directory of this repository: no spaces or placeholders, and its
    first segment is a top-level entry (`agent/assets/`, `tests/contract.py`, `.ci/run`, `metadata.csv`)."""
    if re.search(r"[\s<>*{}$|=:,()\[\]]", span) or span.startswith(("/", "~", "-")):
        return False
    first = span.split("/", 1)[0]
    return first in TOP_LEVEL and (
        "/" in span or (ROOT / first).is_file() or re.search(r"\.(md|csv|json|toml|yml|yaml)$", span) is not None
    )


def test_there_are_docs_to_check():
    names = {path.relative_to(ROOT).as_posix() for path in MARKDOWN}
    for page in ("README.md", "docs/kafka_lag.md", "docs/vertex_ai.md", "docs/cloud_run.md", "docs/agent.md"):
        assert page in names
    assert {"docs/emulator.md", "bench/README.md"} <= names


@pytest.mark.parametrize("path", MARKDOWN, ids=[p.relative_to(ROOT).as_posix() for p in MARKDOWN])
def test_relative_links_resolve(path):
    dead = []
    for target in links(path):
        if is_external(target):
            continue
        resolved, fragment = resolve(path, target)
        if not resolved.exists():
            dead.append(f"{target} (no such file)")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            dead.append(f"{target} (no heading #{fragment} in {resolved.relative_to(ROOT)})")
        elif ROOT not in resolved.parents and resolved != ROOT:
            dead.append(f"{target} (outside the repository)")
    assert not dead, f"{path.relative_to(ROOT)}: dead links: {dead}"


@pytest.mark.parametrize("path", MARKDOWN, ids=[p.relative_to(ROOT).as_posix() for p in MARKDOWN])
def test_repo_paths_named_in_backticks_exist(path):
    spans = CODE_SPAN.findall(prose(path.read_text()))
    named = [span for span in spans if looks_like_a_repo_path(span)]
    missing = [span for span in named if not (ROOT / span).exists()]
    # A Python file named on its own (`test_compose.py`, `lag.py`) must exist somewhere in the repository.
    modules = {module.name for module in tracked("*.py")}
    missing += [span for span in spans if re.fullmatch(r"[\w-]+\.py", span) and span not in modules]
    assert not missing, f"{path.relative_to(ROOT)} names paths that do not exist: {missing}"


def test_docs_pages_named_in_configs_and_scripts_exist():
    named = []
    for path in tracked("*"):
        if path.suffix in TEXT_SUFFIXES or path.name.endswith("Dockerfile") or path.name == "docker-compose.yml":
            for page in DOCS_MENTION.findall(path.read_text(errors="replace")):
                named.append((path.relative_to(ROOT).as_posix(), page))
    assert ("docker-compose.yml", "docs/agent.md") in named
    assert ("agent/cloudrun/service.yaml", "docs/agent.md") in named
    missing = [(source, page) for source, page in named if not (ROOT / page).is_file()]
    assert not missing, f"comments name docs pages that do not exist: {missing}"


def test_readme_is_an_operators_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < README_LIMIT, f"README.md is {len(readme.encode())} bytes"
    # The two commands, the three ways to deploy each ending with `agent check`, and the troubleshooting table.
    for command in ("scripts/demo", "scripts/test"):
        assert command in readme and (ROOT / command).is_file()
    # Datadog's README layout (`ddev validate readmes`): Overview and Setup H2s; the manifests link to them.
    h2s = re.findall(r"^## (.+)$", prose(readme), flags=re.MULTILINE)
    assert h2s[:2] == ["Overview", "Setup"] and "Support" in h2s and "Troubleshooting" in h2s
    setup = readme.split("\n## Setup\n", 1)[1].split("\n## ", 1)[0]
    sections = {part.splitlines()[0]: part for part in re.split(r"^### ", setup, flags=re.MULTILINE)[1:]}
    deploys = [title for title in sections if title.startswith(("docker-compose", "Cloud Run", "An agent you"))]
    assert len(deploys) == 3, list(sections)
    for title in deploys:
        assert re.search(r"agent check\s+pettwin_\w+", sections[title]), title
        assert "Healthy" in sections[title], title


def test_troubleshooting_covers_every_service_check():
    import json

    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    for entry in json.loads((ROOT / "service_checks.json").read_text()):
        short = entry["check"].split(".", 2)[2]  # pettwin.kafka.can_connect -> can_connect
        assert short in table, f"no troubleshooting row for {entry['check']}"


def test_the_checker_finds_dead_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n[ok](#title) [dead](nowhere.md) [bad anchor](#missing) `tests/no_such_file.py`\n")
    targets = links(page)
    assert [resolve(page, t)[0].exists() for t in targets] == [True, False, True]
    assert "missing" not in anchors(page) and "title" in anchors(page)
    assert looks_like_a_repo_path("tests/no_such_file.py") and not (ROOT / "tests/no_such_file.py").exists()
    assert not looks_like_a_repo_path("conf.d/<check>.d/conf.yaml") and not looks_like_a_repo_path("host:port")
