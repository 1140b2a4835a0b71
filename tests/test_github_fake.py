"""The GitHub fake, driven by gidgethub as the bot drives GitHub."""
from __future__ import annotations

import base64
import hashlib

import aiohttp
import gidgethub
import pytest
from gidgethub.aiohttp import GitHubAPI

from tests.fakes.github import EMPTY_TREE, GitHubFake

DOCS_INDEX = "# Payment service\n\nHow payments flow.\n" * 10


@pytest.fixture
async def github():
    async with GitHubFake() as fake:
        fake.add_org("acme")
        fake.add_team("acme", "payments-team")
        fake.add_repo("acme/payment-service", files={"docs/index.md": DOCS_INDEX, "mkdocs.yml": "site_name: Payments\n",
                                                     "runbook.md": "# Runbook\n"})
        yield fake


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def gh(github: GitHubFake, session: aiohttp.ClientSession) -> GitHubAPI:
    return GitHubAPI(session, "pavedroad", oauth_token=github.token, base_url=github.url)


async def test_contents_etag_then_304(github: GitHubFake, gh: GitHubAPI, session: aiohttp.ClientSession) -> None:
    data = await gh.getitem("/repos/{owner}/{repo}/contents/{+path}", url_vars={
        "owner": "acme", "repo": "payment-service", "path": "docs/index.md"})
    blob = DOCS_INDEX.encode()
    assert data["type"] == "file" and data["encoding"] == "base64" and data["path"] == "docs/index.md"
    assert data["name"] == "index.md" and data["size"] == len(blob)
    assert data["sha"] == hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()
    assert all(len(line) <= 60 for line in data["content"].splitlines()) and "\n" in data["content"]
    assert base64.b64decode(data["content"]).decode() == DOCS_INDEX
    assert data["html_url"] == "https://github.com/acme/payment-service/blob/main/docs/index.md"
    assert gh.rate_limit is not None and gh.rate_limit.limit == 5000

    url = f"{github.url}/repos/acme/payment-service/contents/docs/index.md"
    headers = {"Authorization": f"token {github.token}"}
    async with session.get(url, headers=headers) as response:
        etag = response.headers["ETag"]
        assert etag == f'"{data["sha"]}"'
    async with session.get(url, headers={**headers, "If-None-Match": etag}) as response:
        assert response.status == 304 and await response.read() == b""
    async with session.get(url, headers={**headers, "Accept": "application/vnd.github.raw+json"}) as response:
        assert await response.text() == DOCS_INDEX

    cached = GitHubAPI(session, "pavedroad", oauth_token=github.token, base_url=github.url, cache={})
    for _ in range(2):
        assert (await cached.getitem("/repos/acme/payment-service/contents/runbook.md"))["path"] == "runbook.md"
    assert github.requests[-1].headers["If-None-Match"]

    listing = await gh.getitem("/repos/acme/payment-service/contents/docs")
    assert [(e["type"], e["path"]) for e in listing] == [("file", "docs/index.md")]
    with pytest.raises(gidgethub.BadRequest) as missing:
        await gh.getitem("/repos/acme/payment-service/contents/nope.md")
    assert missing.value.status_code == 404


