"""The in-memory object store behind ``KubernetesFake``: resources, selectors, patches, Status errors.

Behaviour follows the API server
(https://kubernetes.io/docs/reference/using-api/api-concepts/):

* every object gets ``uid``, ``resourceVersion`` (one counter for the whole
  store), ``creationTimestamp``; a namespace gets its
  ``kubernetes.io/metadata.name`` label, ``spec.finalizers`` and
  ``status.phase: Active``; ``generateName`` is honoured;
* names are validated as the API server does (DNS-1123 label for
  namespaces, DNS-1123 subdomain for the others, path segment for
  RBAC objects): ``422 Invalid`` with ``causes``;
* errors are ``Status`` objects: ``404 NotFound``, ``409 AlreadyExists``,
  ``409 Conflict`` (stale ``resourceVersion``), ``422 Invalid``,
  ``400 BadRequest``;
* lists sort by namespace and name, take ``labelSelector`` (``=``, ``==``,
  ``!=``, ``in``, ``notin``, ``key``, ``!key``, ``>``, ``<``),
  ``fieldSelector`` (``=``, ``==``, ``!=`` on any dotted path), ``limit`` and
  ``continue``; items carry no ``kind``/``apiVersion``, and
  ``remainingItemCount`` is only given without selectors;
* status is a subresource for deployments, pods, namespaces and resource
  quotas: create and patch through the main resource leave it alone (seed
  it with ``KubernetesFake.add``);
* deleting a namespace removes everything in it at once (no
  ``Terminating`` wait), a pod goes at once too (no grace period).
"""
from __future__ import annotations

import base64
import binascii
import copy
import itertools
import json
import operator
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .base import FakeHTTPError, JsonDict, iso, reason_phrase, utc_now

LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_MESSAGE = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                 "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MESSAGE = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                     "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                     "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


# -- resources ---------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Resource:
    """One REST resource of the API server (compared by identity: one instance each, in ``RESOURCES``)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    name_rule: str = "subdomain"  # "label", "subdomain" or "path"
    status_subresource: bool = False
    default_status: JsonDict | None = field(default=None, repr=False)
    spec_defaults: JsonDict = field(default_factory=dict, repr=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified_plural(self) -> str:
        """``deployments.apps`` (what error messages name), ``pods`` for the core group."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def details(self, name: str, **extra: Any) -> JsonDict:
        details: JsonDict = {"name": name}
        if self.group:
            details["group"] = self.group
        return {**details, "kind": self.plural, **extra}


RESOURCES = (
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, name_rule="label", status_subresource=True,
             default_status={"phase": "Active"}),
    Resource("", "v1", "pods", "Pod", status_subresource=True, default_status={"phase": "Pending"}),
    Resource("", "v1", "resourcequotas", "ResourceQuota", status_subresource=True),
    Resource("", "v1", "limitranges", "LimitRange"),
    Resource("apps", "v1", "deployments", "Deployment", status_subresource=True, default_status={},
             spec_defaults={"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", name_rule="path"),
)
NAMESPACES = RESOURCES[0]


def find_resource(group: str, version: str, plural: str) -> Resource | None:
    return next((r for r in RESOURCES if (r.group, r.version, r.plural) == (group, version, plural)), None)


def resource_of(obj: JsonDict) -> Resource:
    """The resource an object with ``apiVersion`` and ``kind`` belongs to."""
    for resource in RESOURCES:
        if (resource.api_version, resource.kind) == (obj.get("apiVersion"), obj.get("kind")):
            return resource
    raise ValueError(f"the fake serves no {obj.get('apiVersion')}/{obj.get('kind')}")


# -- Status errors -----------------------------------------------------------

def status_body(code: int, message: str, reason: str | None = None, details: JsonDict | None = None) -> JsonDict:
    """A ``Status`` object, as the API server answers every failure."""
    body: JsonDict = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                      "reason": reason or REASONS.get(code, reason_phrase(code).replace(" ", ""))}
    if details is not None:
        body["details"] = details
    return {**body, "code": code}


def kube_error(code: int, message: str, reason: str | None = None, details: JsonDict | None = None) -> FakeHTTPError:
    return FakeHTTPError(code, status_body(code, message, reason, details))


def not_found(resource: Resource, name: str) -> FakeHTTPError:
    return kube_error(404, f'{resource.qualified_plural} "{name}" not found', details=resource.details(name))


