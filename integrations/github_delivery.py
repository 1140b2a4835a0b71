"""GitHub delivery data for DORA metrics and CI success rates, through gidgethub: a repository's
deployments and their statuses, GitHub Actions workflow runs on the default branch, and the
commits a deployment shipped (`compare/{previous}...{this}`).

Lists are read page by page with `getiter` (GitHub's `Link` headers) and stop once they reach
items older than the window (GitHub lists deployments and runs newest first). Every failure is
an `IntegrationError` (`NotFound`, `RateLimited` from `integrations.github`); each call has a
time limit. Answers are small frozen dataclasses."""
from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import aiohttp
import gidgethub
from gidgethub.aiohttp import GitHubAPI

from integrations.errors import IntegrationError, observed
from integrations.github import NotFound, RateLimited, _reason, _retry_after

TIMEOUT_SECONDS = 10.0
PER_PAGE = 100
STATUS_READS_AT_ONCE = 8
ETAG_CACHE_SIZE = 4096
BRANCHES_KEPT = 20000
DEPLOYMENTS_PER_PAGE = 10
"""Small pages: a later read needs only the newest few, and the cached first page stays small."""
NO_COMMIT = (404, 422)
"""GitHub answers 422 "No commit found for SHA" for a commit a force-push removed."""
SUCCESS_STATES = frozenset({"success"})
FAILED_STATES = frozenset({"failure", "error"})


@dataclass(frozen=True)
class Deployment:
    id: int
    sha: str
    ref: str
    environment: str
    created_at: datetime
    state: str
    """The latest status's state (`success`, `failure`, `error`, `inactive`, `in_progress`...; "" without one)."""
    finished_at: datetime | None
    """When it first reached `success` (the moment it was live), else None."""

    @property
    def succeeded(self) -> bool:
        # `inactive` is what a successful deployment becomes once a newer one replaces it
        return self.finished_at is not None


@dataclass(frozen=True)
class WorkflowRun:
    id: int
    name: str
    branch: str
    sha: str
    event: str
    status: str
    conclusion: str
    created_at: datetime


@dataclass(frozen=True)
class Commit:
    sha: str
    committed_at: datetime


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _commit(data: dict[str, Any]) -> Commit:
    inner = data.get("commit") or {}
    when = parse_time((inner.get("committer") or {}).get("date")) or parse_time((inner.get("author") or {}).get("date"))
    return Commit(data.get("sha", ""), when or datetime.min.replace(tzinfo=timezone.utc))


def _error(exc: Exception, missing: tuple[int, ...] = (404,)) -> IntegrationError:
    """`missing`: the statuses that mean "no such thing" (for a commit, GitHub answers 422)."""
    if isinstance(exc, gidgethub.HTTPException):
        status = int(exc.status_code)
        if status in missing:
            return NotFound("GitHub", _reason(exc))
        if (wait := _retry_after(status, exc.headers, str(exc))) is not None:
            return RateLimited(wait)
        return IntegrationError("GitHub", _reason(exc))
    return IntegrationError("GitHub", _reason(exc), timed_out=isinstance(exc, TimeoutError))