async def test_create_repo_push_tree_and_read_back(github: GitHubFake, gh: GitHubAPI) -> None:
    repo = await gh.post("/orgs/acme/repos", data={"name": "checkout", "private": True, "auto_init": True})
    assert repo["full_name"] == "acme/checkout" and repo["default_branch"] == "main" and repo["private"]
    with pytest.raises(gidgethub.ValidationError) as exists:
        await gh.post("/orgs/acme/repos", data={"name": "checkout"})
    assert exists.value.errors[0]["message"] == "name already exists on this account"

    ref = await gh.getitem("/repos/acme/checkout/git/ref/heads/main")
    base = await gh.getitem(f"/repos/acme/checkout/git/commits/{ref['object']['sha']}")
    blob = await gh.post("/repos/acme/checkout/git/blobs",
                         data={"content": base64.b64encode(b"print('hi')\n").decode(), "encoding": "base64"})
    tree = await gh.post("/repos/acme/checkout/git/trees", data={"base_tree": base["tree"]["sha"], "tree": [
        {"path": "catalog-info.yaml", "mode": "100644", "type": "blob", "content": "kind: Component\n"},
        {"path": "docs/index.md", "mode": "100644", "type": "blob", "content": "# Checkout\n"},
        {"path": "src/app/main.py", "mode": "100644", "type": "blob", "sha": blob["sha"]}]})
    commit = await gh.post("/repos/acme/checkout/git/commits",
                           data={"message": "Scaffold", "tree": tree["sha"], "parents": [ref["object"]["sha"]]})
    await gh.patch("/repos/acme/checkout/git/refs/heads/main", data={"sha": commit["sha"]})

    walked = await gh.getitem(f"/repos/acme/checkout/git/trees/{tree['sha']}?recursive=1")
    assert {e["path"] for e in walked["tree"] if e["type"] == "blob"} == {
        "README.md", "catalog-info.yaml", "docs/index.md", "src/app/main.py"}
    read = await gh.getitem("/repos/acme/checkout/contents/src/app/main.py")
    assert base64.b64decode(read["content"]) == b"print('hi')\n"
    assert github.file("acme/checkout", "docs/index.md") == "# Checkout\n"
    assert [c["message"] for c in github.commits("acme/checkout", "main")] == ["Scaffold", "Initial commit"]

    with pytest.raises(gidgethub.InvalidField) as not_ff:
        await gh.patch("/repos/acme/checkout/git/refs/heads/main", data={"sha": ref["object"]["sha"]})
    assert str(not_ff.value) == "Update is not a fast forward"
    await gh.put("/repos/acme/checkout/topics", data={"names": ["payments", "python"]})
    await gh.put("/orgs/acme/teams/payments-team/repos/acme/checkout", data={"permission": "push"})
    assert github.repos["acme/checkout"].topics == ["payments", "python"]
    assert github.team_permission("acme", "payments-team", "acme/checkout") == "push"


async def test_empty_repo_git_data_is_409(github: GitHubFake, gh: GitHubAPI) -> None:
    await gh.post("/user/repos", data={"name": "scratch"})
    with pytest.raises(gidgethub.BadRequest) as empty:
        await gh.post("/repos/pavedroad-bot/scratch/git/trees", data={"tree": []})
    assert empty.value.status_code == 409 and str(empty.value) == "Git Repository is empty."
    assert github.repo("pavedroad-bot/scratch").empty  # type: ignore[union-attr]
    assert EMPTY_TREE == hashlib.sha1(b"tree 0\0").hexdigest()


async def test_pull_request_twice(github: GitHubFake, gh: GitHubAPI) -> None:
    github.commit_files("acme/payment-service", {"runbook.md": "# Runbook v2\n"}, branch="pavedroad/runbook")
    pull = await gh.post("/repos/acme/payment-service/pulls", data={
        "title": "Update runbook", "head": "pavedroad/runbook", "base": "main", "body": "From Slack"})
    assert pull["number"] == 1 and pull["state"] == "open" and pull["head"]["ref"] == "pavedroad/runbook"
    assert pull["html_url"] == "https://github.com/acme/payment-service/pull/1"
    with pytest.raises((gidgethub.InvalidField, gidgethub.BadRequest)) as again:
        await gh.post("/repos/acme/payment-service/pulls", data={
            "title": "Update runbook", "head": "pavedroad/runbook", "base": "main"})
    assert again.value.status_code == 422
    assert "A pull request already exists for acme:pavedroad/runbook." in str(again.value)

    found = [p async for p in gh.getiter("/repos/acme/payment-service/pulls?head=acme:pavedroad/runbook&state=open")]
    assert [p["number"] for p in found] == [1]
    assert [p async for p in gh.getiter("/repos/acme/payment-service/pulls?head=acme:other")] == []
    assert github.pulls("acme/payment-service")[0]["base"]["ref"] == "main"


async def test_secondary_rate_limit(github: GitHubFake, gh: GitHubAPI) -> None:
    github.secondary_limit(1, retry_after=7)
    assert (await gh.getitem("/repos/acme/payment-service"))["name"] == "payment-service"  # reads pass
    with pytest.raises(gidgethub.BadRequest) as limited:
        await gh.put("/repos/acme/payment-service/topics", data={"names": ["payments"]})
    assert limited.value.status_code == 403 and not isinstance(limited.value, gidgethub.RateLimitExceeded)
    assert limited.value.headers["retry-after"] == "7"
    assert "secondary rate limit" in str(limited.value)
    assert (await gh.put("/repos/acme/payment-service/topics", data={"names": ["payments"]}))["names"] == ["payments"]


async def test_bad_token_is_401(github: GitHubFake, session: aiohttp.ClientSession) -> None:
    wrong = GitHubAPI(session, "pavedroad", oauth_token="ghp_wrong", base_url=github.url)
    with pytest.raises(gidgethub.BadRequest) as denied:
        await wrong.getitem("/repos/acme/payment-service")
    assert denied.value.status_code == 401 and str(denied.value) == "Bad credentials"
