"""Environments proposed as pull requests on an infrastructure repository
(`PAVEDROAD_ENV_PROVISIONING=pull-request`), end to end: signed Slack requests to the running bot,
the GitHub test server (or the local git host) holding the repository, the reaper on a controlled
clock, GitHub's failures."""
from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
import yaml

from bot.config import ConfigError, load_settings
from integrations.errors import IntegrationError
from integrations.git_hosting import Author, RepoSettings
from integrations.git_local import LocalGit
from integrations.github_publish import GitHubPublisher
from tests.fakes.github import GitHubFake, validation_failed
from tests.fakes.slack import SlackFake
from tests.fakes.slack_requests import view_submission_body
from tests.harness import Bot, start_bot, stop_bot
from tests.test_environments import ADA, BOSS, DAY, GRACE, click, env, form, text_of

INFRA = "acme/infra"
NAME = "payment-service-preview"
FILE = f"environments/{NAME}.yaml"
BRANCH = f"pavedroad/env-{NAME}"
REMOVAL = f"pavedroad/remove-{NAME}"
AUTHOR = Author("test", "test@example.com")


class FlakyGitHub(GitHubFake):
    """Refuses to open pull requests with a 422, as GitHub does for a branch protection or a bad base."""

    refuse_pulls = False

    async def _create_pull(self, request):
        if self.refuse_pulls:
            raise validation_failed({"resource": "PullRequest", "code": "custom", "message": "Base branch is protected"})
        return await super()._create_pull(request)


@pytest.fixture
async def github():
    async with FlakyGitHub() as fake:
        fake.add_repo(INFRA, files={"README.md": "# Infrastructure\n"})
        yield fake


@pytest.fixture
async def bot(tmp_path, github):
    async with SlackFake() as slack:
        for user, email in ((ADA, "ada.lovelace@acme.example"), (GRACE, "grace.hopper@acme.example")):
            slack.add_user(user, email=email)
        running = await start_bot(tmp_path, slack, GITHUB_TOKEN=github.token, GITHUB_API_URL=github.url,
                                  PAVEDROAD_ENV_PROVISIONING="pull-request", PAVEDROAD_ENV_INFRA_REPO=INFRA,
                                  PAVEDROAD_PLATFORM_CHANNEL="C0PLATFORM", PAVEDROAD_PLATFORM_ADMINS=BOSS,
                                  PAVEDROAD_ENV_RBAC_GROUP="oidc:{group}")
        yield running
        await stop_bot(running)


def documents(text: str | None) -> dict[str, dict]:
    assert text is not None
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text)}


def merge(github: GitHubFake) -> None:
    """What a reviewer's merge does: the environment's file on the default branch, its pull request closed."""
    github.commit_files(INFRA, {FILE: github.file(INFRA, FILE, BRANCH)}, message=f"Merge {BRANCH}")
    for pull in github.repo(INFRA).pull_records:
        if pull["head"] == BRANCH:
            pull["state"] = "closed"


def utc(text: str) -> float:
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


