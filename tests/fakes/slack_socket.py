"""A fake Slack that also speaks Socket Mode: ``SlackFake`` plus ``apps.connections.open`` and the
WebSocket it hands out.

As Slack does (https://docs.slack.dev/apis/events-api/using-socket-mode/,
https://docs.slack.dev/reference/methods/apps.connections.open):

* ``POST /api/apps.connections.open`` takes the app-level token (``xapp-…``)
  in ``Authorization: Bearer`` only; it answers ``{"ok": true, "url":
  "ws://127.0.0.1:PORT/link/?ticket=…&app_id=…"}``. No header is
  ``not_authed`` (also when the token comes as a form field), a bot or user
  token the fake knows is ``not_allowed_token_type``, any other token
  ``invalid_auth``. The other Web API methods answer an app-level token with
  ``not_allowed_token_type``;
* the URL's ticket is good for one connection; on connecting the app gets
  ``{"type": "hello", "num_connections": N, "debug_info": {...},
  "connection_info": {"app_id": ...}}``;
* ``await fake.send_envelope(type, payload)`` sends ``{"envelope_id",
  "type", "payload", "accepts_response_payload"}`` (plus ``retry_attempt``
  and ``retry_reason`` for ``events_api``) to the newest open connection and
  returns the envelope id; ``await fake.wait_for_ack(envelope_id)`` returns
  what the app sent back (``{"envelope_id": ..., "payload": ...}``);
* WebSocket pings are answered with a pong carrying the same data (the
  Python SDK declares a session stale without them); ``await fake.ping()``
  pings the app, and ``await fake.disconnect("refresh_requested")`` asks it
  to move to a new connection, as Slack does regularly.

Every JSON message an app sent is in ``received`` (acknowledgements also in
``acks``), every connection in ``connections``; ``connection_opens`` lists
each ``apps.connections.open`` answer.

Not modelled: Slack's retries of envelopes not acknowledged within 3
seconds, the ``warning`` disconnect ten seconds before a refresh, ticket
expiry by age, and the exact answer to a bad ticket (here HTTP 401).
"""
from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from .base import FakeHTTPError, JsonDict, poll
from .slack import SlackFake
from .slack_methods import Identity, SlackCall, SlackMethodError
from .slack_requests import slash_command_body

DEFAULT_APP_TOKEN = "xapp-1-A0FAKE-1-fakeapptoken"
CONNECTIONS_OPEN = "apps.connections.open"
ENVELOPE_TYPES = frozenset({"events_api", "interactive", "slash_commands"})
RESPONSE_PAYLOAD_INTERACTIONS = frozenset({"view_submission", "block_suggestion"})
"""Interactions whose acknowledgement payload Slack uses (``accepts_response_payload``)."""


@dataclass
class SocketConnection:
    """One WebSocket connection an app opened, and what went over it."""

    number: int
    ticket: str
    app_token: str
    ws: web.WebSocketResponse
    opened_at: float = field(default_factory=time.time)
    sent: list[JsonDict] = field(default_factory=list)
    received: list[JsonDict] = field(default_factory=list)
    pings: list[bytes] = field(default_factory=list)
    closed_at: float | None = None

    @property
    def open(self) -> bool:
        return self.closed_at is None and not self.ws.closed

    def __repr__(self) -> str:
        return f"<SocketConnection #{self.number} {'open' if self.open else 'closed'}>"


