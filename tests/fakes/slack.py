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
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .base import FakeHTTPError, FakeServer, JsonDict, json_response, poll, recorded

DEFAULT_BOT_TOKEN = "xoxb-fake-bot-token"
DEFAULT_TEAM_ID = "T0FAKE"
MAX_RESPONSE_URL_USES = 5
JSON_FIELDS = frozenset({"blocks", "attachments", "view", "files", "metadata", "unfurls", "users"})
SERVER_ERRORS = {503: "service_unavailable", 504: "request_timeout"}

SlackMethod = Callable[["SlackFake", "SlackCall"], JsonDict]
_METHODS: dict[str, SlackMethod] = {}


def api(name: str) -> Callable[[SlackMethod], SlackMethod]:
    """Register a ``SlackFake`` method as the implementation of Web API method ``name``."""
    def register(function: SlackMethod) -> SlackMethod:
        _METHODS[name] = function
        return function
    return register


class SlackApiError(Exception):
    """A Slack ``{"ok": false, "error": ...}`` answer."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass(frozen=True)
class Identity:
    """Whom a token belongs to (what ``auth.test`` tells)."""

    user_id: str
    user: str
    bot_id: str | None = None


@dataclass
class SlackCall:
    """A Web API call the fake processed."""

    method: str
    args: JsonDict
    token: str
    identity: Identity

    def arg(self, name: str) -> Any:
        """A required argument: missing or empty is ``invalid_arguments``."""
        value = self.args.get(name)
        if value in (None, ""):
            raise SlackApiError("invalid_arguments",
                                response_metadata={"messages": [f"[ERROR] missing required field: {name}"]})
        return value


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


class SlackFake(FakeServer):
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

    async def wait_for_response(self, predicate: Callable[[JsonDict], bool] = lambda payload: True,
                                timeout: float = 5.0) -> JsonDict:
        return await poll(lambda: self.responses, predicate, timeout, what="response_url payload")

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
            return json_response({"ok": True, **self._dispatch(method, await self._arguments(request), request)})
        except SlackApiError as error:
            return json_response({"ok": False, "error": error.error, **error.extra})

    async def _arguments(self, request: web.Request) -> JsonDict:
        args: JsonDict = dict(request.query)
        body = recorded(request).body
        if isinstance(body, dict):
            args.update(body)
        elif request.content_type == "multipart/form-data":
            args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return _decode_fields(args)

    def _dispatch(self, method: str, args: JsonDict, request: web.Request) -> JsonDict:
        implementation = _METHODS.get(method)
        if implementation is None:
            raise SlackApiError("unknown_method", req_method=method)
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else args.get("token", "")
        if not token:
            raise SlackApiError("not_authed")
        identity = self.tokens.get(token)
        if identity is None:
            raise SlackApiError("invalid_auth")
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
        raise SlackApiError(error)

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

    # -- helpers of the methods --------------------------------------------

    def _next_ts(self) -> str:
        micros = 100 * next(self._counter)
        return f"{1700000000 + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter):08X}"

    def _channel_for_posting(self, call: SlackCall) -> str:
        channel = call.args.get("channel")
        if not channel:
            raise SlackApiError("channel_not_found")
        if channel[0] in "UW":  # a user ID posts to the DM with that user
            return f"D{channel[1:]}"
        known = self.channels.get(channel)
        if known is not None:
            if known["is_archived"]:
                raise SlackApiError("is_archived")
            if known["_members"] is not None and call.identity.user_id not in known["_members"]:
                raise SlackApiError("not_in_channel")
        return channel

    def _own_message(self, call: SlackCall) -> JsonDict:
        channel, ts = call.arg("channel"), call.arg("ts")
        message = self.messages.get((channel, ts))
        if message is None:
            raise SlackApiError("message_not_found")
        if message.get("user") != call.identity.user_id:
            raise SlackApiError("cant_update_message" if call.method == "chat.update" else "cant_delete_message")
        return message

    def _consume_trigger(self, call: SlackCall) -> None:
        trigger_id = call.arg("trigger_id")
        if trigger_id in self.expired_trigger_ids:
            raise SlackApiError("expired_trigger_id")
        if trigger_id in self.used_trigger_ids:
            raise SlackApiError("exchanged_trigger_id")
        self.used_trigger_ids.add(trigger_id)

    def _store_view(self, view: Any, view_id: str | None = None, **links: str | None) -> JsonDict:
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            raise SlackApiError("invalid_arguments",
                                response_metadata={"messages": ["[ERROR] must provide a valid view object"]})
        view_id = view_id or self._new_id("V")
        stored = {"id": view_id, "team_id": self.team_id, "type": view["type"],
                  "blocks": view.get("blocks", []), "private_metadata": view.get("private_metadata", ""),
                  "callback_id": view.get("callback_id", ""), "external_id": view.get("external_id", ""),
                  "state": {"values": {}}, "hash": f"{1700000000 + next(self._counter)}.{secrets.token_hex(4)}",
                  "clear_on_close": view.get("clear_on_close", False),
                  "notify_on_close": view.get("notify_on_close", False),
                  "app_id": self.app_id, "bot_id": self.bot_id, "app_installed_team_id": self.team_id,
                  "root_view_id": links.get("root_view_id") or view_id,
                  "previous_view_id": links.get("previous_view_id")}
        for key in ("title", "submit", "close"):
            if key in view:
                stored[key] = view[key]
        self.views[view_id] = stored
        return stored

    def _file_object(self, file_id: str, call: SlackCall, title: str | None) -> JsonDict:
        upload = self.uploads[file_id]
        upload.update(title=title or upload["name"], channel_id=call.args.get("channel_id"),
                      initial_comment=call.args.get("initial_comment"), thread_ts=call.args.get("thread_ts"),
                      completed=True)
        return {"id": file_id, "created": 1700000000, "timestamp": 1700000000, "name": upload["name"],
                "title": upload["title"], "size": len(upload.get("content") or b""), "user": call.identity.user_id,
                "url_private": f"{self.root}/files/{file_id}/{upload['name']}",
                "permalink": f"https://fake.slack.com/files/{call.identity.user_id}/{file_id}/{upload['name']}"}

    # -- the methods -------------------------------------------------------

    @api("auth.test")
    def _auth_test(self, call: SlackCall) -> JsonDict:
        answer = {"url": f"https://{self.team.lower().replace(' ', '-')}.slack.com/", "team": self.team,
                  "user": call.identity.user, "team_id": self.team_id, "user_id": call.identity.user_id,
                  "is_enterprise_install": False}
        if call.identity.bot_id:
            answer["bot_id"] = call.identity.bot_id
        return answer

    @api("chat.postMessage")
    def _chat_post_message(self, call: SlackCall) -> JsonDict:
        channel = self._channel_for_posting(call)
        if not any(call.args.get(key) for key in ("text", "blocks", "attachments")):
            raise SlackApiError("no_text")
        ts = self._next_ts()
        message = {"type": "message", "text": call.args.get("text", ""), "user": call.identity.user_id,
                   "bot_id": call.identity.bot_id, "app_id": self.app_id, "team": self.team_id, "ts": ts}
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if call.args.get(key):
                message[key] = call.args[key]
        self.messages[(channel, ts)] = message
        return {"channel": channel, "ts": ts, "message": message}

    @api("chat.postEphemeral")
    def _chat_post_ephemeral(self, call: SlackCall) -> JsonDict:
        channel, user = self._channel_for_posting(call), call.arg("user")
        known = self.channels.get(channel)
        if known and known["_members"] is not None and user not in known["_members"]:
            raise SlackApiError("user_not_in_channel")
        if not any(call.args.get(key) for key in ("text", "blocks", "attachments")):
            raise SlackApiError("no_text")
        ts = self._next_ts()
        self.ephemeral.append({"channel": channel, "user": user, "message_ts": ts, **call.args})
        return {"message_ts": ts}

    @api("chat.update")
    def _chat_update(self, call: SlackCall) -> JsonDict:
        message = self._own_message(call)
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in call.args:
                message[key] = call.args[key]
        message["edited"] = {"user": call.identity.user_id, "ts": self._next_ts()}
        return {"channel": call.args["channel"], "ts": call.args["ts"], "text": message.get("text", ""),
                "message": message}

    @api("chat.delete")
    def _chat_delete(self, call: SlackCall) -> JsonDict:
        self._own_message(call)
        del self.messages[(call.args["channel"], call.args["ts"])]
        return {"channel": call.args["channel"], "ts": call.args["ts"]}

    @api("users.info")
    def _users_info(self, call: SlackCall) -> JsonDict:
        user = self.users.get(call.arg("user"))
        if user is None:
            raise SlackApiError("user_not_found")
        return {"user": user}

    @api("users.lookupByEmail")
    def _users_lookup_by_email(self, call: SlackCall) -> JsonDict:
        email = call.arg("email").lower()
        for user in self.users.values():
            if user["profile"].get("email", "").lower() == email:
                return {"user": user}
        raise SlackApiError("users_not_found")

    @api("conversations.info")
    def _conversations_info(self, call: SlackCall) -> JsonDict:
        channel = self.channels.get(call.arg("channel"))
        if channel is None:
            raise SlackApiError("channel_not_found")
        return {"channel": {k: v for k, v in channel.items() if not k.startswith("_")}}

    @api("reactions.add")
    def _reactions_add(self, call: SlackCall) -> JsonDict:
        reaction = {"channel": call.arg("channel"), "timestamp": call.arg("timestamp"), "name": call.arg("name"),
                    "user": call.identity.user_id}
        if reaction in self.reactions:
            raise SlackApiError("already_reacted")
        self.reactions.append(reaction)
        message = self.messages.get((reaction["channel"], reaction["timestamp"]))
        if message is not None:
            message.setdefault("reactions", []).append({"name": reaction["name"], "users": [reaction["user"]],
                                                        "count": 1})
        return {}

    @api("usergroups.users.list")
    def _usergroups_users_list(self, call: SlackCall) -> JsonDict:
        group = self.usergroups.get(call.arg("usergroup"))
        if group is None:
            raise SlackApiError("no_such_subteam")
        return {"users": list(group["users"])}

    @api("views.open")
    def _views_open(self, call: SlackCall) -> JsonDict:
        self._consume_trigger(call)
        return {"view": self._store_view(call.arg("view"))}

    @api("views.push")
    def _views_push(self, call: SlackCall) -> JsonDict:
        self._consume_trigger(call)
        return {"view": self._store_view(call.arg("view"))}

    @api("views.update")
    def _views_update(self, call: SlackCall) -> JsonDict:
        view_id, external_id = call.args.get("view_id"), call.args.get("external_id")
        if not view_id and not external_id:
            raise SlackApiError("invalid_arguments",
                                response_metadata={"messages": ["[ERROR] view_id or external_id is required"]})
        current = self.views.get(view_id) if view_id else next(
            (v for v in self.views.values() if v["external_id"] == external_id), None)
        if current is None:
            raise SlackApiError("not_found")
        if call.args.get("hash") and call.args["hash"] != current["hash"]:
            raise SlackApiError("hash_conflict")
        return {"view": self._store_view(call.arg("view"), view_id=current["id"],
                                         root_view_id=current["root_view_id"],
                                         previous_view_id=current["previous_view_id"])}

    @api("views.publish")
    def _views_publish(self, call: SlackCall) -> JsonDict:
        user_id, view = call.arg("user_id"), call.arg("view")
        if isinstance(view, dict) and view.get("type") != "home":
            raise SlackApiError("invalid_arguments",
                                response_metadata={"messages": ["[ERROR] views.publish takes a home view"]})
        previous = self.home_views.get(user_id)
        stored = self._store_view(view, view_id=previous["id"] if previous else None)
        self.home_views[user_id] = stored
        return {"view": stored}

    @api("files.getUploadURLExternal")
    def _files_get_upload_url_external(self, call: SlackCall) -> JsonDict:
        name, length = call.arg("filename"), call.arg("length")
        if not str(length).isdigit() or int(length) <= 0:
            raise SlackApiError("invalid_arguments",
                                response_metadata={"messages": ["[ERROR] length must be a positive integer"]})
        file_id = self._new_id("F")
        self.uploads[file_id] = {"id": file_id, "name": name, "length": int(length), "content": None,
                                 "completed": False}
        return {"upload_url": f"{self.root}/upload/v1/{file_id}", "file_id": file_id}

    @api("files.completeUploadExternal")
    def _files_complete_upload_external(self, call: SlackCall) -> JsonDict:
        files = call.arg("files")
        if not isinstance(files, list) or not all(isinstance(f, dict) and f.get("id") for f in files):
            raise SlackApiError("invalid_arguments",
                                response_metadata={"messages": ["[ERROR] files must be a list of {id, title}"]})
        for item in files:
            upload = self.uploads.get(item["id"])
            if upload is None or upload["content"] is None:
                raise SlackApiError("file_not_found")
        if call.args.get("channel_id"):
            self._channel_for_posting(SlackCall(call.method, {"channel": call.args["channel_id"]},
                                                call.token, call.identity))
        return {"files": [self._file_object(item["id"], call, item.get("title")) for item in files]}
