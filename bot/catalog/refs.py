"""Entity references, `[kind:][namespace/]name`, parsed the way Backstage parses them.

Canonical references are lower case (`component:default/payment-service`): Backstage compares
kinds, namespaces and names case-insensitively, so every key in our indexes is lower case.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_NAMESPACE = "default"


class RefError(ValueError):
    """A reference that cannot be parsed (empty part, missing kind where one is required)."""


@dataclass(frozen=True, slots=True)
class EntityRef:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.namespace}/{self.name}"


def parse_ref(text: str, *, default_kind: str | None = None, default_namespace: str = DEFAULT_NAMESPACE) -> EntityRef:
    """Parse `[kind:][namespace/]name`, filling in defaults; every part comes out lower case."""
    if not isinstance(text, str) or not text.strip():
        raise RefError("an entity reference must be a non-empty string")
    rest = text.strip()
    kind = default_kind
    if ":" in rest:
        kind, rest = rest.split(":", 1)
    namespace = default_namespace
    if "/" in rest:
        namespace, rest = rest.split("/", 1)
    if not kind:
        raise RefError(f"{text!r} has no kind; write it as kind:name (for example component:{rest or 'name'})")
    if not namespace or not rest or "/" in rest or ":" in rest:
        raise RefError(f"{text!r} is not a valid reference; the form is [kind:][namespace/]name")
    return EntityRef(kind.lower(), namespace.lower(), rest.lower())


def ref_key(kind: str, namespace: str | None, name: str) -> str:
    """The canonical lower-case string key for an entity."""
    return f"{kind}:{namespace or DEFAULT_NAMESPACE}/{name}".lower()


def short_ref(key: str) -> str:
    """`component:default/x` → `x`; other namespaces keep theirs: `component:ops/x` → `ops/x`."""
    _, rest = key.split(":", 1)
    namespace, name = rest.split("/", 1)
    return name if namespace == DEFAULT_NAMESPACE else rest
