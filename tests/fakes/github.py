"""A fake GitHub REST API (https://docs.github.com/rest), for gidgethub.

Point gidgethub at it with ``base_url``::

    async with GitHubFake() as github, aiohttp.ClientSession() as session:
        github.add_repo("acme/payment-service", files={"runbook.md": "# Runbook\\n"})
        gh = GitHubAPI(session, "pavedroad", oauth_token=github.token, base_url=github.url)
        await gh.getitem("/repos/acme/payment-service/contents/runbook.md")

What it does as GitHub does:

* auth: ``Authorization: token X`` or ``Bearer X`` with a configured token,
  else 401 ``Bad credentials``; without the header, public repositories can
  be read (private ones are 404) and anything else is 401 ``Requires
  authentication``. Every answer carries ``X-RateLimit-{Limit,Remaining,
  Reset,Used,Resource}`` (5000 an hour with a token, 60 without; a 304 costs
  nothing); set ``rate_limit_remaining = 0`` for the primary limit (403 with
  ``X-RateLimit-Remaining: 0``: gidgethub raises ``RateLimitExceeded``).
  ``secondary_limit(n, retry_after)`` answers the next *n* content-creating
  requests (POST/PUT/PATCH/DELETE) with 403 ``You have exceeded a secondary
  rate limit...`` and ``Retry-After`` (gidgethub raises ``BadRequest``); the
  base ``rate_limit(n)`` answers anything with 429 and the same message.
* every 200 GET has an ``ETag`` and ``If-None-Match`` gets 304 with no body
  (contents: the quoted blob or tree sha; elsewhere a weak hash of the body),
  so gidgethub's ``cache=`` works.
* a real git object store per repository: blobs, trees and commits have
  their git SHA-1s, trees are in git order, empty directories vanish.
* errors: ``{"message", "documentation_url", "status"}``; 422 validation
  errors with ``errors: [{"resource", "code", "field"?, "message"?}]``.

Endpoints: ``GET /user``, ``GET /orgs/{org}``, ``GET /orgs/{org}/teams/{slug}``,
``POST /orgs/{org}/repos``, ``POST /user/repos`` (``auto_init`` commits a
README.md on ``main``; without it the repository is empty and git data calls
answer 409 ``Git Repository is empty.``), ``GET``/``PATCH /repos/{o}/{r}``,
``GET``/``PUT /repos/{o}/{r}/topics``, ``PUT /orgs/{org}/teams/{slug}/repos/{o}/{r}``,
``GET /repos/{o}/{r}/contents[/{path}]`` (``ref`` a branch, tag or commit
sha; ``Accept: application/vnd.github.raw`` for the bytes, ``.object`` for
directories as ``{"entries"}``), ``PUT``/``DELETE .../contents/{path}``,
``GET .../branches/{branch}``, ``GET .../commits/{ref}`` (``HEAD`` is the
default branch; ``Accept: application/vnd.github.sha`` for the bare sha, whose
``ETag`` is the quoted sha), ``GET .../git/ref/{ref}``, ``GET
.../git/matching-refs/{ref}``, ``POST .../git/refs``, ``PATCH``/``DELETE
.../git/refs/{ref}`` (fast-forward only unless ``force``), ``POST``/``GET
.../git/blobs``, ``POST``/``GET .../git/trees`` (``base_tree``; entries with
``content`` or ``sha``, ``sha: null`` deletes; ``recursive``), ``POST``/``GET
.../git/commits``, ``POST``/``GET .../pulls`` (``state``, ``head=owner:branch``
- a bare branch name is ignored, as GitHub does -, ``base``, ``per_page``,
``page``), ``GET``/``PATCH .../pulls/{number}``, ``GET .../deployments``
(``environment``, ``ref``, ``sha``, ``task``; newest first), ``GET
.../deployments/{id}/statuses`` (newest first), ``GET .../actions/runs``
(``branch``, ``status``, ``event``, ``head_sha``, ``created`` as GitHub's date
qualifier: ``>=2024-01-01``, ``A..B``...; newest first, in ``{"total_count",
"workflow_runs"}``) and ``GET .../compare/{base}...{head}`` (the commits in
head and not in base, oldest first, at most 250). Lists are paginated with
``Link`` headers.
``download_url`` points at ``{url}/raw/{owner}/{repo}/{ref}/{path}`` on the
fake (as GitHub Enterprise serves raw files); ``html_url`` at ``html_root``.

Seeding and inspection: ``add_org``, ``add_team``, ``add_repo`` (a README.md
commit unless ``files`` or ``empty=True``), ``add_branch``, ``commit_files``;
delivery data with ``add_dated_commit`` (a commit at a given time),
``add_deployment`` (with one status, ``state=None`` for none),
``add_deployment_status`` and ``add_workflow_run``;
``repos`` (full name → ``FakeRepo``), ``repo(name)``, ``file(repo, path,
ref=None)``, ``files(repo, ref=None)``, ``commits(repo, branch=None)``,
``pulls(repo)``, ``team_permission(org, team, repo)``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from .base import (FakeHTTPError, FakeServer, JsonDict, iso, json_response, parse_iso, reason_phrase, recorded,
                   utc_now)

DEFAULT_TOKEN = "ghp_fakeGitHubToken0123456789abcdefABCDEF"
DOCS = "https://docs.github.com/rest"
SECONDARY_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. "
    "Please retry your request again later. If you reach out to GitHub Support for help, please include "
    "the request ID {request_id}.")
SECONDARY_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FILE_MODES = {"100644": "blob", "100755": "blob", "120000": "blob", "040000": "tree", "160000": "commit"}
PERMISSIONS = ("pull", "triage", "push", "maintain", "admin")
TOPIC = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
IDENTITY = web.RequestKey("github.identity", str)


# -- the git object store --------------------------------------------------


def git_sha(kind: str, data: bytes) -> str:
    """The object id git gives ``data`` stored as a ``kind`` (blob, tree, commit)."""
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).hexdigest()


@dataclass(frozen=True)
class TreeEntry:
    name: str
    mode: str
    """As the API prints it: ``100644``, ``100755``, ``120000``, ``040000``, ``160000``."""
    type: str
    sha: str


@dataclass(frozen=True)
class Signature:
    name: str
    email: str
    date: str

    def json(self) -> JsonDict:
        return {"name": self.name, "email": self.email, "date": self.date}

    def git(self) -> str:
        return f"{self.name} <{self.email}> {int(parse_iso(self.date).timestamp())} +0000"


@dataclass(frozen=True)
class GitCommit:
    sha: str
    tree: str
    parents: tuple[str, ...]
    message: str
    author: Signature
    committer: Signature


class GitStore:
    """Blobs, trees and commits by their SHA-1, as git stores them."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, tuple[TreeEntry, ...]] = {EMPTY_TREE: ()}
        self.commits: dict[str, GitCommit] = {}

    def kind(self, sha: str) -> str | None:
        return ("blob" if sha in self.blobs else "tree" if sha in self.trees
                else "commit" if sha in self.commits else None)

    def put_blob(self, data: bytes) -> str:
        sha = git_sha("blob", data)
        self.blobs[sha] = data
        return sha

    def put_tree(self, entries: list[TreeEntry]) -> str:
        ordered = tuple(sorted(entries, key=lambda e: e.name.encode() + (b"/" if e.type == "tree" else b"")))
        raw = b"".join(f"{e.mode.lstrip('0')} {e.name}".encode() + b"\0" + bytes.fromhex(e.sha) for e in ordered)
        sha = git_sha("tree", raw)
        self.trees[sha] = ordered
        return sha

    def put_commit(self, tree: str, parents: list[str], message: str, author: Signature,
                   committer: Signature) -> str:
        lines = [f"tree {tree}", *(f"parent {p}" for p in parents),
                 f"author {author.git()}", f"committer {committer.git()}"]
        sha = git_sha("commit", ("\n".join(lines) + "\n\n" + message).encode())
        self.commits[sha] = GitCommit(sha, tree, tuple(parents), message, author, committer)
        return sha

    def lookup(self, tree: str, path: str) -> TreeEntry | None:
        """The entry at ``path`` (``""`` is the root tree itself)."""
        entry = TreeEntry("", "040000", "tree", tree)
        for part in (p for p in path.strip("/").split("/") if p):
            if entry.type != "tree":
                return None
            entry = next((e for e in self.trees[entry.sha] if e.name == part), None)
            if entry is None:
                return None
        return entry

    def walk(self, tree: str, prefix: str = "") -> list[tuple[str, TreeEntry]]:
        """Every entry under ``tree``, depth first, with its full path."""
        found = []
        for entry in self.trees[tree]:
            path = f"{prefix}{entry.name}"
            found.append((path, entry))
            if entry.type == "tree":
                found.extend(self.walk(entry.sha, f"{path}/"))
        return found

    def build_tree(self, base: str | None, changes: list[tuple[str, str, str, str | None]]) -> str:
        """``base`` with ``(path, mode, type, sha)`` changes applied (``sha`` None deletes).

        Raises ``KeyError(path)`` when deleting a path that is not there.
        """
        root: dict[str, Any] = self._load(base) if base else {}
        for path, mode, kind, sha in changes:
            *folders, last = path.strip("/").split("/")
            node = root
            for folder in folders:
                child = node.get(folder)
                if isinstance(child, TreeEntry):
                    child = self._load(child.sha) if child.type == "tree" else None
                if child is None:
                    if sha is None:
                        raise KeyError(path)
                    child = {}
                node[folder] = node = child
            if sha is None:
                if last not in node:
                    raise KeyError(path)
                del node[last]
            else:
                node[last] = TreeEntry(last, mode, kind, sha)
        return self._write(root, top=True) or EMPTY_TREE

    def _load(self, sha: str) -> dict[str, Any]:
        return {e.name: e for e in self.trees[sha]}

    def _write(self, node: dict[str, Any], top: bool = False) -> str | None:
        entries = []
        for name, child in node.items():
            if isinstance(child, dict):
                sha = self._write(child)
                if sha is not None:
                    entries.append(TreeEntry(name, "040000", "tree", sha))
            elif child.type != "tree" or self.trees.get(child.sha):
                entries.append(child)
        return self.put_tree(entries) if entries or top else None

    def history(self, head: str) -> list[GitCommit]:
        """First-parent history from ``head``, newest first."""
        found = []
        sha: str | None = head
        while sha is not None and sha in self.commits:
            commit = self.commits[sha]
            found.append(commit)
            sha = commit.parents[0] if commit.parents else None
        return found

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether ``ancestor`` is ``descendant`` or reachable from it."""
        seen, todo = set(), [descendant]
        while todo:
            sha = todo.pop()
            if sha == ancestor:
                return True
            if sha in seen or sha not in self.commits:
                continue
            seen.add(sha)
            todo.extend(self.commits[sha].parents)
        return False


# -- state -----------------------------------------------------------------


@dataclass
class FakeRepo:
    """One repository: settings, refs, git objects and pull requests."""

    id: int
    owner: str
    name: str
    owner_type: str
    """``Organization`` or ``User``."""
    private: bool
    description: str | None
    default_branch: str
    created_at: str
    visibility: str = ""
    homepage: str | None = None
    topics: list[str] = field(default_factory=list)
    archived: bool = False
    settings: JsonDict = field(default_factory=dict)
    """Other PATCHed settings (``has_issues``...), echoed back."""
    git: GitStore = field(default_factory=GitStore)
    refs: dict[str, str] = field(default_factory=dict)
    """``refs/heads/main`` → commit sha."""
    pull_records: list[JsonDict] = field(default_factory=list)
    deployments: list[JsonDict] = field(default_factory=list)
    workflow_runs: list[JsonDict] = field(default_factory=list)
    deployment_statuses: dict[int, list[JsonDict]] = field(default_factory=dict)
    """Deployment id → its statuses, oldest first (``add_deployment``)."""
    updated_at: str = ""
    pushed_at: str | None = None

    def __post_init__(self) -> None:
        self.visibility = self.visibility or ("private" if self.private else "public")
        self.updated_at = self.updated_at or self.created_at

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def empty(self) -> bool:
        return not self.refs

    def branch_sha(self, branch: str) -> str | None:
        return self.refs.get(f"refs/heads/{branch}")

    def resolve(self, ref: str | None) -> str | None:
        """The commit a branch, tag, ``refs/...`` name or commit sha (or None: the default branch) names."""
        ref = ref or self.default_branch
        for name in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
            if name in self.refs:
                return self.refs[name]
        if re.fullmatch(r"[0-9a-f]{4,40}", ref):
            matches = [sha for sha in self.git.commits if sha.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
        return None


@dataclass
class FakeTeam:
    org: str
    slug: str
    name: str
    id: int
    repos: dict[str, str] = field(default_factory=dict)
    """Full name of a repository → permission given by ``PUT .../teams/{slug}/repos/{o}/{r}``."""


def _base64_lines(data: bytes) -> str:
    """Base64 in lines of 60 characters, each ending with a newline, as GitHub sends content."""
    encoded = base64.b64encode(data).decode()
    return "".join(f"{encoded[i:i + 60]}\n" for i in range(0, len(encoded), 60))


def _bytes(content: str | bytes) -> bytes:
    return content if isinstance(content, bytes) else content.encode()


def gh_error(status: int, message: str, *errors: JsonDict, docs: str = DOCS) -> FakeHTTPError:
    body: JsonDict = {"message": message, "documentation_url": docs, "status": str(status)}
    if errors:
        body["errors"] = list(errors)
    return FakeHTTPError(status, body)


def not_found() -> FakeHTTPError:
    return gh_error(404, "Not Found")


def validation_failed(*errors: JsonDict) -> FakeHTTPError:
    return gh_error(422, "Validation Failed", *errors)


def missing_field(name: str) -> FakeHTTPError:
    return gh_error(422, f'Invalid request.\n\n"{name}" wasn\'t supplied.')


def git_empty() -> FakeHTTPError:
    return gh_error(409, "Git Repository is empty.")


def _json_body(request: web.Request) -> JsonDict:
    body = recorded(request).body
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise gh_error(400, "Problems parsing JSON")
    return body


class GitHubFake(FakeServer):
    """The REST API at ``url`` (give it to gidgethub as ``base_url``)."""

    default_content_type = "application/json"

    def __init__(self, *, token: str = DEFAULT_TOKEN, user: str = "pavedroad-bot",
                 html_root: str = "https://github.com", tls: bool = False) -> None:
        super().__init__(tls=tls)
        self.token = token
        self.tokens = {token}
        self.user_login = user
        self.html_root = html_root.rstrip("/")
        self.repos: dict[str, FakeRepo] = {}
        self.orgs: dict[str, JsonDict] = {}
        self.teams: dict[tuple[str, str], FakeTeam] = {}
        self._ids = 1000
        self.user_id = self._next_id()
        self.rate_limit_limit = 5000
        self.rate_limit_used = 0
        self.anonymous_used = 0
        self.rate_limit_reset = int(time.time()) + 3600
        self._secondary_left = 0
        self._secondary_retry_after = 1

    @property
    def url(self) -> str:
        return self.root

    # -- seeding -------------------------------------------------------------

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def add_org(self, login: str, *, name: str | None = None) -> JsonDict:
        if login.lower() not in (o.lower() for o in self.orgs):
            self.orgs[login] = {"login": login, "id": self._next_id(), "name": name or login}
        return self._org(login)  # type: ignore[return-value]

    def add_team(self, org: str, slug: str, *, name: str | None = None) -> FakeTeam:
        self.add_org(org)
        key = (org.lower(), slug.lower())
        if key not in self.teams:
            self.teams[key] = FakeTeam(self._org(org)["login"], slug, name or slug, self._next_id())  # type: ignore[index]
        return self.teams[key]

    def add_repo(self, full_name: str, *, default_branch: str = "main",
                 files: Mapping[str, str | bytes] | None = None, private: bool = False,
                 description: str | None = None, topics: list[str] | None = None, empty: bool = False,
                 visibility: str | None = None) -> FakeRepo:
        """A repository with ``files`` committed on ``default_branch`` (a README.md when None;
        nothing at all with ``empty=True``)."""
        owner, _, name = full_name.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"not owner/name: {full_name!r}")
        if self.repo(full_name) is not None:
            raise ValueError(f"{full_name} exists")
        if owner.lower() != self.user_login.lower():
            owner = self.add_org(owner)["login"]
        repo = self._new_repo(owner, name, private=private, description=description, default_branch=default_branch,
                              visibility=visibility)
        repo.topics = list(topics or [])
        if not empty:
            self.commit_files(repo.full_name, files if files is not None else {"README.md": f"# {name}\n"},
                              message="Initial commit")
        return repo

    def add_branch(self, repo: str, branch: str, from_ref: str | None = None) -> str:
        """A branch at ``from_ref`` (default: the default branch's head); its sha."""
        found = self._seeded(repo)
        sha = found.resolve(from_ref)
        if sha is None:
            raise ValueError(f"{repo} has no {from_ref or found.default_branch}")
        found.refs[f"refs/heads/{branch}"] = sha
        return sha

    def commit_files(self, repo: str, files: Mapping[str, str | bytes | None], *, branch: str | None = None,
                     message: str = "Update files") -> str:
        """Commit ``files`` (None deletes) on ``branch`` (default branch; created from it when new)."""
        found = self._seeded(repo)
        branch = branch or found.default_branch
        parent = found.branch_sha(branch) or found.resolve(None)
        base = found.git.commits[parent].tree if parent else None
        changes = [(path, "100644", "blob", None if content is None else found.git.put_blob(_bytes(content)))
                   for path, content in files.items()]
        tree = found.git.build_tree(base, changes)
        sha = self._commit(found, tree, [parent] if parent else [], message)
        found.refs[f"refs/heads/{branch}"] = sha
        found.pushed_at = iso(utc_now())
        return sha

    def secondary_limit(self, n: int, retry_after: int = 1) -> None:
        """Answer the next ``n`` POST/PUT/PATCH/DELETE with 403 (secondary rate limit) and ``Retry-After``."""
        self._secondary_left = n
        self._secondary_retry_after = retry_after

    def reset_faults(self) -> None:
        super().reset_faults()
        self._secondary_left = 0

    @property
    def rate_limit_remaining(self) -> int:
        return max(self.rate_limit_limit - self.rate_limit_used, 0)

    @rate_limit_remaining.setter
    def rate_limit_remaining(self, value: int) -> None:
        self.rate_limit_used = self.rate_limit_limit - value

    # -- inspection ------------------------------------------------------------

    def repo(self, full_name: str) -> FakeRepo | None:
        """The repository (names are case-insensitive, as on GitHub)."""
        wanted = full_name.lower()
        return next((r for name, r in self.repos.items() if name.lower() == wanted), None)

    def file(self, repo: str, path: str, ref: str | None = None) -> str | None:
        """The text of ``path`` on ``ref`` (default branch when None), None when absent."""
        found = self.repo(repo)
        sha = found.resolve(ref) if found else None
        if found is None or sha is None:
            return None
        entry = found.git.lookup(found.git.commits[sha].tree, path)
        if entry is None or entry.type != "blob":
            return None
        return found.git.blobs[entry.sha].decode("utf-8", "replace")

    def files(self, repo: str, ref: str | None = None) -> dict[str, str]:
        """Every file on ``ref`` (default branch when None): path → text."""
        found = self._seeded(repo)
        sha = found.resolve(ref)
        if sha is None:
            return {}
        return {path: found.git.blobs[e.sha].decode("utf-8", "replace")
                for path, e in found.git.walk(found.git.commits[sha].tree) if e.type == "blob"}

    def commits(self, repo: str, branch: str | None = None) -> list[JsonDict]:
        """The first-parent history of ``branch`` (default branch), newest first, as the API shows commits."""
        found = self._seeded(repo)
        head = found.resolve(branch)
        return [self._commit_json(found, c) for c in found.git.history(head)] if head else []

    def pulls(self, repo: str) -> list[JsonDict]:
        found = self._seeded(repo)
        return [self._pull_json(found, p) for p in found.pull_records]

    def team_permission(self, org: str, team: str, repo: str) -> str | None:
        found = self.teams.get((org.lower(), team.lower()))
        wanted = repo.lower()
        return next((p for name, p in found.repos.items() if name.lower() == wanted), None) if found else None

    def _seeded(self, repo: str) -> FakeRepo:
        found = self.repo(repo)
        if found is None:
            raise KeyError(f"no repository {repo}")
        return found

    # -- HTTP plumbing ---------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        api = self._api
        repo = "/repos/{owner}/{repo}"
        router.add_get("/user", api(self._get_user))
        router.add_get("/orgs/{org}", api(self._get_org))
        router.add_get("/orgs/{org}/teams/{team}", api(self._get_team))
        router.add_post("/orgs/{org}/repos", api(self._create_org_repo))
        router.add_post("/user/repos", api(self._create_user_repo))
        router.add_put("/orgs/{org}/teams/{team}/repos/{owner}/{repo}", api(self._add_team_repo))
        router.add_get(repo, api(self._get_repo))
        router.add_patch(repo, api(self._update_repo))
        router.add_get(f"{repo}/topics", api(self._get_topics))
        router.add_put(f"{repo}/topics", api(self._replace_topics))
        router.add_get(repo + "/contents{path:.*}", api(self._get_contents))
        router.add_put(repo + "/contents/{path:.+}", api(self._put_contents))
        router.add_delete(repo + "/contents/{path:.+}", api(self._delete_contents))
        router.add_get(repo + "/branches/{branch:.+}", api(self._get_branch))
        router.add_get(repo + "/commits/{ref:.+}", api(self._get_commit_of_ref))
        router.add_get(repo + "/git/ref/{ref:.+}", api(self._get_ref))
        router.add_get(repo + "/git/refs/{ref:.+}", api(self._get_refs_legacy))
        router.add_get(repo + "/git/matching-refs/{ref:.*}", api(self._matching_refs))
        router.add_post(f"{repo}/git/refs", api(self._create_ref))
        router.add_patch(repo + "/git/refs/{ref:.+}", api(self._update_ref))
        router.add_delete(repo + "/git/refs/{ref:.+}", api(self._delete_ref))
        router.add_post(f"{repo}/git/blobs", api(self._create_blob))
        router.add_get(repo + "/git/blobs/{sha}", api(self._get_blob))
        router.add_post(f"{repo}/git/trees", api(self._create_tree))
        router.add_get(repo + "/git/trees/{sha:.+}", api(self._get_tree))
        router.add_post(f"{repo}/git/commits", api(self._create_commit))
        router.add_get(repo + "/git/commits/{sha}", api(self._get_commit))
        router.add_post(f"{repo}/pulls", api(self._create_pull))
        router.add_get(f"{repo}/pulls", api(self._list_pulls))
        router.add_get(repo + "/pulls/{number:[0-9]+}", api(self._get_pull))
        router.add_patch(repo + "/pulls/{number:[0-9]+}", api(self._update_pull))
        router.add_get(f"{repo}/deployments", api(self._list_deployments))
        router.add_get(f"{repo}/actions/runs", api(self._list_runs))
        router.add_get(repo + "/deployments/{id:[0-9]+}/statuses", api(self._list_deployment_statuses))
        router.add_get(repo + "/compare/{basehead:.+}", api(self._compare))
        router.add_get("/raw/{owner}/{repo}/{ref}/{path:.+}", self._raw_download)

    def error_response(self, status: int, request: web.Request) -> web.Response:
        message = {401: "Bad credentials", 404: "Not Found", 500: "Server Error"}.get(status, reason_phrase(status))
        return gh_error(status, message).response()

    def rate_limited_response(self, request: web.Request) -> web.Response:
        return gh_error(429, SECONDARY_LIMIT_MESSAGE.format(request_id=self._request_id()),
                        docs=SECONDARY_LIMIT_DOCS).response()

    @staticmethod
    def _request_id() -> str:
        return uuid.uuid4().hex[:20].upper()

    def _identity(self, request: web.Request) -> str | None:
        """``token``, ``anonymous`` or None (bad credentials)."""
        header = request.headers.get("Authorization", "").strip()
        if not header:
            return "anonymous"
        scheme, _, value = header.partition(" ")
        return "token" if scheme.lower() in ("token", "bearer") and value.strip() in self.tokens else None

    def _api(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            identity = self._identity(request)
            if identity is None:
                raise gh_error(401, "Bad credentials")
            request[IDENTITY] = identity
            if identity == "anonymous" and request.method != "GET":
                raise gh_error(401, "Requires authentication")
            limit, used = self._usage(identity)
            if used >= limit:
                raise gh_error(403, "API rate limit exceeded for user ID 1. If you reach out to GitHub Support "
                               f"for help, please include the request ID {self._request_id()}.",
                               docs="https://docs.github.com/rest/overview/rate-limits-for-the-rest-api")
            if request.method in WRITE_METHODS and self._secondary_left > 0:
                self._secondary_left -= 1
                error = gh_error(403, SECONDARY_LIMIT_MESSAGE.format(request_id=self._request_id()),
                                 docs=SECONDARY_LIMIT_DOCS)
                error.headers["Retry-After"] = str(self._secondary_retry_after)
                raise error
            return await handler(request)
        return guarded

    def _usage(self, identity: str) -> tuple[int, int]:
        if time.time() >= self.rate_limit_reset:
            self.rate_limit_reset = int(time.time()) + 3600
            self.rate_limit_used = self.anonymous_used = 0
        return (60, self.anonymous_used) if identity == "anonymous" else (self.rate_limit_limit, self.rate_limit_used)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await super()._middleware(request, handler)
        if not isinstance(response, web.Response):
            return response
        if request.method == "GET" and response.status == 200:
            etag = response.headers.get("ETag")
            if etag is None:
                etag = f'W/"{hashlib.sha256(bytes(response.body or b"")).hexdigest()[:40]}"'
                response.headers["ETag"] = etag
            if _etag_matches(request.headers.get("If-None-Match", ""), etag):
                response = web.Response(status=304, headers={"ETag": etag})
        identity = request.get(IDENTITY) or self._identity(request) or "anonymous"
        if response.status != 304 and response.status != 401 and request.path.split("/")[1:2] != ["raw"]:
            if identity == "anonymous":
                self.anonymous_used = min(self.anonymous_used + 1, 60)
            else:
                self.rate_limit_used = min(self.rate_limit_used + 1, self.rate_limit_limit)
        limit, used = self._usage(identity)
        response.headers.update({
            "X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(limit - used, 0)),
            "X-RateLimit-Reset": str(self.rate_limit_reset), "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core", "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": "2022-11-28", "X-GitHub-Request-Id": self._request_id(),
        })
        return response

    # -- JSON shapes -----------------------------------------------------------

    def _api_root(self) -> str:
        return self.root if self.port is not None else "https://api.github.com"

    def _account(self, login: str, kind: str | None = None) -> JsonDict:
        org = self._org(login)
        kind = kind or ("Organization" if org else "User")
        account_id = org["id"] if org else self.user_id
        return {"login": org["login"] if org else login, "id": account_id,
                "node_id": _node_id("User" if kind == "User" else "Organization", account_id),
                "avatar_url": f"https://avatars.githubusercontent.com/u/{account_id}?v=4",
                "url": f"{self._api_root()}/{'users' if kind == 'User' else 'orgs'}/{login}",
                "html_url": f"{self.html_root}/{login}", "type": kind, "site_admin": False}

    def _org(self, login: str) -> JsonDict | None:
        return next((o for name, o in self.orgs.items() if name.lower() == login.lower()), None)

    def _repo_json(self, repo: FakeRepo) -> JsonDict:
        api = f"{self._api_root()}/repos/{repo.full_name}"
        html = f"{self.html_root}/{repo.full_name}"
        host = self.html_root.split("://", 1)[-1]
        return {
            "id": repo.id, "node_id": _node_id("Repository", repo.id), "name": repo.name,
            "full_name": repo.full_name, "private": repo.private, "owner": self._account(repo.owner, repo.owner_type),
            "html_url": html, "description": repo.description, "fork": False, "url": api,
            "contents_url": f"{api}/contents/{{+path}}", "pulls_url": f"{api}/pulls{{/number}}",
            "git_url": f"git://{host}/{repo.full_name}.git", "ssh_url": f"git@{host}:{repo.full_name}.git",
            "clone_url": f"{html}.git", "homepage": repo.homepage, "size": 0, "language": None,
            "created_at": repo.created_at, "updated_at": repo.updated_at, "pushed_at": repo.pushed_at,
            "default_branch": repo.default_branch, "visibility": repo.visibility, "topics": list(repo.topics),
            "archived": repo.archived, "disabled": False, "is_template": False,
            "has_issues": True, "has_projects": True, "has_wiki": True, "has_pages": False,
            "has_discussions": False, "forks_count": 0, "stargazers_count": 0, "watchers_count": 0,
            "open_issues_count": sum(p["state"] == "open" for p in repo.pull_records),
            "permissions": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
            **repo.settings,
        }

    def _blob_url(self, repo: FakeRepo, sha: str) -> str:
        return f"{self._api_root()}/repos/{repo.full_name}/git/blobs/{sha}"

    def _tree_url(self, repo: FakeRepo, sha: str) -> str:
        return f"{self._api_root()}/repos/{repo.full_name}/git/trees/{sha}"

    def _content_json(self, repo: FakeRepo, path: str, entry: TreeEntry, ref: str, with_content: bool) -> JsonDict:
        kind = {"blob": "file", "tree": "dir", "commit": "submodule"}[entry.type]
        if entry.mode == "120000":
            kind = "symlink"
        api = f"{self._api_root()}/repos/{repo.full_name}/contents/{path}?ref={ref}"
        html = f"{self.html_root}/{repo.full_name}/{'tree' if kind == 'dir' else 'blob'}/{ref}/{path}"
        git = self._tree_url(repo, entry.sha) if kind == "dir" else self._blob_url(repo, entry.sha)
        data = repo.git.blobs.get(entry.sha, b"")
        found: JsonDict = {
            "type": "file" if kind == "submodule" else kind, "encoding": "base64", "size": len(data),
            "name": path.rsplit("/", 1)[-1], "path": path, "content": _base64_lines(data), "sha": entry.sha,
            "url": api, "git_url": git, "html_url": html,
            "download_url": f"{self._api_root()}/raw/{repo.full_name}/{ref}/{path}" if kind != "dir" else None,
            "_links": {"self": api, "git": git, "html": html},
        }
        if kind == "dir" or not with_content:
            del found["encoding"], found["content"]
        return found

    def _commit_json(self, repo: FakeRepo, commit: GitCommit) -> JsonDict:
        api = f"{self._api_root()}/repos/{repo.full_name}/git/commits"
        html = f"{self.html_root}/{repo.full_name}/commit"
        return {
            "sha": commit.sha, "node_id": _node_id("Commit", commit.sha), "url": f"{api}/{commit.sha}",
            "html_url": f"{html}/{commit.sha}", "author": commit.author.json(), "committer": commit.committer.json(),
            "message": commit.message, "tree": {"sha": commit.tree, "url": self._tree_url(repo, commit.tree)},
            "parents": [{"sha": p, "url": f"{api}/{p}", "html_url": f"{html}/{p}"} for p in commit.parents],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                             "verified_at": None},
        }

    def _ref_json(self, repo: FakeRepo, name: str) -> JsonDict:
        sha = repo.refs[name]
        kind = repo.git.kind(sha) or "commit"
        return {"ref": name, "node_id": _node_id("Ref", f"{repo.id}:{name}"),
                "url": f"{self._api_root()}/repos/{repo.full_name}/git/{name}",
                "object": {"type": kind, "sha": sha,
                           "url": f"{self._api_root()}/repos/{repo.full_name}/git/{kind}s/{sha}"}}

    def _pull_json(self, repo: FakeRepo, pull: JsonDict) -> JsonDict:
        api = f"{self._api_root()}/repos/{repo.full_name}"
        html = f"{self.html_root}/{repo.full_name}/pull/{pull['number']}"

        def side(ref: str, sha: str) -> JsonDict:
            return {"label": f"{repo.owner}:{ref}", "ref": ref, "sha": repo.branch_sha(ref) or sha,
                    "user": self._account(repo.owner, repo.owner_type), "repo": self._repo_json(repo)}

        return {
            "url": f"{api}/pulls/{pull['number']}", "id": pull["id"], "node_id": _node_id("PullRequest", pull["id"]),
            "html_url": html, "diff_url": f"{html}.diff", "patch_url": f"{html}.patch",
            "issue_url": f"{api}/issues/{pull['number']}", "number": pull["number"], "state": pull["state"],
            "locked": False, "title": pull["title"], "body": pull["body"], "user": self._account(self.user_login),
            "labels": [], "milestone": None, "draft": pull["draft"], "created_at": pull["created_at"],
            "updated_at": pull["updated_at"], "closed_at": pull["closed_at"], "merged_at": None,
            "merge_commit_sha": None, "assignees": [], "requested_reviewers": [], "requested_teams": [],
            "head": side(pull["head"], pull["head_sha"]), "base": side(pull["base"], pull["base_sha"]),
            "author_association": "OWNER", "maintainer_can_modify": pull["maintainer_can_modify"],
            "merged": False, "mergeable": None, "comments": 0, "review_comments": 0, "commits": 1,
        }

    def _paginated(self, request: web.Request, items: list[Any], wrap: Callable[[list[Any]], Any] | None = None
                   ) -> web.Response:
        try:
            per_page = min(max(int(request.query.get("per_page", "30")), 1), 100)
            page = max(int(request.query.get("page", "1")), 1)
        except ValueError:
            per_page, page = 30, 1
        last = max(math.ceil(len(items) / per_page), 1)
        links = []
        for rel, number in (("prev", page - 1), ("next", page + 1), ("last", last), ("first", 1)):
            if (rel in ("prev", "first") and page > 1) or (rel in ("next", "last") and page < last):
                links.append(f'<{request.url.update_query(page=number, per_page=per_page)}>; rel="{rel}"')
        chunk = items[(page - 1) * per_page:page * per_page]
        return json_response(wrap(chunk) if wrap else chunk, headers={"Link": ", ".join(links)} if links else None)

    # -- accounts --------------------------------------------------------------

    async def _get_user(self, request: web.Request) -> web.Response:
        if request[IDENTITY] == "anonymous":
            raise gh_error(401, "Requires authentication")
        return json_response({**self._account(self.user_login, "User"), "name": self.user_login})

    async def _get_org(self, request: web.Request) -> web.Response:
        org = self._org(request.match_info["org"])
        if org is None:
            raise not_found()
        return json_response({**self._account(org["login"], "Organization"), "name": org["name"],
                              "description": None})

    def _team_or_404(self, request: web.Request) -> FakeTeam:
        team = self.teams.get((request.match_info["org"].lower(), request.match_info["team"].lower()))
        if team is None:
            raise not_found()
        return team

    async def _get_team(self, request: web.Request) -> web.Response:
        team = self._team_or_404(request)
        return json_response({"id": team.id, "node_id": _node_id("Team", team.id), "name": team.name,
                              "slug": team.slug, "privacy": "closed", "permission": "pull",
                              "url": f"{self._api_root()}/organizations/{self._org(team.org)['id']}/team/{team.id}",  # type: ignore[index]
                              "html_url": f"{self.html_root}/orgs/{team.org}/teams/{team.slug}",
                              "organization": self._account(team.org, "Organization")})

    async def _add_team_repo(self, request: web.Request) -> web.Response:
        team = self._team_or_404(request)
        repo = self._repo_or_404(request)
        permission = _json_body(request).get("permission", "push")
        if permission not in PERMISSIONS:
            raise validation_failed({"resource": "TeamRepository", "code": "invalid", "field": "permission"})
        if repo.owner.lower() != team.org.lower():
            raise gh_error(422, "Validation Failed", {"resource": "TeamRepository", "code": "custom",
                                                      "message": "The repository must be owned by the organization"})
        team.repos[repo.full_name] = permission
        return web.Response(status=204)

    # -- repositories ----------------------------------------------------------

    def _new_repo(self, owner: str, name: str, *, private: bool, description: str | None, default_branch: str,
                  visibility: str | None) -> FakeRepo:
        owner_type = "User" if owner.lower() == self.user_login.lower() else "Organization"
        repo = FakeRepo(self._next_id(), owner, name, owner_type, private or visibility in ("private", "internal"),
                        description, default_branch, iso(utc_now()), visibility=visibility or "")
        self.repos[repo.full_name] = repo
        return repo

    def _repo_or_404(self, request: web.Request) -> FakeRepo:
        repo = self.repo(f"{request.match_info['owner']}/{request.match_info['repo'].removesuffix('.git')}")
        if repo is None or (repo.private and request.get(IDENTITY) == "anonymous"):
            raise not_found()
        return repo

    def _writable(self, request: web.Request) -> FakeRepo:
        repo = self._repo_or_404(request)
        if repo.archived:
            raise gh_error(403, "Repository was archived so is read-only.")
        return repo

    def _git_repo(self, request: web.Request, write: bool = False) -> FakeRepo:
        repo = self._writable(request) if write else self._repo_or_404(request)
        if repo.empty:
            raise git_empty()
        return repo

    async def _create_org_repo(self, request: web.Request) -> web.Response:
        org = self._org(request.match_info["org"])
        if org is None:
            raise not_found()
        return await self._create_repo(request, org["login"])

    async def _create_user_repo(self, request: web.Request) -> web.Response:
        return await self._create_repo(request, self.user_login)

    async def _create_repo(self, request: web.Request, owner: str) -> web.Response:
        body = _json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise validation_failed({"resource": "Repository", "code": "missing_field", "field": "name"})
        name = re.sub(r"[^A-Za-z0-9._-]", "-", name.strip())
        if self.repo(f"{owner}/{name}") is not None:
            raise gh_error(422, "Repository creation failed.",
                           {"resource": "Repository", "code": "custom", "field": "name",
                            "message": "name already exists on this account"})
        visibility = body.get("visibility")
        if visibility not in (None, "public", "private", "internal"):
            raise validation_failed({"resource": "Repository", "code": "invalid", "field": "visibility"})
        repo = self._new_repo(owner, name, private=bool(body.get("private")), description=body.get("description"),
                              default_branch="main", visibility=visibility)
        repo.homepage = body.get("homepage")
        if body.get("auto_init"):
            readme = f"# {name}\n" + (f"{repo.description}\n" if repo.description else "")
            self.commit_files(repo.full_name, {"README.md": readme}, message="Initial commit")
        return json_response(self._repo_json(repo), status=201,
                             headers={"Location": f"{self._api_root()}/repos/{repo.full_name}"})

    async def _get_repo(self, request: web.Request) -> web.Response:
        return json_response(self._repo_json(self._repo_or_404(request)))

    async def _update_repo(self, request: web.Request) -> web.Response:
        repo = self._repo_or_404(request)
        body = _json_body(request)
        if repo.archived and body.get("archived") is not False:
            raise gh_error(403, "Repository was archived so is read-only.")
        if "default_branch" in body:
            branch = body["default_branch"]
            if not repo.empty and repo.branch_sha(str(branch)) is None:
                raise validation_failed({"resource": "Repository", "code": "invalid", "field": "default_branch",
                                         "message": f"The branch {branch} was not found. Please push that ref first "
                                                    "or create it via the Git Data API."})
            repo.default_branch = branch
        if "name" in body and body["name"] != repo.name:
            new_name = str(body["name"])
            if self.repo(f"{repo.owner}/{new_name}") is not None:
                raise gh_error(422, "Repository creation failed.",
                               {"resource": "Repository", "code": "custom", "field": "name",
                                "message": "name already exists on this account"})
            del self.repos[repo.full_name]
            repo.name = new_name
            self.repos[repo.full_name] = repo
        for key in ("description", "homepage"):
            if key in body:
                setattr(repo, key, body[key])
        if "private" in body:
            repo.private = bool(body["private"])
            repo.visibility = "private" if repo.private else "public"
        if body.get("visibility") in ("public", "private", "internal"):
            repo.visibility = body["visibility"]
            repo.private = repo.visibility != "public"
        if "archived" in body:
            repo.archived = bool(body["archived"])
        repo.settings.update({k: v for k, v in body.items() if k.startswith(("has_", "allow_", "delete_branch"))})
        repo.updated_at = iso(utc_now())
        return json_response(self._repo_json(repo))

    async def _get_topics(self, request: web.Request) -> web.Response:
        return json_response({"names": list(self._repo_or_404(request).topics)})

    async def _replace_topics(self, request: web.Request) -> web.Response:
        repo = self._writable(request)
        names = _json_body(request).get("names")
        if not isinstance(names, list):
            raise missing_field("names")
        bad = [n for n in names if not isinstance(n, str) or not TOPIC.match(n)]
        if bad:
            raise gh_error(422, "Invalid topics",
                           {"resource": "Repository", "code": "invalid", "field": "topics",
                            "message": f"{', '.join(map(str, bad))} is not a valid topic. Topics must start with a "
                                       "lowercase letter or number, consist of 50 characters or less, and can "
                                       "include hyphens."})
        repo.topics = list(dict.fromkeys(names))
        return json_response({"names": list(repo.topics)})

    # -- contents --------------------------------------------------------------

    def _ref_commit(self, repo: FakeRepo, ref: str | None) -> str:
        if repo.empty:
            raise gh_error(404, "This repository is empty.")
        sha = repo.resolve(ref)
        if sha is None:
            raise gh_error(404, f"No commit found for the ref {ref}")
        return sha

    async def _get_contents(self, request: web.Request) -> web.Response:
        repo = self._repo_or_404(request)
        raw_path = request.match_info["path"]
        if raw_path and not raw_path.startswith("/"):
            raise not_found()
        path = raw_path.strip("/")
        ref = request.query.get("ref") or None
        commit = self._ref_commit(repo, ref)
        entry = repo.git.lookup(repo.git.commits[commit].tree, path)
        if entry is None:
            raise not_found()
        ref_name = ref or repo.default_branch
        media = _media(request.headers.get("Accept", ""))
        etag = f'"{entry.sha}"'
        if entry.type == "tree":
            listing = [self._content_json(repo, f"{path}/{e.name}".lstrip("/"), e, ref_name, False)
                       for e in repo.git.trees[entry.sha]]
            if media == "object":
                listing = {**self._content_json(repo, path, entry, ref_name, False), "entries": listing}
            return json_response(listing, headers={"ETag": etag})
        if media == "raw":
            return web.Response(body=repo.git.blobs.get(entry.sha, b""), content_type="text/plain", charset="utf-8",
                                headers={"ETag": etag})
        return json_response(self._content_json(repo, path, entry, ref_name, True), headers={"ETag": etag})

    async def _get_commit_of_ref(self, request: web.Request) -> web.Response:
        repo = self._repo_or_404(request)
        if repo.empty:
            raise git_empty()
        ref = request.match_info["ref"]
        sha = repo.resolve(None if ref == "HEAD" else ref)
        if sha is None:
            raise gh_error(422, f"No commit found for SHA: {ref}")
        if "application/vnd.github.sha" in request.headers.get("Accept", ""):
            return web.Response(text=sha, content_type="application/vnd.github.sha", charset="utf-8",
                                headers={"ETag": f'"{sha}"'})
        commit = self._commit_json(repo, repo.git.commits[sha])
        return json_response({key: commit[key] for key in ("sha", "node_id", "parents")} | {
            "url": f"{self._api_root()}/repos/{repo.full_name}/commits/{sha}",
            "html_url": f"{self.html_root}/{repo.full_name}/commit/{sha}", "commit": commit}, headers={"ETag": f'"{sha}"'})

    async def _raw_download(self, request: web.Request) -> web.Response:
        repo = self._repo_or_404(request)
        sha = repo.resolve(request.match_info["ref"])
        entry = repo.git.lookup(repo.git.commits[sha].tree, request.match_info["path"]) if sha else None
        if entry is None or entry.type != "blob":
            return web.Response(status=404, text="404: Not Found")
        return web.Response(body=repo.git.blobs[entry.sha], content_type="text/plain", charset="utf-8")

    def _contents_change(self, request: web.Request) -> tuple[FakeRepo, JsonDict, str, str, str | None, TreeEntry | None]:
        repo = self._writable(request)
        body = _json_body(request)
        if not body.get("message"):
            raise missing_field("message")
        path = request.match_info["path"].strip("/")
        branch = body.get("branch") or repo.default_branch
        head = repo.branch_sha(branch)
        if head is None and not repo.empty:
            raise gh_error(404, f"Branch {branch} not found")
        current = repo.git.lookup(repo.git.commits[head].tree, path) if head else None
        if current is not None and current.type != "blob":
            current = None
        if current is not None and body.get("sha") not in (None, current.sha):
            raise gh_error(409, f"{path} does not match {body['sha']}")
        return repo, body, path, branch, head, current

    def _signature(self, given: Any) -> Signature:
        given = given if isinstance(given, dict) else {}
        return Signature(given.get("name") or self.user_login,
                         given.get("email") or f"{self.user_id}+{self.user_login}@users.noreply.github.com",
                         given.get("date") or iso(utc_now()))

    def _commit(self, repo: FakeRepo, tree: str, parents: list[str], message: str,
                author: Any = None, committer: Any = None) -> str:
        author_sig = self._signature(author)
        committer_sig = self._signature(committer) if committer else author_sig
        return repo.git.put_commit(tree, parents, message, author_sig, committer_sig)

    async def _put_contents(self, request: web.Request) -> web.Response:
        repo, body, path, branch, head, current = self._contents_change(request)
        if "content" not in body:
            raise missing_field("content")
        if current is not None and body.get("sha") is None:
            raise missing_field("sha")
        try:
            data = base64.b64decode(str(body["content"]), validate=False)
        except (binascii.Error, ValueError):
            raise gh_error(422, "content is not valid Base64") from None
        blob = repo.git.put_blob(data)
        tree = repo.git.build_tree(repo.git.commits[head].tree if head else None, [(path, "100644", "blob", blob)])
        sha = self._commit(repo, tree, [head] if head else [], body["message"], body.get("author"),
                           body.get("committer"))
        repo.refs[f"refs/heads/{branch}"] = sha
        repo.pushed_at = iso(utc_now())
        entry = TreeEntry(path.rsplit("/", 1)[-1], "100644", "blob", blob)
        return json_response({"content": self._content_json(repo, path, entry, branch, False),
                              "commit": self._commit_json(repo, repo.git.commits[sha])},
                             status=200 if current else 201)

    async def _delete_contents(self, request: web.Request) -> web.Response:
        repo, body, path, branch, head, current = self._contents_change(request)
        if body.get("sha") is None:
            raise missing_field("sha")
        if current is None or head is None:
            raise not_found()
        tree = repo.git.build_tree(repo.git.commits[head].tree, [(path, "100644", "blob", None)])
        sha = self._commit(repo, tree, [head], body["message"], body.get("author"), body.get("committer"))
        repo.refs[f"refs/heads/{branch}"] = sha
        return json_response({"content": None, "commit": self._commit_json(repo, repo.git.commits[sha])})

    async def _get_branch(self, request: web.Request) -> web.Response:
        repo = self._repo_or_404(request)
        branch = request.match_info["branch"]
        sha = repo.branch_sha(branch)
        if sha is None:
            raise gh_error(404, "Branch not found")
        commit = self._commit_json(repo, repo.git.commits[sha])
        return json_response({"name": branch, "commit": {"sha": sha, "node_id": commit["node_id"],
                                                         "url": f"{self._api_root()}/repos/{repo.full_name}/commits/{sha}",
                                                         "html_url": commit["html_url"], "commit": commit,
                                                         "parents": commit["parents"]},
                              "protected": False,
                              "_links": {"self": f"{self._api_root()}/repos/{repo.full_name}/branches/{branch}",
                                         "html": f"{self.html_root}/{repo.full_name}/tree/{branch}"}})

    # -- git data: refs ----------------------------------------------------------

    async def _get_ref(self, request: web.Request) -> web.Response:
        repo = self._git_repo(request)
        name = f"refs/{request.match_info['ref']}"
        if name not in repo.refs:
            raise not_found()
        return json_response(self._ref_json(repo, name))

    async def _get_refs_legacy(self, request: web.Request) -> web.Response:
        repo = self._git_repo(request)
        name = f"refs/{request.match_info['ref'].rstrip('/')}"
        if name in repo.refs:
            return json_response(self._ref_json(repo, name))
        matching = [self._ref_json(repo, n) for n in sorted(repo.refs) if n.startswith(f"{name}/")]
        if not matching:
            raise not_found()
        return json_response(matching)

    async def _matching_refs(self, request: web.Request) -> web.Response:
        repo = self._git_repo(request)
        prefix = f"refs/{request.match_info['ref']}"
        return json_response([self._ref_json(repo, n) for n in sorted(repo.refs) if n.startswith(prefix)])

    async def _create_ref(self, request: web.Request) -> web.Response:
        repo = self._git_repo(request, write=True)
        body = _json_body(request)
        for key in ("ref", "sha"):
            if not body.get(key):
                raise missing_field(key)
        name, sha = str(body["ref"]), str(body["sha"])
        if not name.startswith("refs/") or name.count("/") < 2:
            raise gh_error(422, "Reference name must start with 'refs/' and have at least two slashes.")
        if repo.git.kind(sha) is None:
            raise gh_error(422, "Object does not exist")
        if name in repo.refs:
            raise gh_error(422, "Reference already exists")
        repo.refs[name] = sha
        return json_response(self._ref_json(repo, name), status=201,
                             headers={"Location": f"{self._api_root()}/repos/{repo.full_name}/git/{name}"})

    async def _update_ref(self, request: web.Request) -> web.Response:
        repo = self._git_repo(request, write=True)
        body = _json_body(request)
        if not body.get("sha"):
            raise missing_field("sha")
        name, sha = f"refs/{request.match_info['ref']}", str(body["sha"])
        if name not in repo.refs:
            raise gh_error(422, "Reference does not exist")
        if repo.git.kind(sha) is None:
            raise gh_error(422, "Object does not exist")
        if not body.get("force") and not repo.git.is_ancestor(repo.refs[name], sha):
            raise gh_error(422, "Update is not a fast forward")
        repo.refs[name] = sha
        repo.pushed_at = iso(utc_now())
        return json_response(self._ref_json(repo, name))

    async def _delete_ref(self, request: web.Request) -> web.Response:
        repo = self._git_repo(request, write=True)
        name = f"refs/{request.match_info['ref']}"
        if name not in repo.refs:
            raise gh_error(422, "Reference does not exist")
        del repo.refs[name]
        return web.Response(status=204)

    # -- git data: objects -------------------------------------------------------

    async def _create_blob(self, request: web.Request) -> web.Response:
        repo = self._git_repo(request, write=True)
        body = _json_body(request)
        if not isinstance(body.get("content"), str):
            raise missing_field("content")
        encoding = body.get("encoding", "utf-8")
        if encoding == "base64":
            try:
                data = base64.b64decode(body["content"])
            except (binascii.Error, ValueError):
                raise gh_error(422, "Invalid Base64 content") from None
        elif encoding in ("utf-8", "utf8"):
            data = body["content"].encode()
        else:
            raise gh_error(422, f"encoding must be either 'utf-8' or 'base64', got '{encoding}'")
        sha = repo.git.put_blob(data)
        url = self._blob_url(repo, sha)
        return json_response({"url": url, "sha": sha}, status=201, headers={"Location": url})

    async def _get_blob(self, request: web.Request) -> web.Response:
        repo = self._git_repo(request)
        sha = request.match_info["sha"]
        if sha not in repo.git.blobs:
            raise not_found()
        data = repo.git.blobs[sha]
        if _media(request.headers.get("Accept", "")) == "raw":
            return web.Response(body=data, content_type="application/octet-stream")
        return json_response({"sha": sha, "node_id": _node_id("Blob", sha), "size": len(data),
                              "url": self._blob_url(repo, sha), "content": _base64_lines(data),
                              "encoding": "base64"})

    async def _create_tree(self, request: web.Request) -> web.Response:
        repo = self._git_repo(request, write=True)
        body = _json_body(request)
        entries = body.get("tree")
        if not isinstance(entries, list):
            raise missing_field("tree")
        base = body.get("base_tree")
        if base is not None and base not in repo.git.trees:
            raise gh_error(422, "GitRPC::BadObjectState")
        changes = []
        for index, item in enumerate(entries):
            if not isinstance(item, dict) or not item.get("path"):
                raise gh_error(422, f"Invalid tree info: tree[{index}] needs a path")
            mode, kind = str(item.get("mode", "")), item.get("type")
            if FILE_MODES.get(mode) is None or (kind is not None and FILE_MODES[mode] != kind):
                raise gh_error(422, f"Invalid tree info: tree.mode {mode!r} and type {kind!r} for "
                                    f"{item['path']}")
            kind = FILE_MODES[mode]
            if "content" in item and item["content"] is not None:
                if kind != "blob":
                    raise gh_error(422, f"Invalid tree info: content is only for blobs ({item['path']})")
                sha: str | None = repo.git.put_blob(str(item["content"]).encode())
            elif "sha" in item:
                sha = item["sha"]
                if sha is not None and kind != "commit" and repo.git.kind(sha) != kind:
                    raise gh_error(422, f"tree.sha {sha} is not a valid {kind}")
            else:
                raise gh_error(422, f"Must supply either tree.sha or tree.content for {item['path']}")
            changes.append((str(item["path"]), "040000" if kind == "tree" else mode, kind, sha))
        try:
            tree = repo.git.build_tree(base, changes)
        except KeyError:
            raise gh_error(422, "GitRPC::BadObjectState") from None
        return json_response(self._tree_json(repo, tree, recursive=False), status=201,
                             headers={"Location": self._tree_url(repo, tree)})

    def _tree_json(self, repo: FakeRepo, sha: str, recursive: bool) -> JsonDict:
        listed = repo.git.walk(sha) if recursive else [(e.name, e) for e in repo.git.trees[sha]]
        items = []
        for path, entry in listed:
            item: JsonDict = {"path": path, "mode": entry.mode, "type": entry.type, "sha": entry.sha}
            if entry.type == "blob":
                item["size"] = len(repo.git.blobs.get(entry.sha, b""))
                item["url"] = self._blob_url(repo, entry.sha)
            elif entry.type == "tree":
                item["url"] = self._tree_url(repo, entry.sha)
            items.append(item)
        return {"sha": sha, "url": self._tree_url(repo, sha), "tree": items, "truncated": False}

    async def _get_tree(self, request: web.Request) -> web.Response:
        repo = self._git_repo(request)
        wanted = request.match_info["sha"]
        sha = wanted if wanted in repo.git.trees else None
        if sha is None:
            commit = repo.resolve(wanted)
            sha = repo.git.commits[commit].tree if commit in repo.git.commits else None
        if sha is None:
            raise not_found()
        recursive = request.query.get("recursive", "") not in ("", "0", "false")
        return json_response(self._tree_json(repo, sha, recursive))

    async def _create_commit(self, request: web.Request) -> web.Response:
        repo = self._git_repo(request, write=True)
        body = _json_body(request)
        for key in ("message", "tree"):
            if not isinstance(body.get(key), str):
                raise missing_field(key)
        if body["tree"] not in repo.git.trees:
            raise gh_error(422, "Tree SHA does not exist")
        parents = body.get("parents") or []
        if not isinstance(parents, list):
            raise gh_error(422, 'Invalid request.\n\nFor \'properties/parents\', "parents" is not an array.')
        for parent in parents:
            if parent not in repo.git.commits:
                raise gh_error(422, "Parent SHA does not exist or is not a commit object")
        sha = self._commit(repo, body["tree"], parents, body["message"], body.get("author"), body.get("committer"))
        payload = self._commit_json(repo, repo.git.commits[sha])
        return json_response(payload, status=201, headers={"Location": payload["url"]})

    async def _get_commit(self, request: web.Request) -> web.Response:
        repo = self._git_repo(request)
        sha = request.match_info["sha"]
        if sha not in repo.git.commits:
            raise not_found()
        return json_response(self._commit_json(repo, repo.git.commits[sha]))

    # -- pull requests -------------------------------------------------------------

    async def _create_pull(self, request: web.Request) -> web.Response:
        repo = self._writable(request)
        body = _json_body(request)
        for key in ("head", "base"):
            if not body.get(key):
                raise validation_failed({"resource": "PullRequest", "code": "missing_field", "field": key})
        if not body.get("title") and not body.get("issue"):
            raise validation_failed({"resource": "PullRequest", "code": "missing_field", "field": "title"})
        head_owner, _, head = str(body["head"]).rpartition(":")
        base = str(body["base"])
        head_sha = repo.branch_sha(head) if head_owner.lower() in ("", repo.owner.lower()) else None
        base_sha = repo.branch_sha(base)
        if head_sha is None or base_sha is None:
            raise validation_failed(*({"resource": "PullRequest", "field": field_name, "code": "invalid"}
                                      for field_name, sha in (("head", head_sha), ("base", base_sha)) if sha is None))
        label = f"{repo.owner}:{head}"
        if any(p["state"] == "open" and p["head"] == head and p["base"] == base for p in repo.pull_records):
            raise validation_failed({"resource": "PullRequest", "code": "custom",
                                     "message": f"A pull request already exists for {label}."})
        if repo.git.is_ancestor(head_sha, base_sha):
            raise validation_failed({"resource": "PullRequest", "code": "custom",
                                     "message": f"No commits between {base} and {head}"})
        now = iso(utc_now())
        pull = {"id": self._next_id(), "number": len(repo.pull_records) + 1, "state": "open",
                "title": body.get("title") or "", "body": body.get("body"), "head": head, "base": base,
                "head_sha": head_sha, "base_sha": base_sha, "draft": bool(body.get("draft")),
                "maintainer_can_modify": bool(body.get("maintainer_can_modify", True)),
                "created_at": now, "updated_at": now, "closed_at": None}
        repo.pull_records.append(pull)
        payload = self._pull_json(repo, pull)
        return json_response(payload, status=201, headers={"Location": payload["url"]})

    async def _list_pulls(self, request: web.Request) -> web.Response:
        repo = self._repo_or_404(request)
        state = request.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise validation_failed({"resource": "PullRequest", "code": "invalid", "field": "state"})
        pulls = [p for p in repo.pull_records if state == "all" or p["state"] == state]
        head = request.query.get("head", "")
        if ":" in head:  # GitHub ignores a head filter without its owner
            owner, _, branch = head.partition(":")
            pulls = [p for p in pulls if owner.lower() == repo.owner.lower() and p["head"] == branch]
        if request.query.get("base"):
            pulls = [p for p in pulls if p["base"] == request.query["base"]]
        sort = request.query.get("sort", "created")
        key = "updated_at" if sort in ("updated", "popularity", "long-running") else "created_at"
        descending = request.query.get("direction", "desc") == "desc"
        pulls = sorted(pulls, key=lambda p: (p[key], p["number"]), reverse=descending)
        return self._paginated(request, [self._pull_json(repo, p) for p in pulls])

    def _pull_or_404(self, request: web.Request, repo: FakeRepo) -> JsonDict:
        number = int(request.match_info["number"])
        pull = next((p for p in repo.pull_records if p["number"] == number), None)
        if pull is None:
            raise not_found()
        return pull

    async def _get_pull(self, request: web.Request) -> web.Response:
        repo = self._repo_or_404(request)
        return json_response(self._pull_json(repo, self._pull_or_404(request, repo)))

    async def _update_pull(self, request: web.Request) -> web.Response:
        repo = self._writable(request)
        pull = self._pull_or_404(request, repo)
        body = _json_body(request)
        if "base" in body and repo.branch_sha(str(body["base"])) is None:
            raise validation_failed({"resource": "PullRequest", "field": "base", "code": "invalid"})
        for key in ("title", "body", "base", "maintainer_can_modify"):
            if key in body:
                pull[key] = body[key]
        if body.get("state") in ("open", "closed") and body["state"] != pull["state"]:
            pull["state"] = body["state"]
            pull["closed_at"] = iso(utc_now()) if pull["state"] == "closed" else None
        pull["updated_at"] = iso(utc_now())
        return json_response(self._pull_json(repo, pull))

    # -- deployments and workflow runs ---------------------------------------------

    async def _list_deployments(self, request: web.Request) -> web.Response:
        repo = self._repo_or_404(request)
        deployments = [d for d in repo.deployments
                       if all(str(d.get(k)) == request.query[k] for k in ("environment", "ref", "sha", "task")
                              if k in request.query)]
        deployments.sort(key=lambda d: (str(d.get("created_at", "")), d.get("id", 0)), reverse=True)  # newest first
        return self._paginated(request, deployments)

    async def _list_deployment_statuses(self, request: web.Request) -> web.Response:
        repo = self._repo_or_404(request)
        number = int(request.match_info["id"])
        if not any(d.get("id") == number for d in repo.deployments):
            raise not_found()
        return self._paginated(request, list(reversed(repo.deployment_statuses.get(number, []))))  # newest first

    async def _list_runs(self, request: web.Request) -> web.Response:
        repo = self._repo_or_404(request)
        try:
            created = _date_filter(request.query.get("created", ""))
        except ValueError:
            raise validation_failed({"resource": "WorkflowRun", "field": "created", "code": "invalid"}) from None
        runs = [r for r in repo.workflow_runs
                if all(str(r.get(field_name)) == request.query[param]
                       for param, field_name in (("branch", "head_branch"), ("status", "status"),
                                                 ("event", "event"), ("head_sha", "head_sha"))
                       if param in request.query)
                and ("created" not in request.query or created(parse_iso(r["created_at"])))]
        runs.sort(key=lambda r: (str(r.get("created_at", "")), r.get("id", 0)), reverse=True)  # newest first, as GitHub lists them
        return self._paginated(request, runs, lambda chunk: {"total_count": len(runs), "workflow_runs": chunk})

    async def _compare(self, request: web.Request) -> web.Response:
        """``base...head``: the commits reachable from head and not from base, oldest first (at most 250)."""
        repo = self._git_repo(request)
        base_ref, sep, head_ref = request.match_info["basehead"].partition("...")
        base, head = repo.resolve(base_ref), repo.resolve(head_ref)
        if not sep or base is None or head is None:
            raise not_found()
        reachable_from_base = {c.sha for c in repo.git.history(base)}
        ahead = [c for c in repo.git.history(head) if c.sha not in reachable_from_base]
        behind = [c for c in repo.git.history(base) if c.sha not in {h.sha for h in repo.git.history(head)}]
        ahead.reverse()

        def commit(c: GitCommit) -> JsonDict:
            return {"sha": c.sha, "node_id": _node_id("Commit", c.sha), "commit": self._commit_json(repo, c),
                    "url": f"{self._api_root()}/repos/{repo.full_name}/commits/{c.sha}",
                    "html_url": f"{self.html_root}/{repo.full_name}/commit/{c.sha}",
                    "parents": [{"sha": p} for p in c.parents]}
        status = ("identical" if base == head else "ahead" if ahead and not behind
                  else "behind" if behind and not ahead else "diverged")
        return json_response({
            "url": f"{self._api_root()}/repos/{repo.full_name}/compare/{request.match_info['basehead']}",
            "html_url": f"{self.html_root}/{repo.full_name}/compare/{request.match_info['basehead']}",
            "status": status, "ahead_by": len(ahead), "behind_by": len(behind), "total_commits": len(ahead),
            "base_commit": commit(repo.git.commits[base]), "merge_base_commit": commit(repo.git.commits[base]),
            "commits": [commit(c) for c in ahead[:250]], "files": []})

    # -- seeding: delivery (deployments, workflow runs, dated commits) ---------------

    def add_dated_commit(self, repo: str, when: datetime | str, message: str = "Change", *,
                         branch: str | None = None) -> str:
        """A commit on ``branch`` (default branch) authored and committed at ``when``; its sha."""
        found = self._seeded(repo)
        branch = branch or found.default_branch
        parent = found.branch_sha(branch) or found.resolve(None)
        stamp = when if isinstance(when, str) else iso(when)
        base = found.git.commits[parent].tree if parent else None
        tree = found.git.build_tree(base, [("CHANGELOG", "100644", "blob",
                                            found.git.put_blob(f"{message} {stamp}\n".encode()))])
        sha = self._commit(found, tree, [parent] if parent else [], message, {"date": stamp})
        found.refs[f"refs/heads/{branch}"] = sha
        return sha

    def add_deployment(self, repo: str, sha: str | None = None, *, environment: str = "production",
                       created_at: datetime | str | None = None, state: str | None = "success",
                       status_at: datetime | str | None = None, ref: str | None = None,
                       task: str = "deploy") -> JsonDict:
        """A deployment of ``sha`` (default: the default branch's head) with one status ``state``
        (None: no status yet) at ``status_at`` (default: ``created_at``); returns it as the API shows it."""
        found = self._seeded(repo)
        sha = sha or found.resolve(None) or ""
        created = created_at if isinstance(created_at, str) else iso(created_at or utc_now())
        number = self._next_id()
        api = f"{self._api_root()}/repos/{found.full_name}/deployments/{number}"
        deployment = {
            "url": api, "id": number, "node_id": _node_id("Deployment", number), "sha": sha,
            "ref": ref or found.default_branch, "task": task, "payload": {}, "original_environment": environment,
            "environment": environment, "description": None, "creator": self._account(self.user_login, "User"),
            "created_at": created, "updated_at": created, "statuses_url": f"{api}/statuses",
            "repository_url": f"{self._api_root()}/repos/{found.full_name}", "transient_environment": False,
            "production_environment": environment == "production"}
        found.deployments.append(deployment)
        found.deployment_statuses[number] = []
        if state is not None:
            self.add_deployment_status(repo, number, state, status_at or created)
        return deployment

    def add_deployment_status(self, repo: str, deployment_id: int, state: str,
                              created_at: datetime | str | None = None) -> JsonDict:
        """A status (``success``, ``failure``, ``error``, ``inactive``, ``in_progress``, ``queued``, ``pending``)."""
        found = self._seeded(repo)
        at = created_at if isinstance(created_at, str) else iso(created_at or utc_now())
        deployment = next(d for d in found.deployments if d["id"] == deployment_id)
        number = self._next_id()
        status = {"url": f"{deployment['url']}/statuses/{number}", "id": number,
                  "node_id": _node_id("DeploymentStatus", number), "state": state,
                  "creator": self._account(self.user_login, "User"), "description": "", "environment":
                  deployment["environment"], "target_url": "", "log_url": "", "environment_url": "",
                  "created_at": at, "updated_at": at, "deployment_url": deployment["url"],
                  "repository_url": deployment["repository_url"]}
        found.deployment_statuses.setdefault(deployment_id, []).append(status)
        return status

    def add_workflow_run(self, repo: str, *, conclusion: str | None = "success", branch: str | None = None,
                         created_at: datetime | str | None = None, head_sha: str | None = None,
                         name: str = "CI", event: str = "push") -> JsonDict:
        """A GitHub Actions run (``conclusion`` None: still in progress); returns it as the API shows it."""
        found = self._seeded(repo)
        created = created_at if isinstance(created_at, str) else iso(created_at or utc_now())
        number = self._next_id()
        api = f"{self._api_root()}/repos/{found.full_name}/actions/runs/{number}"
        run = {"id": number, "name": name, "node_id": _node_id("WorkflowRun", number),
               "head_branch": branch or found.default_branch, "head_sha": head_sha or found.resolve(None) or "",
               "path": ".github/workflows/ci.yml", "run_number": len(found.workflow_runs) + 1, "event": event,
               "display_title": name, "status": "completed" if conclusion else "in_progress",
               "conclusion": conclusion, "workflow_id": 1, "url": api,
               "html_url": f"{self.html_root}/{found.full_name}/actions/runs/{number}",
               "created_at": created, "updated_at": created, "run_started_at": created, "run_attempt": 1}
        found.workflow_runs.append(run)
        return run


def _date_filter(query: str) -> Callable[[datetime], bool]:
    """GitHub's date search qualifier as ``created=`` takes it: ``>=D``, ``>D``, ``<=D``, ``<D``,
    ``D..D`` or ``D`` (a day or a date-time)."""
    query = query.strip()
    if not query:
        return lambda _: True
    if ".." in query:
        low, _, high = query.partition("..")
        after, before = _date_filter(f">={low}") if low != "*" else None, _date_filter(f"<={high}") if high != "*" else None
        return lambda moment: (after is None or after(moment)) and (before is None or before(moment))
    for op in (">=", "<=", ">", "<"):
        if query.startswith(op):
            text = query[len(op):]
            day = len(text) == 10
            moment = parse_iso(text if not day else f"{text}T00:00:00Z")
            end = moment + timedelta(days=1) if day else moment
            return {">=": lambda m: m >= moment, ">": lambda m: m >= end if day else m > moment,
                    "<=": lambda m: m < end if day else m <= moment, "<": lambda m: m < moment}[op]
    moment = parse_iso(f"{query}T00:00:00Z" if len(query) == 10 else query)
    return (lambda m: moment <= m < moment + timedelta(days=1)) if len(query) == 10 else (lambda m: m == moment)


def _media(accept: str) -> str:
    """``raw``, ``object`` or ``json`` from an ``Accept`` header of GitHub media types."""
    for part in accept.split(","):
        match = re.match(r"\s*application/vnd\.github(?:\.v3)?\.(raw|object|html)(?:\+json)?\s*(?:;|$)", part)
        if match and match.group(1) in ("raw", "object"):
            return match.group(1)
    return "json"


def _etag_matches(header: str, etag: str) -> bool:
    if not header:
        return False
    bare = etag.removeprefix("W/")
    return any(tag.strip() == "*" or tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def _node_id(kind: str, key: Any) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{key}".encode()).decode().rstrip("=")
