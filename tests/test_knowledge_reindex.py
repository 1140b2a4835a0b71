"""The docs pass at catalog scale, through the real surfaces: GitHub is the local test server (which
counts requests and the rate limit), the documents go to a real database (SQLite and PostgreSQL),
and the last test stops the running server in the middle of a pass."""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import yaml
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine

import bot.db
from bot.catalog.loader import CatalogLoader
from bot.catalog.service import CatalogService
from bot.db import Database
from bot.knowledge.search import KnowledgeBase
from bot.knowledge.service import WORKERS, Knowledge
from bot.knowledge.sources import DocSources
from integrations.github import GitHubClient
from tests.fakes.github import GitHubFake, gh_error
from tests.fakes.slack import SlackFake
from tests.harness import start_bot, stop_bot

MKDOCS = "site_name: Orders\nnav:\n  - Home: index.md\n  - Operations:\n      - Deploying: ops/deploy.md\n"
ORDERS_FILES = {
    "mkdocs.yml": MKDOCS,
    "docs/index.md": "# Orders API\n\nThe orders API keeps every order and its state machine.\n",
    "docs/ops/deploy.md": "# Deploying\n\nMerge to main; Argo CD syncs the orders namespace.\n",
    "docs/runbook.md": "# Orders runbook\n\n## Stuck orders\n\nRestart the outbox relay.\n",
}
ORDERS_PATHS = {f"/repos/acme/orders/contents/{path}" for path in ORDERS_FILES}


def component(name: str, slug: str, *, runbook: str = "", techdocs: bool = True, links: list[dict] | None = None,
              tags: list[str] | None = None) -> dict[str, Any]:
    annotations = {"github.com/project-slug": slug, **({"backstage.io/techdocs-ref": "dir:."} if techdocs else {}),
                   **({"pavedroad.dev/runbook": runbook} if runbook else {})}
    return {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": name, "annotations": annotations, "links": links or [], "tags": tags or []},
            "spec": {"type": "service", "lifecycle": "production", "owner": "group:default/team-a"}}


TEAM = {"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "team-a"},
        "spec": {"type": "team", "children": []}}
ORDERS = component("orders-api", "acme/orders", runbook="docs/runbook.md")
BARE = component("bare-api", "acme/bare", runbook="docs/runbook.md")           # the repository has no docs
GHOST = component("ghost-api", "acme/ghost")                                   # no such repository
BILLING = component("billing-api", "acme/billing", techdocs=False,
                    links=[{"title": "Runbook", "url": "https://github.com/acme/billing/blob/main/RUNBOOK.md"}])
PAYMENTS = component("payments-api", "acme/payments", runbook="RUNBOOK.md", techdocs=False)


@dataclass
class Setup:
    knowledge: Knowledge
    catalog: CatalogService
    kb: KnowledgeBase
    github: GitHubFake
    catalog_file: Path

    async def load(self, *entities: dict[str, Any]) -> None:
        """Write the catalog file and refresh the catalog from it, as the catalog job does."""
        self.catalog_file.write_text(yaml.safe_dump_all([TEAM, *entities]))
        await self.catalog.refresh()

    async def pages(self, name: str) -> dict[str, str]:
        ref = f"component:default/{name}"
        return {**await self.kb.versions(f"runbook:{ref}#"), **await self.kb.versions(f"docs:{ref}#")}


def seed(github: GitHubFake) -> None:
    github.add_repo("acme/orders", files=ORDERS_FILES)
    github.add_repo("acme/bare")
    github.add_repo("acme/billing", files={"RUNBOOK.md": "# Billing runbook\n\n## Invoices not sent\n\nRetry the mailer.\n"})
    github.add_repo("acme/payments", files={"RUNBOOK.md": "# Payments runbook\n\n## Declines\n\nCheck fraud scoring.\n"})


@asynccontextmanager
async def docs_setup(tmp_path: Path, database_url: str, github: GitHubFake, workers: int = WORKERS) -> AsyncIterator[Setup]:
    db = Database(database_url)
    await db.migrate()
    folder = tmp_path / "catalog"
    folder.mkdir()
    catalog = CatalogService(db, [str(folder / "all.yaml")], CatalogLoader(5_000_000))
    kb = KnowledgeBase(db)
    async with aiohttp.ClientSession() as http:
        knowledge = Knowledge(kb, DocSources(GitHubClient(http, github.url, github.token)), catalog,
                              str(tmp_path / "no-faq"), workers=workers)
        yield Setup(knowledge, catalog, kb, github, folder / "all.yaml")
    await db.close()


