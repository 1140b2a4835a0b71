"""Workload health from Kubernetes through the official client (synchronous, so in a thread of
the client's own pool, which `close()` ends).

The client is imported when a cluster is configured, not before: its generated models cost
tens of megabytes that a bot without Kubernetes should not pay.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, TypeVar

import orjson

from integrations.blocking import POOL_THREADS, BlockingPool, discard, guarded, in_thread

T = TypeVar("T")
RECENT = timedelta(hours=1)
SLOW_CALL_SECONDS = 30.0  # changes and full listings, which nobody is waiting on within Slack's 3 s


@dataclass(frozen=True)
class Deployment:
    name: str
    namespace: str
    ready: int
    desired: int


@dataclass(frozen=True)
class Health:
    deployments: tuple[Deployment, ...]
    pods: int
    pods_not_ready: tuple[str, ...]
    restarts: int
    recent_restarts: int

    @property
    def healthy(self) -> bool:
        return bool(self.deployments) and not self.pods_not_ready and all(d.ready >= d.desired for d in self.deployments)


def _moment(value: Any) -> datetime | None:
    """An RFC 3339 time as the API prints it (`2024-06-11T10:00:00Z`)."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


def _recently(container_status: dict[str, Any], now: datetime) -> bool:
    terminated = ((container_status.get("lastState") or {}).get("terminated") or {})
    finished = _moment(terminated.get("finishedAt"))
    return finished is not None and now - finished <= RECENT


def _health(deployments: list[dict[str, Any]], pods: list[dict[str, Any]], now: datetime) -> Health:
    """From the API's JSON: the client's models cost a third of each call's CPU, in a thread that
    holds the interpreter lock the event loop needs."""
    not_ready, restarts, recent = [], 0, 0
    for pod in pods:
        status = pod.get("status")
        statuses = (status or {}).get("containerStatuses") or []
        if status is None or status.get("phase") not in ("Succeeded",) and not (statuses and all(s.get("ready") for s in statuses)):
            not_ready.append((pod.get("metadata") or {}).get("name", "?"))
        restarts += sum(s.get("restartCount") or 0 for s in statuses)
        recent += sum(1 for s in statuses if _recently(s, now))
    found = []
    for d in deployments:
        metadata, spec = d.get("metadata") or {}, d.get("spec") or {}
        found.append(Deployment(metadata.get("name", "?"), metadata.get("namespace", ""), (d.get("status") or {}).get("readyReplicas") or 0,
                                spec["replicas"] if spec.get("replicas") is not None else 1))
    return Health(tuple(found), len(pods), tuple(not_ready), restarts, recent)


def _items(response: Any) -> list[dict[str, Any]]:
    """The `items` of a list call made with `_preload_content=False` (a urllib3 response)."""
    try:
        return orjson.loads(response.data).get("items") or []
    finally:
        response.release_conn()


MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclass(frozen=True)
class NamespacePlan:
    """Everything one environment's namespace holds."""

    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    quota: dict[str, str]
    container_limits: dict[str, dict[str, str]]
    ingress_namespace: str
    edit_group: str


@dataclass(frozen=True)
class ManagedNamespace:
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]


def namespace_objects(plan: NamespacePlan) -> list[dict[str, Any]]:
    """Every object of the environment, the Namespace first: what `provision` creates through the
    API, and what an infrastructure pull request commits as YAML."""
    inside = {"namespace": plan.name, "labels": plan.labels}
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": plan.name, "labels": plan.labels, "annotations": plan.annotations}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "pavedroad-quota", **inside},
         "spec": {"hard": plan.quota}},
        {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "pavedroad-limits", **inside},
         "spec": {"limits": [{"type": "Container", **plan.container_limits}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "pavedroad-default-ingress", **inside},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [
             {"podSelector": {}},
             {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": plan.ingress_namespace}}},
         ]}]}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "pavedroad-owner-edit", **inside},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": plan.edit_group}]},
    ]


