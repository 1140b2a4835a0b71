"""What Slack sends to an app: payload bodies and their signature headers.

The builders return the exact bytes Slack posts (form-encoded for slash
commands and interactions, JSON for the Events API); ``sign`` adds the
``X-Slack-Request-Timestamp`` / ``X-Slack-Signature`` pair that
``slack_sdk.signature.SignatureVerifier`` (and so Bolt) checks
(https://docs.slack.dev/authentication/verifying-requests-from-slack/)::

    body = slash_command_body("/oncall", "payments", response_url=slack.response_url())
    await http.post(bot_url, data=body, headers=sign(body, SIGNING_SECRET))

Defaults match ``SlackFake``'s workspace (team ``T0FAKE``); every trigger ID
is fresh, as Slack's are single-use.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from .slack import DEFAULT_TEAM_ID

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
DEFAULT_USER = "U0USER"
DEFAULT_CHANNEL = "C0CHAN"
DEFAULT_APP = "A0FAKE"
VERIFICATION_TOKEN = "fake-verification-token"
_sequence = itertools.count(1)


def sign(body: bytes, secret: str, timestamp: int | None = None, content_type: str | None = None) -> dict[str, str]:
    """Headers of a signed Slack request: ``v0=`` HMAC-SHA256 of ``v0:{ts}:{body}``, and its Content-Type.

    ``content_type`` defaults to JSON when the body starts with ``{``, else form-encoded.
    """
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": content_type or (JSON if body.lstrip().startswith(b"{") else FORM),
    }


def new_trigger_id() -> str:
    """A trigger ID shaped like Slack's (``digits.digits.hex``), never seen before."""
    return f"{next(_sequence)}{int(time.time())}.1700000000.{secrets.token_hex(16)}"


def _placeholder_response_url() -> str:
    return f"https://hooks.slack.com/commands/{DEFAULT_TEAM_ID}/{next(_sequence)}/fake"


def _team(team_id: str) -> dict[str, str]:
    return {"id": team_id, "domain": "fake-workspace"}


def _user(user_id: str, team_id: str) -> dict[str, str]:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id}


def _interaction(payload: dict[str, Any]) -> bytes:
    """Interactions arrive form-encoded, the JSON in a single ``payload`` field."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def slash_command_body(command: str, text: str = "", user_id: str = DEFAULT_USER,
                       channel_id: str = DEFAULT_CHANNEL, response_url: str | None = None,
                       trigger_id: str | None = None, *, team_id: str = DEFAULT_TEAM_ID,
                       channel_name: str = "general", user_name: str | None = None) -> bytes:
    """A slash command invocation (https://docs.slack.dev/interactivity/implementing-slash-commands/)."""
    return urlencode({
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": "fake-workspace",
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name or user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": DEFAULT_APP,
        "is_enterprise_install": "false",
        "response_url": response_url or _placeholder_response_url(),
        "trigger_id": trigger_id or new_trigger_id(),
    }).encode()


def block_actions_body(action_id: str, value: str = "", user_id: str = DEFAULT_USER,
                       response_url: str | None = None, channel_id: str = DEFAULT_CHANNEL,
                       *, block_id: str = "actions", message_ts: str = "1700000000.000100",
                       message: dict[str, Any] | None = None, view: dict[str, Any] | None = None,
                       action_type: str = "button", team_id: str = DEFAULT_TEAM_ID,
                       trigger_id: str | None = None) -> bytes:
    """A click on a block element, in a message or (with ``view``) in a modal."""
    action = {"action_id": action_id, "block_id": block_id, "type": action_type, "value": value,
              "action_ts": f"{time.time():.6f}"}
    if action_type == "button":
        action["text"] = {"type": "plain_text", "text": value or action_id, "emoji": True}
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": DEFAULT_APP,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": _team(team_id),
        "enterprise": None,
        "is_enterprise_install": False,
        "actions": [action],
    }
    if view is not None:
        payload.update(container={"type": "view", "view_id": view.get("id", "V0VIEW")}, view=view)
    else:
        payload.update(
            container={"type": "message", "message_ts": message_ts, "channel_id": channel_id, "is_ephemeral": False},
            channel={"id": channel_id, "name": "general"},
            message=message or {"type": "message", "ts": message_ts, "text": "", "user": "U0BOT"},
            response_url=response_url or _placeholder_response_url(),
            state={"values": {}},
        )
    return _interaction(payload)


def plain_text_state(values: dict[str, dict[str, str]]) -> dict[str, dict[str, dict[str, str]]]:
    """``{block_id: {action_id: text}}`` as a view's ``state.values`` of plain-text inputs."""
    return {block: {action: {"type": "plain_text_input", "value": text} for action, text in actions.items()}
            for block, actions in values.items()}


def view_submission_body(callback_id: str, values: dict[str, Any], user_id: str = DEFAULT_USER,
                         private_metadata: str = "", *, view_id: str = "V0VIEW",
                         team_id: str = DEFAULT_TEAM_ID, trigger_id: str | None = None) -> bytes:
    """A modal's submission; ``values`` is ``state.values`` (see ``plain_text_state``)."""
    return _interaction({
        "type": "view_submission",
        "team": _team(team_id),
        "user": _user(user_id, team_id),
        "api_app_id": DEFAULT_APP,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": {
            "id": view_id, "team_id": team_id, "type": "modal", "blocks": [],
            "private_metadata": private_metadata, "callback_id": callback_id,
            "state": {"values": values}, "hash": "1700000000.fakehash",
            "title": {"type": "plain_text", "text": "Fake"},
            "root_view_id": view_id, "previous_view_id": None,
            "app_id": DEFAULT_APP, "bot_id": "B0BOT", "external_id": "",
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    })


def event_body(event: dict[str, Any], event_id: str | None = None, *, team_id: str = DEFAULT_TEAM_ID,
               bot_user_id: str = "U0BOT", event_time: int | None = None) -> bytes:
    """An Events API ``event_callback`` envelope around ``event``."""
    return json.dumps({
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": DEFAULT_APP,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_sequence):08d}",
        "event_time": event_time or int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }).encode()


def url_verification_body(challenge: str) -> bytes:
    """The Events API's request-URL handshake; the app must echo ``challenge``."""
    return json.dumps({"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}).encode()