def paths(github: GitHubFake) -> list[str]:
    return sorted(r.path for r in github.requests)


async def test_an_unchanged_catalog_costs_no_request_and_a_full_pass_only_free_ones(tmp_path, database_url):
    async with GitHubFake() as github, docs_setup(tmp_path, database_url, github) as setup:
        seed(github)
        await setup.load(ORDERS, BARE, GHOST, component("plain-api", "acme/plain", techdocs=False))
        assert await setup.knowledge.reindex() == 3                        # the first pass is a full one
        assert len(await setup.pages("orders-api")) == 4 and await setup.pages("bare-api") == {}
        assert (await setup.knowledge.search("argo cd orders namespace"))[0].section == "Deploying"

        github.clear_requests()
        assert await setup.knowledge.reindex() == 0
        assert github.requests == []                                       # nothing changed: nothing asked

        github.clear_requests()
        used = github.rate_limit_used
        assert await setup.knowledge.reindex(full=True) == 0
        assert set(paths(github)) == {"/repos/acme/orders/commits/HEAD", "/repos/acme/bare/commits/HEAD",
                                      "/repos/acme/ghost/commits/HEAD", *ORDERS_PATHS}
        assert len(github.requests) == 3 + len(ORDERS_PATHS)               # bare's missing files are not asked again
        existing = [r for r in github.requests if "/acme/ghost/" not in r.path]
        assert all(r.headers.get("If-None-Match") for r in existing)       # conditional: all 304
        assert github.rate_limit_used == used + 1                          # only ghost's 404 counts


async def test_a_catalog_change_reads_only_the_changed_new_and_removed_entities(tmp_path, database_url):
    async with GitHubFake() as github, docs_setup(tmp_path, database_url, github) as setup:
        seed(github)
        await setup.load(ORDERS, BILLING, BARE)
        await setup.knowledge.reindex()
        assert await setup.pages("billing-api")

        github.clear_requests()
        await setup.load(component("orders-api", "acme/orders", runbook="docs/runbook.md", tags=["java"]), BARE, PAYMENTS)
        assert await setup.knowledge.reindex() == 1                        # payments' runbook; orders' pages unchanged
        assert {p.split("/")[3] for p in paths(github)} == {"orders", "payments"}
        assert await setup.pages("billing-api") == {}                      # left the catalog: its pages went
        assert (await setup.knowledge.search("declines fraud scoring"))[0].entity_ref == "component:default/payments-api"
        assert len(await setup.pages("orders-api")) == 4


async def test_a_full_pass_finds_a_file_added_after_it_was_missing(tmp_path, database_url):
    async with GitHubFake() as github, docs_setup(tmp_path, database_url, github) as setup:
        seed(github)
        await setup.load(BARE)
        await setup.knowledge.reindex()
        github.commit_files("acme/bare", {"docs/index.md": "# Bare API\n\nThe bare API now documents its zebras.\n"})
        await setup.knowledge.reindex()                                    # the catalog did not change
        assert await setup.pages("bare-api") == {}
        assert await setup.knowledge.reindex(full=True) == 1               # a new commit: missing files asked again
        assert (await setup.knowledge.search("zebras"))[0].entity_ref == "component:default/bare-api"


