"""Block Kit for the form: a screen's modal view, one element per kind of field, and the review
summary. Plain data: nothing here calls Slack."""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import yaml

from bot.catalog.index import CatalogIndex
from bot.scaffolder.form.fields import MISSING, Field, Screen, page_fields, repo_parts, value_at
from bot.scaffolder.form.pickers import entity_choices, entity_ref
from bot.scaffolder.model import Template

MAX_OPTIONS = 100  # a static select's limit; more become an external select
VALUE = "value"  # the action id of every one-element input
ENTITY_OPTIONS = "scaffolder_entity_options"  # external selects, answered by the options listener


def plain(text: str, limit: int = 2000) -> dict[str, Any]:
    text = str(text)
    return {"type": "plain_text", "text": text if len(text) <= limit else text[: limit - 1] + "…"}


def screen_view(template: Template, screen: Screen, index: CatalogIndex, callback_id: str, metadata: str) -> dict[str, Any]:
    """The modal asking one screen's fields."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": plain(screen.title or template.title, 150)}]
    pages = len(template.parameters)
    intro = f"Step {screen.page + 1} of {pages}" + (f" · {screen.description}" if screen.description else "")
    blocks.append({"type": "context", "elements": [plain(intro)]})
    focused = False
    for item in screen.fields:
        focus = not focused and bool(item.schema.get("ui:autofocus"))
        focused = focused or focus
        blocks.extend(field_blocks(item, index, focus))
    return {"type": "modal", "callback_id": callback_id, "private_metadata": metadata,
            "title": plain(template.title, 24), "submit": plain("Next"),
            "close": plain("Cancel"), "blocks": blocks}


def field_blocks(item: Field, index: CatalogIndex, focus: bool = False) -> list[dict[str, Any]]:
    kind = item.kind
    if kind == "hidden":
        return []
    if kind == "markdown":
        text = _description(item) or item.label
        return [{"type": "section", "block_id": item.key, "text": {"type": "mrkdwn", "text": text[:3000]}}]
    if kind == "RepoUrlPicker":
        return _repo_blocks(item)
    element = ELEMENTS[kind](item, index)
    if focus:
        element["focus_on_load"] = True
    return [_input(item.key, item.label, element, item.required and kind not in ("boolean",), _description(item))]


def _input(block_id: str, label: str, element: dict[str, Any], required: bool, hint: str = "") -> dict[str, Any]:
    block = {"type": "input", "block_id": block_id, "label": plain(label), "optional": not required, "element": element}
    if hint:
        block["hint"] = plain(hint)
    return block


def _description(item: Field) -> str:
    parts = (item.schema.get("description"), item.schema.get("ui:help"))
    return " ".join(str(p).strip() for p in parts if p)


def _option(label: Any, value: str) -> dict[str, Any]:
    return {"text": plain(str(label), 75), "value": value}


def _with_placeholder(element: dict[str, Any], item: Field) -> dict[str, Any]:
    if item.schema.get("ui:placeholder"):
        element["placeholder"] = plain(str(item.schema["ui:placeholder"]).strip(), 150)
    return element


def _text(item: Field, _: CatalogIndex) -> dict[str, Any]:
    schema = item.schema
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": VALUE,
                               "multiline": schema.get("ui:widget") == "textarea"}
    limits = {"min_length": schema.get("minLength"), "max_length": schema.get("maxLength")}
    if item.kind == "EntityNamePicker":
        limits["max_length"] = min(63, limits["max_length"] or 63)
    element.update({k: min(int(v), 3000) for k, v in limits.items() if isinstance(v, int)})
    if schema.get("default") not in (None, ""):
        element["initial_value"] = str(schema["default"])
    return _with_placeholder(element, item)


def enum_options(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Options of an enum: `enumNames` as labels, the position as value (any enum value fits)."""
    names = list(schema.get("enumNames") or [])
    return [_option(names[i] if i < len(names) else value, str(i)) for i, value in enumerate(schema.get("enum") or [])]


def _enum(item: Field, _: CatalogIndex) -> dict[str, Any]:
    options = enum_options(item.schema)
    element: dict[str, Any] = _select(options)
    default = item.schema.get("default", MISSING)
    if default in item.schema["enum"]:
        element["initial_option"] = options[item.schema["enum"].index(default)]
    return _with_placeholder(element, item)


def _select(options: list[dict[str, Any]]) -> dict[str, Any]:
    if len(options) <= MAX_OPTIONS:
        return {"type": "static_select", "action_id": VALUE, "options": options}
    return {"type": "external_select", "action_id": ENTITY_OPTIONS, "min_query_length": 0}


def _multi(item: Field, _: CatalogIndex) -> dict[str, Any]:
    items = item.schema.get("items") or {}
    options = enum_options(items)
    element: dict[str, Any] = {"type": "multi_static_select", "action_id": VALUE, "options": options[:MAX_OPTIONS]}
    chosen = [options[items["enum"].index(v)] for v in item.schema.get("default") or [] if v in items["enum"]]
    if chosen:
        element["initial_options"] = chosen
    if isinstance(item.schema.get("maxItems"), int):
        element["max_selected_items"] = item.schema["maxItems"]
    return _with_placeholder(element, item)


def _boolean(item: Field, _: CatalogIndex) -> dict[str, Any]:
    yes = _option("Yes", "true")
    element: dict[str, Any] = {"type": "checkboxes", "action_id": VALUE, "options": [yes]}
    if item.schema.get("default") is True:
        element["initial_options"] = [yes]
    return element


