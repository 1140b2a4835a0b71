"""The Backstage entity envelope (`apiVersion`, `kind`, `metadata`, `spec`) and its validation.

An `Entity` keeps the document exactly as loaded (as compact JSON bytes, so 100k entities fit
in memory) plus the few fields every lookup needs. `validate` checks a raw document the way
Backstage's validators do for the built-in kinds and reports what is wrong and where.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import Any, Callable

import orjson

from bot.catalog.refs import DEFAULT_NAMESPACE, RefError, parse_ref, ref_key
from bot.catalog.relations import REFERENCE_FIELDS

CORE_API_VERSIONS = ("backstage.io/v1alpha1", "backstage.io/v1beta1")
TEMPLATE_API_VERSIONS = ("scaffolder.backstage.io/v1beta3",)
KINDS = ("Component", "API", "Resource", "System", "Domain", "Group", "User", "Location", "Template")
KIND_BY_LOWER = {k.lower(): k for k in KINDS}

NAME_RE = re.compile(r"^[a-zA-Z0-9]+(?:[-_.][a-zA-Z0-9]+)*$")
NAMESPACE_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
TAG_RE = re.compile(r"^[a-z0-9:+#]+(?:-[a-z0-9:+#]+)*$")

# Required `spec` fields per kind, as in Backstage's kind schemas: name → expected type.
REQUIRED_SPEC: dict[str, dict[str, type | tuple[type, ...]]] = {
    "Component": {"type": str, "lifecycle": str, "owner": str},
    "API": {"type": str, "lifecycle": str, "owner": str},  # newer API types (mcp-server) have no definition
    "Resource": {"type": str, "owner": str},
    "System": {"owner": str},
    "Domain": {"owner": str},
    "Group": {"type": str, "children": list},
    "User": {"memberOf": list},
    "Template": {"type": str, "steps": list},
}



@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong in the catalog, with the file and line where it is."""

    source: str
    line: int
    message: str
    entity: str = ""

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.entity + ': ' if self.entity else ''}{self.message}"


@dataclass(frozen=True, slots=True)
class Reference:
    """One reference an entity makes: `spec.<field>` → target, as relation `relation`."""

    field: str
    relation: str
    target: str
    line: int


@dataclass(frozen=True, slots=True)
class Entity:
    key: str
    kind: str
    namespace: str
    name: str
    title: str
    source: str
    line: int
    body: bytes
    refs: tuple[Reference, ...] = ()

    @property
    def data(self) -> dict[str, Any]:
        """The document as loaded; decoded on each call, so hold on to it rather than re-read."""
        return orjson.loads(self.body)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.data.get("metadata") or {}

    @property
    def spec(self) -> dict[str, Any]:
        return self.data.get("spec") or {}

    @property
    def annotations(self) -> dict[str, str]:
        return self.metadata.get("annotations") or {}

    @property
    def display_name(self) -> str:
        profile = self.spec.get("profile") or {}
        return self.title or profile.get("displayName") or self.name



def compact_json(doc: Any) -> bytes:
    """`doc` as JSON bytes of their own size: orjson's result keeps a buffer of at least 4 KB
    behind it, which at 100k entities is 400 MB for 77 MB of JSON."""
    return bytes(memoryview(orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)))


def _type_name(expected: type | tuple[type, ...]) -> str:
    names = {str: "a string", list: "a list", dict: "a mapping"}
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _checked_metadata(metadata: dict[str, Any], problem: Callable[[str, str], None]) -> dict[str, Any]:
    """Metadata with every field of the wrong shape reported and left out, so nothing downstream
    meets an annotation that is a list or a link without a URL."""
    checked = dict(metadata)
    for name in ("title", "description"):
        if name in checked and not isinstance(checked[name], str):
            problem(f"metadata.{name}", f"metadata.{name} must be a string; ignored")
            del checked[name]
    for name in ("annotations", "labels"):
        value = checked.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            problem(f"metadata.{name}", f"metadata.{name} must be a mapping of strings; ignored")
            del checked[name]
            continue
        bad = [k for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str)]
        for k in bad:
            problem(f"metadata.{name}", f"metadata.{name}.{k} must be a string (quote it); ignored")
        checked[name] = {k: v for k, v in value.items() if k not in bad}
    if "tags" in checked:
        tags = checked["tags"] if isinstance(checked["tags"], list) else []
        for tag in tags if isinstance(checked["tags"], list) else [checked["tags"]]:
            if not isinstance(tag, str) or not TAG_RE.match(tag) or len(tag) > 63:
                problem("metadata.tags", f"tag {tag!r} must be lower-case letters, digits and :+# separated by -")
        checked["tags"] = [t for t in tags if isinstance(t, str)]
    if "links" in checked:
        links = checked["links"] if isinstance(checked["links"], list) else []
        good = [link for link in links if isinstance(link, dict) and isinstance(link.get("url"), str)]
        if len(good) != len(links) or not isinstance(checked["links"], list):
            problem("metadata.links", "every metadata.links entry needs a url; the others are ignored")
        checked["links"] = good
    return checked


