"""The platform's own figures over a time window, computed from what the bot stores: services
created through golden paths (scaffolder runs) and how long that took; environments created,
active and expired; office-hours questions and how many the bot answered; catalog coverage;
developer NPS from `/platform feedback` answers. Plus weekly trend series for a chart.

Every figure is `None` when there is no record of its kind in the window, so the surface says
"no data" rather than showing a zero that reads like a measurement. No Slack here.

Definitions (also in docs/platform-metrics.md):
- *services created*: scaffolder runs that finished `done` in the window; *time to create* is
  `finished_at - submitted_at` of those runs; p90 is the nearest-rank percentile.
- *environments created*: `created_at` in the window; *active*: alive at the end of the window
  (created before it, not ended by then, never denied or failed); *expired*: destroyed in the
  window after living to their expiry (`ended_at >= expires_at`: the reaper's work, not a person's).
- *office hours*: questions asked in the window; *self-served*: those the bot's answer closed.
- *catalog coverage* (as of now, not windowed): the share of Components whose `spec.owner`
  resolves to a Group or User in the catalog.
- *NPS*: each person's latest answer in the window; %promoters (9–10) − %detractors (0–6),
  from −100 to +100.
- *adoption*: distinct Slack users who used a command, button or form on the days of the
  window (usage is kept per UTC day), how many uses, and the most used actions.
"""
from __future__ import annotations

import math
import re
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterable, Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError

from bot.catalog.index import CatalogIndex
from bot.db import Database
from bot.models import AuditEntry, Environment, FeedbackResponse, Question, ScaffolderRun
from bot.usage import Adoption, Usage

DAY = 86400.0
WEEK = 7 * DAY
DEFAULT_WINDOW_DAYS = 30
MAX_WINDOW_DAYS = 366
NEVER_ACTIVE = ("denied", "failed")
SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


class BadWindow(ValueError):
    """A window the user typed that is not `7d`, `30d`, `90d`, `12w`..."""


def parse_window(text: str, default: int = DEFAULT_WINDOW_DAYS) -> int:
    """`30d` → 30, `12w` → 84, `` → the default; at most a year."""
    raw = (text or "").strip().lower()
    if not raw:
        return default
    match = re.fullmatch(r"(\d{1,3})\s*([dw])", raw)
    if not match or int(match.group(1)) == 0:
        raise BadWindow(f"`{raw[:20]}` is not a window: use days or weeks like `7d`, `30d`, `90d` or `12w`.")
    days = int(match.group(1)) * (7 if match.group(2) == "w" else 1)
    if days > MAX_WINDOW_DAYS:
        raise BadWindow(f"A window can be at most {MAX_WINDOW_DAYS} days.")
    return days


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (`share` in 0..1): the smallest value with at least that share of
    the values at or below it. None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Window:
    days: int
    start: float
    end: float

    @classmethod
    def ending(cls, end: float, days: int) -> "Window":
        return cls(days, end - days * DAY, end)

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, (int, float)) and self.start <= moment < self.end

    @property
    def label(self) -> str:
        return f"last {self.days} days"


@dataclass(frozen=True)
class GoldenPath:
    created: int | None              # None: no run submitted or finished in the window
    failed: int | None
    median_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True)
class Environments:
    created: int | None              # None: no environment lived in the window
    active: int | None
    expired: int | None


@dataclass(frozen=True)
class OfficeHoursFigures:
    questions: int | None            # None: no question in the window
    self_served: int | None

    @property
    def self_served_rate(self) -> float | None:
        return self.self_served / self.questions if self.questions and self.self_served is not None else None


@dataclass(frozen=True)
class Coverage:
    components: int
    with_resolvable_owner: int

    @property
    def share(self) -> float | None:
        return self.with_resolvable_owner / self.components if self.components else None


@dataclass(frozen=True)
class Nps:
    responses: int
    promoters: int
    passives: int
    detractors: int

    @property
    def score(self) -> float | None:
        """%promoters − %detractors; None with no responses."""
        if not self.responses:
            return None
        return 100.0 * (self.promoters - self.detractors) / self.responses


