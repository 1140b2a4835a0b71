"""The console adapter: drives the same Bolt app and listeners with Slack-shaped payloads and
prints the replies as readable text (like Errbot's text backend or Hubot's shell).

What the bot sends to Slack (response URLs, `chat.postMessage`, `users.info`) arrives at a
loopback endpoint of the shell's own, which records it for printing.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

SHELL_USER, SHELL_CHANNEL, SHELL_TEAM = "U0SHELL", "C0SHELL", "T0SHELL"
SETTLE_SECONDS = 30.0


@dataclass(frozen=True)
class Button:
    label: str
    action_id: str
    value: str
    block_id: str
    confirm: str


class Console:
    """The loopback endpoint standing in for Slack's side of the conversation."""

    def __init__(self, files_dir: Path, email: str = "") -> None:
        self.email = email
        self.files_dir = files_dir
        """Where files the bot uploads (charts) are saved, since a terminal cannot show them."""
        self._uploads: dict[str, str] = {}  # file id → file name
        self.messages: list[dict[str, Any]] = []
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)  # the SDK reads (users.info) with GET
        app.router.add_post("/response/{id}", self._response)
        app.router.add_post("/upload/{id}", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def response_url(self) -> str:
        return f"{self.url}/response/{uuid.uuid4().hex}"

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = {**request.query, **(await request.post() if request.content_type != "application/json" else await request.json())}
        ts = f"{time.time():.0f}.{next(self._ts):06d}"
        if method == "auth.test":
            return web.json_response({"ok": True, "team_id": SHELL_TEAM, "user_id": "U0PAVEDROAD", "bot_id": "B0PAVEDROAD", "team": "shell"})
        if method == "users.info":
            return web.json_response({"ok": True, "user": {"id": body.get("user"), "profile": {"email": self.email}}})
        if method == "users.lookupByEmail":
            return web.json_response({"ok": False, "error": "users_not_found"})
        if method == "files.getUploadURLExternal":  # files_upload_v2: an upload URL, the bytes, then complete
            file_id = f"F{uuid.uuid4().hex[:10].upper()}"
            self._uploads[file_id] = Path(str(body.get("filename") or "file")).name
            return web.json_response({"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id})
        if method == "files.completeUploadExternal":
            files = body.get("files")
            for item in json.loads(files) if isinstance(files, str) else files or []:
                path = self.files_dir / self._uploads.get(item.get("id"), "file")
                self.messages.append({"text": f"[file] {item.get('title') or path.name}: saved to {path}"})
            return web.json_response({"ok": True, "files": []})
        if method.startswith("chat.") or method.startswith("views."):
            self.messages.append(body)
        return web.json_response({"ok": True, "ts": ts, "channel": body.get("channel", SHELL_CHANNEL)})

    async def _upload(self, request: web.Request) -> web.Response:
        name = self._uploads.get(request.match_info["id"])
        if name is None:
            return web.Response(status=404, text="unknown upload")
        data = await request.read()
        self.files_dir.mkdir(parents=True, exist_ok=True)
        (self.files_dir / name).write_bytes(data)
        return web.Response(text=f"OK - {len(data)}")

    async def _response(self, request: web.Request) -> web.Response:
        self.messages.append(await request.json())
        return web.Response(text="ok")


def mrkdwn_to_text(text: str) -> str:
    text = re.sub(r"<!date\^\d+\^[^|>]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"<(?:mailto:)?([^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    text = re.sub(r"<([@#])([^>|]+)>", r"\1\2", text)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<!\w)_([^\n]+?)_(?!\w)", r"\1", text)
    text = re.sub(r":([a-z0-9_+-]+):", lambda m: {"large_green_circle": "[ok]", "red_circle": "[!]", "warning": "[!]",
                                                   "rotating_light": "[page]"}.get(m.group(1), ""), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


class Shell:
    """Sends commands and button clicks into the Bolt app; collects and renders the replies."""

    def __init__(self, app: AsyncApp, console: Console) -> None:
        self.app = app
        self.console = console
        self.buttons: list[Button] = []

    async def command(self, line: str) -> str:
        command, _, text = line.strip().partition(" ")
        return await self._send({
            "command": command, "text": text, "user_id": SHELL_USER, "user_name": "shell", "channel_id": SHELL_CHANNEL,
            "channel_name": "shell", "team_id": SHELL_TEAM, "api_app_id": "A0SHELL", "trigger_id": uuid.uuid4().hex,
            "response_url": self.console.response_url(),
        }, unknown=f"Unknown command {command!r}. Type `help` to see what I can do.")

    async def click(self, number: int) -> str:
        if not 1 <= number <= len(self.buttons):
            return f"There is no button {number}."
        button = self.buttons[number - 1]
        payload = {"type": "block_actions", "user": {"id": SHELL_USER, "username": "shell"}, "team": {"id": SHELL_TEAM},
                   "channel": {"id": SHELL_CHANNEL}, "api_app_id": "A0SHELL", "trigger_id": uuid.uuid4().hex,
                   "response_url": self.console.response_url(), "container": {"type": "message"},
                   "actions": [{"type": "button", "action_id": button.action_id, "block_id": button.block_id,
                                "value": button.value, "action_ts": f"{time.time():.6f}"}]}
        return await self._send({"payload": json.dumps(payload)}, unknown="Nothing handles that button.")

    async def _send(self, form: dict[str, str], unknown: str) -> str:
        baseline = asyncio.all_tasks()
        before = len(self.console.messages)
        response = await self.app.async_dispatch(AsyncBoltRequest(
            body=urlencode(form), headers={"content-type": ["application/x-www-form-urlencoded"]}))
        if response.status == 404:
            return unknown
        replies = [json.loads(response.body)] if response.body.startswith("{") else ([{"text": response.body}] if response.body else [])
        await self._settle(baseline)
        replies += self.console.messages[before:]
        self.buttons = []
        return "\n\n".join(filter(None, (self.render(reply) for reply in replies)))

    @staticmethod
    async def _settle(baseline: set[asyncio.Task]) -> None:
        """Wait for the slow work the command started (lazy listeners) to finish."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            pending = [t for t in asyncio.all_tasks() - baseline if t is not asyncio.current_task() and not t.done()]
            if not pending:
                return
            await asyncio.wait(pending, timeout=deadline - time.monotonic())

    def render(self, message: dict[str, Any]) -> str:
        if message.get("delete_original"):
            return ""
        visibility = "(only you can see this)" if message.get("response_type") == "ephemeral" else ""
        blocks = message.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        lines = [self._block(block) for block in blocks] if blocks else [mrkdwn_to_text(message.get("text") or "")]
        text = "\n".join(line for line in lines if line)
        return f"{text}\n{visibility}".strip() if text else ""

    def _block(self, block: dict[str, Any]) -> str:
        kind = block.get("type")
        if kind == "header":
            title = block["text"]["text"]
            return f"{title}\n{'=' * len(title)}"
        if kind == "section":
            parts = [mrkdwn_to_text(block["text"]["text"])] if block.get("text") else []
            for item in block.get("fields") or []:
                label, _, value = mrkdwn_to_text(item["text"]).partition("\n")
                parts.append(f"{label}: {value}" if "\n" not in value else f"{label}:\n  " + value.replace("\n", "\n  "))
            return "\n".join(parts)
        if kind == "context":
            return "\n".join(mrkdwn_to_text(e.get("text", "")) for e in block.get("elements") or [])
        if kind == "divider":
            return "-" * 40
        if kind == "actions":
            labels = []
            for element in block.get("elements") or []:
                if element.get("type") == "button":
                    confirm = mrkdwn_to_text(((element.get("confirm") or {}).get("text") or {}).get("text", ""))
                    self.buttons.append(Button(element["text"]["text"], element["action_id"], element.get("value", ""),
                                               block.get("block_id", ""), confirm))
                    labels.append(f"[{len(self.buttons)}] {element['text']['text']}")
            return "Buttons: " + "  ".join(labels) + "  (type `click N`)" if labels else ""
        return ""
