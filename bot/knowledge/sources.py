"""Where a service's runbook and docs live, and reading them: `metadata.links` (a runbook link),
the `pavedroad.dev/runbook` annotation (a path in the repository, or a URL), TechDocs sources
(`backstage.io/techdocs-ref: dir:.` → `mkdocs.yml` nav and `docs/`); from GitHub's contents API
(`github.com/project-slug`), or from disk beside the catalog file for catalogs loaded from disk.
And the FAQ folder: one Markdown file a question, front matter for title and tags.

A knowledge pass reads with a `Commits` memo: each repository's commit is asked once per pass (a
304 while unchanged, which the rate limit does not count), and a file found missing is not asked
again while that commit stays the same: entities without docs cost that one request, not a 404
per file.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from bot.catalog.entity import Entity
from integrations.errors import IntegrationError
from integrations.github import GitHubClient, NotFound, RepoFile

RUNBOOK = "pavedroad.dev/runbook"
PROJECT_SLUG = "github.com/project-slug"
TECHDOCS_REF = "backstage.io/techdocs-ref"
GITHUB_BLOB = re.compile(r"^https://github\.com/([^/]+/[^/]+)/blob/([^/]+)/(.+)$")
MAX_DOC_PAGES = 50
Commits = dict[tuple[str, str], str]
"""(slug, ref) → the commit it named when first asked in this pass ("" when it names none)."""


@dataclass(frozen=True)
class Page:
    """One Markdown page: where it is shown from (`url`), its text and a version for caching."""

    title: str
    url: str
    markdown: str
    version: str


def _version(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def runbook_link(entity: Entity) -> tuple[str, str] | None:
    """(title, url) of the first `metadata.links` entry whose title or type says runbook."""
    return _runbook_link(entity.metadata)


def _runbook_link(metadata: dict[str, Any]) -> tuple[str, str] | None:
    for link in metadata.get("links") or []:
        if "runbook" in f"{link.get('title', '')} {link.get('type', '')}".lower():
            return str(link.get("title") or "Runbook"), link["url"]
    return None


def has_docs(entity: Entity) -> bool:
    """Whether the entity points to a runbook or TechDocs (its document is decoded once)."""
    metadata = entity.metadata
    annotations = metadata.get("annotations") or {}
    return bool(annotations.get(RUNBOOK) or annotations.get(TECHDOCS_REF) or _runbook_link(metadata))


class DocSources:
    """Reads pages. Without `commits` (a command showing a runbook) every read asks GitHub and
    anything unreadable is None; with them (a knowledge pass) only a missing file is None and any
    other error is raised, so the caller keeps what it indexed before."""

    def __init__(self, github: GitHubClient | None) -> None:
        self.github = github
        self._missing: dict[str, str] = {}  # "slug@ref:path" → the commit at which it was missing

    async def runbook(self, entity: Entity, commits: Commits | None = None) -> Page | None:
        """The runbook's text, or None when it has none we can read (a link may still exist)."""
        annotation = entity.annotations.get(RUNBOOK, "")
        link = runbook_link(entity)
        for target in filter(None, (annotation, link[1] if link else "")):
            page = await self._read(entity, target, f"{entity.display_name} runbook", commits)
            if page is not None:
                return page
        return None

    async def techdocs(self, entity: Entity, commits: Commits | None = None) -> list[Page]:
        ref = entity.annotations.get(TECHDOCS_REF, "")
        if not ref.startswith("dir:"):
            return []
        base = ref[4:].strip().strip("/") or "."
        mkdocs = await self._read(entity, f"{base}/mkdocs.yml", "mkdocs.yml", commits)
        nav = _nav(mkdocs.markdown) if mkdocs else []
        pages = []
        for title, path in (nav or [("Home", "index.md")])[:MAX_DOC_PAGES]:
            page = await self._read(entity, f"{base}/docs/{path}", f"{entity.display_name}: {title}", commits)
            if page is not None:
                pages.append(page)
        return pages

    async def _read(self, entity: Entity, target: str, title: str, commits: Commits | None) -> Page | None:
        """A page from a GitHub URL, the entity's repository, or disk beside its catalog file."""
        if match := GITHUB_BLOB.match(target):
            return await self._github(match.group(1), match.group(3), match.group(2), title, commits)
        if re.match(r"^[a-z]+://", target):
            return None  # some other site: shown as a link, not read
        slug = entity.annotations.get(PROJECT_SLUG, "")
        local = _beside(entity.source, target)
        if local is not None:
            text = local.read_text(encoding="utf-8", errors="replace")
            return Page(_title(text, title), "", text, _version(text))  # a file on the bot's disk: nothing to link to
        return await self._github(slug, target, "", title, commits) if slug and self.github else None

    async def _github(self, slug: str, path: str, ref: str, title: str, commits: Commits | None) -> Page | None:
        if self.github is None:
            return None
        path = path.removeprefix("./")
        if commits is None:
            try:
                found: RepoFile | None = await self.github.file(slug, path, ref)
            except IntegrationError:
                return None
        else:
            found = await self._file_in_pass(self.github, slug, path, ref, commits)
        return Page(_title(found.text, title), found.html_url, found.text, found.sha) if found else None

    async def _file_in_pass(self, github: GitHubClient, slug: str, path: str, ref: str, commits: Commits) -> RepoFile | None:
        """The file, None when missing. The commit is asked before the file, so a file added after
        it was found missing comes with a new commit, which asks for the file again."""
        if (slug, ref) not in commits:
            commits[slug, ref] = await github.commit(slug, ref)
        commit = commits[slug, ref]
        key = f"{slug}@{ref}:{path}"
        if not commit or self._missing.get(key) == commit:
            return None
        try:
            found = await github.file(slug, path, ref)
        except NotFound:
            self._missing[key] = commit
            return None
        self._missing.pop(key, None)
        return found


