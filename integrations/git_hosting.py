"""What publishing to a git host takes, whichever host it is: GitHub (`github_publish.py`) or
bare repositories on local disk (`git_local.py`). Small dataclasses and the `GitHost` protocol."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

from integrations.errors import IntegrationError


def is_text(data: bytes) -> bool:
    """A file to treat as text (rendered, sent as UTF-8): no NUL byte near the start, and valid UTF-8."""
    if b"\0" in data[:8000]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class RepoSettings:
    description: str = ""
    homepage: str = ""
    visibility: str = "private"  # private, internal or public
    default_branch: str = "main"


@dataclass(frozen=True)
class Author:
    name: str
    email: str


@dataclass(frozen=True)
class Repository:
    owner: str
    name: str
    html_url: str
    clone_url: str
    default_branch: str


@dataclass(frozen=True)
class Commit:
    sha: str
    message: str
    parents: int


@dataclass(frozen=True)
class PullRequest:
    number: int
    html_url: str
    branch: str


@dataclass(frozen=True)
class Location:
    """Where a repository URL points: owner, name, ref and the path below it."""

    owner: str
    name: str
    ref: str
    path: str


class RepositoryExists(IntegrationError):
    """Creating a repository whose name is taken."""


class GitHost(Protocol):
    system: str

    async def repository(self, owner: str, name: str) -> Repository | None: ...

    async def create_repository(self, owner: str, name: str, settings: RepoSettings) -> Repository:
        """Raises RepositoryExists when the name is taken."""

    async def set_topics(self, owner: str, name: str, topics: list[str]) -> None: ...

    async def head(self, owner: str, name: str, branch: str) -> Commit | None: ...

    async def commit_files(self, owner: str, name: str, branch: str, source: Path, message: str, author: Author,
                           *, parent: str | None = None, prefix: str = "") -> str:
        """Commit every file under `source` (placed under `prefix`) as one commit on `branch`, and
        return its sha. With `parent`, on top of that commit's tree; without, as the branch's whole
        history (the branch is replaced)."""

    async def remove_files(self, owner: str, name: str, branch: str, paths: Sequence[str], message: str, author: Author,
                           *, parent: str) -> str | None:
        """Commit `parent`'s tree without `paths` (from the repository's root) as one commit on
        `branch`, created or replaced, and return its sha; None, committing nothing, when `parent`
        holds none of them."""

    async def set_default_branch(self, owner: str, name: str, branch: str) -> None: ...

    async def delete_branch(self, owner: str, name: str, branch: str) -> None: ...

    async def grant_team(self, owner: str, name: str, team: str, permission: str) -> None: ...

    async def open_pull_request(self, owner: str, name: str, branch: str, base: str, title: str, body: str,
                                draft: bool) -> PullRequest:
        """Open a pull request, or return the open one for the same branch."""

    async def read_file(self, owner: str, name: str, ref: str, path: str) -> bytes: ...

    def contents_url(self, repo: Repository, branch: str) -> str: ...

    def locate(self, url: str) -> Location | None:
        """The repository behind one of this host's URLs (a contents or file URL), else None."""


def walk_files(source: Path) -> list[tuple[str, Path, bool]]:
    """(posix path, file, executable) for every file under `source`, sorted."""
    return sorted((path.relative_to(source).as_posix(), path, bool(path.stat().st_mode & 0o111))
                  for path in source.rglob("*") if path.is_file() and not path.is_symlink())
