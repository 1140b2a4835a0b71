"""A template's parameters as Slack modal views, and a submitted view's state back as values.

`spec.parameters` are JSON-schema pages in react-jsonschema-form's dialect plus Backstage's
`ui:` extensions (`OwnerPicker`, `EntityPicker`, `RepoUrlPicker`, `EntityNamePicker`). A modal
cannot show or hide inputs as the user types and holds at most 100 blocks, so the form is asked
as a sequence of *screens*: the fields of one page that the answers so far make visible and that
were not asked yet, cut to fit one view. Fields an answer reveals (`dependencies`, `if`/`then`,
the matching `oneOf` branch) come on the next screen. Block Kit is plain data: nothing here calls
Slack or does I/O.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Mapping, Sequence
from urllib.parse import parse_qs, urlencode

import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from bot.catalog.index import CatalogIndex
from bot.catalog.refs import RefError, parse_ref, short_ref
from bot.scaffolder.model import Template

MAX_BLOCKS = 100
SCREEN_OVERHEAD = 2  # the header and the "Step 1 of 2" context
MAX_OPTIONS = 100  # a static select's limit; more become an external select
VALUE = "value"  # the action id of every one-element input
ENTITY_OPTIONS = "scaffolder_entity_options"  # external selects, answered by the options listener
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


# -- views --------------------------------------------------------------------------------------

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
    initial = _entity_ref(item, item.schema.get("default"))
    chosen = next((o for o in options if o["value"] == initial), None) if initial else None
    if chosen is not None:
        element["initial_option"] = chosen
    return _with_placeholder(element, item)


ELEMENTS = {"text": _text, "EntityNamePicker": _text, "enum": _enum, "multi": _multi, "boolean": _boolean,
            "radio": _radio, "number": _number, "lines": _lines, "yaml": _yaml, "OwnerPicker": _entity,
            "EntityPicker": _entity}


def _repo_parts(value: Any) -> tuple[str, str, str]:
    """`github.com?owner=acme&repo=x` → ("github.com", "acme", "x")."""
    host, _, query = str(value or "").partition("?")
    params = parse_qs(query)
    return host, (params.get("owner") or [""])[0], (params.get("repo") or [""])[0]


def _repo_blocks(item: Field) -> list[dict[str, Any]]:
    options = item.options
    hosts = [str(h) for h in options.get("allowedHosts") or []]
    host, owner, repo = _repo_parts(item.schema.get("default"))
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


# -- entities the pickers offer -----------------------------------------------------------------

def entity_choices(index: CatalogIndex, item: Field, query: str = "") -> list[tuple[str, str]]:
    """(entity ref, label) of the catalog entities a picker offers, matching `query`, sorted."""
    filters = _catalog_filters(item)
    query = query.strip().lower()
    found = []
    for key, entity in index.entities.items():
        if query and query not in key and query not in entity.display_name.lower():
            continue
        if any(_entity_matches(entity.data, f) for f in filters):
            name = short_ref(key)
            label = name if entity.display_name in (entity.name, "") else f"{entity.display_name} ({name})"
            found.append((key, label))
    return sorted(found, key=lambda choice: choice[1].lower())


def _catalog_filters(item: Field) -> list[Mapping[str, Any]]:
    """`ui:options.catalogFilter` (one filter or a list, any of which may match), else
    `allowedKinds`, else what the picker lists by default."""
    options = item.options
    given = options.get("catalogFilter")
    if isinstance(given, Mapping):
        return [given]
    if isinstance(given, list) and given:
        return [f for f in given if isinstance(f, Mapping)]
    kinds = options.get("allowedKinds") or (["Group", "User"] if item.kind == "OwnerPicker" else [])
    return [{"kind": kinds}] if kinds else [{}]


def _entity_matches(data: Mapping[str, Any], entity_filter: Mapping[str, Any]) -> bool:
    """A catalog API filter: every `dotted.path` key matches one of its values, or `{exists: bool}`."""
    for path, wanted in entity_filter.items():
        found = _lookup(data, str(path))
        if isinstance(wanted, Mapping) and "exists" in wanted:
            if (found is not MISSING) != bool(wanted["exists"]):
                return False
            continue
        allowed = {str(w).lower() for w in _as_list(wanted)}
        if found is MISSING or str(found).lower() not in allowed:
            return False
    return True


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    """`metadata.annotations.github.com/team-slug`: annotation keys may contain dots themselves."""
    if path in data:
        return data[path]
    head, dot, rest = path.partition(".")
    while dot:
        if isinstance(data.get(head), Mapping):
            found = _lookup(data[head], rest)
            if found is not MISSING:
                return found
        more, dot, rest = rest.partition(".")
        head = f"{head}.{more}"
    return MISSING


def _entity_ref(item: Field, value: Any) -> str:
    """A picker's value as a full entity ref (`payments-team` → `group:default/payments-team`)."""
    kinds = {str(k).lower() for f in _catalog_filters(item) for k in _as_list(f.get("kind"))}
    default_kind = item.options.get("defaultKind") or (kinds.pop() if len(kinds) == 1 else None)
    try:
        return str(parse_ref(str(value), default_kind=default_kind,
                             default_namespace=str(item.options.get("defaultNamespace") or "default")))
    except RefError:
        return ""


# -- state back to values, and the errors to show -----------------------------------------------

def values_from_state(view_state: Mapping[str, Any], screen: Screen) -> dict[str, Any]:
    """The values a submitted screen holds, nested by path; empty optional inputs are left out."""
    state = view_state.get("values", view_state)
    values: dict[str, Any] = {}
    for item in screen.fields:
        value = _read(item, state)
        if value is not MISSING:
            _set(values, item.path, value)
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


def _get(values: Mapping[str, Any], path: Sequence[str]) -> Any:
    for name in path:
        if not isinstance(values, Mapping) or name not in values:
            return MISSING
        values = values[name]
    return values


def _set(values: dict[str, Any], path: Sequence[str], value: Any) -> None:
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


def screen_errors(screen: Screen, values: Mapping[str, Any], schema_errors: Mapping[str, str]) -> dict[str, str]:
    """`{block_id: message}` for `response_action: errors`. The template's rules (JSON schema:
    required, pattern, lengths, enum...; the pickers' rules: names, hosts, owners, entity refs)
    come as `schema_errors`, parameter name → message, from `Scaffolder.validate_values`; the
    form adds what only it knows: which of this screen's inputs are required, and which part of
    a repository location is wrong."""
    errors: dict[str, str] = {}
    for item in screen.fields:
        value = _get(values, item.path)
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
    _, owner, repo = _repo_parts(value)
    missing = "owner" if not owner else "repo" if not repo else ""
    return (f"{item.key}:{missing}", "Required.") if missing else None


# -- a summary for the review screen ------------------------------------------------------------

def summary(template: Template, values: Mapping[str, Any], asked: Sequence[str]) -> list[tuple[str, str]]:
    """(label, shown value) of every answered field, in form order; secrets are masked."""
    shown = []
    for page in template.parameters:
        for item in page_fields(page, values, asked):
            value = _get(values, item.path)
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
        host, owner, repo = _repo_parts(value)
        return f"{host}/{owner}/{repo}"
    return value if isinstance(value, str) else json.dumps(value)
