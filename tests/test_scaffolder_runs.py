"""Durable runs on the local git provider, on SQLite and PostgreSQL: the golden path, one run per
submit, one run per repository, who may, failures, retry, and a crash followed by a resume."""
from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.models import ScaffolderStep
from bot.scaffolder.model import ScaffolderError
from integrations.git_hosting import RepoSettings
from integrations.git_local import LocalGit
from tests.scaffolder_kit import ADA, CHARLES, GRACE, Kit, finished, make_kit, service_values


@pytest.fixture
async def kit(database_url, tmp_path):
    kit = await make_kit(database_url, tmp_path)
    yield kit
    await kit.close()


def git(kit: Kit, repo: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(kit.git_root / f"{repo}.git"), *args], check=True,
                          capture_output=True, text=True).stdout


async def test_golden_path_creates_the_repository_and_the_catalog_entry(kit: Kit):
    template = kit.scaffolder.template("python-service")
    run = await kit.scaffolder.start(template, service_values(withDatabase=True), ADA, "view-1")
    assert run.state in ("pending", "running") and run.owner == "group:default/payments-team"
    run = await finished(kit, run)
    assert run.state == "done", run.error
    assert [s.state for s in run.steps] == ["done", "done", "done"]
    assert run.finished_at is not None and 0 < run.seconds < 10
    repo_url = (kit.git_root / "acme" / "ledger-api.git").as_uri()
    assert run.output_links == [("Repository", repo_url), ("Open in catalog", "component:default/ledger-api")]
    assert "/whoowns ledger-api" in run.output_text
    assert run.steps[1].links == [("Repository", repo_url)]
    log = git(kit, "acme/ledger-api", "log", "--format=%s%n%b")
    assert log.count("Scaffolded-by: pavedroad run") == 1 and log.startswith("initial commit")
    tree = git(kit, "acme/ledger-api", "ls-tree", "-r", "main")
    assert "100755 blob" in next(line for line in tree.splitlines() if line.endswith("scripts/dev.sh"))
    assert "src/ledger_api/app.py" in tree and "catalog-info.yaml" in tree
    assert git(kit, "acme/ledger-api", "config", "pavedroad.topics").strip() == "python,service,experimental"
    assert git(kit, "acme/ledger-api", "config", "pavedroad.access.acme.payments").strip() == "admin"
    found = kit.catalog.index.find("ledger-api").entity
    assert found is not None and kit.catalog.index.owner_of(found.key) == "group:default/payments-team"
    await kit.catalog.refresh()  # a refresh (and a restart: restore) keeps the registered component
    assert kit.catalog.index.find("ledger-api").entity is not None
    actions = [(e.action, e.outcome) for e in reversed(await kit.audit.recent(10))]
    assert actions == [("scaffold.start", "started"), ("scaffold.run", "done")]
    states = kit.recorder.states(run.id)
    assert states[0] == "running" and states[-1] == "done"


async def test_the_same_submit_twice_makes_one_run(kit: Kit):
    template = kit.scaffolder.template("python-service")
    first, second = await asyncio.gather(*(kit.scaffolder.start(template, service_values(), ADA, "view-7") for _ in range(2)))
    assert first.id == second.id
    again = await kit.scaffolder.start(template, service_values(), ADA, "another-view")  # a double click within the window
    assert again.id == first.id
    assert (await finished(kit, first)).state == "done"
    later = await kit.scaffolder.start(template, service_values(), ADA, "view-7")
    assert later.id == first.id and later.state == "done"
    resent = await kit.scaffolder.start(template, service_values(), ADA, "a-third-view")  # the component exists by now
    assert resent.id == first.id


async def test_concurrent_runs_for_one_repository_one_wins(kit: Kit):
    template = kit.scaffolder.template("python-service")
    results = await asyncio.gather(
        kit.scaffolder.start(template, service_values(description="first"), ADA, "a"),
        kit.scaffolder.start(template, service_values(description="second"), CHARLES, "b"), return_exceptions=True)
    runs = [r for r in results if not isinstance(r, Exception)]
    refusals = [r for r in results if isinstance(r, ScaffolderError)]
    assert len(runs) == 1 and len(refusals) == 1
    assert "github.com/acme/ledger-api is being created right now by another run" in str(refusals[0])
    await finished(kit, runs[0])


async def test_only_the_owner_group_or_admins_may_create(kit: Kit, database_url, tmp_path):
    template = kit.scaffolder.template("python-service")
    with pytest.raises(ScaffolderError, match="Only members of group:default/payments-team .* may create"):
        await kit.scaffolder.start(template, service_values(), GRACE, "grace")
    with pytest.raises(ScaffolderError, match="you are not in the catalog"):
        await kit.scaffolder.start(template, service_values(), "U0NOBODY1", "nobody")
    admins = await make_kit(database_url, tmp_path / "admins", admins=[GRACE], migrate=False)
    try:
        run = await admins.scaffolder.start(template, service_values(), GRACE, "grace-admin")
        assert (await finished(admins, run)).state == "done"
    finally:
        await admins.close()


