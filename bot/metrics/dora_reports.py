"""`Dora`: DORA reports and CI success rates for what the catalog names, computed from the stored
delivery events. Before answering, the sources not read in the last `fresh_seconds` are read
again: a repository never read is waited for (up to the budget); one read before only briefly,
after which the stored data answers and says how old it is. No Slack here."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Callable

from bot.catalog.relations import OWNER_OF
from bot.metrics.delivery_data import GITHUB, KEEP_DAYS, PAGERDUTY, DeliveryData, StoredWindow
from bot.metrics.delivery_sync import DeliverySync
from bot.metrics.dora import (GITHUB_SLUG, PAGERDUTY_SERVICE, CiRate, Delivery, Report, ServiceData, Target,
                              build_report, utc_now)
from bot.models import DeliverySource

FRESH_SECONDS = 300.0
"""Data read this recently is answered without asking GitHub or PagerDuty again."""
KNOWN_WAIT_SECONDS = 1.0
"""How long an answer waits for the refresh of sources it has data for already."""
STILL_READING = "first read still under way; ask again in a minute"
NOT_READ = "not read yet (the collector, or a `/dora` about it, reads it)"


def _ago(read_at: float, now: datetime) -> str:
    minutes = max(0, int((now.timestamp() - read_at) // 60))
    return f"{minutes} min ago" if minutes < 120 else f"{minutes // 60} h ago"


class Dora:
    def __init__(self, index: Callable[[], object], sync: DeliverySync, budget_seconds: float = 8.0,
                 fresh_seconds: float = FRESH_SECONDS, clock: Callable[[], datetime] = utc_now) -> None:
        self._index = index  # the catalog's current CatalogIndex (it is swapped on refresh)
        self.sync = sync
        self.data: DeliveryData = sync.data
        self.budget_seconds = budget_seconds
        self.fresh_seconds = fresh_seconds
        self.clock = clock

    def resolve(self, text: str) -> Target | str:
        """The Component or team (Group: its Components) named; else a message saying why not."""
        index = self._index()
        found = index.find(text)  # type: ignore[attr-defined]
        entity = found.entity
        if entity is None:
            hint = f" Did you mean {', '.join(f'`{s}`' for s in found.suggestions)}?" if found.suggestions else ""
            return f"I couldn't find `{text}` in the catalog.{hint}"
        if entity.kind == "Component":
            return Target(entity.display_name, "service", (entity,))
        if entity.kind == "Group":
            owned = [index.entities[k] for k in index.related(entity.key, OWNER_OF)  # type: ignore[attr-defined]
                     if k in index.entities and index.entities[k].kind == "Component"]  # type: ignore[attr-defined]
            if not owned:
                return f"*{entity.display_name}* owns no Components in the catalog."
            return Target(entity.display_name, "team", tuple(sorted(owned, key=lambda e: e.name)))
        return f"`{text}` is a {entity.kind}; ask about a service (Component) or a team (Group)."

    def catalog_sources(self) -> tuple[list[str], list[str]]:
        """The repositories and PagerDuty services the catalog's Components name."""
        components = [e for e in self._index().entities.values() if e.kind == "Component"]  # type: ignore[attr-defined]
        slugs = {str(e.annotations.get(GITHUB_SLUG) or "").strip().lower() for e in components} - {""}
        ids = {str(e.annotations.get(PAGERDUTY_SERVICE) or "").strip() for e in components} - {""}
        return sorted(slugs), sorted(ids)

    async def collect(self, every_seconds: float, stopping: asyncio.Event | None = None) -> dict[str, int]:
        """The collector's pass over every repository and PagerDuty service of the catalog."""
        slugs, ids = self.catalog_sources()
        return await self.sync.collect(slugs, ids, every_seconds, stopping)

    async def report(self, target: Target, days: int) -> Report:
        until = self.clock()
        since = until - timedelta(days=days)
        data = [ServiceData(e.name, str(e.annotations.get(GITHUB_SLUG) or "").strip(),
                            str(e.annotations.get(PAGERDUTY_SERVICE) or "").strip()) for e in target.components]
        for d in data:
            if not d.slug:
                d.missing.append(f"no `{GITHUB_SLUG}` annotation (GitHub)")
            if not d.pagerduty_id:
                d.missing.append(f"no `{PAGERDUTY_SERVICE}` annotation (PagerDuty)")
        # A repository several Components name (a monorepo) is read and counted once, for the first
        # of them with a PagerDuty service (else the first by name).
        readers: dict[str, ServiceData] = {}
        for d in sorted(data, key=lambda d: (not d.pagerduty_id, d.name)):
            if d.slug and d.slug.lower() in readers:
                d.shares = readers[d.slug.lower()].name
            elif d.slug:
                readers[d.slug.lower()] = d
        ids = sorted({d.pagerduty_id for d in data if d.pagerduty_id})
        await self.sync.refresh(sorted(readers), ids, self.fresh_seconds, self.budget_seconds,
                                min(KNOWN_WAIT_SECONDS, self.budget_seconds))
        repositories = await self.data.sources(GITHUB, readers)
        services = await self.data.sources(PAGERDUTY, ids)
        stored = await self.data.window({slug: s.source for slug, s in repositories.items() if s.read_at is not None},
                                        ids, since, until)
        for slug, d in readers.items():
            self._github_data(d, repositories.get(slug), stored, until)
        for d in data:
            self._incident_data(d, services.get(d.pagerduty_id), stored, until)
        return build_report(target, days, since, until, data)

    def _github_data(self, d: ServiceData, state: DeliverySource | None, stored: StoredWindow, now: datetime) -> None:
        slug = d.slug.lower()
        if self.sync.github is None:
            d.missing.append("GitHub is not configured")
            return
        if state is None or state.read_at is None:
            d.missing.append(f"GitHub: {_unread(state, (GITHUB, slug) in self.sync.reading)}")
            return
        if state.error:
            d.missing.append(_failed_last("GitHub", state, now))
        d.read_at = datetime.fromtimestamp(state.read_at, tz=timezone.utc)
        d.ci = stored.ci.get(slug)
        if not state.source:
            d.missing.append("no deployments or successful workflow runs on the default branch (GitHub)")
            return
        d.source = state.source
        d.deliveries = [Delivery(x.sha, x.at, state.source) for x in stored.deliveries.get(slug, [])]
        d.lead_times = stored.lead_times.get(slug, [])

    def _incident_data(self, d: ServiceData, state: DeliverySource | None, stored: StoredWindow, now: datetime) -> None:
        if not d.pagerduty_id:
            return
        if self.sync.pagerduty is None:
            d.missing.append("PagerDuty is not configured (PAGERDUTY_API_TOKEN)")
        elif state is None or state.read_at is None:
            d.missing.append(f"PagerDuty: {_unread(state, (PAGERDUTY, d.pagerduty_id) in self.sync.reading)}")
        else:
            if state.error:
                d.missing.append(_failed_last("PagerDuty", state, now))
            d.incidents = stored.incidents.get(d.pagerduty_id, [])

    async def org_ci_success(self, days: int = 30) -> tuple[CiRate, dict[str, CiRate], list[str]]:
        """CI success rate over every repository of the catalog's Components (at most the stored
        `KEEP_DAYS`): the total, per repository, and the repositories without data and why."""
        if self.sync.github is None:
            return CiRate(0, 0, 0), {}, ["GitHub is not configured"]
        slugs, _ = self.catalog_sources()
        wait = min(KNOWN_WAIT_SECONDS, self.budget_seconds)
        await self.sync.refresh(slugs, [], self.fresh_seconds, wait, wait, first_reads=False)
        until = self.clock()
        states = await self.data.sources(GITHUB, slugs)
        read = {slug: s.source for slug, s in states.items() if s.read_at is not None}
        stored = await self.data.window(read, [], until - timedelta(days=min(days, KEEP_DAYS)), until)
        per_repo = {slug: stored.ci[slug] for slug in read}
        missing = [f"{slug}: {_unread(states.get(slug), (GITHUB, slug) in self.sync.reading)}"
                   for slug in slugs if slug not in read]
        return sum(per_repo.values(), CiRate(0, 0, 0)), per_repo, missing


def _unread(state: DeliverySource | None, reading: bool) -> str:
    """Why a source never read has no data."""
    if reading:
        return STILL_READING
    return state.error if state is not None and state.error else NOT_READ


def _failed_last(system: str, state: DeliverySource, now: datetime) -> str:
    return f"{system}: the last read failed ({state.error}); showing data read {_ago(state.read_at or 0.0, now)}"
