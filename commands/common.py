"""Small helpers every command module shares: mrkdwn escaping, a guard for slow work, sharing a PNG."""
from __future__ import annotations

import functools
import logging
import time
import uuid
from typing import Any, Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.observability.metrics import listener_finished

log = logging.getLogger("pavedroad.commands")
MAX_QUERY = 200


def escape(text: Any) -> str:
    """Make catalog text safe inside Slack mrkdwn (`&`, `<`, `>` are control characters)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str:
    """A mrkdwn link to a web or mail address; anything else (javascript:, slack:) is shown as text."""
    if not url.lower().startswith(("https://", "http://", "mailto:")):
        return escape(label)
    safe = url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{safe}|{escape(label).replace('|', '¦')}>"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def query_text(raw: Any) -> str:
    """Command text of any length or encoding, cut to something a lookup can use."""
    text = raw if isinstance(raw, str) else ""
    return " ".join(text.replace("\x00", "").split())[:MAX_QUERY]


def guarded(work: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Run a lazy listener, timed; on an unexpected error, log it and tell the user briefly, never a trace."""
    name = f"{work.__module__.rpartition('.')[2]}.{work.__name__}"  # `dora.answer`: several modules have an `answer`

    @functools.wraps(work)
    async def run(*args: Any, **kwargs: Any) -> None:
        started, outcome = time.perf_counter(), "error"
        try:
            await work(*args, **kwargs)
            outcome = "ok"
        except Exception:
            reference = uuid.uuid4().hex[:8]
            log.exception("listener %s failed (ref %s)", work.__name__, reference)
            respond = kwargs.get("respond")
            if respond is not None:
                try:
                    await respond(response_type="ephemeral", replace_original=False,
                                  text=f":warning: Something went wrong on our side (ref `{reference}`). "
                                       "Please try again; if it keeps happening, tell the platform team that ref.")
                except Exception:  # noqa: BLE001 - the user cannot be told; the log has it
                    log.exception("could not tell the user about ref %s", reference)
        finally:
            listener_finished(name, time.perf_counter() - started, outcome)
    return run


async def upload_png(client: AsyncWebClient, png: bytes, *, channel: str, user: str, filename: str, title: str,
                     alt_text: str = "", comment: str | None = None) -> str | None:
    """Share a PNG with `files.uploadV2` in `channel`; where the bot may not post there, in the user's
    DM instead. Returns where it went, None when it could not be shared (logged, never raised)."""
    for target in dict.fromkeys(t for t in (channel, user) if t):
        try:
            await client.files_upload_v2(channel=target, file=png, filename=filename, title=title,
                                         alt_txt=alt_text or title, initial_comment=comment)
            return target
        except Exception as exc:  # noqa: BLE001 - a chart that cannot be shared never fails the answer
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else exc.__class__.__name__
            log.warning("could not upload %s to %s: %s", filename, target, error)
    return None
