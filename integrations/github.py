"""GitHub through gidgethub (async, on our aiohttp session). Reads are cached with their ETags
by gidgethub itself, so asking again for an unchanged file or commit costs a 304, which GitHub
does not count against the rate limit. A rate-limited answer raises `RateLimited`, saying how
long to wait; a missing file raises `NotFound`."""
from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import Any, Mapping

import aiohttp
import gidgethub
from gidgethub import sansio
from gidgethub.aiohttp import GitHubAPI

from integrations.errors import IntegrationError, observed

TIMEOUT_SECONDS = 10.0
SECONDARY_LIMIT_WAIT = 60.0  # GitHub: without retry-after, "wait for at least one minute"
PRIMARY_LIMIT_MAX_WAIT = 3600.0  # the primary limit resets hourly; a skewed clock never makes it longer


class NotFound(IntegrationError):
    """The repository, ref or file does not exist (or the token may not see it)."""


class RateLimited(IntegrationError):
    """GitHub refused for its rate limit (primary or secondary); ask again after `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("GitHub", f"rate limited; retry in {retry_after:.0f}s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class RepoFile:
    path: str
    text: str
    sha: str
    html_url: str


def _reason(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    if status is not None:
        hint = {401: " (check GITHUB_TOKEN)", 403: " (forbidden or rate limited)", 404: " (not found)"}.get(int(status), "")
        return f"HTTP {int(status)}{hint}"
    return f"unreachable ({exc.__class__.__name__})"


def _retry_after(status: int, headers: Mapping[str, str], message: str) -> float | None:
    """Seconds to wait when a 403/429 is GitHub's rate limit, as its documentation says: `retry-after`,
    else `x-ratelimit-reset` when `x-ratelimit-remaining` is 0, else a minute for a secondary limit.
    None for any other answer (a 403 may also be a plain "forbidden")."""
    if status not in (403, 429):
        return None
    if (wait := headers.get("retry-after", "")).isdigit():
        return float(wait)
    if headers.get("x-ratelimit-remaining") == "0":
        reset = float(headers.get("x-ratelimit-reset") or 0)
        return min(max(reset - time.time(), 1.0), PRIMARY_LIMIT_MAX_WAIT)
    return SECONDARY_LIMIT_WAIT if status == 429 or "rate limit" in message.lower() else None


class GitHubClient:
    def __init__(self, session: aiohttp.ClientSession, api_url: str, token: str = "") -> None:
        self.api = GitHubAPI(session, "pavedroad", oauth_token=token or None, base_url=api_url, cache={})

    async def _get(self, url: str, accept: str = sansio.accept_format(), missing: tuple[int, ...] = (404,),
                   **params: Any) -> Any:
        """GET with a timeout; answers whose status is in `missing` raise `NotFound`."""
        try:
            with observed("github", "read"):
                async with asyncio.timeout(TIMEOUT_SECONDS):
                    return await self.api.getitem(url, url_vars=params, accept=accept)
        except gidgethub.HTTPException as exc:
            status = int(exc.status_code)
            if status in missing:
                raise NotFound("GitHub", _reason(exc)) from exc
            if (wait := _retry_after(status, exc.headers, str(exc))) is not None:
                raise RateLimited(wait) from exc
            raise IntegrationError("GitHub", _reason(exc)) from exc
        except (gidgethub.GitHubException, aiohttp.ClientError, TimeoutError) as exc:
            raise IntegrationError("GitHub", _reason(exc), timed_out=isinstance(exc, TimeoutError)) from exc

    async def file(self, slug: str, path: str, ref: str = "") -> RepoFile:
        """A text file of a repository (`owner/name`), from the contents API."""
        owner, _, repo = slug.partition("/")
        data = await self._get("/repos/{owner}/{repo}/contents/{+path}{?ref}", owner=owner, repo=repo,
                               path=path.lstrip("/"), **({"ref": ref} if ref else {}))
        if not isinstance(data, dict) or data.get("type") != "file":
            raise NotFound("GitHub", f"{slug}/{path} is not a file")
        text = base64.b64decode(data.get("content", "")).decode("utf-8", errors="replace")
        return RepoFile(data.get("path", path), text, data.get("sha", ""), data.get("html_url", ""))

    async def commit(self, slug: str, ref: str = "") -> str:
        """The sha of the commit `ref` names (default: the default branch's head); "" when the
        repository is missing or empty or has no such ref. Asked with the `sha` media type, which
        GitHub answers with a 304 while it is unchanged."""
        owner, _, repo = slug.partition("/")
        try:
            sha = await self._get("/repos/{owner}/{repo}/commits/{ref}", accept="application/vnd.github.sha",
                                  missing=(404, 409, 422), owner=owner, repo=repo, ref=ref or "HEAD")
        except NotFound:
            return ""
        return str(sha or "").strip()
