"""The bot under test: the real aiohttp server, configured only through its settings, with its
Slack, PagerDuty and Kubernetes clients pointed at the local fakes."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bot.config import load_settings
from bot.server import RunningServer, start
from tests.conftest import DEMO_CATALOG
from tests.fakes.kubernetes import KubernetesFake
from tests.fakes.pagerduty import DEFAULT_API_TOKEN, PagerDutyFake
from tests.fakes.slack import DEFAULT_BOT_TOKEN, SlackFake
from tests.fakes.slack_requests import block_actions_body, sign, slash_command_body
from tests.fakes.tls import ca_bundle_path

SIGNING_SECRET = "test-signing-secret"


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "test", "user": {"token": "test-token"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    return path


@dataclass
class Bot:
    server: RunningServer
    http: aiohttp.ClientSession
    slack: SlackFake
    pagerduty: PagerDutyFake | None
    kubernetes: KubernetesFake | None

    @property
    def url(self) -> str:
        return self.server.url

    async def post(self, body: bytes, headers: dict[str, str] | None = None, *, secret: str = SIGNING_SECRET,
                   timestamp: int | None = None) -> tuple[int, str]:
        signed = {**sign(body, secret, timestamp), **(headers or {})}
        async with self.http.post(f"{self.url}/slack/events", data=body, headers=signed) as response:
            return response.status, await response.text()

    async def command(self, command: str, text: str, user: str = "U0ADA0001", **extra: Any) -> tuple[int, str, str]:
        """Send a slash command; returns status, body and the response URL the answer goes to."""
        response_url = self.slack.response_url()
        status, body = await self.post(slash_command_body(command, text, user_id=user, response_url=response_url, **extra))
        return status, body, response_url

    async def click(self, action_id: str, value: str, user: str = "U0ADA0001") -> str:
        response_url = self.slack.response_url()
        status, _ = await self.post(block_actions_body(action_id, value, user_id=user, response_url=response_url,
                                                       block_id="whoowns_actions"))
        assert status == 200
        return response_url

    async def replies(self, response_url: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The first `count` payloads posted to a response URL, waiting for them."""
        deadline = time.monotonic() + timeout
        while len(payloads := self.slack.response_urls[response_url].payloads) < count:
            assert time.monotonic() < deadline, f"expected {count} repl(ies) at {response_url}, got {payloads}"
            await asyncio.sleep(0.01)
        return list(payloads)

    async def reply(self, response_url: str, timeout: float = 5.0) -> dict[str, Any]:
        return (await self.replies(response_url, 1, timeout))[0]


async def start_bot(tmp_path: Path, slack: SlackFake, pagerduty: PagerDutyFake | None = None,
                    kubernetes: KubernetesFake | None = None, database_url: str = "", **env: str) -> Bot:
    settings = load_settings({
        "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.url,
        "DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'bot.db'}", "PAVEDROAD_CATALOG": str(DEMO_CATALOG),
        "PAVEDROAD_DATA_DIR": str(tmp_path / "data"), "HOST": "127.0.0.1", "PAVEDROAD_CATALOG_REFRESH_SECONDS": "0",
        "PAVEDROAD_DORA_COLLECT_MINUTES": "0",
        **({"PAGERDUTY_API_TOKEN": DEFAULT_API_TOKEN, "PAGERDUTY_API_URL": pagerduty.rest_url,
            "PAGERDUTY_EVENTS_URL": pagerduty.events_url, "SSL_CERT_FILE": ca_bundle_path()} if pagerduty else {}),
        **({"KUBECONFIG": str(write_kubeconfig(tmp_path / "kubeconfig", kubernetes.url))} if kubernetes else {}),
        **env,
    })
    server = await start(settings, port=0)
    bot = Bot(server, aiohttp.ClientSession(), slack, pagerduty, kubernetes)
    deadline = time.monotonic() + 20
    while not server.services.catalog.loaded:
        assert time.monotonic() < deadline, "catalog did not load"
        await asyncio.sleep(0.02)
    return bot


async def stop_bot(bot: Bot) -> None:
    await bot.http.close()
    await bot.server.stop()
