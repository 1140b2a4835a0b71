"""The bare Bolt app `ack_latency.py` compares the real server with: an aiohttp server whose only
route is `POST /slack/events` (plus `GET /healthz` to say it listens), into a Bolt `AsyncApp` with
the bot's signing secret and Slack client, whose `/whoowns` only does `await ack()`; served through
`slack_bolt.adapter.aiohttp` (`to_bolt_request` / `to_aiohttp_response`), in a process of its own
as the real server (`python -m bot serve`) is.

Configured by the bot's environment variables (SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN,
SLACK_API_URL, HOST, PORT, LOG_LEVEL); logs in the bot's format; stops on SIGTERM or SIGINT.

    SLACK_SIGNING_SECRET=... SLACK_BOT_TOKEN=... PORT=3000 .venv/bin/python bench/bare_bolt.py
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web  # noqa: E402
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request  # noqa: E402
from slack_bolt.async_app import AsyncAck, AsyncApp  # noqa: E402

from bot.app import slack_client  # noqa: E402
from bot.config import Settings, load_settings  # noqa: E402


def bare_app(settings: Settings) -> web.Application:
    """A Bolt app that only acknowledges /whoowns, behind the route bot/server.py uses."""
    app = AsyncApp(client=slack_client(settings), signing_secret=settings.slack_signing_secret)

    @app.command("/whoowns")
    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    web_app = web.Application()
    web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/healthz", healthz)
    return web_app


def main() -> int:
    settings = load_settings()
    settings.require_slack()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    web.run_app(bare_app(settings), host=settings.host, port=settings.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