def nps(scores: Iterable[int]) -> Nps:
    values = list(scores)
    if any(not 0 <= s <= 10 for s in values):
        raise ValueError("NPS scores are 0 to 10")
    promoters = sum(s >= 9 for s in values)
    detractors = sum(s <= 6 for s in values)
    return Nps(len(values), promoters, len(values) - promoters - detractors, detractors)


Series = dict[str, list[tuple[datetime, float]]]


@dataclass(frozen=True)
class PlatformFigures:
    window: Window
    golden_path: GoldenPath
    environments: Environments
    office_hours: OfficeHoursFigures
    coverage: Coverage
    nps: Nps
    adoption: Adoption | None = None
    """None: nobody used the bot in the window."""
    trends: Series = field(default_factory=dict)


def weekly_buckets(window: Window) -> list[float]:
    """Starts of the weeks counted back from the window's end (the first one may be partial)."""
    starts, edge = [], window.end
    while edge > window.start:
        starts.append(max(window.start, edge - WEEK))
        edge -= WEEK
    return starts[::-1]


def weekly_counts(moments: Iterable[float], window: Window) -> list[tuple[datetime, float]]:
    """How many moments fall in each week of the window, as (week start, count)."""
    starts = weekly_buckets(window)
    counts = [0] * len(starts)
    for moment in moments:
        if moment in window:
            # weeks are counted back from the end, so the bucket is found from the end too
            back = int((window.end - moment) // WEEK)
            counts[len(starts) - 1 - back] += 1
    return [(datetime.fromtimestamp(s, tz=timezone.utc), float(c)) for s, c in zip(starts, counts)]


class Feedback:
    """Developer NPS answers: stored once per response key (a modal's view id)."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def record(self, user_id: str, score: int, comment: str = "", *, key: str, source: str = "command") -> bool:
        """Store an answer; False when this response key was stored already (a double submit)."""
        if not 0 <= int(score) <= 10:
            raise ValueError("a score is 0 to 10")
        row = FeedbackResponse(response_key=key[:200], user_id=user_id, score=int(score), comment=comment.strip()[:3000],
                               source=source, submitted_at=self.clock())
        try:
            async with self.db.session() as session:
                session.add(row)
                await session.commit()
            return True
        except IntegrityError:
            return False

    async def responses(self, start: float, end: float) -> list[FeedbackResponse]:
        async with self.db.session() as session:
            query = (select(FeedbackResponse).where(FeedbackResponse.submitted_at >= start, FeedbackResponse.submitted_at < end)
                     .order_by(FeedbackResponse.submitted_at))
            return list((await session.exec(query)).scalars().all())

    async def comments(self, days: int, limit: int = 20, until: float | None = None) -> list[FeedbackResponse]:
        """The latest answers with a comment in the window, newest first (for the platform team)."""
        end = self.clock() if until is None else until
        rows = [r for r in await self.responses(end - days * DAY, end) if r.comment]
        return rows[::-1][:limit]


def latest_per_person(rows: Iterable[FeedbackResponse]) -> list[FeedbackResponse]:
    latest: dict[str, FeedbackResponse] = {}
    for row in rows:
        if row.user_id not in latest or row.submitted_at >= latest[row.user_id].submitted_at:
            latest[row.user_id] = row
    return list(latest.values())


def catalog_coverage(index: CatalogIndex) -> Coverage:
    components = index.keys_of_kind("Component")
    resolvable = 0
    for key in components:
        owner = index.entities.get(index.owner_of(key))
        resolvable += owner is not None and owner.kind in ("Group", "User")
    return Coverage(len(components), resolvable)


class PlatformMetrics:
    def __init__(self, db: Database, catalog_index: Callable[[], CatalogIndex],
                 clock: Callable[[], float] = time.time, usage: Usage | None = None) -> None:
        self.db = db
        self.catalog_index = catalog_index
        self.clock = clock
        self.feedback = Feedback(db, clock)
        self.usage = usage or Usage(db)

    async def figures(self, days: int = DEFAULT_WINDOW_DAYS, until: float | None = None) -> PlatformFigures:
        window = Window.ending(self.clock() if until is None else until, days)
        golden, service_moments = await self._golden_path(window)
        environments, env_moments = await self._environments(window)
        office, question_moments = await self._office_hours(window)
        answers = latest_per_person(await self.feedback.responses(window.start, window.end))
        adoption: Adoption | None = await self.usage.adoption(window.start, window.end)
        if adoption is not None and not adoption.people:
            adoption = None
        starts = weekly_buckets(window)
        trends: Series = {
            "people using the bot": [(datetime.fromtimestamp(s, tz=timezone.utc), float(n)) for s, n in zip(
                starts, await self.usage.people_per_week(starts, window.end))] if adoption else [],
            "services created": weekly_counts(service_moments, window) if golden.created is not None else [],
            "environments created": weekly_counts(env_moments, window) if environments.created is not None else [],
            "office-hours questions": weekly_counts(question_moments, window) if office.questions is not None else [],
        }
        return PlatformFigures(window, golden, environments, office, catalog_coverage(self.catalog_index()),
                               nps(r.score for r in answers), adoption, trends)

    async def _golden_path(self, window: Window) -> tuple[GoldenPath, list[float]]:
        query = select(ScaffolderRun.state, ScaffolderRun.submitted_at, ScaffolderRun.finished_at).where(or_(
            and_(ScaffolderRun.submitted_at >= window.start, ScaffolderRun.submitted_at < window.end),
            and_(ScaffolderRun.finished_at >= window.start, ScaffolderRun.finished_at < window.end)))
        async with self.db.session() as session:
            rows = (await session.exec(query)).all()
        if not rows:
            return GoldenPath(None, None, None, None), []
        done = [(submitted, finished) for state, submitted, finished in rows if state == "done" and finished in window]
        failed = sum(state == "failed" and finished in window for state, _, finished in rows)
        durations = [max(0.0, finished - submitted) for submitted, finished in done]
        return (GoldenPath(len(done), failed, statistics.median(durations) if durations else None,
                           percentile(durations, 0.9)), [finished for _, finished in done])

    async def _environments(self, window: Window) -> tuple[Environments, list[float]]:
        query = select(Environment.status, Environment.created_at, Environment.expires_at, Environment.ended_at).where(
            Environment.created_at < window.end, or_(Environment.ended_at.is_(None), Environment.ended_at >= window.start))
        async with self.db.session() as session:
            rows = (await session.exec(query)).all()
        if not rows:
            return Environments(None, None, None), []
        created = [created_at for _, created_at, _, _ in rows if created_at in window]
        active = sum(status not in NEVER_ACTIVE and (ended_at is None or ended_at >= window.end)
                     for status, _, _, ended_at in rows)
        expired = sum(status == "destroyed" and ended_at in window and ended_at >= expires_at
                      for status, _, expires_at, ended_at in rows)
        return Environments(len(created), active, expired), created

    async def _office_hours(self, window: Window) -> tuple[OfficeHoursFigures, list[float]]:
        query = select(Question.status, Question.asked_at).where(Question.asked_at >= window.start,
                                                                 Question.asked_at < window.end)
        async with self.db.session() as session:
            rows = (await session.exec(query)).all()
        if not rows:
            return OfficeHoursFigures(None, None), []
        return (OfficeHoursFigures(len(rows), sum(status == "self_served" for status, _ in rows)),
                [asked_at for _, asked_at in rows])


async def active_users(db: Database, start: float, end: float) -> list[str]:
    """Slack users who used the bot in [start, end): anyone who used a command, button or form
    (the usage record, whole UTC days), the audit log's actors, golden-path and environment
    requesters, office-hours askers and people who gave feedback. The reaper and other non-users
    are left out."""
    queries = [
        select(AuditEntry.actor).where(AuditEntry.at >= start, AuditEntry.at < end),
        select(ScaffolderRun.requester).where(ScaffolderRun.submitted_at >= start, ScaffolderRun.submitted_at < end),
        select(Environment.requester).where(Environment.created_at >= start, Environment.created_at < end),
        select(Question.user).where(Question.asked_at >= start, Question.asked_at < end),
        select(FeedbackResponse.user_id).where(FeedbackResponse.submitted_at >= start, FeedbackResponse.submitted_at < end),
    ]
    found = await Usage(db).people(start, end)
    async with db.session() as session:
        for query in queries:
            found.update(str(v) for v in (await session.exec(query.distinct())).scalars().all())
    return sorted(u for u in found if SLACK_USER.fullmatch(u))
