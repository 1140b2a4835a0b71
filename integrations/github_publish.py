"""Writing to GitHub through gidgethub: create repositories, push a workspace as one commit with
the Git Data API, topics, team access, branches and pull requests.

Authentication is a token (`GITHUB_TOKEN`) or, the production way, a GitHub App: a JWT from the
app id and private key buys an installation token per owner, cached until shortly before it
expires. Writes go one at a time (GitHub's secondary rate limits punish concurrent content
creation) and a 403/429 secondary limit is waited out when it says `Retry-After`, a bounded
number of times. Every failure is an `IntegrationError` that says what GitHub answered.
"""
from __future__ import annotations

import asyncio
import base64
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlparse

import aiohttp
import gidgethub
import jwt
from gidgethub import apps
from gidgethub.aiohttp import GitHubAPI

from integrations.errors import IntegrationError, observed
from integrations.git_hosting import (Author, Commit, Location, PullRequest, RepoSettings, Repository,
                                      RepositoryExists, is_text, walk_files)

SYSTEM = "GitHub"
MAX_ATTEMPTS = 4


@dataclass(frozen=True)
class AppCredentials:
    app_id: str
    private_key: str  # PEM text
    installation_id: str = ""  # found per owner when empty


def _reason(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    if status is None:
        return f"unreachable ({exc.__class__.__name__})"
    message = str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else ""
    if isinstance(exc, gidgethub.ValidationFailure) or int(status) == 422:
        message = str(exc)
    hint = {401: "check GITHUB_TOKEN or the GitHub App settings", 404: "not found, or the token may not see it",
            500: "GitHub had a server error", 502: "GitHub is unavailable", 503: "GitHub is unavailable"}.get(int(status), "")
    return f"HTTP {int(status)}" + (f": {message}" if message else "") + (f" ({hint})" if hint else "")


def _retry_after(exc: gidgethub.HTTPException) -> float | None:
    """Seconds to wait before trying again, for a secondary rate limit; None for other errors."""
    status = int(exc.status_code)
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    if status not in (403, 429) or isinstance(exc, gidgethub.RateLimitExceeded):
        return None
    if "retry-after" in headers:
        try:
            return max(float(headers["retry-after"]), 0.0)
        except ValueError:
            return 60.0
    return 60.0 if status == 429 or "secondary rate limit" in str(exc).lower() else None


class GitHubPublisher:
    system = SYSTEM

    def __init__(self, session: aiohttp.ClientSession, api_url: str, token: str = "", app: AppCredentials | None = None,
                 *, timeout: float = 30.0, max_wait: float = 60.0) -> None:
        if not token and app is None:
            raise ValueError("GitHubPublisher needs a token or GitHub App credentials")
        self.api = GitHubAPI(session, "pavedroad", base_url=api_url)
        self.token = token
        self.app = app
        self.timeout = timeout
        self.max_wait = max_wait
        self._writes = asyncio.Lock()
        self._installation_tokens: dict[str, tuple[str, float]] = {}
        self._owner_is_org: dict[str, bool] = {}

    # -- authentication --------------------------------------------------------

    async def _token(self, owner: str) -> str:
        if self.token:
            return self.token
        assert self.app is not None
        cached = self._installation_tokens.get(owner.lower())
        if cached and cached[1] > time.time() + 60:
            return cached[0]
        try:
            installation = self.app.installation_id or await self._installation_id(owner)
            answer = await apps.get_installation_access_token(self.api, installation_id=installation,
                                                              app_id=self.app.app_id, private_key=self.app.private_key)
        except (gidgethub.GitHubException, aiohttp.ClientError, TimeoutError) as exc:
            raise IntegrationError(SYSTEM, f"cannot get a GitHub App installation token for {owner}: {_reason(exc)}") from exc
        except (ValueError, jwt.PyJWTError) as exc:  # a private key that is not PEM
            raise IntegrationError(SYSTEM, f"GITHUB_APP_PRIVATE_KEY is not a usable private key ({exc})") from exc
        expires = answer.get("expires_at", "")
        seconds = datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp() if expires else time.time() + 3000
        self._installation_tokens[owner.lower()] = (answer["token"], seconds)
        return answer["token"]

    async def _installation_id(self, owner: str) -> str:
        jwt = apps.get_jwt(app_id=self.app.app_id, private_key=self.app.private_key)  # type: ignore[union-attr]
        try:
            found = await self.api.getitem("/orgs/{owner}/installation", {"owner": owner}, jwt=jwt)
        except gidgethub.BadRequest as exc:
            if int(exc.status_code) != 404:
                raise
            found = await self.api.getitem("/users/{owner}/installation", {"owner": owner}, jwt=jwt)
        return str(found["id"])

    # -- calls -------------------------------------------------------------------

    async def _call(self, method: str, url: str, account: str, data: Any = None, **url_vars: Any) -> Any:
        """One API call as the installation of `account` (the repository owner); writes one at a
        time, secondary rate limits waited out."""
        token = await self._token(account)
        send = {"GET": self.api.getitem, "POST": self.api.post, "PATCH": self.api.patch, "PUT": self.api.put,
                "DELETE": self.api.delete}[method]
        kwargs: dict[str, Any] = {"oauth_token": token}
        if method in ("POST", "PATCH", "PUT"):
            kwargs["data"] = data if data is not None else {}
        waited = 0.0
        async with self._writes if method != "GET" else nullcontext():
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    with observed(SYSTEM, method.lower()):
                        async with asyncio.timeout(self.timeout):
                            return await send(url, url_vars, **kwargs)
                except gidgethub.HTTPException as exc:
                    wait = _retry_after(exc)
                    if wait is None:
                        raise
                    if attempt == MAX_ATTEMPTS or waited + wait > self.max_wait:
                        raise IntegrationError(SYSTEM, f"secondary rate limit: GitHub asks to wait {wait:g}s more; "
                                                       "try again later") from exc
                    waited += wait
                    await asyncio.sleep(wait)
                except TimeoutError as exc:
                    raise IntegrationError(SYSTEM, f"no answer within {self.timeout:g}s", timed_out=True) from exc
        raise AssertionError("unreachable")

    async def _request(self, method: str, url: str, account: str, data: Any = None, **url_vars: Any) -> Any:
        try:
            return await self._call(method, url, account, data, **url_vars)
        except (gidgethub.GitHubException, aiohttp.ClientError) as exc:
            raise IntegrationError(SYSTEM, _reason(exc)) from exc

    async def _maybe(self, url: str, account: str, **url_vars: Any) -> Any | None:
        """A GET whose 404 is None rather than an error."""
        try:
            return await self._call("GET", url, account, **url_vars)
        except gidgethub.BadRequest as exc:
            if int(exc.status_code) == 404:
                return None
            raise IntegrationError(SYSTEM, _reason(exc)) from exc
        except (gidgethub.GitHubException, aiohttp.ClientError) as exc:
            raise IntegrationError(SYSTEM, _reason(exc)) from exc

    # -- repositories ------------------------------------------------------------

    @staticmethod
    def _repository(data: dict) -> Repository:
        return Repository(data["owner"]["login"], data["name"], data["html_url"], data.get("clone_url", ""),
                          data.get("default_branch") or "main")

    async def repository(self, owner: str, name: str) -> Repository | None:
        data = await self._maybe("/repos/{owner}/{repo}", owner, owner=owner, repo=name)
        return self._repository(data) if data else None

    async def _is_org(self, owner: str) -> bool:
        if owner.lower() not in self._owner_is_org:
            org = await self._maybe("/orgs/{org}", owner, org=owner)
            if org is None:
                user = await self._request("GET", "/user", owner)
                if str(user.get("login", "")).lower() != owner.lower():
                    raise IntegrationError(SYSTEM, f"{owner} is neither an organization nor the bot's own account")
            self._owner_is_org[owner.lower()] = org is not None
        return self._owner_is_org[owner.lower()]

    async def create_repository(self, owner: str, name: str, settings: RepoSettings) -> Repository:
        body = {"name": name, "description": settings.description, "homepage": settings.homepage or None,
                "private": settings.visibility != "public", "visibility": settings.visibility, "auto_init": True}
        url = "/orgs/{org}/repos" if await self._is_org(owner) else "/user/repos"
        try:
            data = await self._call("POST", url, owner, body, org=owner)
        except gidgethub.BadRequest as exc:
            if int(exc.status_code) == 422 and "already exists" in str(exc):
                raise RepositoryExists(SYSTEM, f"repository {owner}/{name} already exists") from exc
            raise IntegrationError(SYSTEM, _reason(exc)) from exc
        except (gidgethub.GitHubException, aiohttp.ClientError) as exc:
            raise IntegrationError(SYSTEM, _reason(exc)) from exc
        return self._repository(data)

    async def set_topics(self, owner: str, name: str, topics: list[str]) -> None:
        await self._request("PUT", "/repos/{owner}/{repo}/topics", owner, {"names": topics}, owner=owner, repo=name)

    async def set_default_branch(self, owner: str, name: str, branch: str) -> None:
        await self._request("PATCH", "/repos/{owner}/{repo}", owner, {"default_branch": branch}, owner=owner, repo=name)

    async def grant_team(self, owner: str, name: str, team: str, permission: str) -> None:
        """`team` is a slug in the repository's organization, or `org/slug`."""
        org, _, slug = team.rpartition("/")
        await self._request("PUT", "/orgs/{org}/teams/{team}/repos/{owner}/{repo}", owner, {"permission": permission},
                            org=org or owner, team=slug, owner=owner, repo=name)

    # -- git data ------------------------------------------------------------------

    async def head(self, owner: str, name: str, branch: str) -> Commit | None:
        ref = await self._maybe("/repos/{owner}/{repo}/git/ref/heads/{branch}", owner, owner=owner, repo=name, branch=branch)
        if ref is None:
            return None
        commit = await self._request("GET", "/repos/{owner}/{repo}/git/commits/{sha}", owner,
                                     owner=owner, repo=name, sha=ref["object"]["sha"])
        return Commit(commit["sha"], commit.get("message", ""), len(commit.get("parents") or []))

    async def _tree_entry(self, owner: str, name: str, path: str, file: Path, executable: bool) -> dict:
        data = file.read_bytes()
        entry = {"path": path, "mode": "100755" if executable else "100644", "type": "blob"}
        if is_text(data):
            return {**entry, "content": data.decode("utf-8")}
        blob = await self._request("POST", "/repos/{owner}/{repo}/git/blobs", owner,
                                   {"content": base64.b64encode(data).decode(), "encoding": "base64"}, owner=owner, repo=name)
        return {**entry, "sha": blob["sha"]}

    async def commit_files(self, owner: str, name: str, branch: str, source: Path, message: str, author: Author,
                           *, parent: str | None = None, prefix: str = "") -> str:
        prefix = prefix.strip("/")
        tree = [await self._tree_entry(owner, name, f"{prefix}/{relative}" if prefix else relative, file, executable)
                for relative, file, executable in walk_files(source)]
        return await self._commit(owner, name, branch, tree, message, author, parent)

    async def remove_files(self, owner: str, name: str, branch: str, paths: Sequence[str], message: str, author: Author,
                           *, parent: str) -> str | None:
        present = [path for path in paths if await self._maybe("/repos/{owner}/{repo}/contents/{+path}{?ref}", owner, owner=owner,
                                                              repo=name, path=path.lstrip("/"), ref=parent) is not None]
        if not present:
            return None
        tree = [{"path": path.lstrip("/"), "mode": "100644", "type": "blob", "sha": None} for path in present]  # null deletes
        return await self._commit(owner, name, branch, tree, message, author, parent)

    async def _commit(self, owner: str, name: str, branch: str, tree: list[dict], message: str, author: Author,
                      parent: str | None) -> str:
        """One commit on `branch` (created, or moved by force) of `parent`'s tree changed by the
        tree entries, or of those entries alone without a parent."""
        body: dict[str, Any] = {"tree": tree}
        if parent:
            parent_commit = await self._request("GET", "/repos/{owner}/{repo}/git/commits/{sha}", owner,
                                                owner=owner, repo=name, sha=parent)
            body["base_tree"] = parent_commit["tree"]["sha"]
        made = await self._request("POST", "/repos/{owner}/{repo}/git/trees", owner, body, owner=owner, repo=name)
        who = {"name": author.name, "email": author.email}
        commit = await self._request("POST", "/repos/{owner}/{repo}/git/commits", owner,
                                     {"message": message, "tree": made["sha"], "parents": [parent] if parent else [],
                                      "author": who, "committer": who}, owner=owner, repo=name)
        exists = await self._maybe("/repos/{owner}/{repo}/git/ref/heads/{branch}", owner, owner=owner, repo=name, branch=branch)
        if exists:
            await self._request("PATCH", "/repos/{owner}/{repo}/git/refs/heads/{branch}", owner,
                                {"sha": commit["sha"], "force": True}, owner=owner, repo=name, branch=branch)
        else:
            await self._request("POST", "/repos/{owner}/{repo}/git/refs", owner,
                                {"ref": f"refs/heads/{branch}", "sha": commit["sha"]}, owner=owner, repo=name)
        return commit["sha"]

    async def delete_branch(self, owner: str, name: str, branch: str) -> None:
        try:
            await self._call("DELETE", "/repos/{owner}/{repo}/git/refs/heads/{branch}", owner,
                             owner=owner, repo=name, branch=branch)
        except gidgethub.BadRequest as exc:
            if int(exc.status_code) not in (404, 422):  # already gone
                raise IntegrationError(SYSTEM, _reason(exc)) from exc
        except (gidgethub.GitHubException, aiohttp.ClientError) as exc:
            raise IntegrationError(SYSTEM, _reason(exc)) from exc

    async def open_pull_request(self, owner: str, name: str, branch: str, base: str, title: str, body: str,
                                draft: bool) -> PullRequest:
        open_ones = await self._request("GET", "/repos/{owner}/{repo}/pulls{?state,head,base}", owner, owner=owner,
                                        repo=name, state="open", head=f"{owner}:{branch}", base=base)
        if not open_ones:
            open_ones = [await self._request("POST", "/repos/{owner}/{repo}/pulls", owner,
                                             {"title": title, "body": body, "head": branch, "base": base, "draft": draft},
                                             owner=owner, repo=name)]
        pull = open_ones[0]
        return PullRequest(pull["number"], pull["html_url"], branch)

    async def read_file(self, owner: str, name: str, ref: str, path: str) -> bytes:
        data = await self._request("GET", "/repos/{owner}/{repo}/contents/{+path}{?ref}", owner, owner=owner, repo=name,
                                   path=path.lstrip("/"), ref=ref)
        if not isinstance(data, dict) or data.get("type") != "file":
            raise IntegrationError(SYSTEM, f"{owner}/{name}/{path} is not a file")
        return base64.b64decode(data.get("content", ""))

    def contents_url(self, repo: Repository, branch: str) -> str:
        return f"{repo.html_url}/blob/{branch}"

    def locate(self, url: str) -> Location | None:
        """`https://HOST/OWNER/NAME/blob/REF/PATH` (or `tree`) → its parts."""
        parts = urlparse(url).path.strip("/").split("/")
        if urlparse(url).scheme not in ("http", "https") or len(parts) < 2:
            return None
        ref = parts[3] if len(parts) > 3 and parts[2] in ("blob", "tree") else "HEAD"
        return Location(parts[0], parts[1].removesuffix(".git"), ref, "/".join(parts[4:]))
