"""The Slack Web API methods ``SlackFake`` implements, each as Slack documents it.

Each method is a ``SlackMethods`` function registered under its API name
with ``@api("chat.postMessage")``: it gets the ``SlackCall`` (decoded
arguments, the caller's ``Identity``) and returns the body of an ``ok``
answer, or raises ``SlackMethodError("the_error")`` for ``{"ok": false}``.
``SlackMethods`` is a mixin: the workspace state it reads and writes is
kept, and seeded, by ``SlackFake`` (``slack.py``).
"""
from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import JsonDict

SlackMethod = Callable[["SlackMethods", "SlackCall"], JsonDict]
METHODS: dict[str, SlackMethod] = {}


def api(name: str) -> Callable[[SlackMethod], SlackMethod]:
    """Register a ``SlackMethods`` function as the implementation of Web API method ``name``."""
    def register(function: SlackMethod) -> SlackMethod:
        METHODS[name] = function
        return function
    return register


class SlackMethodError(Exception):
    """A Slack ``{"ok": false, "error": ...}`` answer."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def invalid_arguments(problem: str) -> SlackMethodError:
    """Slack's answer to a missing or malformed argument."""
    return SlackMethodError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {problem}"]})


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
            raise invalid_arguments(f"missing required field: {name}")
        return value


