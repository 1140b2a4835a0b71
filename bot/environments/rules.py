"""The rules of environments that need no outside system: names, sizes, time to live."""
from __future__ import annotations

import re
from dataclasses import dataclass

from bot.config import Settings, parse_duration_hours

PURPOSES = ("preview", "staging", "load-test")
MAX_NAME = 63
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Refused(Exception):
    """A request that cannot be done; the message says what to change, in words for the user."""


def slug(text: str) -> str:
    """Anything → lower-case letters, digits and single dashes (`Payment_Service.v2` → `payment-service-v2`)."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-")


def namespace_name(service: str, purpose: str, suffix: str = "") -> str:
    """A DNS-1123 label of at most 63 characters: service, purpose and an optional suffix."""
    tail = "-".join(part for part in (slug(purpose), suffix) if part)
    head = slug(service)[: MAX_NAME - len(tail) - 1].strip("-") or "env"
    return f"{head}-{tail}" if tail else head


NAME_RULE = f"Use lower-case letters, digits and dashes (at most {MAX_NAME}), starting and ending with a letter or digit."


def check_name(name: str) -> str:
    if len(name) > MAX_NAME or not _LABEL.match(name):
        raise Refused(f"`{name[:80]}` can't be a namespace name. {NAME_RULE}")
    return name


@dataclass(frozen=True)
class Rules:
    default_ttl_hours: float
    max_ttl_hours: float
    warn_hours: float
    team_limit: int
    sizes: dict[str, dict[str, str]]
    approval_sizes: tuple[str, ...]
    ingress_namespace: str
    rbac_group: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "Rules":
        return cls(settings.env_default_ttl_hours, settings.env_max_ttl_hours, settings.env_warn_hours,
                   settings.env_team_limit, settings.env_sizes, settings.env_approval_sizes,
                   settings.env_ingress_namespace, settings.env_rbac_group)

    def ttl_hours(self, text: str | None) -> float:
        if not text:
            return self.default_ttl_hours
        hours = parse_duration_hours(text)
        if hours is None or hours <= 0:
            raise Refused(f"`{text[:40]}` is not a duration: write it like `12h`, `3d` or `1w`.")
        if hours > self.max_ttl_hours:
            raise Refused(f"{text} is longer than the {self.max_ttl_hours / 24:g}-day maximum.")
        return hours

    def size(self, text: str | None) -> str:
        size = (text or next(iter(self.sizes))).lower()
        if size not in self.sizes:
            raise Refused(f"`{size[:40]}` is not a size; choose one of {', '.join(self.sizes)}.")
        return size

    def quota(self, size: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        """The ResourceQuota `hard` and the container LimitRange (`default`, `defaultRequest`) of a size."""
        quota, limits = {}, {}
        for key, value in self.sizes[size].items():
            kind, _, resource = key.partition(".")
            if kind in ("default", "defaultRequest") and resource:
                limits.setdefault(kind, {})[resource] = value
            else:
                quota[key] = value
        return quota, limits
