"""The shared machinery of every HTTP fake.

A fake is an aiohttp application bound to ``127.0.0.1`` on a port the kernel
picks (port 0, so no race), started inside the running event loop and used
as an async context manager::

    async with SomeFake() as fake:
        ...  # fake.root == "http://127.0.0.1:PORT"

What ``FakeServer`` gives every subclass:

* recording: each request that reaches the server, whatever its fate, is
  appended to ``fake.requests`` as a ``RecordedRequest`` (method, path,
  query, headers, raw and parsed body); ``await fake.wait_for(predicate)``
  polls until one matches;
* faults, settable at any time: ``fake.delay`` (seconds slept before
  answering), ``fake.fail_status`` (answer everything with that status in
  the API's own error shape) and ``fake.rate_limit(n, retry_after=1)``
  (answer the next *n* requests with 429 and ``Retry-After``);
* ``FakeHTTPError``: raise it from a handler to answer with an error body;
* optional TLS (``tls=True``) with the process-wide fake CA of ``tls.py``.

Subclasses implement ``add_routes`` and override ``error_response`` (and,
when the API's 429 differs from its other errors, ``rate_limited_response``).

The fakes run in the test's event loop: synchronous clients (``pagerduty``,
``kubernetes``) must be called through ``asyncio.to_thread`` or the loop,
and so the fake, would block.
"""
from __future__ import annotations

import asyncio
import email.policy
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import BytesParser
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from . import tls as fake_tls

JsonDict = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: MultiDictProxy[str]
    headers: CIMultiDictProxy[str]
    raw: bytes
    body: Any
    """JSON value, dict of form fields (multipart files as bytes), ``None`` when empty, else the raw bytes."""
    received_at: float

    def __repr__(self) -> str:
        query = f"?{'&'.join(f'{k}={v}' for k, v in self.query.items())}" if self.query else ""
        return f"<{self.method} {self.path}{query}>"


RECORDED = web.RequestKey("fake.recorded", RecordedRequest)


def recorded(request: web.Request) -> RecordedRequest:
    """What the middleware recorded for ``request`` (its parsed ``body``, its ``raw`` bytes)."""
    return request[RECORDED]


class FakeHTTPError(Exception):
    """Raised by a handler to answer with ``status`` and ``body`` (JSON unless a str)."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}: {body!r}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        if isinstance(self.body, str):
            return web.Response(status=self.status, text=self.body, headers=self.headers)
        return json_response(self.body, status=self.status, headers=self.headers)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None,
                  content_type: str = "application/json") -> web.Response:
    """A JSON answer (``content_type`` lets APIs with vendor types keep them)."""
    return web.Response(status=status, text=json.dumps(body), headers=headers, content_type=content_type)


def reason_phrase(status: int) -> str:
    """``Not Found`` for 404 and so on."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the second, as most APIs print it."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """An ISO 8601 date-time; a missing offset means UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


async def poll(source: Callable[[], Sequence[T]], predicate: Callable[[T], bool], timeout: float,
               what: str = "item") -> T:
    """The first element of ``source()`` matching ``predicate``, waiting up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        for item in list(source()):
            if predicate(item):
                return item
        if time.monotonic() >= deadline:
            seen = list(source())
            raise TimeoutError(f"no {what} matched within {timeout}s; {len(seen)} seen: {seen[-10:]!r}")
        await asyncio.sleep(0.01)


def _parse_multipart(content_type_header: str, raw: bytes) -> dict[str, str | bytes]:
    """Fields of a ``multipart/form-data`` body: text, or bytes for uploaded files."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type_header}\r\n\r\n".encode() + raw)
    fields: dict[str, str | bytes] = {}
    for part in message.iter_parts():
        payload = part.get_payload(decode=True) or b""
        name = part.get_param("name", header="content-disposition")
        fields[str(name)] = payload if part.get_filename() else payload.decode("utf-8", "replace")
    return fields


def _parse_body(content_type: str, raw: bytes, content_type_header: str) -> Any:
    if not raw:
        return None
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    if content_type == "multipart/form-data":
        return _parse_multipart(content_type_header, raw)
    return raw


class FakeServer:
    """Base class of the fakes: lifecycle, recording, fault injection."""

    host = "127.0.0.1"
    default_content_type = ""
    """How to read a body sent without ``Content-Type`` (the API server assumes JSON, for one)."""

    def __init__(self, *, tls: bool = False) -> None:
        self.tls = tls
        self.requests: list[RecordedRequest] = []
        self.delay: float = 0.0
        self.fail_status: int | None = None
        self._rate_limit_left = 0
        self._retry_after = 1
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # -- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        self.add_routes(app.router)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ssl_context = fake_tls.server_ssl_context() if self.tls else None
        site = web.TCPSite(runner, self.host, 0, ssl_context=ssl_context)
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def root(self) -> str:
        """``scheme://127.0.0.1:PORT`` without a trailing slash."""
        if self.port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_bundle_path(self) -> str | None:
        """PEM file of the CA to trust for this fake (``None`` when plain HTTP)."""
        return fake_tls.ca_bundle_path() if self.tls else None

    # -- to implement / override -------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    def error_response(self, status: int, request: web.Request) -> web.Response:
        """The API's error answer for ``status`` (fail_status, unknown paths, 429 by default)."""
        return json_response({"error": reason_phrase(status)}, status=status)

    def rate_limited_response(self, request: web.Request) -> web.Response:
        """The API's 429 answer; ``Retry-After`` is added by the middleware."""
        return self.error_response(429, request)

    # -- faults ------------------------------------------------------------

    def rate_limit(self, n: int, retry_after: int = 1) -> None:
        """Answer the next ``n`` requests with 429 and ``Retry-After: retry_after``."""
        self._rate_limit_left = n
        self._retry_after = retry_after

    def reset_faults(self) -> None:
        self.delay = 0.0
        self.fail_status = None
        self._rate_limit_left = 0

    # -- recording ---------------------------------------------------------

    def clear_requests(self) -> None:
        self.requests.clear()

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    async def wait_for(self, predicate: Callable[[RecordedRequest], bool], timeout: float = 5.0) -> RecordedRequest:
        """The first recorded request matching ``predicate``, polling until ``timeout``."""
        return await poll(lambda: self.requests, predicate, timeout, what="request")

    # -- the middleware ----------------------------------------------------

    def _content_type(self, request: web.Request) -> str:
        return request.content_type if "Content-Type" in request.headers else self.default_content_type

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        raw = await request.read()
        request[RECORDED] = entry = RecordedRequest(
            method=request.method,
            path=request.path,
            query=MultiDictProxy(MultiDict(request.query)),
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            raw=raw,
            body=_parse_body(self._content_type(request), raw, request.headers.get("Content-Type", "")),
            received_at=time.time(),
        )
        self.requests.append(entry)
        rate_limited = self._rate_limit_left > 0  # decided in arrival order, before any delay
        self._rate_limit_left -= rate_limited
        if self.delay:
            await asyncio.sleep(self.delay)
        if rate_limited:
            response = self.rate_limited_response(request)
            response.headers["Retry-After"] = str(self._retry_after)
            return response
        if self.fail_status is not None:
            return self.error_response(self.fail_status, request)
        try:
            return await handler(request)
        except FakeHTTPError as error:
            return error.response()
        except web.HTTPException as error:
            if error.status >= 400:  # no route, wrong method: answer in the API's error shape
                return self.error_response(error.status, request)
            raise