def _radio(item: Field, _: CatalogIndex) -> dict[str, Any]:
    options = [_option("Yes", "true"), _option("No", "false")]
    element: dict[str, Any] = {"type": "radio_buttons", "action_id": VALUE, "options": options}
    if isinstance(item.schema.get("default"), bool):
        element["initial_option"] = options[0 if item.schema["default"] else 1]
    return element


def _number(item: Field, _: CatalogIndex) -> dict[str, Any]:
    schema = item.schema
    element: dict[str, Any] = {"type": "number_input", "action_id": VALUE, "is_decimal_allowed": schema.get("type") == "number"}
    for word, key in (("default", "initial_value"), ("minimum", "min_value"), ("maximum", "max_value")):
        if isinstance(schema.get(word), (int, float)) and not isinstance(schema.get(word), bool):
            element[key] = str(schema[word])
    return _with_placeholder(element, item)


def _lines(item: Field, _: CatalogIndex) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": VALUE, "multiline": True,
                               "placeholder": plain("One per line", 150)}
    if isinstance(item.schema.get("default"), list) and item.schema["default"]:
        element["initial_value"] = "\n".join(str(v) for v in item.schema["default"])
    return element


def _yaml(item: Field, _: CatalogIndex) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": VALUE, "multiline": True,
                               "placeholder": plain("YAML", 150)}
    if item.schema.get("default") is not None:
        element["initial_value"] = yaml.safe_dump(item.schema["default"], sort_keys=False).strip()
    return element


def _entity(item: Field, index: CatalogIndex) -> dict[str, Any]:
    choices = entity_choices(index, item)
    if not choices:  # nothing in the catalog to pick from: let the reference be typed
        return _with_placeholder({"type": "plain_text_input", "action_id": VALUE}, item)
    options = [_option(label, ref) for ref, label in choices[: MAX_OPTIONS + 1]]
    element = _select(options)
    initial = entity_ref(item, item.schema.get("default"))
    chosen = next((o for o in options if o["value"] == initial), None) if initial else None
    if chosen is not None:
        element["initial_option"] = chosen
    return _with_placeholder(element, item)


ELEMENTS = {"text": _text, "EntityNamePicker": _text, "enum": _enum, "multi": _multi, "boolean": _boolean,
            "radio": _radio, "number": _number, "lines": _lines, "yaml": _yaml, "OwnerPicker": _entity,
            "EntityPicker": _entity}


def _repo_blocks(item: Field) -> list[dict[str, Any]]:
    options = item.options
    hosts = [str(h) for h in options.get("allowedHosts") or []]
    host, owner, repo = repo_parts(item.schema.get("default"))
    blocks = []
    if len(hosts) > 1:
        host_options = [_option(h, h) for h in hosts]
        element: dict[str, Any] = {"type": "static_select", "action_id": VALUE, "options": host_options}
        element["initial_option"] = host_options[hosts.index(host) if host in hosts else 0]  # as Backstage: the first
        blocks.append(_input(f"{item.key}:host", f"{item.label}: host", element, item.required))
    elif not hosts:
        element = {"type": "plain_text_input", "action_id": VALUE, "initial_value": host or "github.com"}
        blocks.append(_input(f"{item.key}:host", f"{item.label}: host", element, item.required))
    for part, initial, allowed in (("owner", owner, options.get("allowedOwners")), ("repo", repo, options.get("allowedRepos"))):
        label = f"{item.label}: {'owner' if part == 'owner' else 'repository'}"
        blocks.append(_input(f"{item.key}:{part}", label, _choice_or_text([str(a) for a in allowed or []], initial),
                             item.required, _description(item) if part == "repo" else ""))
    return blocks


def _choice_or_text(allowed: list[str], initial: str) -> dict[str, Any]:
    if not allowed:
        element: dict[str, Any] = {"type": "plain_text_input", "action_id": VALUE, "max_length": 100}
        if initial:
            element["initial_value"] = initial
        return element
    options = [_option(a, a) for a in allowed[:MAX_OPTIONS]]
    element = {"type": "static_select", "action_id": VALUE, "options": options}
    if initial in allowed[:MAX_OPTIONS]:
        element["initial_option"] = options[allowed.index(initial)]
    return element



def summary(template: Template, values: Mapping[str, Any], asked: Sequence[str]) -> list[tuple[str, str]]:
    """(label, shown value) of every answered field, in form order; secrets are masked."""
    shown = []
    for page in template.parameters:
        for item in page_fields(page, values, asked):
            value = value_at(values, item.path)
            review = (item.schema.get("ui:backstage") or {}).get("review") or {}
            if value is not MISSING and item.kind not in ("hidden", "markdown") and review.get("show") is not False:
                shown.append((item.label, _shown(item, value)))
    return shown


def _shown(item: Field, value: Any) -> str:
    review = (item.schema.get("ui:backstage") or {}).get("review") or {}
    if item.schema.get("ui:widget") == "password" or review.get("mask"):
        return str(review.get("mask") or "••••••")
    if item.kind == "enum" and value in item.schema["enum"]:
        return enum_options(item.schema)[item.schema["enum"].index(value)]["text"]["text"]
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "–"
    if item.kind == "RepoUrlPicker":
        host, owner, repo = repo_parts(value)
        return f"{host}/{owner}/{repo}"
    return value if isinstance(value, str) else json.dumps(value)
