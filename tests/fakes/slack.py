"""A fake Slack: the Web API, response URLs and the file upload URLs.

Point ``slack_sdk`` at it with ``AsyncWebClient(token=slack.bot_token,
base_url=slack.url)`` (``slack.url`` is ``http://127.0.0.1:PORT/api/``) and
Bolt with ``AsyncApp(client=that_client, ...)``.

As Slack does (https://docs.slack.dev/apis/web-api/):

* methods live at ``POST /api/{method}`` and take form-encoded or JSON
  bodies; the token comes from ``Authorization: Bearer`` or the ``token``
  form field; JSON-valued form fields (``blocks``, ``view``...) are decoded;
* failures are HTTP 200 with ``{"ok": false, "error": "..."}``:
  ``not_authed`` (no token), ``invalid_auth`` (unknown token),
  ``unknown_method``, ``invalid_arguments`` (a required argument missing)
  and each method's own errors;
* rate limiting is HTTP 429, ``Retry-After`` and ``{"ok": false, "error":
  "ratelimited"}``; ``fail_status`` answers 5xx with ``internal_error``,
  ``service_unavailable`` or ``request_timeout``;
* a response URL (``slack.response_url()``) takes JSON posts, answers
  ``200 ok`` (text), at most 5 times, then ``404 used_url``;
* ``files.getUploadURLExternal`` hands out ``/upload/v1/{file_id}`` URLs
  that take the raw bytes and answer ``200 OK - {length}`` (text).

Seed it with ``add_user``, ``add_channel``, ``add_usergroup``,
``add_message``; force a method's error with ``fail_method``. What the bot
did is in ``calls(method)`` (the decoded arguments of each processed call),
``messages``, ``responses``, ``uploads``, ``views`` and ``reactions``.

Not modelled: scopes, trigger expiry by age (use ``expire_trigger``), and
messages written by humans: ``reactions.add`` accepts any timestamp, since
the fake only knows the messages it posted or was given with ``add_message``.
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .base import FakeHTTPError, FakeServer, JsonDict, json_response, poll, recorded
from .slack_methods import METHODS, Identity, SlackCall, SlackMethodError, SlackMethods

DEFAULT_BOT_TOKEN = "xoxb-fake-bot-token"
DEFAULT_TEAM_ID = "T0FAKE"
MAX_RESPONSE_URL_USES = 5
JSON_FIELDS = frozenset({"blocks", "attachments", "view", "files", "metadata", "unfurls", "users"})
SERVER_ERRORS = {503: "service_unavailable", 504: "request_timeout"}


@dataclass
class ResponseUrl:
    """A response URL the fake handed out, and what was posted to it."""

    url: str
    payloads: list[JsonDict] = field(default_factory=list)
    expired: bool = False


def _decode_fields(args: JsonDict) -> JsonDict:
    decoded = dict(args)
    for name in JSON_FIELDS & decoded.keys():
        value = decoded[name]
        if isinstance(value, str) and value[:1] in ("[", "{"):
            try:
                decoded[name] = json.loads(value)
            except ValueError:
                pass
    return decoded


class SlackFake(SlackMethods, FakeServer):
    """Slack's Web API at ``/api/``, response URLs at ``/response/N``, uploads at ``/upload/v1/ID``."""

    def __init__(self, *, bot_token: str = DEFAULT_BOT_TOKEN, team_id: str = DEFAULT_TEAM_ID,
                 team: str = "Fake Workspace", bot_user_id: str = "U0BOT", bot_id: str = "B0BOT",
                 bot_name: str = "pavedroad", app_id: str = "A0FAKE", tls: bool = False) -> None:
        super().__init__(tls=tls)
        self.bot_token = bot_token
        self.team_id = team_id
        self.team = team
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.tokens: dict[str, Identity] = {bot_token: Identity(bot_user_id, bot_name, bot_id)}
        self.users: dict[str, JsonDict] = {}
        self.channels: dict[str, JsonDict] = {}
        self.usergroups: dict[str, JsonDict] = {}
        self.messages: dict[tuple[str, str], JsonDict] = {}
        self.ephemeral: list[JsonDict] = []
        self.views: dict[str, JsonDict] = {}
        self.home_views: dict[str, JsonDict] = {}
        self.reactions: list[JsonDict] = []
        self.uploads: dict[str, JsonDict] = {}
        self.api_calls: list[SlackCall] = []
        self.response_urls: dict[str, ResponseUrl] = {}
        self.used_trigger_ids: set[str] = set()
        self.expired_trigger_ids: set[str] = set()
        self._forced_errors: dict[str, list[Any]] = {}
        self._counter = itertools.count(1)

    # -- addresses ---------------------------------------------------------

    @property
    def url(self) -> str:
        """The Web API base URL, with its trailing slash (``base_url`` of slack_sdk)."""
        return f"{self.root}/api/"

    def response_url(self) -> str:
        """A fresh response URL, as Slack puts in slash commands and interactions."""
        url = f"{self.root}/response/{next(self._counter)}"
        self.response_urls[url] = ResponseUrl(url)
        return url

    def expire_response_url(self, url: str) -> None:
        self.response_urls[url].expired = True

    # -- seeding -----------------------------------------------------------

    def add_token(self, token: str, user_id: str, user: str = "someone", bot_id: str | None = None) -> None:
        self.tokens[token] = Identity(user_id, user, bot_id)

    def add_user(self, user_id: str, *, email: str | None = None, real_name: str | None = None,
                 name: str | None = None, tz: str = "America/Los_Angeles", tz_offset: int = -28800,
                 is_bot: bool = False, deleted: bool = False, **extra: Any) -> JsonDict:
        """A workspace member, as ``users.info`` shows it; ``extra`` lands at the top level."""
        name = name or (email.split("@")[0] if email else user_id.lower())
        real_name = real_name or name
        profile = {"real_name": real_name, "real_name_normalized": real_name, "display_name": name,
                   "display_name_normalized": name, "team": self.team_id}
        if email:
            profile["email"] = email
        user = {"id": user_id, "team_id": self.team_id, "name": name, "deleted": deleted,
                "real_name": real_name, "tz": tz, "tz_label": tz, "tz_offset": tz_offset, "profile": profile,
                "is_admin": False, "is_owner": False, "is_bot": is_bot, "is_app_user": False,
                "updated": 1700000000, **extra}
        self.users[user_id] = user
        return user

    def add_channel(self, channel_id: str, name: str, *, is_private: bool = False, is_archived: bool = False,
                    members: list[str] | None = None, topic: str = "", purpose: str = "") -> JsonDict:
        """A conversation; with ``members`` given, posting needs the bot among them."""
        channel = {"id": channel_id, "name": name, "name_normalized": name, "is_channel": not is_private,
                   "is_group": False, "is_im": False, "is_mpim": False, "is_private": is_private,
                   "is_archived": is_archived, "is_general": False, "created": 1700000000,
                   "creator": "U0CREATOR", "is_shared": False, "is_ext_shared": False, "is_org_shared": False,
                   "is_member": members is None or self.bot_user_id in members,
                   "topic": {"value": topic, "creator": "", "last_set": 0},
                   "purpose": {"value": purpose, "creator": "", "last_set": 0}}
        if members is not None:
            channel["num_members"] = len(members)
        self.channels[channel_id] = {**channel, "_members": members}
        return channel

    def add_usergroup(self, usergroup_id: str, handle: str, users: list[str], name: str | None = None) -> None:
        self.usergroups[usergroup_id] = {"id": usergroup_id, "handle": handle, "name": name or handle,
                                         "users": list(users)}

    def add_message(self, channel: str, text: str, user: str = "U0USER", ts: str | None = None,
                    **extra: Any) -> JsonDict:
        """A message somebody else posted (so chat.update answers ``cant_update_message``)."""
        message = {"type": "message", "user": user, "text": text, "ts": ts or self._next_ts(), **extra}
        self.messages[(channel, message["ts"])] = message
        return message

    def fail_method(self, method: str, error: str, times: int | None = None) -> None:
        """Answer ``method`` with ``error`` (the next ``times`` calls, or until ``clear_failures``)."""
        self._forced_errors[method] = [error, times]

    def clear_failures(self) -> None:
        self._forced_errors.clear()

    def expire_trigger(self, trigger_id: str) -> None:
        """Make ``trigger_id`` answer ``expired_trigger_id`` (Slack's 3-second limit passed)."""
        self.expired_trigger_ids.add(trigger_id)

    # -- what happened -----------------------------------------------------

    def calls(self, method: str) -> list[JsonDict]:
        """The decoded arguments of each processed call to ``method``, oldest first."""
        return [call.args for call in self.api_calls if call.method == method]

    async def wait_for_call(self, method: str, predicate: Callable[[JsonDict], bool] = lambda args: True,
                            timeout: float = 5.0) -> JsonDict:
        """The arguments of the first processed ``method`` call matching ``predicate``."""
        call = await poll(lambda: self.api_calls,
                          lambda c: c.method == method and predicate(c.args), timeout, what=f"{method} call")
        return call.args

    @property
    def responses(self) -> list[JsonDict]:
        """Every payload posted to any response URL, oldest first."""
        return [payload for url in self.response_urls.values() for payload in url.payloads]

    def responses_to(self, url: str) -> list[JsonDict]:
        """The payloads posted to one response URL, oldest first."""
        target = self.response_urls.get(url)
        return list(target.payloads) if target else []

    async def wait_for_response(self, predicate: Callable[[JsonDict], bool] = lambda payload: True,
                                timeout: float = 5.0, *, url: str | None = None) -> JsonDict:
        """The first payload posted to a response URL (only ``url``, if given) matching ``predicate``."""
        source = (lambda: self.responses_to(url)) if url else (lambda: self.responses)
        return await poll(source, predicate, timeout, what="response_url payload")

    # -- HTTP --------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/api/{method}", self._handle_api)
        router.add_post("/response/{n}", self._handle_response_url)
        router.add_post("/upload/v1/{file_id}", self._handle_upload)

    def error_response(self, status: int, request: web.Request) -> web.Response:
        if status == 429:
            error = "ratelimited"
        elif status >= 500:
            error = SERVER_ERRORS.get(status, "internal_error")
        else:
            error = "not_found" if status == 404 else "invalid_request"
        return json_response({"ok": False, "error": error}, status=status)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            return json_response({"ok": True, **self._dispatch(method, self._arguments(request), request)})
        except SlackMethodError as error:
            return json_response({"ok": False, "error": error.error, **error.extra})

    def _arguments(self, request: web.Request) -> JsonDict:
        args: JsonDict = dict(request.query)
        body = recorded(request).body
        if isinstance(body, dict):
            args.update(body)
        return _decode_fields(args)

    def _dispatch(self, method: str, args: JsonDict, request: web.Request) -> JsonDict:
        implementation = METHODS.get(method)
        if implementation is None:
            raise SlackMethodError("unknown_method", req_method=method)
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else args.get("token", "")
        if not token:
            raise SlackMethodError("not_authed")
        identity = self.tokens.get(token)
        if identity is None:
            raise SlackMethodError("invalid_auth")
        args.pop("token", None)
        call = SlackCall(method, args, token, identity)
        self.api_calls.append(call)
        self._raise_forced_error(method)
        return implementation(self, call)

    def _raise_forced_error(self, method: str) -> None:
        forced = self._forced_errors.get(method)
        if forced is None:
            return
        error, times = forced
        if times is not None:
            forced[1] = times - 1
            if forced[1] <= 0:
                del self._forced_errors[method]
        raise SlackMethodError(error)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        url = f"{self.root}{request.path}"
        target = self.response_urls.setdefault(url, ResponseUrl(url))
        if target.expired:
            raise FakeHTTPError(404, "expired_url")
        if len(target.payloads) >= MAX_RESPONSE_URL_USES:
            raise FakeHTTPError(404, "used_url")
        payload = recorded(request).body
        if not isinstance(payload, dict):
            raise FakeHTTPError(400, "invalid_payload")
        target.payloads.append(payload)
        return web.Response(text="ok", content_type="text/html")

    async def _handle_upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            raise FakeHTTPError(404, "file_not_found")
        upload["content"] = recorded(request).raw
        return web.Response(text=f"OK - {len(upload['content'])}", content_type="text/plain")