class SlackMethods:
    """The Web API methods, over the workspace state that ``SlackFake`` keeps."""

    root: str
    team_id: str
    team: str
    app_id: str
    bot_id: str
    users: dict[str, JsonDict]
    channels: dict[str, JsonDict]
    usergroups: dict[str, JsonDict]
    messages: dict[tuple[str, str], JsonDict]
    ephemeral: list[JsonDict]
    views: dict[str, JsonDict]
    home_views: dict[str, JsonDict]
    reactions: list[JsonDict]
    uploads: dict[str, JsonDict]
    used_trigger_ids: set[str]
    expired_trigger_ids: set[str]
    _counter: itertools.count[int]

    # -- helpers -----------------------------------------------------------

    def _next_ts(self) -> str:
        micros = 100 * next(self._counter)
        return f"{1700000000 + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter):08X}"

    def _channel_for_posting(self, call: SlackCall) -> str:
        channel = call.args.get("channel")
        if not channel:
            raise SlackMethodError("channel_not_found")
        if channel[0] in "UW":  # a user ID posts to the DM with that user
            return f"D{channel[1:]}"
        known = self.channels.get(channel)
        if known is not None:
            if known["is_archived"]:
                raise SlackMethodError("is_archived")
            if known["_members"] is not None and call.identity.user_id not in known["_members"]:
                raise SlackMethodError("not_in_channel")
        return channel

    def _own_message(self, call: SlackCall) -> JsonDict:
        channel, ts = call.arg("channel"), call.arg("ts")
        message = self.messages.get((channel, ts))
        if message is None:
            raise SlackMethodError("message_not_found")
        if message.get("user") != call.identity.user_id:
            raise SlackMethodError("cant_update_message" if call.method == "chat.update" else "cant_delete_message")
        return message

    def _consume_trigger(self, call: SlackCall) -> None:
        trigger_id = call.arg("trigger_id")
        if trigger_id in self.expired_trigger_ids:
            raise SlackMethodError("expired_trigger_id")
        if trigger_id in self.used_trigger_ids:
            raise SlackMethodError("exchanged_trigger_id")
        self.used_trigger_ids.add(trigger_id)

    def _store_view(self, view: Any, view_id: str | None = None, **links: str | None) -> JsonDict:
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            raise invalid_arguments("must provide a valid view object")
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
            raise SlackMethodError("no_text")
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
            raise SlackMethodError("user_not_in_channel")
        if not any(call.args.get(key) for key in ("text", "blocks", "attachments")):
            raise SlackMethodError("no_text")
        ts = self._next_ts()
        self.ephemeral.append({**call.args, "channel": channel, "user": user, "message_ts": ts})
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
            raise SlackMethodError("user_not_found")
        return {"user": user}

    @api("users.lookupByEmail")
    def _users_lookup_by_email(self, call: SlackCall) -> JsonDict:
        email = call.arg("email").lower()
        for user in self.users.values():
            if user["profile"].get("email", "").lower() == email:
                return {"user": user}
        raise SlackMethodError("users_not_found")

    @api("conversations.info")
    def _conversations_info(self, call: SlackCall) -> JsonDict:
        channel = self.channels.get(call.arg("channel"))
        if channel is None:
            raise SlackMethodError("channel_not_found")
        return {"channel": {k: v for k, v in channel.items() if not k.startswith("_")}}

    @api("reactions.add")
    def _reactions_add(self, call: SlackCall) -> JsonDict:
        reaction = {"channel": call.arg("channel"), "timestamp": call.arg("timestamp"), "name": call.arg("name"),
                    "user": call.identity.user_id}
        if reaction in self.reactions:
            raise SlackMethodError("already_reacted")
        self.reactions.append(reaction)
        message = self.messages.get((reaction["channel"], reaction["timestamp"]))
        if message is not None:
            message.setdefault("reactions", []).append({"name": reaction["name"], "users": [reaction["user"]],
                                                        "count": 1})
        return {}

    @api("conversations.replies")
    def _conversations_replies(self, call: SlackCall) -> JsonDict:
        """A thread, parent first, given the ts of its parent or of any reply in it."""
        channel, ts = call.arg("channel"), call.arg("ts")
        message = self.messages.get((channel, ts))
        if message is None:
            raise SlackMethodError("thread_not_found")
        parent = message.get("thread_ts") or ts
        thread = [m for (c, _), m in self.messages.items()
                  if c == channel and (m["ts"] == parent or m.get("thread_ts") == parent)]
        return {"messages": sorted(thread, key=lambda m: float(m["ts"])), "has_more": False}

    @api("usergroups.users.list")
    def _usergroups_users_list(self, call: SlackCall) -> JsonDict:
        group = self.usergroups.get(call.arg("usergroup"))
        if group is None:
            raise SlackMethodError("no_such_subteam")
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
            raise invalid_arguments("view_id or external_id is required")
        current = self.views.get(view_id) if view_id else next(
            (v for v in self.views.values() if v["external_id"] == external_id), None)
        if current is None:
            raise SlackMethodError("not_found")
        if call.args.get("hash") and call.args["hash"] != current["hash"]:
            raise SlackMethodError("hash_conflict")
        return {"view": self._store_view(call.arg("view"), view_id=current["id"],
                                         root_view_id=current["root_view_id"],
                                         previous_view_id=current["previous_view_id"])}

    @api("views.publish")
    def _views_publish(self, call: SlackCall) -> JsonDict:
        user_id, view = call.arg("user_id"), call.arg("view")
        if isinstance(view, dict) and view.get("type") != "home":
            raise invalid_arguments("views.publish takes a home view")
        previous = self.home_views.get(user_id)
        stored = self._store_view(view, view_id=previous["id"] if previous else None)
        self.home_views[user_id] = stored
        return {"view": stored}

    @api("files.getUploadURLExternal")
    def _files_get_upload_url_external(self, call: SlackCall) -> JsonDict:
        name, length = call.arg("filename"), call.arg("length")
        if not str(length).isdigit() or int(length) <= 0:
            raise invalid_arguments("length must be a positive integer")
        file_id = self._new_id("F")
        self.uploads[file_id] = {"id": file_id, "name": name, "length": int(length), "content": None,
                                 "completed": False}
        return {"upload_url": f"{self.root}/upload/v1/{file_id}", "file_id": file_id}

    @api("files.completeUploadExternal")
    def _files_complete_upload_external(self, call: SlackCall) -> JsonDict:
        files = call.arg("files")
        if not isinstance(files, list) or not all(isinstance(f, dict) and f.get("id") for f in files):
            raise invalid_arguments("files must be a list of {id, title}")
        for item in files:
            upload = self.uploads.get(item["id"])
            if upload is None or upload["content"] is None:
                raise SlackMethodError("file_not_found")
        if call.args.get("channel_id"):
            self._channel_for_posting(SlackCall(call.method, {"channel": call.args["channel_id"]},
                                                call.token, call.identity))
        return {"files": [self._file_object(item["id"], call, item.get("title")) for item in files]}
