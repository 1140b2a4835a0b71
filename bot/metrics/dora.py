"""DORA metrics and CI success rates for a service or a team, from GitHub and PagerDuty. No Slack here.

The four keys (rules and thresholds in docs/dora.md):

* deployment frequency: successful production deployments (GitHub Deployments API) in the window;
  when a repository has no deployments at all, successful workflow runs on the default branch,
  one per distinct commit, stand in, and the answer says which source was used;
* lead time for changes: the median, over every commit a successful delivery shipped (the commits
  between the previous successful delivery and this one), of delivery time - commit time;
* change failure rate: the share of successful deliveries followed by a PagerDuty incident on the
  service's PagerDuty service before the next delivery and within 24 hours;
* time to restore: the median created → resolved time of the service's incidents opened in the window.

Each comes with its band (2023 State of DevOps report) or, when it cannot be computed, no value
and the reason, never a zero that reads like a measurement. A team's figures pool its Components'
data. The pure functions at the top compute; `Dora` gathers the data under a time budget.
"""
from __future__ import annotations

import asyncio
import logging
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Sequence

from bot.catalog.entity import Entity
from bot.catalog.relations import OWNER_OF
from integrations.errors import IntegrationError
from integrations.github_delivery import Commit, GitHubDelivery, WorkflowRun
from integrations.pagerduty import IncidentRecord, PagerDutyClient

log = logging.getLogger(__name__)
GITHUB_SLUG = "github.com/project-slug"
PAGERDUTY_SERVICE = "pagerduty.com/service-id"
WINDOWS = (30, 90)
FAILURE_WINDOW = timedelta(hours=24)
LEAD_TIME_SAMPLE = 30
"""Per repository, the lead time reads the commits of at most this many of the latest deliveries."""
SUCCESS = frozenset({"success"})
FAILURE = frozenset({"failure", "timed_out", "startup_failure"})
"""Workflow run conclusions counted as failed runs; `cancelled`, `skipped`, `neutral`... are left out."""
ELITE, HIGH, MEDIUM, LOW = "elite", "high", "medium", "low"
DEPLOYMENTS, RUNS = "deployments", "workflow runs"
GITHUB_AT_ONCE = 16
GITHUB_CACHE_SECONDS = 300.0
"""A repository's delivery data is reused this long: asking again (or about the team after one
of its services) costs no GitHub calls, which matters under GitHub's 5 000 requests an hour."""
GITHUB_CACHE_SIZE = 4096
INCIDENT_IDS_PER_CALL = 50


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# -- bands (2023 State of DevOps report; boundaries in docs/dora.md) ------------------------------


def deployment_frequency_band(count: int, days: int, services: int = 1) -> str:
    """elite: on demand, at least once a day on average; high: at least once a week;
    medium: at least once a month (30 days); low: less often. Per service: `count` deliveries of
    `services` services in `days`. Exact integer comparisons."""
    span = days * max(services, 1)
    if count >= span:
        return ELITE
    if count * 7 >= span:
        return HIGH
    if count * 30 >= span:
        return MEDIUM
    return LOW


def _band_below(value: timedelta, elite: timedelta, high: timedelta, medium: timedelta) -> str:
    """The band of a duration: under `elite` is elite, under `high` high, under `medium` medium."""
    return ELITE if value < elite else HIGH if value < high else MEDIUM if value < medium else LOW


def lead_time_band(lead: timedelta) -> str:
    """elite: under a day; high: under a week; medium: under a month (30 days); low: longer."""
    return _band_below(lead, timedelta(days=1), timedelta(days=7), timedelta(days=30))


def change_failure_band(rate: float) -> str:
    """The 2023 clusters' rates as ceilings: elite ≤ 5 %, high ≤ 10 %, medium ≤ 15 %, low above."""
    percent = round(rate * 100, 6)
    if percent <= 5:
        return ELITE
    if percent <= 10:
        return HIGH
    if percent <= 15:
        return MEDIUM
    return LOW


def restore_band(duration: timedelta) -> str:
    """elite: under an hour; high: under a day; medium: under a week; low: longer."""
    return _band_below(duration, timedelta(hours=1), timedelta(days=1), timedelta(days=7))


