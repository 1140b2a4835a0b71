"""A fake Backstage software catalog (https://backstage.io/docs/features/software-catalog/software-catalog-api).

``GET {url}/api/catalog/entities/by-query`` answers ``{"items", "totalItems",
"pageInfo": {"nextCursor"?, "prevCursor"?}}`` and takes ``filter`` (repeatable:
the sets are OR'ed, the comma-separated conditions inside one AND'ed;
``key`` or ``key=value``, case-insensitive, through arrays, with
``relations.<type>=<ref>``), ``fields``, ``orderField=field,asc|desc``,
``fullTextFilterTerm``/``fullTextFilterFields``, ``limit`` (default 20) and
``cursor`` (opaque; when given, the filter, order and full-text parameters are
taken from it and ignored in the query, as the catalog does).
``GET .../entities/by-name/{kind}/{namespace}/{name}`` returns one entity.

With ``token`` set, requests need ``Authorization: Bearer <token>``: 401
otherwise. Errors have Backstage's shape: ``{"error": {"name", "message"},
"request": {"method", "url"}, "response": {"statusCode"}}``.

Point a client at ``backstage.url`` (no trailing slash); seed with
``add_entities([...])``, which fills ``metadata.uid`` and ``metadata.namespace``.
"""
from __future__ import annotations

import base64
import binascii
import copy
import json
import uuid
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from .base import FakeHTTPError, FakeServer, JsonDict, json_response, reason_phrase

DEFAULT_LIMIT = 20
ERROR_NAMES = {400: "InputError", 401: "AuthenticationError", 403: "NotAllowedError", 404: "NotFoundError",
               409: "ConflictError", 503: "ServiceUnavailableError"}
SearchPairs = set[tuple[str, "str | None"]]


def _search_pairs(entity: JsonDict) -> SearchPairs:
    """The (key, value) pairs the catalog indexes for an entity, lowercased."""
    pairs: SearchPairs = set()

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                walk(child, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, (dict, list)):
                    walk(item, path)
                else:
                    pairs.update({(path, _text(item)), (f"{path}.{_text(item)}", "true")})
        else:
            pairs.add((path, None if value is None else _text(value)))

    walk({k: v for k, v in entity.items() if k != "relations"}, "")
    pairs.update((f"relations.{r['type']}", r["targetRef"]) for r in entity.get("relations") or [])
    return {(key.lower(), value.lower() if value is not None else None) for key, value in pairs}


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _matches(pairs: SearchPairs, filter_set: str) -> bool:
    for condition in (c.strip() for c in filter_set.split(",") if c.strip()):
        key, equals, value = condition.partition("=")
        key = key.strip().lower()
        if equals and (key, value.strip().lower()) not in pairs:
            return False
        if not equals and not any(k == key for k, _ in pairs):
            return False
    return True


def _lookup(entity: JsonDict, path: str) -> Any:
    value: Any = entity
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _project(entity: JsonDict, fields: list[str]) -> JsonDict:
    """Only the subtrees named by ``fields`` (dotted paths)."""
    projected: JsonDict = {}
    for path in fields:
        value = _lookup(entity, path)
        if value is None:
            continue
        *parents, last = path.split(".")
        target = projected
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = copy.deepcopy(value)
    return projected