async def test_create_opens_one_pull_request_holding_every_object(bot: Bot, github: GitHubFake):
    started = time.time()
    reply = await env(bot, "create payment-service --ttl 3d --size small")
    text = text_of(reply)
    pulls = github.pulls(INFRA)
    assert [(p["head"]["ref"], p["base"]["ref"], p["state"], p["title"]) for p in pulls] == [
        (BRANCH, "main", "open", f"Create environment {NAME}")]
    url = pulls[0]["html_url"]
    assert url in text and "proposed in an infra pull request" in text
    assert "appears once the pull request is merged and the infra pipeline applies it" in text
    assert "In the pull request: Namespace payment-service-preview, ResourceQuota pavedroad-quota" in text
    assert set(github.files(INFRA, BRANCH)) == {"README.md", FILE} and github.file(INFRA, FILE) is None
    objects = documents(github.file(INFRA, FILE, BRANCH))
    assert list(objects) == ["Namespace", "ResourceQuota", "LimitRange", "NetworkPolicy", "RoleBinding"]
    namespace = objects["Namespace"]["metadata"]
    assert namespace["name"] == NAME
    assert namespace["labels"] == {"app.kubernetes.io/managed-by": "pavedroad", "pavedroad.dev/service": "payment-service",
                                   "pavedroad.dev/owner": "payments-team", "pavedroad.dev/purpose": "preview"}
    assert namespace["annotations"]["pavedroad.dev/requester"] == ADA
    assert abs(utc(namespace["annotations"]["pavedroad.dev/expires-at"]) - (started + 3 * DAY)) < 60
    assert all(doc["metadata"]["namespace"] == NAME for kind, doc in objects.items() if kind != "Namespace")
    assert objects["ResourceQuota"]["spec"]["hard"] == {"requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "4",
                                                        "limits.memory": "8Gi", "pods": "20"}
    assert objects["LimitRange"]["spec"]["limits"][0]["default"] == {"cpu": "500m", "memory": "512Mi"}
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in \
        objects["NetworkPolicy"]["spec"]["ingress"][0]["from"]
    assert objects["RoleBinding"]["subjects"][0]["name"] == "oidc:payments-team"
    recorded = await bot.server.services.environments.get(NAME)
    assert (recorded.status, recorded.detail) == ("pending_merge", url)
    listed = (await env(bot, "list"))["text"]
    assert NAME in listed and "pending merge" in listed and url in listed
    assert "Once applied, use it" in text_of(await env(bot, f"show {NAME}"))


async def test_the_same_request_twice_opens_one_pull_request(bot: Bot, github: GitHubFake):
    services = bot.server.services
    body = view_submission_body("env_create", form("payment-service"), user_id=ADA, view_id="V0SAME")
    await asyncio.gather(bot.post(body), bot.post(body, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}))
    await bot.slack.wait_for_call("chat.postMessage", lambda a: a["channel"] == ADA)
    ada = await services.people.whois(ADA)
    first, second = await asyncio.gather(*(services.environments.request(ada, "payment-service", "staging", None, None, None,
                                                                         request_key="view:V0TWICE") for _ in range(2)))
    assert first[0].id == second[0].id
    assert sorted(p["head"]["ref"] for p in github.pulls(INFRA)) == [BRANCH, "pavedroad/env-payment-service-staging"]
    # Proposing again (a retry of the step) finds the open pull request and leaves the branch as it is.
    env_record = await services.environments.get(NAME)
    head = github.repo(INFRA).branch_sha(BRANCH)
    plan = services.environments._plan(env_record, env_record.expires_at)
    again = await services.environments.infra.propose(plan, f"Create environment {NAME}", "")
    assert again.html_url == env_record.detail and github.repo(INFRA).branch_sha(BRANCH) == head
    assert len(github.pulls(INFRA)) == 2


async def test_destroy_opens_a_pull_request_removing_the_file(bot: Bot, github: GitHubFake):
    await env(bot, "create payment-service")
    merge(github)
    reply = (await env(bot, f"destroy {NAME}"))["text"]
    removal = [p for p in github.pulls(INFRA) if p["head"]["ref"] == REMOVAL]
    assert [p["title"] for p in removal] == [f"Remove environment {NAME}"]
    assert removal[0]["html_url"] in reply and "the namespace is deleted once that is merged" in reply
    assert FILE in github.files(INFRA) and FILE not in github.files(INFRA, REMOVAL)
    assert set(github.files(INFRA, REMOVAL)) == {"README.md"}
    assert github.repo(INFRA).branch_sha(BRANCH) is None
    recorded = await bot.server.services.environments.get(NAME)
    assert recorded.status == "destroyed" and removal[0]["html_url"] in recorded.detail
    assert "no environments" in (await env(bot, "list"))["text"]
    told = await bot.slack.wait_for_call("chat.postMessage", lambda a: a["channel"] == ADA and "is gone" in a["text"])
    assert removal[0]["html_url"] in told["text"]


