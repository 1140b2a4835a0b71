"""Logging: one JSON object per line (or plain text for local use), each line carrying the Slack
request it belongs to (request id, user, command), with tokens and secrets redacted.

The request context lives in a context variable set when a Slack request arrives; tasks started
while handling it (lazy listeners, the work after an ack) copy it, so their lines share its id.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from dataclasses import dataclass
from typing import IO, Iterable

from bot.config import Settings


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    user: str = ""
    command: str = ""


request_context: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("pavedroad_request", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


# Token shapes redacted wherever they appear, configured or not: (pattern, replacement).
R = "[REDACTED]"
PATTERNS = [
    (re.compile(r"xox[a-z]-[A-Za-z0-9-]+"), R),                              # Slack bot/user tokens
    (re.compile(r"xapp-[A-Za-z0-9-]+"), R),                                  # Slack app-level tokens
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9_]{8,}"), R),                        # GitHub tokens
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{8,}"), R),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)", re.S), R),
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:(?:bearer|token|basic)\s+)?[^\s'\",}]+"), r"\1" + R),
    (re.compile(r"(?i)(\btoken\s*[=:]\s*['\"]?)[A-Za-z0-9_+/.-]{8,}"), r"\1" + R),  # PagerDuty's `Token token=…`
    (re.compile(r"(?i)(x-slack-signature['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"), r"\1" + R),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1" + R + "@"),             # passwords in URLs
]
REDACTED = "[REDACTED]"
SECRET_FIELDS = ("slack_bot_token", "slack_signing_secret", "slack_app_token", "backstage_token",
                 "pagerduty_api_token", "github_token", "github_app_private_key")


class Redactor:
    """Removes token shapes and the configured secret values from text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s.strip() for s in secrets if s and len(s.strip()) >= 6}
        # a PEM key may be logged a line at a time
        values |= {line.strip() for s in list(values) for line in s.splitlines() if len(line.strip()) >= 16}
        self.secrets = sorted(values, key=len, reverse=True)

    @classmethod
    def from_settings(cls, settings: Settings | None) -> "Redactor":
        return cls([getattr(settings, name, "") for name in SECRET_FIELDS] if settings else [])

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern, replacement in PATTERNS:
            text = pattern.sub(replacement, text)
        return text


class ContextFilter(logging.Filter):
    """Puts the current request's id, user and command on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = request_context.get()
        record.request_id = context.request_id if context else ""
        record.user = context.user if context else ""
        record.command = context.command if context else ""
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
        }
        for name in ("request_id", "user", "command"):
            if value := getattr(record, name, ""):
                line[name] = self.redact(str(value))
        if record.exc_info:
            line["exception"] = self.redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = self.redact(record.exc_text)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request)s: %(message)s")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", "")
        record.request = f" [{request_id}]" if request_id else ""
        return self.redact(super().format(record))


def configure(settings: Settings, *, fmt: str = "", level: str = "", stream: IO[str] | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one that writes `fmt` ("json" or "text"; default
    the LOG_FORMAT setting, else json) at `level` (default LOG_LEVEL). Returns the handler."""
    fmt = (fmt or settings.log_format or "json").lower()
    redact = Redactor.from_settings(settings)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(TextFormatter(redact) if fmt == "text" else JsonFormatter(redact))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return handler