class BackstageFake(FakeServer):
    """The catalog backend at ``{url}/api/catalog``."""

    def __init__(self, *, token: str | None = None, tls: bool = False) -> None:
        super().__init__(tls=tls)
        self.token = token
        self.entities: list[JsonDict] = []

    @property
    def url(self) -> str:
        return self.root

    def add_entities(self, entities: Iterable[JsonDict]) -> None:
        for entity in entities:
            entity = copy.deepcopy(entity)
            metadata = entity.setdefault("metadata", {})
            metadata.setdefault("namespace", "default")
            metadata.setdefault("uid", str(uuid.uuid4()))
            self.entities.append(entity)

    # -- HTTP --------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/catalog/entities/by-query", self._by_query)
        router.add_get("/api/catalog/entities/by-name/{kind}/{namespace}/{name}", self._by_name)

    def error_response(self, status: int, request: web.Request) -> web.Response:
        message = "Too many requests, please try again later." if status == 429 else reason_phrase(status)
        return self._error(status, request, message).response()

    @staticmethod
    def _error(status: int, request: web.Request, message: str) -> FakeHTTPError:
        return FakeHTTPError(status, {"error": {"name": ERROR_NAMES.get(status, "Error"), "message": message},
                                      "request": {"method": request.method, "url": request.path_qs},
                                      "response": {"statusCode": status}})

    def _authorize(self, request: web.Request) -> None:
        if self.token is None:
            return
        header = request.headers.get("Authorization", "")
        if not header:
            raise self._error(401, request, "Missing credentials")
        if header != f"Bearer {self.token}":
            raise self._error(401, request, "Failed to authenticate: invalid token")

    async def _by_name(self, request: web.Request) -> web.Response:
        self._authorize(request)
        wanted = tuple(request.match_info[k].lower() for k in ("kind", "namespace", "name"))
        for entity in self.entities:
            metadata = entity["metadata"]
            if (entity.get("kind", "").lower(), metadata["namespace"].lower(), metadata.get("name", "").lower()) \
                    == wanted:
                return json_response(entity)
        kind, namespace, name = (request.match_info[k] for k in ("kind", "namespace", "name"))
        raise self._error(404, request, f"No entity named '{name}' found, with kind '{kind}' in namespace "
                                        f"'{namespace}'")

    async def _by_query(self, request: web.Request) -> web.Response:
        self._authorize(request)
        query = self._query(request)
        limit = self._limit(request)
        matching = self._select(query)
        offset = query["offset"]
        page = matching[offset:offset + limit]
        fields = [f.strip() for value in request.query.getall("fields", []) for f in value.split(",") if f.strip()]
        page_info: JsonDict = {}
        if offset + limit < len(matching):
            page_info["nextCursor"] = self._cursor({**query, "offset": offset + limit})
        if offset > 0:
            page_info["prevCursor"] = self._cursor({**query, "offset": max(offset - limit, 0)})
        return json_response({"items": [_project(e, fields) if fields else e for e in page],
                              "totalItems": len(matching), "pageInfo": page_info})

    def _query(self, request: web.Request) -> JsonDict:
        """What the page is of: from the cursor if any, else from the parameters."""
        cursor = request.query.get("cursor")
        if cursor:
            try:
                query = json.loads(base64.urlsafe_b64decode(cursor.encode()))
                if not isinstance(query, dict) or not isinstance(query.get("offset"), int):
                    raise ValueError("not a cursor")
            except (ValueError, binascii.Error):
                raise self._error(400, request, f"Malformed cursor: {cursor}") from None
            return query
        return {"filter": request.query.getall("filter", []), "orderField": request.query.getall("orderField", []),
                "fullTextFilterTerm": request.query.get("fullTextFilterTerm", ""),
                "fullTextFilterFields": request.query.get("fullTextFilterFields", ""), "offset": 0}

    def _limit(self, request: web.Request) -> int:
        value = request.query.get("limit", str(DEFAULT_LIMIT))
        if not value.isdigit():
            raise self._error(400, request, f"Invalid limit, not a non-negative integer: {value}")
        return int(value)

    @staticmethod
    def _cursor(query: JsonDict) -> str:
        return base64.urlsafe_b64encode(json.dumps(query).encode()).decode()

    def _select(self, query: JsonDict) -> list[JsonDict]:
        selected = [e for e in self.entities
                    if not query["filter"] or any(_matches(_search_pairs(e), f) for f in query["filter"])]
        term = query["fullTextFilterTerm"].strip().lower()
        if term:
            fields = [f.strip() for f in query["fullTextFilterFields"].split(",") if f.strip()] or [
                "metadata.name", "metadata.title"]
            selected = [e for e in selected if any(term in str(_lookup(e, f) or "").lower() for f in fields)]
        ordered = sorted(selected, key=lambda e: e["metadata"]["uid"])
        for order in reversed(query["orderField"]):
            path, _, direction = order.partition(",")
            present = [e for e in ordered if _lookup(e, path) is not None]
            absent = [e for e in ordered if _lookup(e, path) is None]
            present.sort(key=lambda e: str(_lookup(e, path)).lower(), reverse=direction.strip() == "desc")
            ordered = present + absent
        return ordered