async def test_an_existing_repository_fails_the_run_and_a_retry_resumes_from_that_step(kit: Kit):
    host = LocalGit(kit.git_root)
    await host.create_repository("acme", "ledger-api", RepoSettings())
    template = kit.scaffolder.template("python-service")
    run = await finished(kit, await kit.scaffolder.start(template, service_values(), ADA, "v"))
    assert run.state == "failed"
    assert run.error == "Create the repository: repository acme/ledger-api already exists on local git; choose another name"
    assert [s.state for s in run.steps] == ["done", "failed", "pending"]
    with pytest.raises(ScaffolderError, match="Only <@U0ADA0001>"):
        await kit.scaffolder.retry(run.id, GRACE)
    (kit.git_root / "acme" / "ledger-api.git").rename(kit.git_root / "acme" / "old.git")
    retried = await kit.scaffolder.retry(run.id, ADA)
    assert retried.id == run.id
    run = await finished(kit, retried)
    assert run.state == "done" and [s.state for s in run.steps] == ["done", "done", "done"]
    with pytest.raises(ScaffolderError, match="only a failed run can be retried"):
        await kit.scaffolder.retry(run.id, ADA)
    assert [e.action for e in reversed(await kit.audit.recent(10))] == [
        "scaffold.start", "scaffold.run", "scaffold.retry", "scaffold.run"]


class StallingGit(LocalGit):
    """Stops (for ever) at one point of publishing: as if the process died there."""

    def __init__(self, root: Path, stall_in: str) -> None:
        super().__init__(root)
        self.stall_in = stall_in
        self.stalled = asyncio.Event()

    async def _stall(self, where: str) -> None:
        if where == self.stall_in:
            self.stalled.set()
            await asyncio.Event().wait()

    async def create_repository(self, owner, name, settings):
        created = await super().create_repository(owner, name, settings)
        await self._stall("after create")
        return created

    async def commit_files(self, *args, **kwargs):
        await self._stall("before commit")
        return await super().commit_files(*args, **kwargs)


@pytest.mark.parametrize("stall_in", ["after create", "before commit"])
async def test_a_crash_mid_run_is_resumed_by_the_next_process(database_url, tmp_path, stall_in):
    first = await make_kit(database_url, tmp_path, StallingGit(tmp_path / "git", stall_in), lease_seconds=0.6)
    template = first.scaffolder.template("python-service")
    run = await first.scaffolder.start(template, service_values(), ADA, "crash")
    await asyncio.wait_for(first.scaffolder.host.stalled.wait(), 10)
    for task in list(first.scaffolder._tasks):  # the process dies: its tasks never finish
        task.cancel()
    await asyncio.sleep(0)
    await first.db.close()

    second = await make_kit(database_url, tmp_path, lease_seconds=0.6, migrate=False)
    try:
        stored = await second.scaffolder.get(run.id)
        assert stored.state == "running" and stored.steps[1].state == "running"
        deadline = asyncio.get_running_loop().time() + 10
        while (await second.scaffolder.get(run.id)).state != "done":  # the lease of the dead process runs out first
            assert asyncio.get_running_loop().time() < deadline
            await second.scaffolder.resume_unfinished()
            await asyncio.sleep(0.2)
        run = await finished(second, run)
        assert run.state == "done", run.error
        log = git(second, "acme/ledger-api", "log", "--format=%H")
        assert len(log.split()) == 1  # one repository, one commit: nothing done twice
        async with second.db.session() as session:
            step = (await session.exec(select(ScaffolderStep).where(ScaffolderStep.run_id == run.id,
                                                                   ScaffolderStep.position == 1))).scalars().one()
        assert "found acme/ledger-api, created by an earlier try" in step.log or stall_in == "before commit"
    finally:
        await second.close()


async def test_the_progress_message_is_updated_even_after_the_run_ended(kit: Kit):
    template = kit.scaffolder.template("python-service")
    run = await finished(kit, await kit.scaffolder.start(template, service_values(), ADA, "m"))
    await kit.scaffolder.attach_message(run.id, "D0ADA", "1700000000.000100")
    await asyncio.sleep(0.05)
    last = kit.recorder.seen[-1][1]
    assert (last.slack_channel, last.slack_ts, last.state) == ("D0ADA", "1700000000.000100", "done")
    assert (await kit.scaffolder.get(run.id)).slack_ts == "1700000000.000100"


async def test_first_progress_comes_at_once_and_failures_say_why(kit: Kit):
    template = kit.scaffolder.template("infra-namespace")
    started = asyncio.get_running_loop().time()
    run = await kit.scaffolder.start(template, {"service": "payment-service", "owner": "payments-team"}, ADA, "pr")
    run = await finished(kit, run)
    first_progress = kit.recorder.seen[0][0]
    assert first_progress - started < 1.0
    assert run.state == "failed"
    assert run.error == ("Open the pull request: acme/infrastructure does not exist on local git; "
                         "a pull request needs an existing repository")


async def test_a_pull_request_on_the_local_host_is_a_branch(kit: Kit):
    host = LocalGit(kit.git_root)
    await host.create_repository("acme", "infrastructure", RepoSettings())
    base = kit.git_root / "seed"
    (base / "README.md").parent.mkdir(parents=True)
    (base / "README.md").write_text("# infrastructure\n")
    from integrations.git_hosting import Author
    await host.commit_files("acme", "infrastructure", "main", base, "seed", Author("t", "t@example.com"))
    template = kit.scaffolder.template("infra-namespace")
    run = await finished(kit, await kit.scaffolder.start(
        template, {"service": "payment-service", "owner": "payments-team", "environment": "production"}, ADA, "pr"))
    assert run.state == "done", run.error
    tree = git(kit, "acme/infrastructure", "ls-tree", "-r", "--name-only", "namespace-payment-service-production")
    assert tree.split() == ["README.md", "production/namespaces/payment-service.yaml",
                            "production/vault/policies/payment-service.hcl"]
    assert run.output_links == [("Pull request", (kit.git_root / "acme/infrastructure.git").as_uri()
                                 + "#namespace-payment-service-production")]
