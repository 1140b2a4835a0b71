"""The wiring: the Bolt `AsyncApp` with its middleware and every capability's listeners.

Production (HTTP or Socket Mode), the tests and the shell all get their app from
`build_app`, so there is one path through the bot.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.config import Settings
from bot.deliveries import delivery_key
from bot.observability.metrics import Metrics
from bot.observability.slack import ObservedWebClient, describe, request_middleware
from bot.services import Services, build_services
from commands import CAPABILITIES
from commands.env import SlackNotifier

log = logging.getLogger(__name__)
USED = ("command", "action", "view", "shortcut")
"""The kinds of Slack request that count as someone using the bot (with `app_mention` events)."""


def slack_client(settings: Settings, base_url: str | None = None, token: str | None = None) -> AsyncWebClient:
    # No ssl= here: Bolt deep-copies the client for lazy listeners and an SSLContext cannot be
    # copied; aiohttp's default context already trusts the bundle named by SSL_CERT_FILE.
    client = ObservedWebClient(token=token or settings.slack_bot_token or None, base_url=base_url or settings.slack_api_url, timeout=10)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    return client


def profile_lookups(client: AsyncWebClient) -> tuple[Callable[[str], Awaitable[str | None]], Callable[[str], Awaitable[str | None]]]:
    """Slack user id → profile e-mail, and e-mail → Slack user id; None when Slack cannot say."""
    async def email_of(user_id: str) -> str | None:
        try:
            response = await client.users_info(user=user_id)
        except (SlackApiError, OSError, TimeoutError) as exc:
            log.warning("users.info failed for %s: %s", user_id, exc.__class__.__name__)
            return None
        return ((response.get("user") or {}).get("profile") or {}).get("email") or ""

    async def slack_id_of(email: str) -> str | None:
        """"" when Slack says nobody has that e-mail; None when Slack could not be asked."""
        try:
            response = await client.users_lookupByEmail(email=email)
        except SlackApiError as exc:
            return "" if exc.response.get("error") == "users_not_found" else None
        except (OSError, TimeoutError):
            return None
        return (response.get("user") or {}).get("id") or ""

    return email_of, slack_id_of


class PooledRespond(AsyncRespond):
    """Bolt's `respond()` over the bot's shared HTTP session: Bolt opens a new connection (and
    TLS handshake) for every reply; this reuses a few kept-alive ones."""

    def __init__(self, response_url: str, session: aiohttp.ClientSession) -> None:
        super().__init__(response_url=response_url)
        self.session = session

    def __deepcopy__(self, memo: dict) -> "PooledRespond":
        return self  # Bolt deep-copies a request for lazy listeners; a session is shared, not copied

    async def __call__(self, text: str | dict = "", **fields: Any) -> WebhookResponse:  # type: ignore[override]
        message = text if isinstance(text, dict) else {"text": text, **fields}
        body = {name: value for name, value in message.items() if value is not None}
        return await AsyncWebhookClient(self.response_url, session=self.session).send_dict(body)


def create_services(settings: Settings, client: AsyncWebClient) -> Services:
    return build_services(settings, SlackNotifier(client, settings), *profile_lookups(client))


def build_app(settings: Settings, services: Services, client: AsyncWebClient, *, verify_requests: bool = True,
              metrics: Metrics | None = None) -> AsyncApp:
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret or None,
        request_verification_enabled=verify_requests,
        process_before_response=False,
    )

    async def skip_handled_deliveries(req: AsyncBoltRequest, body: dict[str, Any],
                                      next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        """Slack retries a delivery it thinks failed; one already handled is acknowledged, not redone."""
        is_retry = (req.headers.get("x-slack-retry-num") or ["0"])[0] not in ("", "0")  # Socket Mode sends 0 first
        if await services.deliveries.already_handled(delivery_key(body, req.raw_body), is_retry):
            log.info("skipped a delivery already handled (retry=%s)", is_retry)
            return BoltResponse(status=200, body="")
        await next()
        return None

    async def pooled_respond(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        if context.response_url:
            context["respond"] = PooledRespond(context.response_url, services.http)
        await next()

    app.use(request_middleware(app, metrics or Metrics()))  # request id, user and command for the logs; counts
    async def record_usage(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> None:
        kind, name, user = describe(body)
        if kind in USED or kind == "event" and name == "app_mention":
            services.usage.note(user, name)
        await next()

    app.use(skip_handled_deliveries)
    app.use(record_usage)  # after the retry check: a retried delivery is one use
    app.use(pooled_respond)
    for capability in CAPABILITIES:
        capability.register(app, services)
    return app
