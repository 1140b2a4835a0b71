"""GitHub through gidgethub (async, on our aiohttp session). Reads are cached with their ETags
by gidgethub itself, so asking again for an unchanged file costs a 304."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import aiohttp
import gidgethub
from gidgethub.aiohttp import GitHubAPI

from integrations.errors import IntegrationError


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


class GitHubClient:
    def __init__(self, session: aiohttp.ClientSession, api_url: str, token: str = "") -> None:
        self.api = GitHubAPI(session, "pavedroad", oauth_token=token or None, base_url=api_url, cache={})

    async def _get(self, url: str, **params: Any) -> Any:
        try:
            return await self.api.getitem(url, url_vars=params)
        except (gidgethub.GitHubException, aiohttp.ClientError, TimeoutError) as exc:
            raise IntegrationError("GitHub", _reason(exc)) from exc

    async def file(self, slug: str, path: str, ref: str = "") -> RepoFile:
        """A text file of a repository (`owner/name`), from the contents API."""
        owner, _, repo = slug.partition("/")
        data = await self._get("/repos/{owner}/{repo}/contents/{+path}{?ref}", owner=owner, repo=repo,
                               path=path.lstrip("/"), **({"ref": ref} if ref else {}))
        if not isinstance(data, dict) or data.get("type") != "file":
            raise IntegrationError("GitHub", f"{slug}/{path} is not a file")
        text = base64.b64decode(data.get("content", "")).decode("utf-8", errors="replace")
        return RepoFile(data.get("path", path), text, data.get("sha", ""), data.get("html_url", ""))
