"""The stored delivery events behind DORA and CI figures: deliveries and the commits they shipped,
workflow runs and PagerDuty incidents, and what was last read from each repository and PagerDuty
service (`delivery_source`). `bot/metrics/delivery_sync.py` fills it; `/dora` and `/platform stats`
compute from it, so an answer costs a few indexed queries, not thousands of GitHub calls.

Events older than `KEEP_DAYS` are dropped: the longest window asked about is 90 days."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence

from sqlalchemy import delete, func, select, update

from bot.db import Database
from bot.metrics.dora import CiRate, ci_tally
from bot.models import DeliveryChange, DeliveryEvent, DeliverySource, IncidentEvent, WorkflowRunEvent
from integrations.github_delivery import Commit, WorkflowRun
from integrations.pagerduty import IncidentRecord

KEEP_DAYS = 92
GITHUB, PAGERDUTY = "github", "pagerduty"
IN_CLAUSE = 500
"""Keys per `IN (...)`: SQLite allows 32 766 parameters, but short lists plan better."""


def moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


@dataclass(frozen=True)
class StoredDelivery:
    key: str
    sha: str
    at: datetime
    changes_read: bool


@dataclass
class StoredWindow:
    """The events of some repositories and PagerDuty services in a window, by slug and service id."""
    deliveries: dict[str, list[StoredDelivery]] = field(default_factory=lambda: defaultdict(list))
    lead_times: dict[str, list[timedelta]] = field(default_factory=lambda: defaultdict(list))
    ci: dict[str, CiRate] = field(default_factory=dict)
    """Workflow runs, tallied in the database."""
    incidents: dict[str, list[IncidentRecord]] = field(default_factory=lambda: defaultdict(list))


def _chunks(keys: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(keys), IN_CLAUSE):
        yield keys[start:start + IN_CLAUSE]


class DeliveryData:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- what was read, and when --------------------------------------------------------------

    async def sources(self, system: str, keys: Iterable[str]) -> dict[str, DeliverySource]:
        wanted = sorted(set(keys))
        found: dict[str, DeliverySource] = {}
        async with self.db.session() as session:
            for chunk in _chunks(wanted):
                query = select(DeliverySource).where(DeliverySource.system == system, DeliverySource.key.in_(chunk))
                found.update((row.key, row) for row in (await session.exec(query)).scalars())
        return found

    async def read(self, system: str, keys: Iterable[str], at: float, source: str = "") -> None:
        """The events of these sources are now stored up to `at`."""
        await self.db.upsert(DeliverySource, [
            {"system": system, "key": key, "read_at": at, "source": source, "error": "", "tried_at": at}
            for key in keys], ("system", "key"), ("read_at", "source", "error", "tried_at"))

    async def failed(self, system: str, keys: Iterable[str], at: float, error: str) -> None:
        """A read failed: the events stored before stay, and the reason is kept to be shown."""
        await self.db.upsert(DeliverySource, [
            {"system": system, "key": key, "read_at": None, "source": "", "error": error[:500],
             "tried_at": at} for key in keys], ("system", "key"), ("error", "tried_at"))

    # -- writing events -------------------------------------------------------------------------

    async def put_runs(self, slug: str, runs: Iterable[WorkflowRun]) -> None:
        await self.db.upsert(WorkflowRunEvent, [
            {"slug": slug, "run_id": r.id, "sha": r.sha, "status": r.status, "conclusion": r.conclusion,
             "created_at": r.created_at.timestamp()} for r in runs], ("slug", "run_id"), ("status", "conclusion"))

    async def put_deliveries(self, slug: str, source: str, deliveries: Iterable[tuple[str, str, datetime]]) -> None:
        """(key, sha, at) of each delivery; one already stored keeps its moment and its changes."""
        await self.db.upsert(DeliveryEvent, [
            {"slug": slug, "key": key, "sha": sha, "at": at.timestamp(), "source": source, "changes_read": False}
            for key, sha, at in deliveries], ("slug", "key"))

    async def deliveries(self, slug: str, source: str) -> list[StoredDelivery]:
        """Every stored delivery of the repository from `source`, oldest first."""
        query = (select(DeliveryEvent.key, DeliveryEvent.sha, DeliveryEvent.at, DeliveryEvent.changes_read)
                 .where(DeliveryEvent.slug == slug, DeliveryEvent.source == source).order_by(DeliveryEvent.at))
        async with self.db.session() as session:
            return [StoredDelivery(key, sha, moment(at), bool(read)) for key, sha, at, read in (await session.exec(query)).all()]

    async def put_changes(self, slug: str, shipped: dict[StoredDelivery, list[Commit]]) -> None:
        """The commits each delivery shipped; the deliveries are marked as read."""
        await self.db.upsert(DeliveryChange, [
            {"slug": slug, "delivery_key": d.key, "sha": c.sha, "committed_at": c.committed_at.timestamp(),
             "delivered_at": d.at.timestamp()} for d, commits in shipped.items() for c in commits], ("slug", "delivery_key", "sha"))
        async with self.db.session() as session:
            for chunk in _chunks([d.key for d in shipped]):
                await session.exec(update(DeliveryEvent).where(DeliveryEvent.slug == slug, DeliveryEvent.key.in_(chunk))
                                   .values(changes_read=True))
            await session.commit()

    async def put_incidents(self, incidents: Iterable[IncidentRecord]) -> None:
        await self.db.upsert(IncidentEvent, [
            {"id": i.id, "service_id": i.service_id, "created_at": i.created_at.timestamp(),
             "resolved_at": i.resolved_at.timestamp() if i.resolved_at else None} for i in incidents],
            ("id",), ("service_id", "resolved_at"))

    async def oldest_open_incident(self, service_ids: Sequence[str]) -> float | None:
        """When the oldest stored incident still open was created: a read must reach back to it."""
        oldest: list[float] = []
        async with self.db.session() as session:
            for chunk in _chunks(service_ids):
                query = select(IncidentEvent.created_at).where(IncidentEvent.service_id.in_(chunk),
                                                               IncidentEvent.resolved_at.is_(None))
                oldest += (await session.exec(query.order_by(IncidentEvent.created_at).limit(1))).scalars().all()
        return min(oldest, default=None)

    async def forget_before(self, cutoff: float) -> None:
        async with self.db.session() as session:
            for table, column in ((DeliveryEvent, DeliveryEvent.at), (DeliveryChange, DeliveryChange.delivered_at),
                                  (WorkflowRunEvent, WorkflowRunEvent.created_at), (IncidentEvent, IncidentEvent.created_at)):
                await session.exec(delete(table).where(column < cutoff))
            await session.commit()

    # -- reading a window ---------------------------------------------------------------------

    async def window(self, sources: dict[str, str], service_ids: Sequence[str], since: datetime,
                     until: datetime) -> StoredWindow:
        """The events in [since, until) of the repositories in `sources` (slug → which source its
        deliveries come from) and of these PagerDuty services."""
        start, end = since.timestamp(), until.timestamp()
        found = StoredWindow()
        slugs = sorted(sources)
        async with self.db.session() as session:
            for chunk in _chunks(slugs):
                query = (select(DeliveryEvent.slug, DeliveryEvent.key, DeliveryEvent.sha, DeliveryEvent.at,
                                DeliveryEvent.changes_read, DeliveryEvent.source)
                         .where(DeliveryEvent.slug.in_(chunk), DeliveryEvent.at >= start, DeliveryEvent.at < end)
                         .order_by(DeliveryEvent.at))
                for slug, key, sha, at, read, source in (await session.exec(query)).all():
                    if source == sources[slug]:
                        found.deliveries[slug].append(StoredDelivery(key, sha, moment(at), bool(read)))
                query = (select(DeliveryChange.slug, DeliveryChange.delivery_key, DeliveryChange.committed_at,
                                DeliveryChange.delivered_at)
                         .where(DeliveryChange.slug.in_(chunk), DeliveryChange.delivered_at >= start,
                                DeliveryChange.delivered_at < end))
                wanted = {(slug, d.key) for slug, ds in found.deliveries.items() for d in ds}
                for slug, key, committed, delivered in (await session.exec(query)).all():
                    if (slug, key) in wanted and committed <= delivered:
                        found.lead_times[slug].append(timedelta(seconds=delivered - committed))
                query = (select(WorkflowRunEvent.slug, WorkflowRunEvent.status, WorkflowRunEvent.conclusion, func.count())
                         .where(WorkflowRunEvent.slug.in_(chunk), WorkflowRunEvent.created_at >= start,
                                WorkflowRunEvent.created_at < end)
                         .group_by(WorkflowRunEvent.slug, WorkflowRunEvent.status, WorkflowRunEvent.conclusion))
                tallies: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
                for slug, status, conclusion, number in (await session.exec(query)).all():
                    tallies[slug].append((status, conclusion, number))
                found.ci.update((slug, ci_tally(tallies.get(slug, []))) for slug in chunk)
            for chunk in _chunks(sorted(set(service_ids))):
                query = (select(IncidentEvent.id, IncidentEvent.service_id, IncidentEvent.created_at, IncidentEvent.resolved_at)
                         .where(IncidentEvent.service_id.in_(chunk), IncidentEvent.created_at >= start,
                                IncidentEvent.created_at < end))
                for incident_id, service_id, created, resolved in (await session.exec(query)).all():
                    found.incidents[service_id].append(IncidentRecord(
                        incident_id, service_id, "resolved" if resolved else "open", "", moment(created),
                        moment(resolved) if resolved is not None else None))
        return found
