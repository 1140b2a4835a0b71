"""The aiohttp server: `POST /slack/events` into Bolt, health endpoints and background jobs."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from bot.app import build_app, create_services, slack_client
from bot.config import ConfigError, Settings
from bot.observability.metrics import Metrics
from bot.observability.slack import ObservedSocketModeHandler, slack_request
from bot.observability.tracing import Tracing
from bot.services import Services
from commands.office_hours import post_digest_if_due
from commands.platform import post_survey_if_due

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1_000_000
DOCS_PASS_SECONDS = 30  # how soon the docs follow a catalog change; with none, a pass only compares entries


def build_web_app(app: AsyncApp, services: Services, metrics: Metrics | None = None) -> web.Application:
    web_app = web.Application(client_max_size=MAX_BODY_BYTES)
    metrics = metrics or Metrics()
    secret = services.settings.slack_signing_secret
    verifier = SignatureVerifier(secret) if secret else None

    async def slack_events(request: web.Request) -> web.Response:
        async with slack_request(metrics) as info:
            response, info.dispatched = await _slack_events(request)
        return response

    async def _slack_events(request: web.Request) -> tuple[web.Response, float | None]:
        """The signature is checked before the body is parsed, so junk gets 400 or 401, never a 500."""
        try:
            body = (await request.read()).decode("utf-8")  # Slack always sends UTF-8
        except UnicodeDecodeError:
            return web.Response(status=400, text="body is not UTF-8"), None
        if verifier is None or not verifier.is_valid_request(body, dict(request.headers)):
            return web.Response(status=401, text="invalid request"), None
        try:
            bolt_request = AsyncBoltRequest(body=body, query=request.query_string, headers=dict(request.headers))
        except ValueError:
            return web.Response(status=400, text="unreadable body"), None
        started = time.perf_counter()
        bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response), time.perf_counter() - started

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        database = await services.db.ping()
        catalog = services.catalog.loaded
        status = 200 if database and catalog else 503
        return web.json_response({"database": database, "catalog": catalog,
                                  "entities": len(services.catalog.index.entities)}, status=status)

    async def prometheus(_: web.Request) -> web.Response:
        body = await metrics.render(services.db)
        return web.Response(body=body, headers={"Content-Type": metrics.content_type})

    if verifier is not None:  # in Socket Mode without a signing secret, Slack never posts here
        web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", prometheus)
    return web_app


async def _wait(event: asyncio.Event, seconds: float) -> bool:
    """Wait for the event at most `seconds`; whether it is set."""
    try:
        await asyncio.wait_for(event.wait(), seconds)
        return True
    except TimeoutError:
        return False


class Jobs:
    """Background jobs that are never cancelled half-way: a cancelled database call can leave its
    connection unable to close, so on stop each job finishes the run it is in, then returns.
    An interruptible job (the docs pass, which can take hours at catalog scale) is cancelled at
    once instead; it must see its database calls through to the end itself."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.interruptible: list[asyncio.Task] = []

    def every(self, seconds: float, job: Callable[[], Awaitable[object]], name: str, *, at_once: bool = False,
              interruptible: bool = False) -> None:
        if seconds > 0 and not self.stopping.is_set():
            task = asyncio.create_task(self._every(seconds, job, name, at_once))
            self.tasks.append(task)
            if interruptible:
                self.interruptible.append(task)

    def until_done(self, job: Callable[[], Awaitable[object]], name: str, then: Callable[[], object] = lambda: None) -> None:
        """Retry with back-off until the job succeeds once (the first catalog load, for `/readyz`),
        then call `then` (which may start the jobs that need it done)."""
        self.tasks.append(asyncio.create_task(self._until_done(job, name, then)))

    async def _pause(self, seconds: float) -> bool:
        """Wait, or return True at once when stopping."""
        return await _wait(self.stopping, seconds)

    async def _every(self, seconds: float, job: Callable[[], Awaitable[object]], name: str, at_once: bool) -> None:
        if not at_once and await self._pause(seconds):
            return
        while True:
            try:
                await job()
            except Exception:
                log.exception("%s failed; trying again in %ss", name, seconds)
            if await self._pause(seconds):
                return

    async def _until_done(self, job: Callable[[], Awaitable[object]], name: str, then: Callable[[], object]) -> None:
        delay = 1.0
        while not self.stopping.is_set():
            try:
                await job()
            except Exception:
                log.exception("%s failed; trying again in %.0fs", name, delay)
            else:
                then()
                return
            if await self._pause(delay):
                return
            delay = min(delay * 2, 60.0)

    async def stop(self, grace: float = 30.0) -> None:
        self.stopping.set()
        for task in self.interruptible:
            task.cancel()
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=grace)
            for task in late:  # a job stuck past the grace period is cancelled after all
                task.cancel()


