"""Prometheus metrics of the bot itself, in one `CollectorRegistry` owned by the app (never the
process-wide default, so several servers can run in one process), served at `GET /metrics`.

Domain code records through the module functions (`scaffold_run`, `reaper_pass`,
`listener_finished`, `knowledge_search`), which find the app's `Metrics` in a context variable that the server and
the Bolt middleware set (background jobs inherit it from `start`); with none set they do nothing.
Integrations are observed through the hook in `integrations/errors.py`, so `integrations/`
never imports `bot/`.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from typing import Any, Iterator, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from integrations import errors as integration_errors

FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
SLOW = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SYSTEMS = {"pagerduty": "pagerduty", "kubernetes": "kubernetes", "github": "github", "slack": "slack",
           "backstage": "backstage"}


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, tracing: Any = None) -> None:
        self.registry = registry = CollectorRegistry()
        self.tracing = tracing
        self.slack_requests = Counter("pavedroad_slack_requests", "Slack requests handled, by kind (command, action, "
                                      "view, event, ...), name and listener", ["kind", "name", "listener"], registry=registry)
        self.slack_request_seconds = Histogram("pavedroad_slack_request_seconds", "Time in Bolt (middleware and "
                                               "listener up to its ack), by kind, name and listener",
                                               ["kind", "name", "listener"], buckets=FAST, registry=registry)
        self.ack_seconds = Histogram("pavedroad_slack_ack_seconds", "From a request's arrival (at /slack/events or "
                                     "over Socket Mode) to its acknowledgement, by kind", ["kind"], buckets=FAST,
                                     registry=registry)
        self.listener_seconds = Histogram("pavedroad_listener_seconds", "Time a listener worked after the "
                                          "acknowledgement, by listener and outcome (ok, error)", ["listener", "outcome"],
                                          buckets=SLOW, registry=registry)
        self.integration_calls = Counter("pavedroad_integration_calls", "Calls to outside systems by system and "
                                         "outcome (ok, error, timeout)", ["system", "outcome"], registry=registry)
        self.integration_seconds = Histogram("pavedroad_integration_call_seconds", "Latency of calls to outside "
                                             "systems", ["system", "outcome"], buckets=SLOW, registry=registry)
        self.scaffold_runs = Counter("pavedroad_scaffold_runs", "Finished template runs by outcome", ["outcome"],
                                     registry=registry)
        self.scaffold_step_failures = Counter("pavedroad_scaffold_step_failures", "Failed template steps by action",
                                              ["action"], registry=registry)
        self.environments = Gauge("pavedroad_environments", "Environments by state (read from the database at "
                                  "scrape time)", ["state"], registry=registry)
        self.reaper_actions = Counter("pavedroad_reaper_actions", "Reaper actions (warned, destroyed, drift)",
                                      ["action"], registry=registry)
        self.kb_searches = Counter("pavedroad_knowledge_searches", "Knowledge-base searches by result (hit, miss)",
                                   ["result"], registry=registry)
        self.kb_hits = Counter("pavedroad_knowledge_hits", "Documents returned by knowledge-base searches",
                               registry=registry)
        for outcome in ("done", "failed"):
            self.scaffold_runs.labels(outcome)
        for action in ("warned", "destroyed", "drift"):
            self.reaper_actions.labels(action)

    def activate(self) -> None:
        """Make this app's metrics (and tracing) the ones recorded into in the current context and
        in the tasks it starts from now on."""
        current.set(self)
        integration_errors.call_observer.set(self.observe_call)

    @contextlib.contextmanager
    def observe_call(self, system: str, operation: str = "") -> Iterator[None]:
        """Time one integration call and count its outcome; a child span when tracing."""
        name = SYSTEMS.get(system.lower(), system.lower())
        started = time.perf_counter()
        outcome = "ok"
        try:
            with self.tracing.span(f"{name} {operation}".strip(), system=name) if self.tracing else contextlib.nullcontext():
                yield
        except BaseException as exc:
            # a call cancelled because its answer's time budget ran out counts as a timeout too
            timed_out = isinstance(exc, (TimeoutError, asyncio.CancelledError)) or getattr(exc, "timed_out", False)
            outcome = "timeout" if timed_out else "error"
            raise
        finally:
            self.integration_calls.labels(name, outcome).inc()
            self.integration_seconds.labels(name, outcome).observe(time.perf_counter() - started)

    async def render(self, db: Any = None) -> bytes:
        """The exposition text; environments by state are counted in the database first (one
        GROUP BY on an indexed column)."""
        if db is not None:
            await self._count_environments(db)
        return generate_latest(self.registry)

    async def _count_environments(self, db: Any) -> None:
        from bot.models import Environment

        async with db.session() as session:
            rows = (await session.exec(select(Environment.status, func.count()).group_by(Environment.status))).all()
        self.environments.clear()
        for state, count in rows:
            self.environments.labels(state).set(count)


current: contextvars.ContextVar[Metrics | None] = contextvars.ContextVar("pavedroad_metrics", default=None)


def scaffold_run(state: str, steps: Sequence[Any]) -> None:
    """A template run finished in `state`; its failed steps are counted by action id."""
    if (metrics := current.get()) is not None:
        metrics.scaffold_runs.labels(state).inc()
        for step in steps:
            if getattr(step, "state", "") == "failed":
                metrics.scaffold_step_failures.labels(getattr(step, "action", "") or "unknown").inc()


def reaper_pass(report: Any, dry_run: bool = False) -> None:
    """A reaper pass's actions (a dry run's are only reported, not counted)."""
    if (metrics := current.get()) is not None and not dry_run:
        for action in ("warned", "destroyed", "drift"):
            if count := len(getattr(report, action)):
                metrics.reaper_actions.labels(action).inc(count)


def listener_finished(name: str, seconds: float, outcome: str) -> None:
    """A lazy listener (the work after the acknowledgement) ended."""
    if (metrics := current.get()) is not None:
        metrics.listener_seconds.labels(name, outcome).observe(seconds)


def knowledge_search(hits: list) -> list:
    """Counts a search and what it found; returns the hits."""
    if (metrics := current.get()) is not None:
        metrics.kb_searches.labels("hit" if hits else "miss").inc()
        metrics.kb_hits.inc(len(hits))
    return hits
