"""Reads GitHub and PagerDuty into the stored delivery events (`bot/metrics/delivery_data.py`).

A repository's first read covers `KEEP_DAYS`; later reads only what changed since the last one
(with `OVERLAP`, for deployments that finish and runs that complete late), so keeping 500
repositories current costs a few calls each, most of them answered `304 Not Modified` from
gidgethub's ETag cache, which GitHub does not count against its rate limit.

Two callers: the collector's pass over the catalog every `PAVEDROAD_DORA_COLLECT_MINUTES`
(`collect`), and `/dora` or `/platform stats` refreshing what they are about to show (`refresh`).
A source is read by one task at a time: a second caller waits for the first's read."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable, Iterable, Sequence

from bot.metrics.delivery_data import GITHUB, KEEP_DAYS, PAGERDUTY, DeliveryData, StoredDelivery
from bot.metrics.dora import DEPLOYMENTS, RUNS, deliveries_from_runs, utc_now
from integrations.errors import IntegrationError
from integrations.github import NotFound, RateLimited
from integrations.github_delivery import Commit, GitHubDelivery
from integrations.pagerduty import PagerDutyClient

log = logging.getLogger(__name__)
OVERLAP = timedelta(days=2)
CHANGES_PER_READ = 30
"""Per read of a repository, the commits of at most this many deliveries (the newest unread) are
read for the lead time; a repository with more fills in over the next reads."""
GITHUB_AT_ONCE = 16
COLLECT_AT_ONCE = 4
"""Repositories the background pass reads at once: it is never in a hurry, answers may be."""
INCIDENT_IDS_PER_CALL = 50
FORGET_EVERY_SECONDS = 3600.0
REFRESH_AT_MOST = GITHUB_AT_ONCE


class DeliverySync:
    def __init__(self, data: DeliveryData, github: GitHubDelivery | None, pagerduty: PagerDutyClient | None,
                 clock: Callable[[], datetime] = utc_now, incident_timeout: float = 10.0) -> None:
        self.data = data
        self.github = github
        self.pagerduty = pagerduty if pagerduty is not None and pagerduty.can_read else None
        self.clock = clock
        self.incident_timeout = incident_timeout
        self.reading: dict[tuple[str, str], asyncio.Task[None]] = {}
        """(system, key) → the read under way; kept until it ends, even when nobody waits for it."""
        self.limit = asyncio.Semaphore(GITHUB_AT_ONCE)
        self._forgotten_at = 0.0

    async def close(self, grace: float = 10.0) -> None:
        """Let the reads under way finish (they write to the database about to close); cancel
        those still running after `grace` seconds."""
        tasks = set(self.reading.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- starting reads -----------------------------------------------------------------------

    def _start(self, system: str, keys: Sequence[str], read: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(read())
        for key in keys:
            self.reading[(system, key)] = task
        task.add_done_callback(lambda done: self._ended(system, keys, done))
        return task

    def _ended(self, system: str, keys: Sequence[str], task: asyncio.Task[None]) -> None:
        for key in keys:
            if self.reading.get((system, key)) is task:
                del self.reading[(system, key)]
        if not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), IntegrationError):
            log.error("reading delivery data failed", exc_info=task.exception())

    def repository(self, slug: str) -> asyncio.Task[None]:
        """The read of this repository under way, or a new one."""
        return self.reading.get((GITHUB, slug)) or self._start(GITHUB, [slug], lambda: self._read_repository(slug))

    def incidents(self, service_ids: Sequence[str]) -> list[asyncio.Task[None]]:
        """Reads covering these PagerDuty services: those under way and new ones, in batches."""
        tasks = {self.reading[(PAGERDUTY, s)] for s in service_ids if (PAGERDUTY, s) in self.reading}
        new = sorted({s for s in service_ids if (PAGERDUTY, s) not in self.reading})
        for start in range(0, len(new), INCIDENT_IDS_PER_CALL):
            batch = new[start:start + INCIDENT_IDS_PER_CALL]
            tasks.add(self._start(PAGERDUTY, batch, lambda batch=batch: self._read_incidents(batch)))
        return list(tasks)

    async def refresh(self, slugs: Sequence[str], service_ids: Sequence[str], fresh_seconds: float,
                      wait_new: float, wait_known: float, first_reads: bool = True) -> None:
        """Read the sources not tried within `fresh_seconds` (so a failing one is not asked again at
        every answer): all those never read, and the `REFRESH_AT_MOST` least recently tried of the
        others (the collector keeps the rest current; refreshing a team of 500 at once would starve
        the answers). Wait up to `wait_new` seconds for those never read and `wait_known` for the
        others; a read not done by then goes on in the background. Without `first_reads`, sources
        never read are left to the collector (an answer about the whole catalog must not start
        hundreds of 92-day reads)."""
        now = self.clock().timestamp()
        due: dict[str, tuple[list[str], list[str]]] = {GITHUB: ([], []), PAGERDUTY: ([], [])}
        for system, keys, enabled in ((GITHUB, slugs, self.github is not None),
                                      (PAGERDUTY, service_ids, self.pagerduty is not None)):
            if enabled and keys:
                states = await self.data.sources(system, keys)
                tried = [k for k in keys if k not in states or now - states[k].tried_at >= fresh_seconds]
                known = sorted((k for k in tried if k in states and states[k].read_at is not None),
                               key=lambda k: states[k].tried_at)
                never = [k for k in tried if k not in states or states[k].read_at is None] if first_reads else []
                due[system] = (never, known[:REFRESH_AT_MOST])
        new = [self.repository(s) for s in due[GITHUB][0]] + self.incidents(due[PAGERDUTY][0])
        known = [self.repository(s) for s in due[GITHUB][1]] + self.incidents(due[PAGERDUTY][1])
        if known:
            await asyncio.wait(known + new, timeout=wait_known)
        pending = [t for t in new if not t.done()]
        remaining = wait_new - (wait_known if known else 0.0)
        if pending and remaining > 0:
            await asyncio.wait(pending, timeout=remaining)

    # -- the background pass ------------------------------------------------------------------

    async def collect(self, slugs: Iterable[str], service_ids: Iterable[str], every_seconds: float,
                      stopping: asyncio.Event | None = None) -> dict[str, int]:
        """Read every source not tried in the last half of `every_seconds` (never-read and least
        recently tried first); stop reading GitHub when it says to slow down, and at `stopping`.
        Returns counts: repositories read, failed, and skipped (rate limit or stop); PagerDuty
        services read and failed."""
        now = self.clock().timestamp()
        counts = dict.fromkeys(("repositories", "failed", "skipped", "services", "services failed"), 0)
        if self.github is not None:
            wanted = sorted({s.lower() for s in slugs})
            states = await self.data.sources(GITHUB, wanted)
            due = sorted((s for s in wanted if s not in states or now - states[s].tried_at >= every_seconds / 2),
                         key=lambda s: states[s].tried_at if s in states else 0.0)
            gate = asyncio.Semaphore(COLLECT_AT_ONCE)
            rate_limited = False

            async def read(slug: str) -> None:
                nonlocal rate_limited
                async with gate:
                    if rate_limited or stopping is not None and stopping.is_set():
                        counts["skipped"] += 1
                        return
                    try:
                        # shielded: others may wait for the same read, and a read cancelled in a
                        # database call can leave its connection unable to close
                        await asyncio.shield(self.repository(slug))
                        counts["repositories"] += 1
                    except RateLimited as exc:
                        if not rate_limited:
                            log.warning("GitHub rate limit reached while collecting delivery data; "
                                        "the rest waits for the next pass (%s)", exc.reason)
                        rate_limited = True
                        counts["skipped"] += 1
                    except IntegrationError:
                        counts["failed"] += 1
            await asyncio.gather(*(read(s) for s in due))
        if self.pagerduty is not None:
            ids = sorted(set(service_ids))
            states = await self.data.sources(PAGERDUTY, ids)
            due_ids = [s for s in ids if s not in states or now - states[s].tried_at >= every_seconds / 2]
            await asyncio.gather(*(asyncio.shield(t) for t in self.incidents(due_ids)), return_exceptions=True)
            after = await self.data.sources(PAGERDUTY, due_ids)
            counts["services"] = sum(s in after and not after[s].error for s in due_ids)
            counts["services failed"] = len(due_ids) - counts["services"]
        return counts

    # -- reading one source -------------------------------------------------------------------

    def _since(self, read_at: float | None) -> datetime:
        keep_from = self.clock() - timedelta(days=KEEP_DAYS)
        if read_at is None:
            return keep_from
        return max(keep_from, datetime.fromtimestamp(read_at, tz=timezone.utc) - OVERLAP)

    async def _read_repository(self, slug: str) -> None:
        github = self.github
        assert github is not None
        now = self.clock()
        state = (await self.data.sources(GITHUB, [slug])).get(slug)
        since = self._since(state.read_at if state else None)
        try:
            async with self.limit:
                deployments, runs = await asyncio.gather(github.deployments(slug, since), github.workflow_runs(slug, since))
            await self.data.put_runs(slug, runs)
            if deployments and state is not None and state.source != DEPLOYMENTS and state.read_at is not None:
                async with self.limit:  # it started deploying: its deployments of the whole kept window count
                    deployments = await github.deployments(slug, self._since(None))
            if deployments or (state is not None and state.source == DEPLOYMENTS):
                source = DEPLOYMENTS
                await self.data.put_deliveries(slug, source, [(f"deployment:{x.id}", x.sha, x.finished_at)
                                                              for x in deployments if x.finished_at is not None])
            else:
                source = RUNS
                await self.data.put_deliveries(slug, source, [(f"commit:{d.sha}", d.sha, d.at) for d in deliveries_from_runs(runs)])
            stored = await self.data.deliveries(slug, source)
            if source == RUNS and not stored:
                source = ""
            await self._read_changes(slug, stored)
        except Exception as exc:
            await self.data.failed(GITHUB, [slug], now.timestamp(), _reason(exc))
            raise
        await self.data.read(GITHUB, [slug], now.timestamp(), source)
        await self._forget_old()

    async def _read_changes(self, slug: str, stored: list[StoredDelivery]) -> None:
        """The commits of the newest deliveries not read yet: those since the previous delivery of
        another commit, or (for the first one stored) its own commit."""
        github = self.github
        assert github is not None
        unread = [(i, d) for i, d in enumerate(stored) if not d.changes_read][-CHANGES_PER_READ:]

        async def commits_of(position: int, delivery: StoredDelivery) -> list[Commit]:
            previous = next((p.sha for p in reversed(stored[:position]) if p.sha and p.sha != delivery.sha), "")
            async with self.limit:
                try:
                    if previous:
                        return await github.commits_between(slug, previous, delivery.sha)
                    return [await github.commit(slug, delivery.sha)]
                except NotFound:  # a force-push removed them (404, or 422 for a commit): nothing to measure
                    return []
        found = await asyncio.gather(*(commits_of(i, d) for i, d in unread), return_exceptions=True)
        await self.data.put_changes(slug, {d: commits for (_, d), commits in zip(unread, found)
                                           if not isinstance(commits, BaseException)})
        failures = [result for result in found if isinstance(result, BaseException)]
        for failure in failures:
            if isinstance(failure, RateLimited) or not isinstance(failure, IntegrationError):
                raise failure
        if failures:  # those deliveries stay unread and are tried again at the next read
            log.info("%s: the commits of %d deliveries could not be read (%s)", slug, len(failures),
                     _reason(failures[0]))

    async def _read_incidents(self, service_ids: list[str]) -> None:
        pagerduty = self.pagerduty
        assert pagerduty is not None
        now = self.clock()
        states = await self.data.sources(PAGERDUTY, service_ids)
        read = [states[s].read_at for s in service_ids if s in states]
        since = self._since(min(read) if len(read) == len(service_ids) and None not in read else None)  # type: ignore[type-var]
        if (open_since := await self.data.oldest_open_incident(service_ids)) is not None:
            since = max(min(since, datetime.fromtimestamp(open_since, tz=timezone.utc)), self._since(None))
        try:
            incidents = await pagerduty.incidents_between(service_ids, since, now, timeout=self.incident_timeout)
            await self.data.put_incidents(incidents)
        except Exception as exc:
            await self.data.failed(PAGERDUTY, service_ids, now.timestamp(), _reason(exc))
            raise
        await self.data.read(PAGERDUTY, service_ids, now.timestamp())
        await self._forget_old()

    async def _forget_old(self) -> None:
        """Drop events older than `KEEP_DAYS`, at most once an hour (whether or not the collector runs)."""
        now = self.clock().timestamp()
        if now - self._forgotten_at >= FORGET_EVERY_SECONDS:
            self._forgotten_at = now
            await self.data.forget_before(now - KEEP_DAYS * 86400)


def _reason(exc: BaseException) -> str:
    """What a failed read stores and shows: an outside system's reason, or what kind of bug it was."""
    return exc.reason if isinstance(exc, IntegrationError) else f"internal error ({exc.__class__.__name__}); see the log"