class FlakyGitHub(GitHubFake):
    """GitHub answering 500 for the files of the repositories in `broken`."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: set[str] = set()

    async def _get_contents(self, request: web.Request) -> web.Response:
        if request.match_info["repo"] in self.broken:
            raise gh_error(500, "Server Error")
        return await super()._get_contents(request)


async def test_a_failing_entity_is_logged_once_keeps_its_pages_and_does_not_stop_the_others(tmp_path, database_url, caplog):
    async with FlakyGitHub() as github, docs_setup(tmp_path, database_url, github) as setup:
        seed(github)
        await setup.load(ORDERS, BILLING, PAYMENTS)
        await setup.knowledge.reindex()
        billing = await setup.pages("billing-api")
        github.commit_files("acme/orders", {"docs/ops/deploy.md": "# Deploying\n\nRelease trains leave on Tuesdays.\n"})
        github.broken.add("billing")
        caplog.clear()

        assert await setup.knowledge.reindex(full=True) == 2               # orders' docs (2 pages), despite billing
        failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(failures) == 1 and "billing-api" in failures[0].getMessage() and "HTTP 500" in failures[0].getMessage()
        assert await setup.pages("billing-api") == billing                 # what it had stays searchable
        assert (await setup.knowledge.search("release trains tuesdays"))[0].entity_ref == "component:default/orders-api"

        github.clear_requests()
        await setup.knowledge.reindex()
        assert github.requests == []                                       # not hammered: retried minutes later

        github.broken.clear()
        await setup.knowledge.reindex(full=True)
        assert await setup.pages("billing-api") == billing


async def test_the_rate_limit_pauses_the_pass_instead_of_hammering(tmp_path, database_url, caplog):
    async with GitHubFake() as github, docs_setup(tmp_path, database_url, github) as setup:
        seed(github)
        await setup.load(ORDERS, BILLING, PAYMENTS)
        github.rate_limit(1, retry_after=1)                                # a secondary limit: 429, Retry-After
        started = time.monotonic()
        assert await setup.knowledge.reindex() == 5
        assert time.monotonic() - started >= 1
        refused, *_, again = [r for r in github.requests if r.path == github.requests[0].path]
        assert again.received_at - refused.received_at >= 0.9               # asked again after the pause, not before
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
            "GitHub rate limit: docs reading paused for 1s"]

        github.clear_requests()
        github.commit_files("acme/payments", {"RUNBOOK.md": "# Payments runbook\n\n## Chargebacks\n\nAsk finance.\n"})
        github.rate_limit_remaining = 0                                    # the primary limit: 403 until the reset
        github.rate_limit_reset = int(time.time()) + 2
        started = time.monotonic()
        assert await setup.knowledge.reindex(full=True) == 1
        assert time.monotonic() - started >= 0.9
        assert (await setup.knowledge.search("chargebacks"))[0].entity_ref == "component:default/payments-api"


async def test_hundreds_of_entities_share_a_small_database_pool(tmp_path, database_url, monkeypatch, caplog):
    """The old pass opened one coroutine per entity, each with its own database session: the pool
    ran out. Now at most one session per worker is open, and a pool of two is enough."""
    monkeypatch.setattr(bot.db, "create_async_engine", lambda url, **options: create_async_engine(
        url, **options, pool_size=2, max_overflow=0, pool_timeout=10))
    services = [component(f"svc-{i}", "acme/mono", runbook=f"runbooks/svc-{i}.md", techdocs=False) for i in range(200)]
    async with GitHubFake() as github, docs_setup(tmp_path, database_url, github) as setup:
        github.add_repo("acme/mono", files={f"runbooks/svc-{i}.md": f"# svc-{i} runbook\n\n## Restart\n\nRoll svc-{i}.\n"
                                            for i in range(200)})
        await setup.load(*services)
        opened, most = 0, 0
        session = setup.kb.db.session

        @asynccontextmanager
        async def counted() -> AsyncIterator[Any]:
            nonlocal opened, most
            opened += 1
            most = max(most, opened)
            try:
                async with session() as inner:
                    yield inner
            finally:
                opened -= 1

        setup.kb.db.session = counted
        assert await setup.knowledge.reindex() == 200
        assert most <= WORKERS
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(await setup.kb.versions("runbook:")) == 400            # two sections each

        github.clear_requests()
        await setup.knowledge.reindex(full=True)
        assert len([r for r in github.requests if "/contents/" in r.path]) == 200
        assert all(r.headers.get("If-None-Match") for r in github.requests)


async def test_stopping_the_server_interrupts_a_docs_pass_at_once(tmp_path, caplog):
    entities = [component(f"svc-{i}", f"acme/svc-{i}", runbook="RUNBOOK.md") for i in range(40)]
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all([TEAM, *entities]))
    async with SlackFake() as slack, GitHubFake() as github:
        for i in range(40):
            github.add_repo(f"acme/svc-{i}", files={"RUNBOOK.md": f"# svc-{i}\n\nRestart it.\n"})
        github.delay = 0.3                                                 # a pass now takes seconds
        bot = await start_bot(tmp_path, slack, PAVEDROAD_CATALOG=str(tmp_path / "all.yaml"),
                              GITHUB_API_URL=github.url, GITHUB_TOKEN=github.token)
        await github.wait_for(lambda r: True)                              # the docs job started after the load
        async with bot.http.get(f"{bot.url}/readyz") as ready:
            assert ready.status == 200                                     # the catalog does not wait for docs
        started = time.monotonic()
        await stop_bot(bot)
        assert time.monotonic() - started < 2
        asked = len(github.requests)
        await asyncio.sleep(0.7)
        assert len(github.requests) == asked                               # nothing of the pass runs on
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
