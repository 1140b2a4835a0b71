"""Bare git repositories on local disk: the embedded default publisher, so the golden path works
with no GitHub at all. Commits are real (`git` plumbing in a subprocess, off the event loop);
pull requests are branches. Settings git has no place for (visibility, topics, team access) are
kept in the repository's config under `pavedroad.*`."""
from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path
from typing import Sequence
from urllib.parse import unquote, urlparse

from integrations.errors import IntegrationError
from integrations.git_hosting import (Author, Commit, Location, PullRequest, RepoSettings, Repository,
                                      RepositoryExists, walk_files)

SAFE_PART = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
SYSTEM = "local git"


class LocalGit:
    system = SYSTEM

    def __init__(self, root: Path, timeout: float = 60.0) -> None:
        self.root = root.resolve()
        self.timeout = timeout

    def path(self, owner: str, name: str) -> Path:
        for part in (owner, name):
            if not SAFE_PART.match(part) or part in (".", ".."):
                raise IntegrationError(SYSTEM, f"{part!r} is not a valid repository owner or name")
        return self.root / owner / f"{name}.git"

    async def _git(self, repo: Path | None, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
                   check: bool = True) -> str:
        command = ["git", *(["--git-dir", str(repo)] if repo else []), *args]
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})})
        try:
            out, err = await asyncio.wait_for(process.communicate(stdin), self.timeout)
        except TimeoutError:
            process.kill()
            raise IntegrationError(SYSTEM, f"git {args[0]} took more than {self.timeout:g}s", timed_out=True) from None
        if check and process.returncode:
            raise IntegrationError(SYSTEM, f"git {args[0]} failed: {err.decode(errors='replace').strip()[:300]}")
        return out.decode(errors="replace").strip() if process.returncode == 0 else ""

    def _repository(self, owner: str, name: str, path: Path, default_branch: str) -> Repository:
        url = path.as_uri()
        return Repository(owner, name, url, url, default_branch)

    async def repository(self, owner: str, name: str) -> Repository | None:
        path = self.path(owner, name)
        if not (path / "HEAD").is_file():
            return None
        head = await self._git(path, "symbolic-ref", "--short", "HEAD")
        return self._repository(owner, name, path, head)

    async def create_repository(self, owner: str, name: str, settings: RepoSettings) -> Repository:
        path = self.path(owner, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()  # atomic: of two concurrent creations, one fails here
        except FileExistsError:
            if (path / "HEAD").exists():
                raise RepositoryExists(SYSTEM, f"repository {owner}/{name} already exists") from None
            # else a creation that stopped half-way: finish it
        await self._git(None, "init", "--quiet", "--bare", f"--initial-branch={settings.default_branch}", str(path))
        (path / "description").write_text(settings.description + "\n", encoding="utf-8")
        await self._git(path, "config", "pavedroad.visibility", settings.visibility)
        if settings.homepage:
            await self._git(path, "config", "pavedroad.homepage", settings.homepage)
        return self._repository(owner, name, path, settings.default_branch)

    async def set_topics(self, owner: str, name: str, topics: list[str]) -> None:
        await self._git(self.path(owner, name), "config", "pavedroad.topics", ",".join(topics))

    async def head(self, owner: str, name: str, branch: str) -> Commit | None:
        path = self.path(owner, name)
        sha = await self._git(path, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False)
        if not sha:
            return None
        parents = await self._git(path, "rev-list", "--parents", "-n", "1", sha)
        message = await self._git(path, "log", "-1", "--format=%B", sha)
        return Commit(sha, message, len(parents.split()) - 1)

    async def commit_files(self, owner: str, name: str, branch: str, source: Path, message: str, author: Author,
                           *, parent: str | None = None, prefix: str = "") -> str:
        path = self.path(owner, name)
        files = walk_files(source)
        prefix = prefix.strip("/")
        index = ""
        if files:
            shas = (await self._git(path, "hash-object", "-w", "--no-filters", "--stdin-paths",
                                    stdin="".join(f"{file}\n" for _, file, _ in files).encode())).split()
            index = "".join(f"{'100755' if executable else '100644'} {sha}\t{f'{prefix}/' if prefix else ''}{relative}\n"
                            for (relative, _, executable), sha in zip(files, shas))
        return await self._commit(path, branch, index, message, author, parent)

    async def remove_files(self, owner: str, name: str, branch: str, paths: Sequence[str], message: str, author: Author,
                           *, parent: str) -> str | None:
        path = self.path(owner, name)
        present = (await self._git(path, "ls-tree", "-r", "--name-only", parent, "--", *paths)).splitlines()
        if not present:
            return None
        return await self._commit(path, branch, "".join(f"0 {'0' * 40}\t{file}\n" for file in present), message, author, parent)

    async def _commit(self, path: Path, branch: str, index: str, message: str, author: Author, parent: str | None) -> str:
        """One commit on `branch` of `parent`'s tree (or an empty one) changed by `index`, lines of
        `git update-index --index-info` (mode 0 removes a path)."""
        with tempfile.TemporaryDirectory() as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index"), "GIT_AUTHOR_NAME": author.name,
                   "GIT_AUTHOR_EMAIL": author.email, "GIT_COMMITTER_NAME": author.name,
                   "GIT_COMMITTER_EMAIL": author.email}
            await self._git(path, "read-tree", *([parent] if parent else ["--empty"]), env=env)
            if index:
                await self._git(path, "update-index", "--add", "--index-info", stdin=index.encode(), env=env)
            tree = await self._git(path, "write-tree", env=env)
            sha = await self._git(path, "commit-tree", tree, *(["-p", parent] if parent else []), "-F", "-",
                                  stdin=message.encode(), env=env)
        await self._git(path, "update-ref", f"refs/heads/{branch}", sha)
        return sha

    async def set_default_branch(self, owner: str, name: str, branch: str) -> None:
        await self._git(self.path(owner, name), "symbolic-ref", "HEAD", f"refs/heads/{branch}")

    async def delete_branch(self, owner: str, name: str, branch: str) -> None:
        await self._git(self.path(owner, name), "update-ref", "-d", f"refs/heads/{branch}", check=False)

    async def grant_team(self, owner: str, name: str, team: str, permission: str) -> None:
        await self._git(self.path(owner, name), "config", f"pavedroad.access.{team.replace('/', '.')}", permission)

    async def open_pull_request(self, owner: str, name: str, branch: str, base: str, title: str, body: str,
                                draft: bool) -> PullRequest:
        repo = await self.repository(owner, name)
        if repo is None or await self.head(owner, name, branch) is None:
            raise IntegrationError(SYSTEM, f"{owner}/{name} has no branch {branch}")
        return PullRequest(0, f"{repo.html_url}#{branch}", branch)

    async def read_file(self, owner: str, name: str, ref: str, path: str) -> bytes:
        repo = self.path(owner, name)
        process = await asyncio.create_subprocess_exec(
            "git", "--git-dir", str(repo), "cat-file", "blob", f"{ref}:{path.lstrip('/')}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(process.communicate(), self.timeout)
        if process.returncode:
            raise IntegrationError(SYSTEM, f"{owner}/{name} has no {path} on {ref}")
        return out

    def contents_url(self, repo: Repository, branch: str) -> str:
        return f"{repo.html_url}/blob/{branch}"

    def locate(self, url: str) -> Location | None:
        """`file:///root/OWNER/NAME.git/blob/REF/PATH` → its parts."""
        parsed = urlparse(url)
        if parsed.scheme != "file":
            return None
        try:
            relative = Path(unquote(parsed.path)).relative_to(self.root).as_posix()
        except ValueError:
            return None
        match = re.match(r"^([^/]+)/([^/]+)\.git(?:/(?:blob|tree)/([^/]+)(/.*)?)?$", relative)
        if not match:
            return None
        return Location(match.group(1), match.group(2), match.group(3) or "HEAD", (match.group(4) or "").lstrip("/"))