async def test_destroying_before_the_merge_closes_the_pull_request(bot: Bot, github: GitHubFake):
    await env(bot, "create payment-service")
    reply = (await env(bot, f"destroy {NAME}"))["text"]
    assert "Its pull request was closed before it was merged, so nothing was made" in reply
    assert github.repo(INFRA).branch_sha(BRANCH) is None and github.repo(INFRA).branch_sha(REMOVAL) is None
    assert len(github.pulls(INFRA)) == 1


async def test_extend_changes_the_expiry_through_the_same_branch(bot: Bot, github: GitHubFake):
    await env(bot, "create payment-service --ttl 2d")
    created = (await bot.server.services.environments.get(NAME)).created_at
    reply = (await env(bot, f"extend {NAME} 1d"))["text"]
    pulls = github.pulls(INFRA)
    assert len(pulls) == 1 and pulls[0]["html_url"] in reply and "expires-at annotation changes" in reply
    expires = documents(github.file(INFRA, FILE, BRANCH))["Namespace"]["metadata"]["annotations"]["pavedroad.dev/expires-at"]
    assert abs(utc(expires) - (created + 3 * DAY)) < 60
    merge(github)
    reply = (await env(bot, f"extend {NAME} 1d"))["text"]
    pulls = github.pulls(INFRA)
    assert [p["title"] for p in pulls][1].startswith(f"Extend environment {NAME} until") and pulls[1]["html_url"] in reply
    diff = documents(github.file(INFRA, FILE, BRANCH))["Namespace"]["metadata"]["annotations"]
    assert abs(utc(diff["pavedroad.dev/expires-at"]) - (created + 4 * DAY)) < 60


async def test_the_reaper_proposes_removing_what_expired(bot: Bot, github: GitHubFake):
    services = bot.server.services
    await env(bot, "create payment-service --ttl 1d")
    merge(github)
    created = (await services.environments.get(NAME)).created_at
    assert (await services.reaper.run(now=created + 0.5 * DAY)).warned == [NAME]
    dry = await services.reaper.run(now=created + DAY + 1, dry_run=True)
    assert dry.destroyed == [NAME] and len(github.pulls(INFRA)) == 1
    done = await services.reaper.run(now=created + DAY + 1)
    assert (done.destroyed, done.drift) == ([NAME], [])
    removal = [p for p in github.pulls(INFRA) if p["head"]["ref"] == REMOVAL]
    assert len(removal) == 1 and FILE not in github.files(INFRA, REMOVAL)
    told = await bot.slack.wait_for_call("chat.postMessage", lambda a: "is gone: it expired" in a["text"])
    assert removal[0]["html_url"] in told["text"]
    assert (await services.reaper.run(now=created + 2 * DAY)).destroyed == []


async def test_approved_sizes_are_proposed_after_the_approval(bot: Bot, github: GitHubFake):
    await env(bot, "create payment-service --size large")
    assert github.pulls(INFRA) == []
    url = await click(bot, "env_approve", NAME, BOSS)
    assert "Approved" in (await bot.reply(url, timeout=10))["text"]
    told = await bot.slack.wait_for_call("chat.postMessage", lambda a: a["channel"] == ADA and "approved" in a["text"])
    assert github.pulls(INFRA)[0]["html_url"] in told["text"]


@pytest.mark.parametrize("fault", ["500", "422"])
async def test_github_failures_are_said_and_leave_nothing_half_recorded(bot: Bot, github: FlakyGitHub, fault: str):
    if fault == "500":
        github.fail_status = 500
    else:
        github.refuse_pulls = True
    reply = (await env(bot, "create payment-service"))["text"]
    assert f"GitHub could not open the pull request on acme/infra for `{NAME}` (HTTP {fault}" in reply
    assert "nothing was left behind" in reply
    github.reset_faults()
    github.refuse_pulls = False
    assert github.pulls(INFRA) == [] and github.repo(INFRA).branch_sha(BRANCH) is None
    assert (await bot.server.services.environments.get(NAME)).status == "failed"
    assert "no environments" in (await env(bot, "list"))["text"]
    assert "proposed in an infra pull request" in text_of(await env(bot, "create payment-service"))  # the name is free again
    github.fail_status = 500
    refused = (await env(bot, f"destroy {NAME}"))["text"]
    assert f"GitHub could not open the pull request that removes {NAME} (HTTP 500" in refused
    github.reset_faults()
    assert (await bot.server.services.environments.get(NAME)).status == "pending_merge"


