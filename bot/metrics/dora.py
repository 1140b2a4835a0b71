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
data. Pure functions only: `bot/metrics/dora_reports.py` gathers the stored data they compute from.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence

from bot.catalog.entity import Entity
from integrations.github_delivery import WorkflowRun
from integrations.pagerduty import IncidentRecord

GITHUB_SLUG = "github.com/project-slug"
PAGERDUTY_SERVICE = "pagerduty.com/service-id"
WINDOWS = (30, 90)
FAILURE_WINDOW = timedelta(hours=24)
SUCCESS = frozenset({"success"})
FAILURE = frozenset({"failure", "timed_out", "startup_failure"})
"""Workflow run conclusions counted as failed runs; `cancelled`, `skipped`, `neutral`... are left out."""
ELITE, HIGH, MEDIUM, LOW = "elite", "high", "medium", "low"
DEPLOYMENTS, RUNS = "deployments", "workflow runs"


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


def ci_tally(counts: Iterable[tuple[str, str, int]]) -> CiRate:
    """The rate from (status, conclusion, how many runs) rows."""
    success = failure = excluded = 0
    for status, conclusion, number in counts:
        if conclusion in SUCCESS:
            success += number
        elif conclusion in FAILURE:
            failure += number
        elif status == "completed":
            excluded += number
    return CiRate(success, failure, excluded)


def weekly_counts(moments: Iterable[datetime], since: datetime, until: datetime) -> list[tuple[datetime, float]]:
    """Counts per 7-day bucket from `since` (each point at its bucket's start)."""
    weeks = max(1, -(-(until - since) // timedelta(days=7)))
    counts = [0] * weeks
    for moment in moments:
        if since <= moment < until:
            counts[min((moment - since) // timedelta(days=7), weeks - 1)] += 1
    return [(since + timedelta(days=7 * i), float(c)) for i, c in enumerate(counts)]


# -- pooling a target's data into a report ------------------------------------------------


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
    ci: CiRate | None = None
    """Its workflow runs on the default branch in the window."""
    incidents: list[IncidentRecord] | None = None
    missing: list[str] = field(default_factory=list)
    shares: str = ""
    """The Component whose data stands for this repository's, when several Components name one repository."""
    read_at: datetime | None = None
    """When its GitHub data was last read."""


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
    as_of: datetime | None = None
    """The oldest last read of the GitHub data used (None: none was used)."""

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

    ci_by_repo = {d.slug: d.ci for d in data if d.ci is not None}
    ci = sum(ci_by_repo.values(), CiRate(0, 0, 0))
    delivered = [x.at for v in in_window.values() for x in v]
    failed_at = [x.at for d in with_incidents for x, bad in zip(sorted(in_window[d.name], key=lambda x: x.at),
                                                                  failed_deliveries(in_window[d.name], d.incidents or []))
                 if bad]
    opened = [i.created_at for d in incident_data for i in d.incidents or []]
    weekly = {"deployments": weekly_counts(delivered, since, until) if known else [],
              "failed deployments": weekly_counts(failed_at, since, until) if with_incidents else [],
              "incidents": weekly_counts(opened, since, until) if incident_data else []}
    as_of = min((d.read_at for d in data if d.read_at is not None), default=None)
    return Report(target, days, since, until, frequency, lead, cfr, ttr, ci, ci_by_repo, sources, missing, weekly, as_of)


def _first_reason(data: Sequence[ServiceData], system: str, default: str) -> str:
    reasons = [m for d in data for m in d.missing if system in m]
    if not reasons:
        return default
    return reasons[0] if len(data) == 1 else f"{reasons[0]} (and {len(reasons) - 1} more)" if len(reasons) > 1 else reasons[0]


