"""The aiohttp server: `POST /slack/events` into Bolt, health endpoints and background jobs."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

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