# -- the figures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A successful change to production: a deployment that reached `success`, or (fallback) the
    first successful workflow run of a commit on the default branch."""
    sha: str
    at: datetime
    source: str


@dataclass(frozen=True)
class Metric:
    name: str
    value: float | None
    """per day, hours or a share (0..1); None: no data."""
    band: str | None
    text: str
    """The figure as a person reads it, or "no data"."""
    reason: str = ""
    """Why there is no data, or a note on how the figure was made."""

    @property
    def has_data(self) -> bool:
        return self.value is not None


def no_data(name: str, reason: str) -> Metric:
    return Metric(name, None, None, "no data", reason)


def median_duration(durations: Sequence[timedelta]) -> timedelta | None:
    if not durations:
        return None
    return timedelta(seconds=statistics.median(d.total_seconds() for d in durations))


def human_duration(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def deliveries_from_runs(runs: Iterable[WorkflowRun]) -> list[Delivery]:
    """One delivery per commit with a successful run (several workflows may run on one push), at
    its first successful run."""
    first: dict[str, datetime] = {}
    for run in runs:
        if run.conclusion in SUCCESS and (run.sha not in first or run.created_at < first[run.sha]):
            first[run.sha] = run.created_at
    return sorted((Delivery(sha, at, RUNS) for sha, at in first.items()), key=lambda d: d.at)


def deployment_frequency(count: int | None, days: int, reason: str = "", source: str = "", services: int = 1) -> Metric:
    """Deliveries per day (value) and per week (text); for several services, the total, with the
    band of the average service."""
    name = "Deployment frequency"
    if count is None:
        return no_data(name, reason)
    per_week = count * 7 / days
    team = f", {services} services; band per service" if services > 1 else ""
    return Metric(name, count / days, deployment_frequency_band(count, days, services),
                  f"{per_week:.1f}/week ({count} in {days} days{team})", f"from {source}" if source else "")


def lead_time(durations: Sequence[timedelta], reason: str = "no successful deliveries with commits in the window") -> Metric:
    name = "Lead time for changes"
    median = median_duration(durations)
    if median is None:
        return no_data(name, reason)
    return Metric(name, median.total_seconds() / 3600, lead_time_band(median), human_duration(median),
                  f"median of {len(durations)} commits")


def failed_deliveries(deliveries: Sequence[Delivery], incidents: Sequence[IncidentRecord],
                      window: timedelta = FAILURE_WINDOW) -> list[bool]:
    """For each delivery (oldest first), whether an incident was opened at or after it, before the
    next delivery and less than `window` after it."""
    ordered = sorted(deliveries, key=lambda d: d.at)
    opened = sorted(i.created_at for i in incidents)
    failed = []
    for position, delivery in enumerate(ordered):
        end = delivery.at + window
        if position + 1 < len(ordered):
            end = min(end, ordered[position + 1].at)
        failed.append(any(delivery.at <= moment < end for moment in opened))
    return failed


def change_failure_rate(failed: int | None, total: int, reason: str = "") -> Metric:
    name = "Change failure rate"
    if failed is None:
        return no_data(name, reason)
    if total == 0:
        return no_data(name, "no deliveries in the window")
    rate = failed / total
    return Metric(name, rate, change_failure_band(rate), f"{rate * 100:.0f}% ({failed} of {total})")


def restore_times(incidents: Iterable[IncidentRecord]) -> list[timedelta]:
    return [i.resolved_at - i.created_at for i in incidents if i.resolved_at is not None]


def time_to_restore(durations: Sequence[timedelta] | None, reason: str = "", open_count: int = 0) -> Metric:
    name = "Time to restore"
    if durations is None:
        return no_data(name, reason)
    median = median_duration(durations)
    if median is None:
        return no_data(name, "no resolved incidents in the window" + (f" ({open_count} still open)" if open_count else ""))
    note = f"median of {len(durations)} incidents" + (f"; {open_count} still open" if open_count else "")
    return Metric(name, median.total_seconds() / 3600, restore_band(median), human_duration(median), note)


@dataclass(frozen=True)
class CiRate:
    """success / (success + failure) of workflow runs on default branches; cancelled and the like excluded."""
    success: int
    failure: int
    excluded: int

    @property
    def rate(self) -> float | None:
        return self.success / (self.success + self.failure) if self.success + self.failure else None

    @property
    def text(self) -> str:
        rate = self.rate
        if rate is None:
            return "no data"
        return f"{rate * 100:.0f}% ({self.success} of {self.success + self.failure} runs)"

    def __add__(self, other: CiRate) -> CiRate:
        return CiRate(self.success + other.success, self.failure + other.failure, self.excluded + other.excluded)


def ci_rate(runs: Iterable[WorkflowRun]) -> CiRate:
    success = failure = excluded = 0
    for run in runs:
        if run.conclusion in SUCCESS:
            success += 1
        elif run.conclusion in FAILURE:
            failure += 1
        elif run.status == "completed":
            excluded += 1
    return CiRate(success, failure, excluded)


def weekly_counts(moments: Iterable[datetime], since: datetime, until: datetime) -> list[tuple[datetime, float]]:
    """Counts per 7-day bucket from `since` (each point at its bucket's start)."""
    weeks = max(1, -(-(until - since) // timedelta(days=7)))
    counts = [0] * weeks
    for moment in moments:
        if since <= moment < until:
            counts[min((moment - since) // timedelta(days=7), weeks - 1)] += 1
    return [(since + timedelta(days=7 * i), float(c)) for i, c in enumerate(counts)]


# -- gathering the data ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What `/dora` was asked about: one Component, or a team's Components."""
    name: str
    kind: str  # "service" or "team"
    components: tuple[Entity, ...]


@dataclass
class ServiceData:
    """What was read for one Component; None where it could not be read."""
    name: str
    slug: str
    pagerduty_id: str
    source: str = ""
    deliveries: list[Delivery] | None = None
    lead_times: list[timedelta] = field(default_factory=list)
    runs: list[WorkflowRun] | None = None
    incidents: list[IncidentRecord] | None = None
    missing: list[str] = field(default_factory=list)
    shares: str = ""
    """The Component whose data stands for this repository's, when several Components name one repository."""


@dataclass
class Report:
    target: Target
    days: int
    since: datetime
    until: datetime
    deployment_frequency: Metric
    lead_time: Metric
    change_failure_rate: Metric
    time_to_restore: Metric
    ci: CiRate
    ci_by_repo: dict[str, CiRate]
    sources: dict[str, str]
    missing: list[str]
    weekly: dict[str, list[tuple[datetime, float]]]

    @property
    def metrics(self) -> tuple[Metric, Metric, Metric, Metric]:
        return (self.deployment_frequency, self.lead_time, self.change_failure_rate, self.time_to_restore)


def build_report(target: Target, days: int, since: datetime, until: datetime, data: Sequence[ServiceData]) -> Report:
    """Pool the services' data into the four metrics (pure: no I/O)."""
    missing = [f"{d.name}: {m}" for d in data for m in d.missing]
    known = [d for d in data if d.deliveries is not None]
    sources = {d.name: d.source or "none" for d in data}
    in_window = {d.name: [x for x in d.deliveries if since <= x.at < until] for d in known}  # type: ignore[union-attr]

    if known:
        count = sum(len(v) for v in in_window.values())
        used = sorted({d.source for d in known if d.source})
        frequency = deployment_frequency(count, days, source=" and ".join(used), services=len(known))
    else:
        frequency = deployment_frequency(None, days, _first_reason(data, "GitHub", "no GitHub data"))
    lead = lead_time([t for d in known for t in d.lead_times]) if known else no_data(
        "Lead time for changes", frequency.reason)

    with_incidents = [d for d in known if d.incidents is not None]
    if with_incidents:
        failed = total = 0
        for d in with_incidents:
            flags = failed_deliveries(in_window[d.name], d.incidents or [])
            failed, total = failed + sum(flags), total + len(flags)
        cfr = change_failure_rate(failed, total)
    else:
        cfr = change_failure_rate(None, 0, _first_reason(data, "PagerDuty", "no deployment or incident data")
                                  if known else frequency.reason)

    incident_data = [d for d in data if d.incidents is not None]
    if incident_data:
        incidents = [i for d in incident_data for i in d.incidents or [] if since <= i.created_at < until]
        ttr = time_to_restore(restore_times(incidents), open_count=sum(i.resolved_at is None for i in incidents))
    else:
        ttr = time_to_restore(None, _first_reason(data, "PagerDuty", "no PagerDuty data"))

    ci_by_repo = {d.slug: ci_rate(d.runs) for d in data if d.runs is not None}
    ci = sum(ci_by_repo.values(), CiRate(0, 0, 0))
    delivered = [x.at for v in in_window.values() for x in v]
    failed_at = [x.at for d in with_incidents for x, bad in zip(sorted(in_window[d.name], key=lambda x: x.at),
                                                                  failed_deliveries(in_window[d.name], d.incidents or []))
                 if bad]
    opened = [i.created_at for d in incident_data for i in d.incidents or []]
    weekly = {"deployments": weekly_counts(delivered, since, until) if known else [],
              "failed deployments": weekly_counts(failed_at, since, until) if with_incidents else [],
              "incidents": weekly_counts(opened, since, until) if incident_data else []}
    return Report(target, days, since, until, frequency, lead, cfr, ttr, ci, ci_by_repo, sources, missing, weekly)


def _first_reason(data: Sequence[ServiceData], system: str, default: str) -> str:
    reasons = [m for d in data for m in d.missing if system in m]
    if not reasons:
        return default
    return reasons[0] if len(data) == 1 else f"{reasons[0]} (and {len(reasons) - 1} more)" if len(reasons) > 1 else reasons[0]


class Dora:
    """Reads GitHub and PagerDuty for a target's Components, concurrently, within `budget_seconds`;
    whatever did not come back in time is reported missing, never an error."""

    def __init__(self, index: Callable[[], object], github: GitHubDelivery | None, pagerduty: PagerDutyClient | None,
                 budget_seconds: float = 8.0, clock: Callable[[], datetime] = utc_now) -> None:
        self._index = index  # the catalog's current CatalogIndex (it is swapped on refresh)
        self.github = github
        self.pagerduty = pagerduty
        self.budget_seconds = budget_seconds
        self.clock = clock
        self.cache_seconds = GITHUB_CACHE_SECONDS
        self._background: set[asyncio.Future[None]] = set()
        self._github_cache: dict[tuple[str, int], tuple[float, str, list[Delivery], list[timedelta], list[WorkflowRun]]] = {}

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
        limit = asyncio.Semaphore(GITHUB_AT_ONCE)
        reads = {asyncio.ensure_future(self._github(d, since, limit, days)): d for d in readers.values()}
        incidents = asyncio.ensure_future(self._incidents(data, since, until))
        done, pending = await asyncio.wait([*reads, incidents], timeout=self.budget_seconds)
        if incidents in pending:
            incidents.cancel()
            for d in data:
                if d.pagerduty_id and not any("PagerDuty" in m for m in d.missing):
                    d.missing.append("PagerDuty did not answer in time")
        late = [task for task in pending if task is not incidents]
        for task in late:
            # What was read in time is answered; a slow repository's read goes on, filling the
            # cache, so asking again shortly after is answered in full.
            self._background.add(task)
            task.add_done_callback(self._finished)
            reads[task].missing.append("GitHub did not answer in time (still reading: ask again in a minute)")
        snapshot = [ServiceData(d.name, d.slug, d.pagerduty_id, "", None, [], None, d.incidents, list(d.missing), d.shares)
                    if any(reads.get(t) is d for t in late) else d for d in data]
        for task in done:
            task.result()  # a bug, not an outside failure: let the listener's guard report it
        return build_report(target, days, since, until, snapshot)

    def _finished(self, task: asyncio.Future[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a background GitHub read failed: %r", task.exception())

    async def _github(self, d: ServiceData, since: datetime, limit: asyncio.Semaphore, days: int = 0) -> None:
        if self.github is None:
            d.missing.append("GitHub is not configured")
            return
        key = (d.slug.lower(), days)
        cached = self._github_cache.get(key)
        if cached is not None and time.monotonic() < cached[0]:
            _, d.source, d.deliveries, d.lead_times, d.runs = cached
            return
        await self._read_github(d, since, limit)
        if d.deliveries is not None and d.runs is not None and self.cache_seconds > 0:
            if len(self._github_cache) >= GITHUB_CACHE_SIZE:
                self._github_cache.clear()
            self._github_cache[key] = (time.monotonic() + self.cache_seconds, d.source, d.deliveries, d.lead_times, d.runs)

    async def _read_github(self, d: ServiceData, since: datetime, limit: asyncio.Semaphore) -> None:
        github = self.github
        assert github is not None
        try:
            async with limit:
                deployments, runs = await asyncio.gather(github.deployments(d.slug, since), github.workflow_runs(d.slug, since))
            d.runs = runs
            if deployments:
                d.source = DEPLOYMENTS
                deliveries = [Delivery(x.sha, x.finished_at, DEPLOYMENTS) for x in deployments if x.finished_at is not None]
            else:
                d.source = RUNS
                deliveries = deliveries_from_runs(runs)
            d.deliveries = sorted(deliveries, key=lambda x: x.at)
            if not deployments and not deliveries:
                d.deliveries, d.source = None, ""
                d.missing.append("no deployments or successful workflow runs on the default branch (GitHub)")
                return
            d.lead_times = await self._lead_times(d, since, limit)
        except IntegrationError as exc:
            d.missing.append(f"GitHub: {exc.reason}")

    async def _lead_times(self, d: ServiceData, since: datetime, limit: asyncio.Semaphore) -> list[timedelta]:
        github = self.github
        assert github is not None and d.deliveries is not None
        ordered = d.deliveries
        shipped = [(i, x) for i, x in enumerate(ordered) if x.at >= since][-LEAD_TIME_SAMPLE:]

        async def commits_of(position: int, delivery: Delivery) -> list[Commit]:
            async with limit:
                previous = next((p.sha for p in reversed(ordered[:position]) if p.sha and p.sha != delivery.sha), "")
                if previous:
                    return await github.commits_between(d.slug, previous, delivery.sha)
                return [await github.commit(d.slug, delivery.sha)]
        found = await asyncio.gather(*(commits_of(i, x) for i, x in shipped), return_exceptions=True)
        times: list[timedelta] = []
        failures = 0
        for (_, delivery), commits in zip(shipped, found):
            if isinstance(commits, IntegrationError):
                failures += 1
                continue
            if isinstance(commits, BaseException):
                raise commits
            times += [delivery.at - c.committed_at for c in commits if c.committed_at <= delivery.at]
        if failures:
            d.missing.append(f"GitHub: the commits of {failures} deliveries could not be read (lead time)")
        return times

    async def _incidents(self, data: Sequence[ServiceData], since: datetime, until: datetime) -> None:
        wanted = [d for d in data if d.pagerduty_id]
        if not wanted:
            return
        if self.pagerduty is None or not self.pagerduty.can_read:
            for d in wanted:
                d.missing.append("PagerDuty is not configured (PAGERDUTY_API_TOKEN)")
            return
        ids = sorted({d.pagerduty_id for d in wanted})
        batches = [ids[i:i + INCIDENT_IDS_PER_CALL] for i in range(0, len(ids), INCIDENT_IDS_PER_CALL)]
        # a day before the window too: a delivery just before `since` is not counted, but the data is cheap
        results = await asyncio.gather(*(self.pagerduty.incidents_between(b, since, until, timeout=self.budget_seconds)
                                         for b in batches), return_exceptions=True)
        by_service: dict[str, list[IncidentRecord]] = {}
        failed: dict[str, str] = {}
        for batch, result in zip(batches, results):
            if isinstance(result, IntegrationError):
                failed.update({i: result.reason for i in batch})
            elif isinstance(result, BaseException):
                raise result
            else:
                for incident in result:
                    by_service.setdefault(incident.service_id, []).append(incident)
        for d in wanted:
            if d.pagerduty_id in failed:
                d.missing.append(f"PagerDuty: {failed[d.pagerduty_id]}")
            else:
                d.incidents = by_service.get(d.pagerduty_id, [])

    async def org_ci_success(self, days: int = 30) -> tuple[CiRate, dict[str, CiRate], list[str]]:
        """CI success rate over every repository of the catalog's Components: the total, per
        repository, and the repositories that could not be read."""
        index = self._index()
        slugs = sorted({str(e.annotations.get(GITHUB_SLUG) or "").strip() for e in index.entities.values()  # type: ignore[attr-defined]
                        if e.kind == "Component"} - {""})
        since = self.clock() - timedelta(days=days)
        per_repo: dict[str, CiRate] = {}
        missing: list[str] = []
        if self.github is None:
            return CiRate(0, 0, 0), {}, ["GitHub is not configured"]
        limit = asyncio.Semaphore(GITHUB_AT_ONCE)
        github = self.github

        async def read(slug: str) -> None:
            try:
                async with limit:
                    per_repo[slug] = ci_rate(await github.workflow_runs(slug, since))
            except IntegrationError as exc:
                missing.append(f"{slug}: {exc.reason}")
        try:
            async with asyncio.timeout(self.budget_seconds):
                await asyncio.gather(*(read(s) for s in slugs))
        except TimeoutError:
            missing += [f"{s}: GitHub did not answer in time" for s in slugs if s not in per_repo
                        and not any(m.startswith(f"{s}:") for m in missing)]
        return sum(per_repo.values(), CiRate(0, 0, 0)), per_repo, missing
