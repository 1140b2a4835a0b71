"""publish:github and publish:github:pull-request against the GitHub test server: the repository,
one commit with the rendered files, topics and team access; GitHub's errors (422, 403/429
secondary limits, 500); serialised writes; a GitHub App's installation token."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from integrations.errors import IntegrationError
from integrations.github_publish import AppCredentials, GitHubPublisher
from tests.fakes.base import json_response
from tests.fakes.github import GitHubFake
from tests.scaffolder_kit import ADA, Kit, finished, make_kit, service_values

REPO = "acme/ledger-api"


@pytest.fixture
async def github():
    async with GitHubFake() as fake:
        fake.add_org("acme")
        fake.add_team("acme", "payments")
        yield fake


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def kit(database_url, tmp_path, github, http):
    kit = await make_kit(database_url, tmp_path, GitHubPublisher(http, github.url, github.token, max_wait=5))
    yield kit
    await kit.close()


async def run_service(kit: Kit, key: str = "view", **values: object):
    template = kit.scaffolder.template("python-service")
    return await finished(kit, await kit.scaffolder.start(template, service_values(**values), ADA, key))


async def test_the_repository_gets_one_commit_with_the_rendered_files(kit: Kit, github: GitHubFake):
    run = await run_service(kit, visibility="internal")
    assert run.state == "done", run.error
    repo = github.repo(REPO)
    assert (repo.description, repo.visibility, repo.private, repo.default_branch) == (
        "The ledger-api service", "internal", True, "main")
    assert repo.topics == ["python", "service", "experimental"]
    assert github.team_permission("acme", "payments", REPO) == "admin"
    commits = github.commits(REPO)
    assert len(commits) == 1 and commits[0]["message"].startswith("initial commit\n\nScaffolded-by: pavedroad run")
    files = github.files(REPO)
    assert set(files) == {".github/workflows/ci.yaml", ".gitignore", "Makefile", "README.md", "catalog-info.yaml",
                          "docs/index.md", "mkdocs.yml", "pyproject.toml", "scripts/dev.sh", "src/ledger_api/__init__.py",
                          "src/ledger_api/__main__.py", "src/ledger_api/app.py", "static/favicon.png", "tests/test_app.py"}
    assert files["README.md"].startswith("# ledger-api\n\nThe ledger-api service\n")
    assert "${{ github.sha }}" in files[".github/workflows/ci.yaml"]
    tree = repo.git.commits[commits[0]["sha"]].tree
    assert repo.git.lookup(tree, "scripts/dev.sh").mode == "100755"
    skeleton = Path(kit.scaffolder.template("python-service").source).parent / "skeleton"
    assert repo.git.blobs[repo.git.lookup(tree, "static/favicon.png").sha] == (skeleton / "static/favicon.png").read_bytes()
    assert len(github.requests_to(f"/repos/{REPO}/git/commits", "POST")) == 1
    assert len(github.requests_to(f"/repos/{REPO}/git/blobs", "POST")) == 1  # only the binary file; text goes inline
    assert run.output_links == [("Repository", f"https://github.com/{REPO}"), ("Open in catalog", "component:default/ledger-api")]
    entity = kit.catalog.index.find("ledger-api").entity
    assert entity is not None and entity.annotations["github.com/project-slug"] == REPO


async def test_an_existing_repository_is_a_clear_failure(kit: Kit, github: GitHubFake):
    github.add_repo(REPO)
    run = await run_service(kit)
    assert run.state == "failed"
    assert run.error == "Create the repository: repository acme/ledger-api already exists on GitHub; choose another name"
    assert len(github.commits(REPO)) == 1  # untouched


@pytest.mark.parametrize("fault", ["secondary 403", "429"])
async def test_rate_limits_are_waited_out(kit: Kit, github: GitHubFake, fault):
    started = time.monotonic()
    if fault == "429":
        github.rate_limit(1, retry_after=1)
    else:
        github.secondary_limit(1, retry_after=1)
    run = await run_service(kit)
    assert run.state == "done", run.error
    assert time.monotonic() - started >= 1.0
    assert github.repo(REPO) is not None and len(github.commits(REPO)) == 1


async def test_a_limit_too_long_to_wait_fails_with_the_reason(kit: Kit, github: GitHubFake):
    github.secondary_limit(1, retry_after=600)
    run = await run_service(kit)
    assert run.state == "failed"
    assert run.error == "Create the repository: GitHub: secondary rate limit: GitHub asks to wait 600s more; try again later"


async def test_a_server_error_fails_and_a_retry_finishes_without_redoing(kit: Kit, github: GitHubFake):
    github.fail_status = 500
    run = await run_service(kit)
    assert run.state == "failed"
    assert run.error.startswith("Create the repository: GitHub: HTTP 500")
    github.reset_faults()
    run = await finished(kit, await kit.scaffolder.retry(run.id, ADA))
    assert run.state == "done", run.error
    assert len(github.commits(REPO)) == 1


async def test_a_retry_after_a_failure_past_the_push_finds_the_repository(kit: Kit, github: GitHubFake):
    github.add_team("acme", "payments").repos.clear()
    del github.teams[("acme", "payments")]  # team access fails: the repository and the commit are made
    run = await run_service(kit)
    assert run.state == "failed" and "HTTP 404" in run.error
    github.add_team("acme", "payments")
    run = await finished(kit, await kit.scaffolder.retry(run.id, ADA))
    assert run.state == "done", run.error
    assert len(github.requests_to("/orgs/acme/repos", "POST")) == 1
    assert len(github.requests_to(f"/repos/{REPO}/git/commits", "POST")) == 1
    assert github.team_permission("acme", "payments", REPO) == "admin"


async def test_pull_request_on_an_existing_repository(kit: Kit, github: GitHubFake):
    github.add_repo("acme/infrastructure", files={"README.md": "# infra\n"})
    template = kit.scaffolder.template("infra-namespace")
    run = await finished(kit, await kit.scaffolder.start(
        template, {"service": "payment-service", "owner": "payments-team", "cpu": 2}, ADA, "pr"))
    assert run.state == "done", run.error
    [pull] = github.pulls("acme/infrastructure")
    assert (pull["head"]["ref"], pull["base"]["ref"]) == ("namespace-payment-service-staging", "main")
    assert pull["title"] == "Namespace and Vault policy for payment-service (staging)"
    files = github.files("acme/infrastructure", "namespace-payment-service-staging")
    assert set(files) == {"README.md", "staging/namespaces/payment-service.yaml", "staging/vault/policies/payment-service.hcl"}
    assert "requests.cpu: \"2\"" in files["staging/namespaces/payment-service.yaml"]
    assert github.files("acme/infrastructure") == {"README.md": "# infra\n"}
    assert run.output_links == [("Pull request", pull["html_url"])]


async def test_writes_go_one_at_a_time(github: GitHubFake, http):
    github.add_repo(REPO)
    publisher = GitHubPublisher(http, github.url, github.token)
    github.delay = 0.2
    await asyncio.gather(publisher.set_topics("acme", "ledger-api", ["a"]), publisher.set_topics("acme", "ledger-api", ["b"]))
    first, second = github.requests_to(f"/repos/{REPO}/topics", "PUT")
    assert second.received_at - first.received_at >= 0.2


class GitHubWithApps(GitHubFake):
    """The test server plus the two GitHub App endpoints an installation token takes."""

    def __init__(self, public_key: bytes, app_id: str) -> None:
        super().__init__()
        self.public_key, self.app_id = public_key, app_id

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/orgs/{org}/installation", self._installation)
        router.add_post("/app/installations/{id}/access_tokens", self._access_token)
        super().add_routes(router)

    def _check_jwt(self, request: web.Request) -> web.Response | None:
        token = request.headers.get("Authorization", "").partition(" ")[2]  # gidgethub writes "bearer"
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"])
        except jwt.PyJWTError:
            return json_response({"message": "A JSON web token could not be decoded"}, status=401)
        return None if str(claims["iss"]) == self.app_id else json_response({"message": "wrong app"}, status=401)

    async def _installation(self, request: web.Request) -> web.Response:
        return self._check_jwt(request) or json_response({"id": 4242, "account": {"login": request.match_info["org"]}})

    async def _access_token(self, request: web.Request) -> web.Response:
        refused = self._check_jwt(request)
        if refused is not None:
            return refused
        token = f"ghs_installation{request.match_info['id']}"
        self.tokens.add(token)
        return json_response({"token": token, "expires_at": "2099-01-01T00:00:00Z"}, status=201)


async def test_a_github_app_publishes_with_an_installation_token(database_url, tmp_path, http):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    async with GitHubWithApps(public, "1234") as github:
        github.add_org("acme")
        github.add_team("acme", "payments")
        github.tokens.clear()  # only the installation token opens the API
        kit = await make_kit(database_url, tmp_path, GitHubPublisher(http, github.url, app=AppCredentials("1234", pem)))
        try:
            run = await run_service(kit)
        finally:
            await kit.close()
        assert run.state == "done", run.error
        assert github.repo(REPO) is not None
        assert len(github.requests_to("/app/installations/4242/access_tokens", "POST")) == 1  # cached afterwards


async def test_a_bad_app_key_is_a_clear_error(http):
    publisher = GitHubPublisher(http, "http://127.0.0.1:9", app=AppCredentials("1", "not a key"))
    with pytest.raises(IntegrationError, match="GITHUB_APP_PRIVATE_KEY is not a usable private key"):
        await publisher.repository("acme", "x")