async def test_the_local_git_host_holds_the_infra_repository(tmp_path: Path):
    host = LocalGit(tmp_path / "data" / "git")
    await host.create_repository("acme", "infra", RepoSettings())
    readme = tmp_path / "readme"
    readme.mkdir()
    (readme / "README.md").write_text("# Infrastructure\n")
    await host.commit_files("acme", "infra", "main", readme, "Initial commit", AUTHOR)
    async with SlackFake() as slack:
        bot = await start_bot(tmp_path, slack, PAVEDROAD_ENV_PROVISIONING="pull-request", PAVEDROAD_ENV_INFRA_REPO=INFRA,
                              PAVEDROAD_ENV_INFRA_PATH="clusters/staging")
        try:
            reply = text_of(await env(bot, "create payment-service"))
            assert "file://" in reply and f"#{BRANCH}" in reply
            path = f"clusters/staging/{NAME}.yaml"
            assert documents((await host.read_file("acme", "infra", BRANCH, path)).decode())["Namespace"]["metadata"]["name"] == NAME
            subprocess.run(["git", "--git-dir", str(host.path("acme", "infra")), "update-ref", "refs/heads/main",
                            f"refs/heads/{BRANCH}"], check=True)  # merged
            reply = (await env(bot, f"destroy {NAME}"))["text"]
            assert f"#{REMOVAL}" in reply
            with pytest.raises(IntegrationError):
                await host.read_file("acme", "infra", REMOVAL, path)
            assert await host.head("acme", "infra", BRANCH) is None
        finally:
            await stop_bot(bot)


async def test_both_hosts_remove_files_only_when_present(tmp_path: Path, github: GitHubFake):
    source = tmp_path / "files"
    (source / "environments").mkdir(parents=True)
    (source / "environments" / "a.yaml").write_text("a: 1\n")
    local = LocalGit(tmp_path / "git")
    await local.create_repository("acme", "infra", RepoSettings())
    await local.commit_files("acme", "infra", "main", source, "Initial commit", AUTHOR)
    github.commit_files(INFRA, {"environments/a.yaml": "a: 1\n"})
    async with aiohttp.ClientSession() as http:
        for host in (local, GitHubPublisher(http, github.url, github.token)):
            base = (await host.head("acme", "infra", "main")).sha
            assert await host.remove_files("acme", "infra", "gone", ["environments/b.yaml"], "Remove b", AUTHOR, parent=base) is None
            assert await host.head("acme", "infra", "gone") is None
            sha = await host.remove_files("acme", "infra", "gone", ["environments/a.yaml"], "Remove a", AUTHOR, parent=base)
            head = await host.head("acme", "infra", "gone")
            assert (head.sha, head.message.strip(), head.parents) == (sha, "Remove a", 1)
            with pytest.raises(IntegrationError):
                await host.read_file("acme", "infra", "gone", "environments/a.yaml")
            assert await host.read_file("acme", "infra", "main", "environments/a.yaml") == b"a: 1\n"


def test_pull_request_provisioning_needs_the_infra_repository():
    with pytest.raises(ConfigError, match="^PAVEDROAD_ENV_INFRA_REPO is required with PAVEDROAD_ENV_PROVISIONING=pull-request"):
        load_settings({"PAVEDROAD_ENV_PROVISIONING": "pull-request"})
    with pytest.raises(ConfigError, match="PAVEDROAD_ENV_PROVISIONING must be api or pull-request"):
        load_settings({"PAVEDROAD_ENV_PROVISIONING": "terraform"})
    settings = load_settings({"PAVEDROAD_ENV_PROVISIONING": "pull-request", "PAVEDROAD_ENV_INFRA_REPO": INFRA})
    assert (settings.env_infra_repo, settings.env_infra_path) == (INFRA, "environments")
    assert load_settings({}).env_provisioning == "api"
