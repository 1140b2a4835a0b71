"""The Slack side of observability: each request's id, span and timings (over HTTP or Socket Mode),
the Bolt middleware that adds its user and command (for the logs) and counts it, and a Slack Web
API client whose calls are observed like every other integration call."""
from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from typing import Any, AsyncIterator, Awaitable, Callable

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_bolt.util.utils import get_name_for_callable
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.logs import RequestContext, new_request_id, request_context
from bot.observability.metrics import Metrics
from integrations.errors import observed

log = logging.getLogger("pavedroad.requests")


def describe(body: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, name, user) of a Slack payload: ("command", "/whoowns", "U1"), ("action", action id, …),
    ("view", callback id, …), ("event", event type, …), ("shortcut", callback id, …)."""
    user = body.get("user_id") or (body.get("user") or {}).get("id") or (body.get("event") or {}).get("user") or ""
    user = user if isinstance(user, str) else ""  # some events carry a whole user object
    if body.get("command"):
        return "command", str(body["command"]), str(user)
    kind = body.get("type") or ""
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        return "action", str(actions[0].get("action_id") or ""), str(user)
    if kind in ("view_submission", "view_closed"):
        return "view", str((body.get("view") or {}).get("callback_id") or ""), str(user)
    if kind in ("shortcut", "message_action"):
        return "shortcut", str(body.get("callback_id") or ""), str(user)
    if kind == "event_callback":
        return "event", str((body.get("event") or {}).get("type") or ""), str(user)
    if kind == "block_suggestion":
        return "options", str(body.get("action_id") or ""), str(user)
    return "other", str(kind), str(user)


class RequestInfo:
    """What the middleware learnt about a request, and how long Bolt took to dispatch it (None:
    it was refused before Bolt saw it)."""

    def __init__(self) -> None:
        self.kind, self.name, self.listener = "unknown", "", ""
        self.dispatched: float | None = None


request_info: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar("pavedroad_request_info", default=None)


@contextlib.asynccontextmanager
async def slack_request(metrics: Metrics) -> AsyncIterator[RequestInfo]:
    """One Slack request, over HTTP or Socket Mode, from its arrival to its acknowledgement: an id
    (in the logs), a span when tracing, and its timings. The caller sets `info.dispatched`."""
    arrived = time.perf_counter()
    metrics.activate()
    info = RequestInfo()
    tokens = request_context.set(RequestContext(new_request_id())), request_info.set(info)
    try:
        with metrics.tracing.span("slack request") if metrics.tracing else contextlib.nullcontext():
            yield info
        if info.dispatched is not None:
            metrics.slack_request_seconds.labels(info.kind, info.name, info.listener).observe(info.dispatched)
        metrics.ack_seconds.labels(info.kind if info.dispatched is not None else "refused").observe(
            time.perf_counter() - arrived)
    finally:
        request_info.reset(tokens[1])
        request_context.reset(tokens[0])


def request_middleware(app: AsyncApp, metrics: Metrics):
    """Bolt's global middleware runs before the listeners rather than around them (`next()` only
    lets the chain go on), so this one sets what the rest of the request runs with: the request
    context for the logs (kept until the request's task ends, and copied by the tasks its
    listeners start), the app's metrics, and the count per command and listener. The server
    times the whole dispatch. A name is used as a label only when a listener handles it."""
    names: dict[tuple[str, str], tuple[str, str]] = {}

    async def listener_of(req: AsyncBoltRequest, resp: BoltResponse, kind: str, name: str) -> tuple[str, str]:
        if (kind, name) not in names and len(names) < 1000:
            found = ("other", "none")
            for listener in app._async_listeners:  # as Bolt itself matches them, once per kind and name
                if await listener.async_matches(req=req, resp=resp):
                    work = listener.lazy_functions[0] if listener.lazy_functions else listener.ack_function
                    found = (name, get_name_for_callable(work))  # the lazy function is the one doing the work
                    break
            names[(kind, name)] = found
        return names.get((kind, name), ("other", "none"))

    async def observe_request(req: AsyncBoltRequest, resp: BoltResponse, body: dict[str, Any],
                              next: Callable[[], Awaitable[Any]]) -> Any:
        metrics.activate()
        kind, name, user = describe(body)
        outer = request_context.get()
        request_context.set(RequestContext(outer.request_id if outer else new_request_id(), user,
                                           f"{name} {body.get('text', '')}".strip() if kind == "command" else name))
        label, listener = await listener_of(req, resp, kind, name)
        if (info := request_info.get()) is not None:
            info.kind, info.name, info.listener = kind, label, listener
        if metrics.tracing is not None:
            metrics.tracing.name_current(f"slack {kind} {label}", kind=kind, name=name, listener=listener, user=user)
        metrics.slack_requests.labels(kind, label, listener).inc()
        log.info("slack %s %s", kind, name)
        await next()
        return None
    return observe_request


class ObservedWebClient(AsyncWebClient):
    """Every Web API call is timed and counted as system "slack" (and traced)."""

    async def api_call(self, api_method: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        with observed("slack", api_method):
            return await super().api_call(api_method, *args, **kwargs)


class ObservedSocketModeHandler(AsyncSocketModeHandler):
    """Socket Mode requests get the same id, span and timings as those posted to `/slack/events`;
    their acknowledgement is the response sent back over the socket."""

    def __init__(self, app: AsyncApp, app_token: str, metrics: Metrics) -> None:
        super().__init__(app, app_token)
        self.metrics = metrics

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        async with slack_request(self.metrics) as info:
            started, arrived = time.perf_counter(), time.time()  # Bolt's own debug line wants wall-clock time
            response = await run_async_bolt_app(self.app, req)
            info.dispatched = time.perf_counter() - started
            await send_async_response(client, req, response, arrived)
