"""The catalog entities an `OwnerPicker` or `EntityPicker` offers (its `catalogFilter`), and a
picked value as a full entity ref."""
from __future__ import annotations

from typing import Any, Mapping

from bot.catalog.index import CatalogIndex
from bot.catalog.refs import RefError, parse_ref, short_ref
from bot.scaffolder.form.fields import MISSING, Field


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


def entity_ref(item: Field, value: Any) -> str:
    """A picker's value as a full entity ref (`payments-team` → `group:default/payments-team`)."""
    kinds = {str(k).lower() for f in _catalog_filters(item) for k in _as_list(f.get("kind"))}
    default_kind = item.options.get("defaultKind") or (kinds.pop() if len(kinds) == 1 else None)
    try:
        return str(parse_ref(str(value), default_kind=default_kind,
                             default_namespace=str(item.options.get("defaultNamespace") or "default")))
    except RefError:
        return ""