def bad_request(message: str) -> FakeHTTPError:
    return kube_error(400, message)


def invalid(resource: Resource, name: str, causes: list[tuple[str, str]]) -> FakeHTTPError:
    """422 for ``causes``, each ``(field, "Invalid value: ...")``."""
    parts = [f"{field}: {message}" for field, message in causes]
    summary = parts[0] if len(parts) == 1 else f"[{', '.join(parts)}]"
    details = {"name": name, **({"group": resource.group} if resource.group else {}), "kind": resource.kind,
               "causes": [{"reason": "FieldValueRequired" if m.startswith("Required") else "FieldValueInvalid",
                           "message": m, "field": f} for f, m in causes]}
    return kube_error(422, f'{resource.qualified_kind} "{name}" is invalid: {summary}', details=details)


def conflict(resource: Resource, name: str) -> FakeHTTPError:
    return kube_error(409, f'Operation cannot be fulfilled on {resource.qualified_plural} "{name}": the object has '
                           "been modified; please apply your changes to the latest version and try again",
                      details=resource.details(name))


def name_problems(rule: str, name: str) -> list[str]:
    """What the API server says is wrong with ``name`` under ``rule``."""
    if rule == "path":
        if name in (".", ".."):
            return [f"may not be '{name}'"]
        return [f"may not contain '{c}'" for c in "/%" if c in name]
    limit, pattern, message = (63, LABEL_RE, LABEL_MESSAGE) if rule == "label" else (253, SUBDOMAIN_RE,
                                                                                      SUBDOMAIN_MESSAGE)
    problems = [f"must be no more than {limit} characters"] if len(name) > limit else []
    return problems + ([] if pattern.fullmatch(name) else [message])


# -- selectors ---------------------------------------------------------------

