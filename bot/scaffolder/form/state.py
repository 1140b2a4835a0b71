"""A submitted view's state back as values, and the errors to show on it (`response_action: errors`)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence
from urllib.parse import urlencode

import yaml

from bot.scaffolder.form.fields import MISSING, Field, Screen, repo_parts, set_value, value_at


def values_from_state(view_state: Mapping[str, Any], screen: Screen) -> dict[str, Any]:
    """The values a submitted screen holds, nested by path; empty optional inputs are left out."""
    state = view_state.get("values", view_state)
    values: dict[str, Any] = {}
    for item in screen.fields:
        value = _read(item, state)
        if value is not MISSING:
            set_value(values, item.path, value)
    return values


def _element(state: Mapping[str, Any], block_id: str) -> Mapping[str, Any]:
    actions = state.get(block_id) or {}
    return next(iter(actions.values()), {}) if isinstance(actions, Mapping) else {}


def _chosen(element: Mapping[str, Any]) -> str | None:
    return (element.get("selected_option") or {}).get("value") or element.get("value")


def _read(item: Field, state: Mapping[str, Any]) -> Any:
    kind = item.kind
    if kind in ("hidden", "markdown"):
        return MISSING
    if kind == "RepoUrlPicker":
        return _read_repo(item, state)
    element = _element(state, item.key)
    if kind == "boolean":
        return bool(element.get("selected_options"))
    if kind == "multi":
        items = (item.schema.get("items") or {}).get("enum") or []
        return [items[i] for i in (_position(o.get("value"), items) for o in element.get("selected_options") or []) if i is not None]
    raw = _chosen(element)
    if raw in (None, ""):
        return MISSING
    return READERS.get(kind, lambda _, text: text)(item, raw)


def _position(value: Any, choices: Sequence[Any]) -> int | None:
    return int(value) if str(value).isdigit() and int(value) < len(choices) else None


def _read_enum(item: Field, raw: str) -> Any:
    position = _position(raw, item.schema["enum"])
    return MISSING if position is None else item.schema["enum"][position]


def _read_number(item: Field, raw: str) -> Any:
    try:
        return int(raw) if item.schema.get("type") == "integer" else float(raw)
    except ValueError:
        return raw  # the schema check says what is wrong with it


def _read_yaml(_: Field, raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


READERS = {"enum": _read_enum, "number": _read_number, "radio": lambda _, raw: raw == "true",
           "lines": lambda _, raw: [line.strip() for line in raw.splitlines() if line.strip()], "yaml": _read_yaml,
           "text": lambda _, raw: raw, "EntityNamePicker": lambda _, raw: raw.strip()}


def _read_repo(item: Field, state: Mapping[str, Any]) -> Any:
    hosts = item.options.get("allowedHosts") or []
    host = str(hosts[0]) if len(hosts) == 1 else _chosen(_element(state, f"{item.key}:host")) or ""
    owner = (_chosen(_element(state, f"{item.key}:owner")) or "").strip()
    repo = (_chosen(_element(state, f"{item.key}:repo")) or "").strip()
    if not owner and not repo:
        return MISSING
    return f"{host.strip()}?{urlencode({'owner': owner, 'repo': repo})}"



def screen_errors(screen: Screen, values: Mapping[str, Any], schema_errors: Mapping[str, str]) -> dict[str, str]:
    """`{block_id: message}` for `response_action: errors`. The template's rules (JSON schema:
    required, pattern, lengths, enum...; the pickers' rules: names, hosts, owners, entity refs)
    come as `schema_errors`, parameter name → message, from `Scaffolder.validate_values`; the
    form adds what only it knows: which of this screen's inputs are required, and which part of
    a repository location is wrong."""
    errors: dict[str, str] = {}
    for item in screen.fields:
        value = value_at(values, item.path)
        if value is MISSING and item.required and item.kind not in ("hidden", "markdown"):
            errors[_error_block(item, "")] = _custom(item) or "Required."
        elif value is not MISSING and item.kind == "RepoUrlPicker":
            errors.update(dict(filter(None, [_repo_problem(item, value)])))
    for name, message in schema_errors.items():
        item = _field_named(screen, name)
        if item is not None and not any(block.partition(":")[0] == item.key for block in errors):
            errors[_error_block(item, message)] = _custom(item) or _sentence(message)
    return errors


def _field_named(screen: Screen, name: str) -> Field | None:
    """The field an error about parameter `name` (`railsArguments`, `/a/b`) belongs to."""
    path = tuple(name.strip().strip("/").replace("/", ".").split("."))
    return next((item for item in screen.fields if item.path[: len(path)] == path or path[: len(item.path)] == item.path), None)


def _error_block(item: Field, message: str) -> str:
    """Where a field's error shows: a repository location's next to the part it is about."""
    if item.kind != "RepoUrlPicker":
        return item.key
    part = next((p for p in ("host", "owner") if p in message.lower()), "repo" if message else "owner")
    hosts = item.options.get("allowedHosts") or []
    return f"{item.key}:{'repo' if part == 'host' and len(hosts) == 1 else part}"


def _custom(item: Field) -> str | None:
    """An ajv-errors `errorMessage` for the field (on the property, or the page's for it)."""
    custom = item.schema.get("errorMessage", item.message)
    return custom if isinstance(custom, str) else None


def _sentence(message: str) -> str:
    text = str(message).strip()[:200]
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _repo_problem(item: Field, value: str) -> tuple[str, str] | None:
    """The form asks owner and repository apart: say which one is missing."""
    _, owner, repo = repo_parts(value)
    missing = "owner" if not owner else "repo" if not repo else ""
    return (f"{item.key}:{missing}", "Required.") if missing else None


# -- a summary for the review screen ------------------------------------------------------------