def _beside(source: str, target: str) -> Path | None:
    """`target` relative to the catalog file's folder or one of the three above it (catalogs often
    sit in a subfolder of the repository the paths are relative to)."""
    if not source.startswith("/") or target.startswith("/"):
        return None
    folder = Path(source).parent
    for base in [folder, *list(folder.parents)[:3]]:
        candidate = base / target
        if candidate.is_file():  # one stat: resolve() would lstat every folder on the way, on the event loop
            return candidate
    return None


def _title(markdown: str, fallback: str) -> str:
    match = re.search(r"^#\s+(.+)$", markdown, re.M)
    return match.group(1).strip() if match else fallback


def _nav(mkdocs_yml: str) -> list[tuple[str, str]]:
    """The pages of an mkdocs `nav`, flattened, in order: [(title, path)]."""
    try:
        config = yaml.safe_load(mkdocs_yml) or {}
    except yaml.YAMLError:
        return []
    found: list[tuple[str, str]] = []

    def walk(items: Any) -> None:
        for item in items if isinstance(items, list) else []:
            if isinstance(item, str) and item.endswith(".md"):
                found.append((Path(item).stem, item))
            elif isinstance(item, dict):
                for title, value in item.items():
                    if isinstance(value, str) and value.endswith(".md"):
                        found.append((str(title), value))
                    else:
                        walk(value)
    walk(config.get("nav") if isinstance(config, dict) else None)
    return found


def faq_pages(folder: str) -> list[tuple[str, Page, list[str]]]:
    """(slug, page, tags) for each Markdown file in the FAQ folder."""
    root = Path(folder)
    pages = []
    for path in sorted(root.glob("*.md")) if root.is_dir() else []:
        post = frontmatter.loads(path.read_text(encoding="utf-8", errors="replace"))
        tags = [str(t) for t in post.get("tags") or []]
        title = str(post.get("title") or _title(post.content, path.stem.replace("-", " ")))
        pages.append((path.stem, Page(title, "", post.content, _version(post.content + " ".join(tags))), tags))
    return pages