COLLECTOR_LEASE = "delivery data collector"
COLLECTOR_HOLDER = uuid.uuid4().hex


async def collect_delivery_data(services: Services, every_seconds: float, stopping: asyncio.Event) -> None:
    """One replica at a time reads GitHub and PagerDuty for `/dora` and CI figures; the lease is
    renewed while a long pass (a first one, or one slowed by rate limits) goes on."""
    if not await services.leases.acquire(COLLECTOR_LEASE, COLLECTOR_HOLDER, every_seconds):
        return
    finished = asyncio.Event()

    async def keep_lease() -> None:
        while not await _wait(finished, every_seconds / 3):
            await services.leases.acquire(COLLECTOR_LEASE, COLLECTOR_HOLDER, every_seconds)
    renewing = asyncio.create_task(keep_lease())
    started = time.monotonic()
    try:
        counts = await services.dora.collect(every_seconds, stopping)
        log.info("delivery data collected in %.1fs: %s", time.monotonic() - started, counts)
    finally:
        finished.set()
        await renewing


@dataclass
class RunningServer:
    url: str
    app: AsyncApp
    services: Services
    runner: web.AppRunner
    jobs: Jobs
    socket_mode: Any = None
    metrics: Metrics | None = None

    async def stop(self) -> None:
        await self.jobs.stop()
        if self.socket_mode is not None:
            await self.socket_mode.close_async()
        await self.runner.cleanup()
        await self.services.close()
        if self.metrics is not None and self.metrics.tracing is not None:
            await asyncio.to_thread(self.metrics.tracing.shutdown)  # sends the spans still queued


async def start(settings: Settings, port: int | None = None) -> RunningServer:
    """Migrate, serve the recorded catalog, listen, then refresh the catalog in the background
    (`/readyz` says when it is loaded), keep the docs in step with it in a job of their own, and
    connect Socket Mode when an app token is set."""
    metrics = Metrics(Tracing.from_settings(settings))
    metrics.activate()  # the jobs started below record into this app's metrics
    client = slack_client(settings)
    services = create_services(settings, client)
    await services.prepare()
    app = build_app(settings, services, client, metrics=metrics)
    runner = web.AppRunner(build_web_app(app, services, metrics), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port if port is None else port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    jobs = Jobs()
    collect_seconds = settings.dora_collect_minutes * 60 if settings.github_token or settings.pagerduty_api_token else 0

    def after_first_load() -> None:
        jobs.every(DOCS_PASS_SECONDS, services.knowledge.reindex, "docs reading", at_once=True, interruptible=True)
        jobs.every(collect_seconds, lambda: collect_delivery_data(services, collect_seconds, jobs.stopping), "delivery data collector",
                   at_once=True)
    jobs.until_done(services.catalog.refresh, "first catalog load", then=after_first_load)
    jobs.every(settings.catalog_refresh_seconds, services.catalog.refresh, "catalog refresh")
    jobs.every(600, services.deliveries.forget_old, "delivery log cleanup")
    jobs.until_done(services.scaffolder.resume_unfinished, "resuming unfinished template runs")
    jobs.every(60, lambda: post_digest_if_due(client, services), "office-hours digest")
    jobs.every(3600, lambda: post_survey_if_due(client, services), "NPS survey")
    if services.environments.provisioned:
        jobs.every(settings.reaper_interval_seconds, services.reaper.run, "reaper")
    server = RunningServer(f"http://{settings.host}:{bound}", app, services, runner, jobs, metrics=metrics)
    if settings.slack_app_token:
        try:  # the client would retry a refused token for ever; refuse to start instead
            await client.apps_connections_open(app_token=settings.slack_app_token)
        except SlackApiError as exc:
            await server.stop()
            raise ConfigError(f"SLACK_APP_TOKEN was refused by Slack ({exc.response.get('error')})") from None
        server.socket_mode = ObservedSocketModeHandler(app, settings.slack_app_token, metrics=metrics)
        await server.socket_mode.connect_async()
        log.info("connected to Slack in Socket Mode")
    log.info("listening on %s (POST /slack/events, GET /healthz, GET /readyz, GET /metrics)", server.url)
    return server