def validate(doc: Any, line_of: Callable[[str], int], source: str) -> tuple[Entity | None, list[Problem]]:
    """Check one YAML document; return the entity (None when it must be skipped) and problems."""
    problems: list[Problem] = []

    def problem(path: str, message: str, entity: str = "") -> None:
        problems.append(Problem(source, line_of(path), message, entity))

    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        problem("", "not a Backstage entity (no apiVersion and kind); skipped")
        return None, problems
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    metadata = doc.get("metadata")
    if not isinstance(kind, str) or kind.lower() not in KIND_BY_LOWER:
        problem("kind", f"unsupported kind {kind!r}; supported: {', '.join(KINDS)}; skipped")
        return None, problems
    kind = KIND_BY_LOWER[kind.lower()]
    allowed = TEMPLATE_API_VERSIONS if kind == "Template" else CORE_API_VERSIONS
    if api_version not in allowed:
        problem("apiVersion", f"apiVersion {api_version!r} is not valid for kind {kind} (use {allowed[0]}); skipped")
        return None, problems
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        problem("metadata", "metadata.name is missing; skipped")
        return None, problems
    name = metadata["name"]
    namespace = metadata.get("namespace") or DEFAULT_NAMESPACE
    key = ref_key(kind, namespace, name) if isinstance(namespace, str) else name
    if not NAME_RE.match(name) or len(name) > 63:
        problem("metadata.name", f"metadata.name {name!r} must be 1-63 letters and digits separated by -, _ or .; skipped")
        return None, problems
    if not isinstance(namespace, str) or not NAMESPACE_RE.match(namespace) or len(namespace) > 63:
        problem("metadata.namespace", f"metadata.namespace {namespace!r} must be a DNS label (a-z, 0-9, -); skipped")
        return None, problems
    spec = doc.get("spec")
    if kind != "Location" and not isinstance(spec, dict):
        problem("", "spec is missing; skipped", key)
        return None, problems
    for field_name, expected in REQUIRED_SPEC.get(kind, {}).items():
        if not isinstance(spec.get(field_name), expected):
            problem(f"spec.{field_name}" if field_name in spec else "spec",
                    f"spec.{field_name} must be {_type_name(expected)} for a {kind}; skipped", key)
            return None, problems
    if kind == "Location" and not (isinstance(spec, dict) and (isinstance(spec.get("target"), str) or isinstance(spec.get("targets"), list))):
        problem("spec", "a Location needs spec.target or spec.targets; skipped", key)
        return None, problems
    metadata = _checked_metadata(metadata, lambda path, message: problem(path, message, key))
    if isinstance(spec, dict) and "profile" in spec and not isinstance(spec["profile"], dict):
        problem("spec.profile", "spec.profile must be a mapping; ignored", key)
        spec = {k: v for k, v in spec.items() if k != "profile"}
    doc = {**doc, "metadata": metadata, **({"spec": spec} if spec is not None else {})}
    title = metadata.get("title")
    refs: list[Reference] = []
    for field_name, default_kind, relation in REFERENCE_FIELDS.get(kind, ()):
        value = spec.get(field_name)
        if value is None:
            continue
        path = f"spec.{field_name}"
        for text in value if isinstance(value, list) else [value]:
            try:
                target = parse_ref(text, default_kind=default_kind, default_namespace=namespace)
            except RefError as exc:
                problem(path, f"{path}: {exc}", key)
                continue
            refs.append(Reference(field_name, relation, sys.intern(str(target)), line_of(path)))
    entity = Entity(
        key=sys.intern(key), kind=kind, namespace=sys.intern(namespace.lower()), name=name, title=title or "",
        source=source, line=line_of(""), body=compact_json(doc),
        refs=tuple(refs),
    )
    return entity, problems
