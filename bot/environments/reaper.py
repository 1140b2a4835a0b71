"""The reaper: warns before an environment expires and destroys it when it has.

It only ever touches namespaces that carry the managed-by label *and* are recorded in the
database under the same id; anything else it finds (recorded but gone, labelled but unknown) is
reported as drift, never deleted. With several replicas, a lease lets one reaper act at a time.
When environments are proposed in an infrastructure repository, the pipeline owns the namespaces
and the records are the truth: the reaper reads no cluster, and destroying proposes the removal.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select

from bot.environments.rules import Refused
from bot.environments.service import ACTIVE, ENVIRONMENT_ID, Environments
from bot.leases import Leases
from bot.models import Environment
from bot.observability import metrics as observe
from integrations.kubernetes import MANAGED_BY

log = logging.getLogger(__name__)
LEASE = "reaper"


@dataclass
class ReapReport:
    warned: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    skipped: bool = False

    def lines(self) -> list[str]:
        if self.skipped:
            return ["another reaper holds the lease; nothing done"]
        return ([f"warned: {n}" for n in self.warned] + [f"destroyed: {n}" for n in self.destroyed]
                + [f"drift: {d}" for d in self.drift])


class Reaper:
    def __init__(self, environments: Environments, leases: Leases, lease_seconds: float = 600.0) -> None:
        self.environments = environments
        self.leases = leases
        self.lease_seconds = lease_seconds
        self.holder = uuid.uuid4().hex

    async def run(self, now: float | None = None, dry_run: bool = False) -> ReapReport:
        """One pass; with `dry_run` it only reports what it would do."""
        now = time.time() if now is None else now
        if not dry_run and not await self.leases.acquire(LEASE, self.holder, self.lease_seconds, now):
            return ReapReport(skipped=True)
        report = ReapReport()
        envs = self.environments
        by_repository = envs.infra is not None
        labelled = {} if by_repository else {ns.name: ns for ns in await envs.cluster().managed_namespaces(f"{MANAGED_BY}=pavedroad")}
        async with envs.db.session() as session:
            recorded = list((await session.exec(select(Environment).where(Environment.status.in_(ACTIVE + ("failed",)),
                                                                         Environment.ended_at.is_(None) | (Environment.status == "failed")))
                             ).scalars().all())
        known: set[str] = set()
        warn_seconds = envs.rules.warn_hours * 3600
        for number, env in enumerate(recorded, 1):
            if not dry_run and number % 200 == 0:  # a long pass keeps its lease, so no other reaper joins in
                await self.leases.acquire(LEASE, self.holder, self.lease_seconds)
            if env.status == "awaiting_approval" or by_repository and env.status == "failed":
                continue  # a failed proposal left nothing to remove
            if not by_repository:
                namespace = labelled.get(env.name)
                if namespace is None:
                    if env.status != "failed":
                        report.drift.append(f"{env.name}: recorded but its namespace is gone")
                        if not dry_run and env.expires_at <= now:
                            await envs.record_end(env, "destroyed", "namespace was already gone")
                    continue
                if namespace.annotations.get(ENVIRONMENT_ID) != str(env.id):
                    continue  # same name, another record: reported below as unknown
                known.add(env.name)
            if env.status == "failed" or env.expires_at <= now:
                if not dry_run:
                    try:
                        await envs.tear_down(env, "reaper")
                    except Refused as exc:
                        report.drift.append(f"{env.name}: could not be destroyed: {exc}")
                        continue
                report.destroyed.append(env.name)
            elif env.warned_at is None and env.expires_at - now <= warn_seconds:
                report.warned.append(env.name)
                if not dry_run:
                    await envs.notifier.expiring(env, envs.owner(env))
                    await envs.update(env, warned_at=now)
        report.drift += [f"{name}: labelled managed-by=pavedroad but not recorded; left alone" for name in sorted(set(labelled) - known)]
        observe.reaper_pass(report, dry_run)
        for line in report.lines():
            log.info("reaper %s", line)
        return report
