"""Workload health from Kubernetes through the official client (synchronous, so in a thread).

The client is imported when a cluster is configured, not before: its generated models cost
tens of megabytes that a bot without Kubernetes should not pay.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, TypeVar

from integrations.blocking import in_thread

T = TypeVar("T")
RECENT = timedelta(hours=1)


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


def _recently(container_status: Any, now: datetime) -> bool:
    terminated = getattr(getattr(container_status, "last_state", None), "terminated", None)
    finished = getattr(terminated, "finished_at", None)
    return finished is not None and now - finished <= RECENT


class KubernetesClient:
    def __init__(self, kubeconfig: str = "", timeout: float = 3.0) -> None:
        from kubernetes import client, config

        self.timeout = timeout
        if kubeconfig:
            api_client = config.new_client_from_config(config_file=kubeconfig)
        else:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            api_client = client.ApiClient(configuration)
        self.api_client = api_client
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self._api_exception = client.ApiException

    async def _call(self, what: Callable[[], T]) -> T:
        return await in_thread("Kubernetes", what, self.timeout, self._reason)

    def _reason(self, exc: Exception) -> str | None:
        if isinstance(exc, self._api_exception):
            return f"HTTP {exc.status} {exc.reason or ''}".strip()
        if isinstance(exc, OSError) or exc.__class__.__module__.startswith("urllib3"):
            return f"unreachable ({exc.__class__.__name__})"
        return None

    async def health(self, label_selector: str, namespace: str = "") -> Health:
        """Deployments and pods matching the selector, in one namespace or all."""
        return await self._call(lambda: self._health(label_selector, namespace))

    def _health(self, selector: str, namespace: str) -> Health:
        options = {"label_selector": selector, "_request_timeout": self.timeout}
        if namespace:
            deployments = self.apps.list_namespaced_deployment(namespace, **options).items
            pods = self.core.list_namespaced_pod(namespace, **options).items
        else:
            deployments = self.apps.list_deployment_for_all_namespaces(**options).items
            pods = self.core.list_pod_for_all_namespaces(**options).items
        now = datetime.now(timezone.utc)
        not_ready, restarts, recent = [], 0, 0
        for pod in pods:
            statuses = (pod.status and pod.status.container_statuses) or []
            if pod.status is None or pod.status.phase not in ("Succeeded",) and not (statuses and all(s.ready for s in statuses)):
                not_ready.append(pod.metadata.name)
            restarts += sum(s.restart_count or 0 for s in statuses)
            recent += sum(1 for s in statuses if _recently(s, now))
        return Health(
            tuple(Deployment(d.metadata.name, d.metadata.namespace, d.status.ready_replicas or 0,
                             d.spec.replicas if d.spec.replicas is not None else 1) for d in deployments),
            len(pods), tuple(not_ready), restarts, recent)

    def close(self) -> None:
        self.api_client.close()