Lookup = Callable[[str], "str | None"]
Requirement = Callable[[Lookup], bool]
_SET_RE = re.compile(r"^(?P<key>[^\s!=<>(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_COMPARE_RE = re.compile(r"^(?P<key>[^\s!=<>(),]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<value>[^\s!=<>(),]*)$")
_EXISTS_RE = re.compile(r"^(?P<neg>!?)\s*(?P<key>[^\s!=<>(),]+)$")


def _split_requirements(selector: str) -> Iterator[str]:
    depth, start = 0, 0
    for index, char in enumerate(selector):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            yield selector[start:index].strip()
            start = index + 1
    yield selector[start:].strip()


def _is_int(text: str | None) -> bool:
    return text is not None and text.lstrip("-").isdigit()


def _requirement(text: str, allow_sets: bool) -> Requirement:
    if allow_sets and (match := _SET_RE.match(text)):
        key, values = match["key"], {v.strip() for v in match["values"].split(",") if v.strip()}
        if match["op"] == "in":
            return lambda lookup: lookup(key) in values
        return lambda lookup: lookup(key) not in values
    if match := _COMPARE_RE.match(text):
        key, op, value = match["key"], match["op"], match["value"]
        if op in ("=", "=="):
            return lambda lookup: lookup(key) == value
        if op == "!=":
            return lambda lookup: lookup(key) != value
        if allow_sets and _is_int(value):
            compare = operator.gt if op == ">" else operator.lt
            return lambda lookup: _is_int(lookup(key)) and compare(int(lookup(key) or 0), int(value))
    if allow_sets and (match := _EXISTS_RE.match(text)):
        key, present = match["key"], not match["neg"]
        return lambda lookup: (lookup(key) is not None) == present
    raise bad_request(f"unable to parse requirement: {text!r}")


def parse_selector(selector: str, *, allow_sets: bool = True) -> Requirement:
    """A label selector (or, with ``allow_sets=False``, a field selector) as a predicate on a lookup."""
    requirements = [_requirement(part, allow_sets) for part in _split_requirements(selector) if part]
    return lambda lookup: all(requirement(lookup) for requirement in requirements)


def field_lookup(obj: JsonDict) -> Lookup:
    """``metadata.name`` and the like, as field selectors read an object."""
    def lookup(path: str) -> str | None:
        value: Any = obj
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return str(value).lower() if isinstance(value, bool) else str(value)
    return lookup


# -- patches -----------------------------------------------------------------

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge patch is treated as one)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path and not path.startswith("/"):
        raise ValueError(f"bad JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def json_patch(target: JsonDict, operations: list[JsonDict]) -> JsonDict:
    """RFC 6902 ``add``, ``remove``, ``replace`` and ``test``; raises ValueError when one cannot apply."""
    document = copy.deepcopy(target)
    for op in operations:
        kind = op["op"]
        if kind not in ("add", "remove", "replace", "test"):
            raise ValueError(f"unsupported operation {kind!r}")
        *parents, last = _pointer(op["path"]) or [""]
        container: Any = document
        for part in parents:
            container = container[int(part)] if isinstance(container, list) else container[part]
        if isinstance(container, list):
            key: Any = len(container) if last == "-" else int(last)
            if kind == "add":
                container.insert(key, op["value"])
                continue
        else:
            key = last
            if kind != "add" and key not in container:
                raise ValueError(f"no value at {op['path']}")
        if kind == "remove":
            del container[key]
        elif kind == "test":
            if container[key] != op["value"]:
                raise ValueError(f"test failed at {op['path']}")
        else:
            container[key] = op["value"]
    return document


# -- the store ---------------------------------------------------------------

Key = tuple[Resource, str, str]


class ObjectStore:
    """Objects by (resource, namespace, name); every write bumps the one ``resourceVersion`` counter."""

    def __init__(self) -> None:
        self.objects: dict[Key, JsonDict] = {}
        self._versions = itertools.count(1000)
        self.resource_version = next(self._versions)

    # -- reads -------------------------------------------------------------

    def get(self, resource: Resource, namespace: str, name: str) -> JsonDict:
        obj = self.objects.get((resource, namespace, name))
        if obj is None:
            raise not_found(resource, name)
        return obj

    def list(self, resource: Resource, namespace: str | None, *, label_selector: str = "",
             field_selector: str = "", limit: int = 0, continue_token: str = "") -> JsonDict:
        """A ``{Kind}List`` body for one page."""
        labels_match = parse_selector(label_selector)
        fields_match = parse_selector(field_selector, allow_sets=False)
        start = self._decode_continue(continue_token) if continue_token else None
        matching = sorted(
            ((ns, name), obj) for (res, ns, name), obj in self.objects.items()
            if res == resource and (namespace is None or ns == namespace)
            and labels_match((obj["metadata"].get("labels") or {}).get) and fields_match(field_lookup(obj)))
        if start is not None:
            matching = [(key, obj) for key, obj in matching if key > start]
        page = matching[:limit] if limit > 0 else matching
        metadata: JsonDict = {"resourceVersion": str(self.resource_version)}
        if len(page) < len(matching):
            metadata["continue"] = self._encode_continue(page[-1][0])
            if not label_selector and not field_selector:
                metadata["remainingItemCount"] = len(matching) - len(page)
        items = [{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")} for _, obj in page]
        return {"kind": f"{resource.kind}List", "apiVersion": resource.api_version, "metadata": metadata,
                "items": copy.deepcopy(items)}

    def _encode_continue(self, key: tuple[str, str]) -> str:
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": self.resource_version, "start": "/".join(key)})
        return base64.urlsafe_b64encode(raw.encode()).decode()

    @staticmethod
    def _decode_continue(token: str) -> tuple[str, str]:
        try:
            namespace, _, name = json.loads(base64.urlsafe_b64decode(token.encode()))["start"].partition("/")
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise bad_request(f"continue key is not valid: {token!r}") from None
        return namespace, name

    # -- writes ------------------------------------------------------------

    def create(self, resource: Resource, namespace: str, body: Any, *, keep_status: bool = False) -> JsonDict:
        """Store a new object (``keep_status`` for seeding: the status as given)."""
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        metadata = obj.setdefault("metadata", {})
        if resource.namespaced:
            if metadata.get("namespace", namespace) != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the "
                                  "request")
            if (NAMESPACES, "", namespace) not in self.objects:
                raise not_found(NAMESPACES, namespace)
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        name = metadata.get("name") or self._generated_name(metadata.get("generateName", ""))
        self._validate_name(resource, name, generated=not metadata.get("name"))
        if (resource, namespace, name) in self.objects:
            raise kube_error(409, f'{resource.qualified_plural} "{name}" already exists', reason="AlreadyExists",
                             details=resource.details(name))
        obj.update(apiVersion=resource.api_version, kind=resource.kind)
        metadata.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=iso(utc_now()))
        self._apply_defaults(resource, obj, keep_status)
        return self._store(resource, namespace, obj)

    def replace(self, resource: Resource, namespace: str, name: str, body: Any) -> JsonDict:
        current = self.get(resource, namespace, name)
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        if (body.get("metadata") or {}).get("name") != name:
            raise bad_request(f"the name of the object ({(body.get('metadata') or {}).get('name')}) does not match "
                              f"the name on the URL ({name})")
        return self._update(resource, current, copy.deepcopy(body))

    def patch(self, resource: Resource, namespace: str, name: str, patch: Any, content_type: str) -> JsonDict:
        current = self.get(resource, namespace, name)
        if content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if not isinstance(patch, dict):
                raise bad_request("the body of the request was in an unknown format")
            return self._update(resource, current, merge_patch(current, patch))
        if content_type == "application/json-patch+json":
            try:
                return self._update(resource, current, json_patch(current, patch))
            except (ValueError, KeyError, IndexError, TypeError) as error:
                raise kube_error(422, f"the server rejected our request due to an error in our request: {error}"
                                 ) from None
        raise kube_error(415, f"the body of the request was in an unknown format - accepted media types include: "
                              "application/json-patch+json, application/merge-patch+json, "
                              f"application/strategic-merge-patch+json (got {content_type!r})")

    def delete(self, resource: Resource, namespace: str, name: str) -> JsonDict:
        """Remove the object; returns the body the API server would answer with."""
        obj = self.get(resource, namespace, name)
        del self.objects[(resource, namespace, name)]
        self.resource_version = next(self._versions)
        if resource == NAMESPACES:
            for key in [key for key in self.objects if key[0].namespaced and key[1] == name]:
                del self.objects[key]
            return {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": iso(utc_now())},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Terminating"}}
        if resource.kind == "Pod":
            return {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": iso(utc_now()),
                                        "deletionGracePeriodSeconds": 30}}
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": resource.details(name, uid=obj["metadata"]["uid"])}

    # -- helpers -----------------------------------------------------------

    def _store(self, resource: Resource, namespace: str, obj: JsonDict) -> JsonDict:
        self.resource_version = next(self._versions)
        obj["metadata"]["resourceVersion"] = str(self.resource_version)
        self.objects[(resource, namespace, obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj)

    def _update(self, resource: Resource, current: JsonDict, updated: JsonDict) -> JsonDict:
        metadata = updated.setdefault("metadata", {})
        name, namespace = current["metadata"]["name"], current["metadata"].get("namespace", "")
        sent_version = metadata.get("resourceVersion")
        if sent_version and sent_version != current["metadata"]["resourceVersion"]:
            raise conflict(resource, name)
        for immutable in ("name", "namespace"):
            if metadata.get(immutable, current["metadata"].get(immutable)) != current["metadata"].get(immutable):
                raise invalid(resource, name, [(f"metadata.{immutable}", "Invalid value: "
                                                f'"{metadata.get(immutable)}": field is immutable')])
        for kept in ("name", "namespace", "uid", "creationTimestamp"):
            if kept in current["metadata"]:
                metadata[kept] = current["metadata"][kept]
        updated.update(apiVersion=resource.api_version, kind=resource.kind)
        if resource.status_subresource:
            updated["status"] = copy.deepcopy(current.get("status", {}))
        return self._store(resource, namespace, updated)

    def _apply_defaults(self, resource: Resource, obj: JsonDict, keep_status: bool) -> None:
        if resource == NAMESPACES:
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        if resource.spec_defaults:
            obj["spec"] = {**resource.spec_defaults, **(obj.get("spec") or {})}
        if resource.status_subresource and not (keep_status and "status" in obj):
            obj["status"] = copy.deepcopy(resource.default_status or {})

    @staticmethod
    def _generated_name(prefix: str) -> str:
        return f"{prefix}{''.join(secrets.choice(GENERATE_ALPHABET) for _ in range(5))}" if prefix else ""

    @staticmethod
    def _validate_name(resource: Resource, name: str, generated: bool) -> None:
        if not name:
            raise invalid(resource, "", [("metadata.name", "Required value: name or generateName is required")])
        problems = name_problems(resource.name_rule, name)
        if problems:
            field_name = "metadata.generateName" if generated else "metadata.name"
            raise invalid(resource, name, [(field_name, f'Invalid value: "{name}": {p}') for p in problems])