class KubernetesClient:
    def __init__(self, kubeconfig: str = "", timeout: float = 3.0, threads: int = POOL_THREADS) -> None:
        from kubernetes import client, config

        self.timeout = timeout
        configuration = client.Configuration()
        # One connection per thread: with fewer (the default is cpus × 5) the calls beyond them
        # open a connection each and throw it away ("Connection pool is full, discarding connection").
        configuration.connection_pool_maxsize = threads
        if kubeconfig:
            api_client = config.new_client_from_config(config_file=kubeconfig, client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)
            api_client = client.ApiClient(configuration)
        self.api_client = api_client
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self.rbac = client.RbacAuthorizationV1Api(api_client)
        self._api_exception = client.ApiException
        self.pool = BlockingPool("Kubernetes", threads)

    async def _call(self, what: Callable[[], T], timeout: float | None = None) -> T:
        return await in_thread("Kubernetes", what, timeout or self.timeout, self._reason, self.pool)

    def _reason(self, exc: Exception) -> str | None:
        if isinstance(exc, self._api_exception):
            return f"HTTP {exc.status} {exc.reason or ''}".strip()
        if isinstance(exc, OSError) or exc.__class__.__module__.startswith("urllib3"):
            return f"unreachable ({exc.__class__.__name__})"
        return None

    async def health(self, label_selector: str, namespace: str = "") -> Health:
        """Deployments and pods matching the selector, in one namespace or all (asked at the same time)."""
        options = {"label_selector": label_selector, "_request_timeout": self.timeout, "_preload_content": False}

        def list_deployments() -> list[dict[str, Any]]:
            if namespace:
                return _items(self.apps.list_namespaced_deployment(namespace, **options))
            return _items(self.apps.list_deployment_for_all_namespaces(**options))

        def list_pods() -> list[dict[str, Any]]:
            if namespace:
                return _items(self.core.list_namespaced_pod(namespace, **options))
            return _items(self.core.list_pod_for_all_namespaces(**options))

        async with guarded("Kubernetes", self.timeout, self._reason):
            asked = (self.pool.start(list_deployments), self.pool.start(list_pods))
            try:
                deployments, pods = await asyncio.gather(*asked)
            except BaseException:
                discard(*asked)
                raise
        return _health(deployments, pods, datetime.now(timezone.utc))

    async def namespace(self, name: str) -> ManagedNamespace | None:
        def read() -> ManagedNamespace | None:
            try:
                found = self.core.read_namespace(name, _request_timeout=self.timeout)
            except self._api_exception as exc:
                if exc.status == 404:
                    return None
                raise
            return ManagedNamespace(name, dict(found.metadata.labels or {}), dict(found.metadata.annotations or {}))
        return await self._call(read)

    async def provision(self, plan: NamespacePlan) -> list[str]:
        """Create the namespace and its objects; what exists already is brought in line (409 is
        converged, never a failure). Returns what it holds, e.g. `ResourceQuota pavedroad-quota`."""
        return await self._call(lambda: self._provision(plan), SLOW_CALL_SECONDS)

    def _provision(self, plan: NamespacePlan) -> list[str]:
        namespace, *inside = namespace_objects(plan)
        self._create_or_converge(lambda: self.core.create_namespace(namespace, _request_timeout=self.timeout),
                                 lambda: self._converge_namespace(plan, namespace))
        made = [f"Namespace {plan.name}"]
        creators = {
            "ResourceQuota": (self.core.create_namespaced_resource_quota, self.core.patch_namespaced_resource_quota),
            "LimitRange": (self.core.create_namespaced_limit_range, self.core.patch_namespaced_limit_range),
            "NetworkPolicy": (self.networking.create_namespaced_network_policy, self.networking.patch_namespaced_network_policy),
            "RoleBinding": (self.rbac.create_namespaced_role_binding, self.rbac.patch_namespaced_role_binding),
        }
        for body in inside:
            kind, name = body["kind"], body["metadata"]["name"]
            create, patch = creators[kind]
            self._create_or_converge(lambda: create(plan.name, body, _request_timeout=self.timeout),
                                     lambda: patch(name, plan.name, body, _request_timeout=self.timeout))
            made.append(f"{kind} {name}")
        return made

    def _converge_namespace(self, plan: NamespacePlan, body: dict[str, Any]) -> None:
        existing = self.core.read_namespace(plan.name, _request_timeout=self.timeout)
        if (existing.metadata.labels or {}).get(MANAGED_BY) != plan.labels[MANAGED_BY]:
            raise self._api_exception(status=409, reason=f"namespace {plan.name} exists and is not managed by pavedroad")
        self.core.patch_namespace(plan.name, body, _request_timeout=self.timeout)

    def _create_or_converge(self, create: Callable[[], Any], converge: Callable[[], Any]) -> None:
        try:
            create()
        except self._api_exception as exc:
            if exc.status != 409:
                raise
            converge()

    async def annotate(self, name: str, annotations: dict[str, str]) -> None:
        await self._call(lambda: self.core.patch_namespace(name, {"metadata": {"annotations": annotations}},
                                                           _request_timeout=self.timeout))

    async def delete_namespace(self, name: str) -> bool:
        """Delete a namespace and all it holds; False when it was already gone."""
        def delete() -> bool:
            try:
                self.core.delete_namespace(name, _request_timeout=self.timeout)
                return True
            except self._api_exception as exc:
                if exc.status == 404:
                    return False
                raise
        return await self._call(delete, SLOW_CALL_SECONDS)

    async def managed_namespaces(self, label_selector: str) -> list[ManagedNamespace]:
        """Every namespace carrying the labels, read page by page."""
        def read() -> list[ManagedNamespace]:
            found, token = [], None
            while True:
                page = self.core.list_namespace(label_selector=label_selector, limit=500, _continue=token,
                                                _request_timeout=self.timeout)
                found += [ManagedNamespace(n.metadata.name, dict(n.metadata.labels or {}), dict(n.metadata.annotations or {}))
                          for n in page.items]
                token = page.metadata._continue
                if not token:
                    return found
        return await self._call(read, SLOW_CALL_SECONDS)

    def close(self) -> None:
        """End the thread pool and the client's connections."""
        self.pool.shutdown()
        self.api_client.close()
