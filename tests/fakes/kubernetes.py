"""A fake Kubernetes API server (plain HTTP) over the store of ``kubernetes_store.py``.

Point the official client at it::

    configuration = kubernetes.client.Configuration()
    configuration.host = k8s.url
    # with KubernetesFake(token="t"): configuration.api_key = {"authorization": "Bearer t"}
    api = kubernetes.client.ApiClient(configuration)
    core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)

The client is synchronous: call it through ``asyncio.to_thread``. It retries
reads answered 429 (or 5xx) with ``Retry-After``, as client-go does.

Served: core/v1 namespaces, pods, resourcequotas, limitranges; apps/v1
deployments; networking.k8s.io/v1 networkpolicies;
rbac.authorization.k8s.io/v1 rolebindings; verbs list (namespaced and across
namespaces), get, create, replace (PUT), patch (merge, strategic merge as
merge, JSON patch), delete; discovery (``/version``, ``/api``, ``/apis``,
``/api/v1``, ``/apis/{group}/{version}``). Every failure is a ``Status``.
Not served: watches (400), subresources (404), server-side apply (415).
Seed objects, status included, with ``k8s.add(obj)``.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from .base import FakeServer, JsonDict, json_response, reason_phrase, recorded
from .kubernetes_store import (NAMESPACES, RESOURCES, ObjectStore, Resource, bad_request, find_resource,
                                          kube_error, resource_of, status_body)

VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0", "gitCommit": "fake", "gitTreeState": "clean",
           "buildDate": "2024-08-13T07:28:49Z", "goVersion": "go1.22.5", "compiler": "gc", "platform": "linux/amd64"}
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
NOT_FOUND = "the server could not find the requested resource"


class KubernetesFake(FakeServer):
    """The API server at ``url``; ``store`` holds the objects."""

    default_content_type = "application/json"  # the API server reads a body without Content-Type as JSON

    def __init__(self, *, token: str | None = None, system_namespaces: bool = True, tls: bool = False) -> None:
        """``system_namespaces``: start with default, kube-system, kube-public, kube-node-lease, as clusters do."""
        super().__init__(tls=tls)
        self.token = token
        self.store = ObjectStore()
        for name in SYSTEM_NAMESPACES if system_namespaces else ():
            self.add_namespace(name)

    @property
    def url(self) -> str:
        return self.root

    # -- seeding and reading back ------------------------------------------

    def add(self, obj: JsonDict) -> JsonDict:
        """Store ``obj`` as given (status too); its namespace is created when missing."""
        resource = resource_of(obj)
        namespace = (obj.get("metadata") or {}).get("namespace", "default") if resource.namespaced else ""
        if resource.namespaced and (NAMESPACES, "", namespace) not in self.store.objects:
            self.add_namespace(namespace)
        return self.store.create(resource, namespace, obj, keep_status=True)

    def add_namespace(self, name: str, labels: dict[str, str] | None = None) -> JsonDict:
        return self.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name,
                                                                               "labels": dict(labels or {})}})

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> JsonDict | None:
        """The stored object, or ``None``."""
        resource = resource_of({"apiVersion": api_version, "kind": kind})
        return self.store.objects.get((resource, namespace if resource.namespaced else "", name))

    # -- HTTP --------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        for slash in ("", "/"):  # the client asks for "/version/", "/api/", "/apis/", "/apis/apps/"
            router.add_get(f"/version{slash}", self._version)
            router.add_get(f"/api{slash}", self._core_versions)
            router.add_get(f"/apis{slash}", self._groups)
            router.add_get(f"/apis/{{group}}{slash}", self._group)
        router.add_route("*", "/api/{version}{tail:.*}", self._core)
        router.add_route("*", "/apis/{group}/{version}{tail:.*}", self._grouped)

    def error_response(self, status: int, request: web.Request) -> web.Response:
        message = NOT_FOUND if status == 404 else reason_phrase(status)
        details = {"retryAfterSeconds": self._retry_after} if status == 429 else None
        if status == 429:
            message = "Too many requests, please try again later."
        return json_response(status_body(status, message, details=details), status=status)

    def _authorize(self, request: web.Request) -> None:
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            raise kube_error(401, "Unauthorized")

    async def _version(self, request: web.Request) -> web.Response:
        self._authorize(request)
        return json_response(VERSION)

    async def _core_versions(self, request: web.Request) -> web.Response:
        self._authorize(request)
        return json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}]})

    async def _groups(self, request: web.Request) -> web.Response:
        self._authorize(request)
        return json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": list(_api_groups().values())})

    async def _group(self, request: web.Request) -> web.Response:
        self._authorize(request)
        group = _api_groups().get(request.match_info["group"])
        if group is None:
            raise kube_error(404, NOT_FOUND, details={})
        return json_response({"kind": "APIGroup", "apiVersion": "v1", **group})

    async def _core(self, request: web.Request) -> web.Response:
        return await self._serve(request, "", request.match_info["version"], request.match_info["tail"])

    async def _grouped(self, request: web.Request) -> web.Response:
        info = request.match_info
        return await self._serve(request, info["group"], info["version"], info["tail"])

    async def _serve(self, request: web.Request, group: str, version: str, tail: str) -> web.Response:
        self._authorize(request)
        parts = [part for part in tail.split("/") if part]
        if not parts:
            return self._resource_list(request, group, version)
        namespace = ""
        if parts[0] == "namespaces" and len(parts) >= 3:
            namespace, parts = parts[1], parts[2:]
        resource = find_resource(group, version, parts[0])
        if resource is None or len(parts) > 2 or (namespace and not resource.namespaced):
            raise kube_error(404, NOT_FOUND, details={})
        name = parts[1] if len(parts) == 2 else None
        if name is None:
            return await self._collection(request, resource, namespace)
        if resource.namespaced and not namespace:
            raise kube_error(404, NOT_FOUND, details={})
        return await self._item(request, resource, namespace, name)

    def _resource_list(self, request: web.Request, group: str, version: str) -> web.Response:
        served = [r for r in RESOURCES if (r.group, r.version) == (group, version)]
        if not served or request.method != "GET":
            raise kube_error(404, NOT_FOUND, details={})
        return json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": served[0].api_version,
                              "resources": [{"name": r.plural, "singularName": r.kind.lower(),
                                             "namespaced": r.namespaced, "kind": r.kind, "verbs": VERBS}
                                            for r in served]})

    async def _collection(self, request: web.Request, resource: Resource, namespace: str) -> web.Response:
        if request.query.get("watch") in ("true", "1"):
            raise bad_request("this fake API server does not serve watches")
        if request.method == "GET":
            return json_response(self.store.list(
                resource, (namespace or None) if resource.namespaced else None,
                label_selector=request.query.get("labelSelector", ""),
                field_selector=request.query.get("fieldSelector", ""),
                limit=_int_param(request, "limit"), continue_token=request.query.get("continue", "")))
        if request.method == "POST":
            if resource.namespaced and not namespace:
                raise kube_error(405, "the server does not allow this method on the requested resource")
            created = self.store.create(resource, namespace, recorded(request).body)
            return json_response(created, status=201)
        raise kube_error(405, "the server does not allow this method on the requested resource")

    async def _item(self, request: web.Request, resource: Resource, namespace: str, name: str) -> web.Response:
        body: Any = recorded(request).body
        if request.method == "GET":
            return json_response(self.store.get(resource, namespace, name))
        if request.method == "PUT":
            return json_response(self.store.replace(resource, namespace, name, body))
        if request.method == "PATCH":
            return json_response(self.store.patch(resource, namespace, name, body, self._content_type(request)))
        if request.method == "DELETE":
            return json_response(self.store.delete(resource, namespace, name))
        raise kube_error(405, "the server does not allow this method on the requested resource")


def _api_groups() -> dict[str, JsonDict]:
    """The named API groups served, as discovery describes them."""
    versions: dict[str, list[str]] = {}
    for resource in RESOURCES:
        if resource.group and resource.version not in versions.setdefault(resource.group, []):
            versions[resource.group].append(resource.version)
    return {group: {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{group}/{vs[0]}", "version": vs[0]}}
            for group, vs in versions.items()}


def _int_param(request: web.Request, name: str) -> int:
    value = request.query.get(name, "0") or "0"
    if not value.isdigit():
        raise bad_request(f"invalid {name}: {value!r}")
    return int(value)