class DeploymentListCache(OrderedDict):  # type: ignore[type-arg]
    """gidgethub's ETag cache, for the first page of deployment lists only: its URL never changes,
    so an unchanged list costs a `304`, which GitHub does not count against its rate limit. The
    other answers are read once (commits, compares, statuses) or name a day (runs) and would only
    hold memory. At most `size` entries, the most recently stored kept."""

    def __init__(self, size: int = ETAG_CACHE_SIZE) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: Any, value: Any) -> None:
        if "/deployments?" not in str(key):
            return
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class GitHubDelivery:
    """Reads only; one instance per process, sharing the bot's aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, api_url: str, token: str = "",
                 timeout: float = TIMEOUT_SECONDS) -> None:
        self.api = GitHubAPI(session, "pavedroad", oauth_token=token or None, base_url=api_url, cache=DeploymentListCache())
        self.timeout = timeout
        self._default_branches: dict[str, str] = {}

    async def _item(self, operation: str, url: str, missing: tuple[int, ...] = (404,), **params: Any) -> Any:
        try:
            with observed("github", operation):
                async with asyncio.timeout(self.timeout):
                    return await self.api.getitem(url, url_vars=params)
        except (gidgethub.GitHubException, aiohttp.ClientError, TimeoutError) as exc:
            raise _error(exc, missing) from exc

    async def _items(self, url: str, key: str | None = None, **params: Any) -> AsyncIterator[dict[str, Any]]:
        """Every item of a paginated list; the time limit applies to each page. The caller observes
        the whole list as one call (an async generator cannot hold a span across its yields)."""
        pages = self.api.getiter(url, url_vars=params, **({"iterable_key": key} if key else {}))
        try:
            while True:
                async with asyncio.timeout(self.timeout):
                    try:
                        item = await anext(pages)
                    except StopAsyncIteration:
                        return
                yield item
        except (gidgethub.GitHubException, aiohttp.ClientError, TimeoutError) as exc:
            raise _error(exc) from exc
        finally:
            await pages.aclose()

    async def default_branch(self, slug: str) -> str:
        """The repository's default branch (remembered: it is renamed once in a blue moon)."""
        known = self._default_branches.get(slug.lower())
        if known:
            return known
        owner, _, repo = slug.partition("/")
        data = await self._item("repository", "/repos/{owner}/{repo}", owner=owner, repo=repo)
        branch = str((data or {}).get("default_branch") or "main")
        if len(self._default_branches) >= BRANCHES_KEPT:
            self._default_branches.clear()
        self._default_branches[slug.lower()] = branch
        return branch

    async def deployments(self, slug: str, since: datetime, environment: str = "production") -> list[Deployment]:
        """The deployments to `environment` created since `since`, plus the one just before it (the
        base for the first one's commits), oldest first, each with its latest status."""
        owner, _, repo = slug.partition("/")
        found: list[dict[str, Any]] = []
        with observed("github", "deployments"):
            async for item in self._items("/repos/{owner}/{repo}/deployments{?environment,per_page}",
                                          owner=owner, repo=repo, environment=environment,
                                          per_page=DEPLOYMENTS_PER_PAGE):
                found.append(item)
                created = parse_time(item.get("created_at"))
                if created is not None and created < since:
                    break  # newest first: this is the one before the window
        limit = asyncio.Semaphore(STATUS_READS_AT_ONCE)

        async def with_status(item: dict[str, Any]) -> Deployment:
            async with limit:
                with observed("github", "deployment statuses"):
                    statuses = [s async for s in self._items("/repos/{owner}/{repo}/deployments/{id}/statuses{?per_page}",
                                                             owner=owner, repo=repo, id=item.get("id"), per_page=PER_PAGE)]
            latest = statuses[0].get("state", "") if statuses else ""
            success = [parse_time(s.get("created_at")) for s in statuses if s.get("state") in SUCCESS_STATES]
            created = parse_time(item.get("created_at")) or datetime.min.replace(tzinfo=timezone.utc)
            return Deployment(int(item.get("id") or 0), str(item.get("sha") or ""), str(item.get("ref") or ""),
                              str(item.get("environment") or environment), created, str(latest),
                              min((s for s in success if s is not None), default=None))
        deployments = await asyncio.gather(*(with_status(item) for item in found))
        return sorted(deployments, key=lambda d: (d.created_at, d.id))

    async def workflow_runs(self, slug: str, since: datetime, branch: str = "") -> list[WorkflowRun]:
        """Workflow runs on `branch` (default: the repository's default branch) created since `since`, oldest first."""
        owner, _, repo = slug.partition("/")
        branch = branch or await self.default_branch(slug)
        with observed("github", "workflow runs"):
            runs = [run async for run in self._items(
                "/repos/{owner}/{repo}/actions/runs{?branch,created,per_page}", key="workflow_runs", owner=owner,
                repo=repo, branch=branch, created=f">={since.astimezone(timezone.utc):%Y-%m-%d}", per_page=PER_PAGE)]
        found = []
        for run in runs:
            created = parse_time(run.get("created_at"))
            if created is None or created < since:
                continue
            found.append(WorkflowRun(int(run.get("id") or 0), str(run.get("name") or ""), str(run.get("head_branch") or ""),
                                     str(run.get("head_sha") or ""), str(run.get("event") or ""),
                                     str(run.get("status") or ""), str(run.get("conclusion") or ""), created))
        return sorted(found, key=lambda r: (r.created_at, r.id))

    async def commits_between(self, slug: str, base: str, head: str) -> list[Commit]:
        """The commits in `head` and not in `base`, oldest first (GitHub lists at most 250)."""
        owner, _, repo = slug.partition("/")
        data = await self._item("compare", "/repos/{owner}/{repo}/compare/{basehead}", NO_COMMIT, owner=owner, repo=repo,
                                basehead=f"{base}...{head}")
        return [_commit(c) for c in (data or {}).get("commits") or []]

    async def commit(self, slug: str, sha: str) -> Commit:
        owner, _, repo = slug.partition("/")
        return _commit(await self._item("commit", "/repos/{owner}/{repo}/commits/{sha}", NO_COMMIT, owner=owner, repo=repo, sha=sha))