class SlackSocketModeFake(SlackFake):
    """``SlackFake`` with Socket Mode: ``apps.connections.open`` and the WebSocket at ``/link/``."""

    def __init__(self, *, app_token: str = DEFAULT_APP_TOKEN, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_tokens: set[str] = {app_token}
        self.connections: list[SocketConnection] = []
        self.connection_opens: list[JsonDict] = []
        self.envelopes: dict[str, JsonDict] = {}
        self.received: list[JsonDict] = []
        self.acks: list[JsonDict] = []
        self.ack_times: dict[str, float] = {}
        self._sent_times: dict[str, float] = {}
        self._tickets: dict[str, str] = {}
        self._connection_numbers = itertools.count(1)
        self._pong_waiters: dict[bytes, asyncio.Future[bytes]] = {}

    # -- addresses and seeding ---------------------------------------------

    @property
    def ws_root(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}"

    def add_app_token(self, token: str) -> None:
        self.app_tokens.add(token)

    # -- what happened -----------------------------------------------------

    @property
    def open_connections(self) -> list[SocketConnection]:
        return [c for c in self.connections if c.open]

    async def wait_for_connection(self, timeout: float = 5.0, *, after: int = 0) -> SocketConnection:
        """The first open connection numbered above ``after``, waiting for it."""
        return await poll(lambda: self.connections, lambda c: c.open and c.number > after, timeout,
                          what="open Socket Mode connection")

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> JsonDict:
        """The message the app sent back for ``envelope_id`` (``{"envelope_id", "payload"?}``)."""
        return await poll(lambda: self.acks, lambda m: m.get("envelope_id") == envelope_id, timeout,
                          what=f"ack of {envelope_id}")

    def ack_latency(self, envelope_id: str) -> float:
        """Seconds from sending the envelope to receiving its acknowledgement."""
        return self.ack_times[envelope_id] - self._sent_times[envelope_id]

    # -- driving the app ---------------------------------------------------

    async def send_envelope(self, type: str, payload: JsonDict, *, envelope_id: str | None = None,
                            accepts_response_payload: bool | None = None, retry_attempt: int = 0,
                            retry_reason: str = "", timeout: float = 5.0) -> str:
        """Deliver ``payload`` as Slack does in Socket Mode; returns the envelope id.

        ``type`` is ``slash_commands``, ``interactive`` or ``events_api``; ``payload`` is the
        body Slack would have posted over HTTP (for interactions, the decoded ``payload``)."""
        if type not in ENVELOPE_TYPES:
            raise ValueError(f"unknown envelope type {type!r}; Slack sends {sorted(ENVELOPE_TYPES)}")
        connection = await self._newest_connection(timeout)
        envelope_id = envelope_id or str(uuid.uuid4())
        if accepts_response_payload is None:
            accepts_response_payload = type == "slash_commands" or (
                type == "interactive" and payload.get("type") in RESPONSE_PAYLOAD_INTERACTIONS)
        envelope: JsonDict = {"envelope_id": envelope_id, "payload": payload, "type": type,
                              "accepts_response_payload": accepts_response_payload}
        if type == "events_api":
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        self.envelopes[envelope_id] = envelope
        self._sent_times[envelope_id] = time.monotonic()
        await self._send(connection, envelope)
        return envelope_id

    async def disconnect(self, reason: str = "refresh_requested", *, close_after: float | None = 1.0) -> None:
        """Tell every open connection to go (``warning``, ``refresh_requested``, ``link_disabled``),
        closing it ``close_after`` seconds later as Slack does (``None``: leave it to the app)."""
        connections = self.open_connections
        for connection in connections:
            await self._send(connection, {"type": "disconnect", "reason": reason,
                                          "debug_info": {"host": self._debug_host(connection)}})
        if close_after is not None:
            await asyncio.sleep(close_after)
            for connection in connections:
                await connection.ws.close(code=1000, message=b"refresh")

    async def ping(self, data: bytes | None = None, timeout: float = 5.0) -> bytes:
        """Ping the newest open connection; returns the pong's data."""
        connection = await self._newest_connection(timeout)
        data = data or secrets.token_hex(8).encode()
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pong_waiters[data] = waiter
        try:
            await connection.ws.ping(data)
            return await asyncio.wait_for(waiter, timeout)
        finally:
            self._pong_waiters.pop(data, None)

    # -- lifecycle ---------------------------------------------------------

    async def stop(self) -> None:
        for connection in self.open_connections:
            await connection.ws.close(code=1001, message=b"server going away")
        await super().stop()

    # -- HTTP --------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/link/", self._handle_link)
        super().add_routes(router)

    def _dispatch(self, method: str, args: JsonDict, request: web.Request) -> JsonDict:
        if method == CONNECTIONS_OPEN:
            return self._apps_connections_open(request)
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else args.get("token", "")
        if token in self.app_tokens:
            raise SlackMethodError("not_allowed_token_type")
        return super()._dispatch(method, args, request)

    def _apps_connections_open(self, request: web.Request) -> JsonDict:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        try:
            if not token:
                raise SlackMethodError("not_authed")
            if token in self.tokens:
                raise SlackMethodError("not_allowed_token_type")
            if token not in self.app_tokens:
                raise SlackMethodError("invalid_auth")
            self.api_calls.append(SlackCall(CONNECTIONS_OPEN, {}, token, Identity("", self.app_id)))
            self._raise_forced_error(CONNECTIONS_OPEN)
        except SlackMethodError as error:
            self.connection_opens.append({"token": token, "ok": False, "error": error.error})
            raise
        ticket = str(uuid.uuid4())
        self._tickets[ticket] = token
        url = f"{self.ws_root}/link/?ticket={ticket}&app_id={self.app_id}"
        self.connection_opens.append({"token": token, "ok": True, "url": url})
        return {"url": url}

    async def _handle_link(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)
        if not ws.can_prepare(request).ok:
            raise FakeHTTPError(400, {"ok": False, "error": "websocket_upgrade_required"})
        token = self._tickets.pop(request.query.get("ticket", ""), None)
        if token is None:
            raise FakeHTTPError(401, {"ok": False, "error": "invalid_ticket"})
        await ws.prepare(request)
        connection = SocketConnection(next(self._connection_numbers), request.query["ticket"], token, ws)
        self.connections.append(connection)
        try:
            await self._send(connection, {
                "type": "hello", "num_connections": len(self.open_connections),
                "debug_info": {"host": self._debug_host(connection), "build_number": 1,
                               "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id}})
            async for message in ws:
                await self._receive(connection, message)
        finally:
            connection.closed_at = time.time()
        return ws

    async def _receive(self, connection: SocketConnection, message: Any) -> None:
        if message.type == WSMsgType.PING:
            connection.pings.append(bytes(message.data))
            await connection.ws.pong(message.data)
        elif message.type == WSMsgType.PONG:
            waiter = self._pong_waiters.get(bytes(message.data))
            if waiter is not None and not waiter.done():
                waiter.set_result(bytes(message.data))
        elif message.type == WSMsgType.TEXT:
            try:
                data = json.loads(message.data)
            except ValueError:
                data = {"_unparsed": message.data}
            if not isinstance(data, dict):
                data = {"_unparsed": message.data}
            connection.received.append(data)
            self.received.append(data)
            envelope_id = data.get("envelope_id")
            if envelope_id:
                self.ack_times.setdefault(envelope_id, time.monotonic())
                self.acks.append(data)

    async def _send(self, connection: SocketConnection, message: JsonDict) -> None:
        connection.sent.append(message)
        await connection.ws.send_str(json.dumps(message))

    async def _newest_connection(self, timeout: float) -> SocketConnection:
        open_now = self.open_connections
        return open_now[-1] if open_now else await self.wait_for_connection(timeout)

    def _debug_host(self, connection: SocketConnection) -> str:
        return f"applink-fake-{connection.number}"


def slash_command_payload(command: str, text: str = "", *, response_url: str, user_id: str = "U0USER",
                          channel_id: str = "C0CHAN", **extra: Any) -> JsonDict:
    """What Slack puts in a ``slash_commands`` envelope: the fields it form-posts over HTTP."""
    body = slash_command_body(command, text, user_id=user_id, channel_id=channel_id, response_url=response_url,
                              **extra)
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


def interaction_payload(body: bytes) -> JsonDict:
    """The decoded ``payload`` of a form-encoded interaction body (``block_actions_body`` ...)."""
    return json.loads(dict(parse_qsl(body.decode()))["payload"])

