"""The bot in Socket Mode, end to end: `SLACK_APP_TOKEN` set, the bot opens a WebSocket to a local
Slack that follows the Socket Mode protocol (`tests/fakes/slack_socket.py`), gets slash commands
and interactions as envelopes over it, acknowledges them there and answers at the response URL."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from bot.config import ConfigError

from tests.fakes.slack_requests import block_actions_body, event_body
from tests.fakes.slack_socket import SlackSocketModeFake, interaction_payload, slash_command_payload
from tests.harness import Bot, start_bot, stop_bot
from tests.test_observability import scrape, value

APP_TOKEN = "xapp-1-test"
USER = "U0ADA0001"
PAYMENT_SERVICE = "component:default/payment-service"
STARTUP_LIMIT = 3.0


@pytest.fixture
async def slack():
    async with SlackSocketModeFake(app_token=APP_TOKEN) as fake:
        fake.add_user(USER, email="ada.lovelace@acme.example", real_name="Ada Lovelace")
        yield fake


@pytest.fixture
async def bot(tmp_path, slack: SlackSocketModeFake):
    running = await start_bot(tmp_path, slack, SLACK_APP_TOKEN=APP_TOKEN)
    try:
        yield running
    finally:
        await stop_bot(running)
    await asyncio.sleep(0.1)
    assert not slack.open_connections, "the bot left its Socket Mode connection open after stopping"


def text_of(payload: dict[str, Any]) -> str:
    return json.dumps(payload.get("blocks") or payload.get("text"))


async def command(slack: SlackSocketModeFake, text: str) -> tuple[str, str]:
    """Send `/whoowns text` as a slash_commands envelope; returns its envelope id and response URL."""
    response_url = slack.response_url()
    envelope_id = await slack.send_envelope(
        "slash_commands", slash_command_payload("/whoowns", text, response_url=response_url, user_id=USER))
    return envelope_id, response_url


async def test_connects_with_the_app_token_and_keeps_the_connection_alive(bot: Bot, slack: SlackSocketModeFake):
    connection = await slack.wait_for_connection()
    # one check of the token at start-up (so a refused token stops it), then the connection itself
    assert [o["ok"] for o in slack.connection_opens] == [True, True]
    assert slack.calls("apps.connections.open") == [{}, {}]
    assert connection.app_token == APP_TOKEN
    hello = connection.sent[0]
    assert hello["type"] == "hello" and hello["connection_info"] == {"app_id": slack.app_id}
    assert await slack.ping(b"are-you-there") == b"are-you-there"          # the bot answers Slack's pings
    await asyncio.wait_for(_until(lambda: connection.pings), 5)              # and pings itself; the fake pongs
    assert connection.pings[0].startswith(b"sdk-ping-pong:")


async def test_whoowns_is_acknowledged_at_once_and_answered_at_the_response_url(bot: Bot, slack: SlackSocketModeFake):
    started = time.perf_counter()
    envelope_id, response_url = await command(slack, "payment-service")
    ack = await slack.wait_for_ack(envelope_id, timeout=1.0)
    assert time.perf_counter() - started < 1.0 and slack.ack_latency(envelope_id) < 1.0
    assert ack == {"envelope_id": envelope_id}                              # an empty ack: the answer comes later
    answer = await slack.wait_for_response(url=response_url)
    assert answer["response_type"] == "ephemeral"
    text = text_of(answer)
    assert "Payment Service" in text and PAYMENT_SERVICE in text and "Payments" in text
    actions = next(b for b in answer["blocks"] if b["type"] == "actions")
    assert "whoowns_dependencies" in [e["action_id"] for e in actions["elements"]]
    # timed and counted like a request posted over HTTP: the ack is the envelope sent back
    scraped = await scrape(bot)
    assert value(scraped, "pavedroad_slack_ack_seconds_count", kind="command") == 1
    assert value(scraped, "pavedroad_slack_request_seconds_count", kind="command", name="/whoowns", listener="answer") == 1


async def test_dependencies_button_is_answered_over_socket_mode(bot: Bot, slack: SlackSocketModeFake):
    response_url = slack.response_url()
    payload = interaction_payload(block_actions_body("whoowns_dependencies", PAYMENT_SERVICE, user_id=USER,
                                                     response_url=response_url, block_id="whoowns_actions"))
    envelope_id = await slack.send_envelope("interactive", payload)
    assert slack.envelopes[envelope_id]["accepts_response_payload"] is False  # as Slack sends block_actions
    await slack.wait_for_ack(envelope_id, timeout=1.0)
    assert slack.ack_latency(envelope_id) < 1.0
    text = (await slack.wait_for_response(url=response_url))["text"]
    assert "`resource:default/payments-db`" in text and "`component:default/checkout-service`" in text
    assert "Everything affected if it fails:* 11 entities" in text


async def test_usage_comes_back_in_the_acknowledgement_payload(bot: Bot, slack: SlackSocketModeFake):
    envelope_id, response_url = await command(slack, "   ")
    ack = await slack.wait_for_ack(envelope_id, timeout=1.0)
    assert ack["payload"]["text"].startswith("Tell me what to look up: `/whoowns payment-service`")
    await asyncio.sleep(0.3)
    assert slack.responses_to(response_url) == []


async def test_events_arrive_over_socket_mode(bot: Bot, slack: SlackSocketModeFake):
    payload = json.loads(event_body({"type": "app_home_opened", "user": USER, "tab": "home"}))
    envelope_id = await slack.send_envelope("events_api", payload)
    await slack.wait_for_ack(envelope_id, timeout=1.0)
    view = (await slack.wait_for_call("views.publish"))["view"]
    assert "/whoowns NAME" in json.dumps(view)


async def test_a_redelivered_event_is_acknowledged_and_not_handled_twice(bot: Bot, slack: SlackSocketModeFake):
    payload = json.loads(event_body({"type": "app_home_opened", "user": USER, "tab": "home"}))
    first = await slack.send_envelope("events_api", payload)
    await slack.wait_for_call("views.publish")
    again = await slack.send_envelope("events_api", payload, retry_attempt=1, retry_reason="timeout")
    await slack.wait_for_ack(first, timeout=1.0)
    await slack.wait_for_ack(again, timeout=1.0)
    await asyncio.sleep(0.3)
    assert len(slack.calls("views.publish")) == 1


async def test_socket_mode_needs_no_signing_secret(tmp_path, slack: SlackSocketModeFake):
    running = await start_bot(tmp_path, slack, SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET="")
    try:
        envelope_id, response_url = await command(slack, "payment-service")
        await slack.wait_for_ack(envelope_id, timeout=1.0)
        assert PAYMENT_SERVICE in text_of(await slack.wait_for_response(url=response_url))
    finally:
        await stop_bot(running)


async def test_moves_to_a_new_connection_when_slack_asks(bot: Bot, slack: SlackSocketModeFake):
    first = await slack.wait_for_connection()
    await slack.disconnect("refresh_requested")
    second = await slack.wait_for_connection(timeout=10, after=first.number)
    await asyncio.wait_for(_until(lambda: not first.open), 5)
    assert [o["ok"] for o in slack.connection_opens] == [True, True, True]   # start-up check, first, second
    envelope_id, response_url = await command(slack, "payment-service")
    assert envelope_id in {m.get("envelope_id") for m in second.sent}
    await slack.wait_for_ack(envelope_id, timeout=1.0)
    assert PAYMENT_SERVICE in text_of(await slack.wait_for_response(url=response_url))


async def test_a_refused_app_token_stops_start_up_with_a_clear_error(tmp_path, slack: SlackSocketModeFake):
    with pytest.raises(ConfigError, match=r"SLACK_APP_TOKEN was refused by Slack \(invalid_auth\)"):
        await asyncio.wait_for(start_bot(tmp_path, slack, SLACK_APP_TOKEN="xapp-1-revoked"), STARTUP_LIMIT)
    assert not slack.connections


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.01)
