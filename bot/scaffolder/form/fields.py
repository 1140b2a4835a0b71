"""The form's fields and screens: which of a template's parameters one modal view asks, given
the answers so far; the draft a form carries from view to view; values by parameter path."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Mapping, Sequence
from urllib.parse import parse_qs

from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from bot.scaffolder.model import Template

MAX_BLOCKS = 100
SCREEN_OVERHEAD = 2  # the header and the "Step 1 of 2" context
PICKERS = ("OwnerPicker", "EntityPicker", "RepoUrlPicker", "EntityNamePicker")
MISSING = object()


@dataclass(frozen=True)
class Field:
    """One input: a property (a nested object's properties are fields of their own)."""

    path: tuple[str, ...]
    schema: Mapping[str, Any]
    required: bool
    label: str
    message: Any = None  # the page's `errorMessage.properties.<name>`

    @property
    def key(self) -> str:
        """The block id, and the parameter path (`railsArguments.minimal`)."""
        return ".".join(self.path)

    @property
    def options(self) -> Mapping[str, Any]:
        return self.schema.get("ui:options") or {}

    @property
    def kind(self) -> str:
        schema = self.schema
        if schema.get("ui:field") in PICKERS:
            return str(schema["ui:field"])
        if schema.get("ui:widget") == "hidden":
            return "hidden"
        kind = schema.get("type")
        if kind == "null":
            return "markdown"
        if "enum" in schema:
            return "enum"
        if kind == "boolean":
            return "radio" if schema.get("ui:widget") == "radio" else "boolean"
        if kind in ("number", "integer"):
            return "number"
        if kind == "array":
            items = schema.get("items") or {}
            return "multi" if "enum" in items else "lines" if items.get("type", "string") == "string" else "yaml"
        return "yaml" if kind == "object" else "text"

    @property
    def blocks(self) -> int:
        """How many blocks the field takes in a view."""
        if self.kind == "hidden":
            return 0
        if self.kind == "RepoUrlPicker":
            return 2 + (len(self.options.get("allowedHosts") or []) != 1)
        return 1


@dataclass(frozen=True)
class Screen:
    """One view's worth of fields, from parameter page `page` (0-based)."""

    page: int
    title: str
    description: str
    fields: tuple[Field, ...]


@dataclass
class Draft:
    """What a form carries from view to view (in `private_metadata`): the template, the values so
    far and which fields were asked."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def encode(self) -> str:
        return json.dumps({"t": self.template, "v": self.values, "a": self.asked}, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def decode(cls, text: str) -> "Draft":
        data = json.loads(text or "{}")
        return cls(str(data.get("t", "")), dict(data.get("v") or {}), list(data.get("a") or []))


# -- which fields a page shows ------------------------------------------------------------------

def page_fields(page: Mapping[str, Any], values: Mapping[str, Any], asked: Iterable[str] = ()) -> list[Field]:
    """The page's fields in `ui:order`, with those the values so far switch on."""
    properties = dict(page.get("properties") or {})
    required = set(page.get("required") or [])
    for part in _revealed(page, values, set(asked)):
        for name, schema in (part.get("properties") or {}).items():
            properties.setdefault(name, schema)
        required |= set(part.get("required") or [])
    names = _ordered(list(properties), page.get("ui:order"))
    messages = (page.get("errorMessage") or {}).get("properties") or {}
    return [replace(f, message=messages.get(f.key)) for name in names for f in _fields((name,), properties[name], name in required)]


def _fields(path: tuple[str, ...], schema: Any, required: bool, parent: str = "") -> list[Field]:
    schema = schema if isinstance(schema, Mapping) else {}
    label = str(schema.get("title") or path[-1])
    label = f"{parent} › {label}" if parent else label
    nested = schema.get("properties")
    if schema.get("type") == "object" and isinstance(nested, Mapping) and nested and "ui:field" not in schema:
        inner = set(schema.get("required") or [])
        return [f for name in _ordered(list(nested), schema.get("ui:order"))
                for f in _fields(path + (name,), nested[name], required and name in inner, label)]
    return [Field(path, schema, required, label)]


def _ordered(names: list[str], order: Any) -> list[str]:
    """rjsf's `ui:order`: listed names first, in that order, the rest where `*` stands (else last)."""
    if not isinstance(order, list):
        return names
    listed = [n for n in order if n in names]
    rest = [n for n in names if n not in listed]
    if "*" not in order:
        return listed + rest
    star = [n for n in order if n in names or n == "*"].index("*")
    return listed[:star] + rest + listed[star:]


def _revealed(schema: Mapping[str, Any], values: Mapping[str, Any], asked: set[str]) -> Iterator[Mapping[str, Any]]:
    """The sub-schemas that the answers so far switch on."""
    for name, dependency in (schema.get("dependencies") or {}).items():
        if name in values:
            yield from _switched_on({"required": dependency} if isinstance(dependency, list) else dependency, values, asked)
    if isinstance(schema.get("if"), Mapping):
        verdict = _holds(schema["if"], values, asked)
        branch = None if verdict is None else schema.get("then" if verdict else "else")
        if isinstance(branch, Mapping):
            yield from _switched_on(branch, values, asked)
    for part in schema.get("allOf") or []:
        if isinstance(part, Mapping):
            yield from _switched_on(part, values, asked)
    branches = schema.get("oneOf") or schema.get("anyOf") or []
    chosen = next((b for b in branches if isinstance(b, Mapping) and _branch_matches(b, values)), None)
    if chosen is not None:
        yield from _switched_on(chosen, values, asked)


def _switched_on(schema: Mapping[str, Any], values: Mapping[str, Any], asked: set[str]) -> Iterator[Mapping[str, Any]]:
    yield schema
    yield from _revealed(schema, values, asked)


def _branch_matches(branch: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """rjsf's choice of a `oneOf` branch: the one whose constraints on answered fields all hold."""
    answered = {n: s for n, s in (branch.get("properties") or {}).items() if n in values}
    return bool(answered) and _valid({"properties": answered}, values)


def _holds(condition: Mapping[str, Any], values: Mapping[str, Any], asked: set[str]) -> bool | None:
    """Whether the values meet an `if` schema; None while a field it looks at is not asked yet."""
    names = set(condition.get("properties") or {}) | set(condition.get("required") or [])
    if any(name not in values and name not in asked for name in names):
        return None
    return _valid(condition, values)


def _valid(schema: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    try:
        return Draft7Validator(dict(schema)).is_valid(dict(values))
    except (SchemaError, re.error):
        return False


def next_screen(template: Template, values: Mapping[str, Any], asked: Sequence[str]) -> Screen | None:
    """The next view to show, or None when every visible field has been asked."""
    for number, page in enumerate(template.parameters):
        waiting = [f for f in page_fields(page, values, asked) if f.key not in asked and f.kind != "hidden"]
        if waiting:
            return Screen(number, str(page.get("title") or ""), str(page.get("description") or ""),
                          tuple(_first_view(waiting, MAX_BLOCKS - SCREEN_OVERHEAD)))
    return None


def _first_view(fields: list[Field], budget: int) -> list[Field]:
    taken: list[Field] = []
    for candidate in fields:
        budget -= candidate.blocks
        if budget < 0 and taken:
            break
        taken.append(candidate)
    return taken


def find_field(template: Template, key: str) -> Field | None:
    """A field by its block id, wherever it is declared (also inside `dependencies` branches)."""
    for page in template.parameters:
        for schema in _schemas(page):
            for name, prop in (schema.get("properties") or {}).items():
                for candidate in _fields((name,), prop, False):
                    if candidate.key == key:
                        return candidate
    return None


def _schemas(schema: Any) -> Iterator[Mapping[str, Any]]:
    """A schema and every sub-schema that can declare properties."""
    if not isinstance(schema, Mapping):
        return
    yield schema
    for dependency in (schema.get("dependencies") or {}).values():
        yield from _schemas(dependency)
    for word in ("then", "else"):
        yield from _schemas(schema.get(word))
    for word in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(word) or []:
            yield from _schemas(part)



def repo_parts(value: Any) -> tuple[str, str, str]:
    """`github.com?owner=acme&repo=x` → ("github.com", "acme", "x")."""
    host, _, query = str(value or "").partition("?")
    params = parse_qs(query)
    return host, (params.get("owner") or [""])[0], (params.get("repo") or [""])[0]


def value_at(values: Mapping[str, Any], path: Sequence[str]) -> Any:
    for name in path:
        if not isinstance(values, Mapping) or name not in values:
            return MISSING
        values = values[name]
    return values


def set_value(values: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for name in path[:-1]:
        values = values.setdefault(name, {})
    values[path[-1]] = value


def merge(values: Mapping[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    """Values with a later screen's values added (nested objects merged)."""
    merged = dict(values)
    for name, value in more.items():
        if isinstance(value, Mapping) and isinstance(merged.get(name), Mapping):
            value = merge(merged[name], value)
        merged[name] = value
    return merged
