"""The aiohttp server: `POST /slack/events` into Bolt, health endpoints and background jobs."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Awaitable, Callable

from dataclasses import dataclass

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.app import build_app, create_services, slack_client
from bot.config import Settings
from bot.services import Services

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1_000_000


def build_web_app(app: AsyncApp, services: Services) -> web.Application:
    web_app = web.Application(client_max_size=MAX_BODY_BYTES)

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        database = await services.db.ping()
        catalog = services.catalog.loaded
        status = 200 if database and catalog else 503
        return web.json_response({"database": database, "catalog": catalog,
                                  "entities": len(services.catalog.index.entities)}, status=status)

    web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.cleanup_ctx.append(_background_jobs(services))
    return web_app


def _background_jobs(services: Services):
    async def jobs(_: web.Application):
        tasks = [asyncio.create_task(_every(services.settings.catalog_refresh_seconds, services.catalog.refresh, "catalog refresh")),
                 asyncio.create_task(_every(600, services.deliveries.forget_old, "delivery log cleanup"))]
        if services.kubernetes is not None:
            tasks.append(asyncio.create_task(_every(services.settings.reaper_interval_seconds, services.reaper.run, "reaper")))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return jobs


async def _every(seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
    if seconds <= 0:
        return
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:
            log.exception("%s failed; trying again in %ss", name, seconds)


@dataclass
class RunningServer:
    url: str
    app: AsyncApp
    services: Services
    runner: web.AppRunner
    jobs: list[asyncio.Task]
    socket_mode: Any = None

    async def stop(self) -> None:
        for job in self.jobs:
            job.cancel()
        if self.socket_mode is not None:
            await self.socket_mode.close_async()
        await self.runner.cleanup()
        await self.services.close()


async def start(settings: Settings, port: int | None = None) -> RunningServer:
    """Migrate, serve the recorded catalog, listen, then refresh the catalog in the background
    (`/readyz` says when it is loaded) and connect Socket Mode when an app token is set."""
    client = slack_client(settings)
    services = create_services(settings, client)
    await services.prepare()
    app = build_app(settings, services, client)
    runner = web.AppRunner(build_web_app(app, services), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port if port is None else port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server = RunningServer(f"http://{settings.host}:{bound}", app, services, runner,
                           [asyncio.create_task(services.catalog.refresh())])
    if settings.slack_app_token:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        server.socket_mode = AsyncSocketModeHandler(app, settings.slack_app_token)
        await server.socket_mode.connect_async()
        log.info("connected to Slack in Socket Mode")
    log.info("listening on %s (POST /slack/events, GET /healthz, GET /readyz)", server.url)
    return server
