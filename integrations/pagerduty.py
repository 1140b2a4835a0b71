"""PagerDuty through its official client (`pagerduty`, the successor of pdpyras).

The client is synchronous, so every call runs in a thread of the client's own pool with a time
limit (`close()` ends the pool); 429 is retried a bounded number of times. Answers are small dataclasses.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

import pagerduty

from integrations.blocking import POOL_THREADS, BlockingPool, discard, guarded, in_thread
from integrations.tls import ssl_context

T = TypeVar("T")
OPEN_STATUSES = ["triggered", "acknowledged"]
RECENT_INCIDENTS = 5
# How long a service's name, link and escalation policy are reused: on-calls and incidents are
# asked for on every answer, but which escalation policy a service has is an administrator's
# change, and remembering it lets on-calls be asked for at once, beside the incidents.
SERVICE_CACHE_SECONDS = 60.0
SERVICE_CACHE_SIZE = 2048
PAGE = 100  # the most PagerDuty lists at once
CANONICAL_PATHS_KEPT = 1024
INCIDENT_LIST_LIMIT = 10000  # PagerDuty answers 400 past offset + limit of 10 000


@dataclass(frozen=True)
class OnCall:
    level: int
    name: str
    email: str
    until: datetime | None


@dataclass(frozen=True)
class Incident:
    id: str
    number: int
    title: str
    status: str
    urgency: str
    url: str


@dataclass(frozen=True)
class IncidentRecord:
    """An incident as a metric needs it: which service, when it was opened and (if it was) resolved."""
    id: str
    service_id: str
    status: str
    urgency: str
    created_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class _Service:
    name: str
    url: str
    policy_id: str
    policy_name: str


@dataclass(frozen=True)
class ServiceOnCall:
    service_id: str
    service_name: str
    service_url: str
    escalation_policy: str
    oncalls: tuple[OnCall, ...]
    incidents: tuple[Incident, ...]


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _incident(data: dict[str, Any]) -> Incident:
    return Incident(data.get("id", ""), int(data.get("incident_number") or 0), data.get("title") or data.get("summary", ""),
                    data.get("status", ""), data.get("urgency", ""), data.get("html_url", ""))


def _incident_record(data: dict[str, Any]) -> IncidentRecord:
    status = data.get("status", "")
    resolved = _time(data.get("resolved_at")) or (_time(data.get("last_status_change_at")) if status == "resolved" else None)
    created = _time(data.get("created_at"))
    return IncidentRecord(data.get("id", ""), (data.get("service") or {}).get("id", ""), status, data.get("urgency", ""),
                          created or datetime.min.replace(tzinfo=timezone.utc), resolved if status == "resolved" else None)


def _read(rest: pagerduty.RestApiV2Client, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """One GET, its JSON body as PagerDuty sends it: the client's `rget`/`iter_all` would also
    match the path against every endpoint they know to unwrap it, which costs as much CPU as the
    request itself, in a thread holding the interpreter lock that the event loop needs."""
    return pagerduty.successful_response(rest.get(path, params=params)).json()


def _service(service_id: str, data: dict[str, Any]) -> _Service:
    policy = data.get("escalation_policy") or {}
    return _Service(data.get("name") or data.get("summary", service_id), data.get("html_url", ""), policy.get("id") or "",
                    policy.get("summary") or policy.get("name", ""))


def _reason(exc: Exception) -> str | None:
    if not isinstance(exc, (pagerduty.Error, OSError)):
        return None
    if str(exc) == "no REST API token":
        return "not configured (PAGERDUTY_API_TOKEN)"
    response = getattr(exc, "response", None)
    if response is not None:
        status = response.status_code
        hint = {401: " (check PAGERDUTY_API_TOKEN)", 403: " (the token may not do this)", 404: " (not found)",
                429: " (rate limited)"}.get(status, "")
        return f"HTTP {status}{hint}"
    return f"unreachable ({exc.__class__.__name__})"


class _RestClient(pagerduty.RestApiV2Client):
    """The official client, remembering each URL's canonical path: it works one out for every
    request (to count calls per endpoint) by matching the URL against all the endpoints it knows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._canonical: dict[str, Any] = {}

    def canonical_path(self, url: str) -> Any:
        found = self._canonical.get(url)
        if found is None:
            if len(self._canonical) >= CANONICAL_PATHS_KEPT:
                self._canonical.clear()
            found = self._canonical[url] = super().canonical_path(url)
        return found


class PagerDutyClient:
    """Reads (on-call, incidents) need a REST API token; paging with an integration key through
    the Events API needs none. Changes get a longer time limit than reads: a page that is slow to
    confirm is not a page that failed."""

    def __init__(self, token: str, api_url: str, events_url: str, ca_file: str = "", timeout: float = 5.0,
                 change_timeout: float = 10.0, threads: int = POOL_THREADS,
                 service_cache_seconds: float = SERVICE_CACHE_SECONDS) -> None:
        self.events_url = events_url
        self.ca_file = ca_file
        self.timeout = timeout
        self.change_timeout = change_timeout
        self.rest = _RestClient(token, base_url=api_url, verify=ssl_context(ca_file)) if token else None
        if self.rest is not None:
            self._bound(self.rest, timeout)
        self.pool = BlockingPool("PagerDuty", threads)
        self.service_cache_seconds = service_cache_seconds
        self._services: dict[str, tuple[_Service, float]] = {}

    @property
    def can_read(self) -> bool:
        return self.rest is not None

    def _api(self) -> pagerduty.RestApiV2Client:
        if self.rest is None:
            raise pagerduty.Error("no REST API token")
        return self.rest

    @staticmethod
    def _bound(client: pagerduty.ApiClient, timeout: float) -> None:
        """One quick retry of 429 and nothing else: a caller waiting in Slack would rather hear
        "PagerDuty failed" now than after the client's default back-off of a minute."""
        client.retry = {429: 1}
        client.max_http_attempts = 2
        client.max_network_attempts = 0
        client.sleep_timer = 0.5
        client.timeout = timeout

    async def _call(self, what: Callable[[], T], timeout: float | None = None) -> T:
        return await in_thread("PagerDuty", what, timeout or self.timeout, _reason, self.pool)

    async def service_oncall(self, service_id: str) -> ServiceOnCall:
        """The service, who is on call for it at each escalation level, and its open incidents.

        On-calls are listed by escalation policy (`GET /oncalls` takes no service id), so they
        wait for the service unless it was read in the last `service_cache_seconds`; the
        incidents need only the service id and are asked for at once. One time limit for all."""
        async with guarded("PagerDuty", self.timeout, _reason):
            rest = self._api()
            incidents = self.pool.start(lambda: self._incidents(rest, service_id))
            try:
                service = self._known_service(service_id)
                if service is None:
                    service = await self.pool.start(lambda: _service(service_id, _read(rest, f"services/{service_id}").get("service") or {}))
                    self._remember_service(service_id, service)
                policy_id = service.policy_id
                oncalls = await self.pool.start(lambda: self._oncalls(rest, policy_id)) if policy_id else ()
                open_incidents = await incidents
            except BaseException:
                discard(incidents)
                self._services.pop(service_id, None)  # read the service afresh next time
                raise
        return ServiceOnCall(service_id, service.name, service.url, service.policy_name, oncalls, open_incidents)

    def _known_service(self, service_id: str) -> _Service | None:
        known = self._services.get(service_id)
        if known is None or time.monotonic() - known[1] >= self.service_cache_seconds:
            return None
        return known[0]

    def _remember_service(self, service_id: str, service: _Service) -> None:
        if self.service_cache_seconds <= 0:
            return
        now = time.monotonic()
        if len(self._services) >= SERVICE_CACHE_SIZE:
            self._services = {k: v for k, v in self._services.items() if now - v[1] < self.service_cache_seconds}
            if len(self._services) >= SERVICE_CACHE_SIZE:
                self._services.clear()
        self._services[service_id] = (service, now)

    @staticmethod
    def _oncalls(rest: pagerduty.RestApiV2Client, policy_id: str) -> tuple[OnCall, ...]:
        entries: list[dict[str, Any]] = []
        while True:  # classic pagination; with `earliest` there is one entry per level and person
            page = _read(rest, "oncalls", {"escalation_policy_ids[]": [policy_id], "earliest": True, "include[]": ["users"],
                                           "limit": PAGE, "offset": len(entries)})
            entries += page.get("oncalls") or []
            if not page.get("more") or not page.get("oncalls"):
                break
        people = (OnCall(int(o.get("escalation_level") or 0), (o.get("user") or {}).get("name") or (o.get("user") or {}).get("summary", "?"),
                         (o.get("user") or {}).get("email", ""), _time(o.get("end"))) for o in entries)
        return tuple(sorted(people, key=lambda o: (o.level, o.name)))

    @staticmethod
    def _incidents(rest: pagerduty.RestApiV2Client, service_id: str) -> tuple[Incident, ...]:
        page = _read(rest, "incidents", {"service_ids[]": [service_id], "statuses[]": OPEN_STATUSES, "sort_by": "created_at:desc",
                                         "limit": RECENT_INCIDENTS})
        return tuple(_incident(i) for i in (page.get("incidents") or [])[:RECENT_INCIDENTS])

    async def incidents_between(self, service_ids: list[str], since: datetime, until: datetime,
                                statuses: tuple[str, ...] = (), timeout: float | None = None) -> list[IncidentRecord]:
        """Every incident of these services created in [since, until] (all statuses unless given),
        oldest first: `GET /incidents` with `service_ids[]`, `since`, `until`, paginated by offset
        and `more` (PagerDuty stops at 10 000 results; a window is at most 6 months)."""
        if not service_ids:
            return []

        def read() -> list[IncidentRecord]:
            rest, found = self._api(), []
            offset = 0
            while True:
                params: dict[str, Any] = {"service_ids[]": list(service_ids), "since": since.isoformat(),
                                          "until": until.isoformat(), "sort_by": "created_at:asc",
                                          "limit": PAGE, "offset": offset}
                if statuses:
                    params["statuses[]"] = list(statuses)
                page = _read(rest, "incidents", params)
                items = page.get("incidents") or []
                found += [_incident_record(i) for i in items]
                offset += len(items)
                if not page.get("more") or not items or offset + PAGE > INCIDENT_LIST_LIMIT:
                    return found
        return await self._call(read, timeout)

    async def trigger(self, routing_key: str, summary: str, source: str, dedup_key: str,
                      details: dict[str, Any] | None = None) -> str:
        """Send an Events API v2 trigger; returns the dedup key PagerDuty grouped it under."""
        def send() -> str:
            events = pagerduty.EventsApiV2Client(routing_key, base_url=self.events_url, verify=ssl_context(self.ca_file))
            self._bound(events, self.change_timeout)
            return events.trigger(summary, source, dedup_key=dedup_key, custom_details=details) or dedup_key
        return await self._call(send, self.change_timeout)

    async def create_incident(self, service_id: str, title: str, from_email: str, incident_key: str, details: str) -> Incident:
        """Open an incident through the REST API on behalf of the PagerDuty user with `from_email`."""
        body = {"incident": {"type": "incident", "title": title, "incident_key": incident_key,
                             "service": {"id": service_id, "type": "service_reference"},
                             "body": {"type": "incident_body", "details": details}}}
        return await self._call(lambda: _incident(self._api().rpost("incidents", json=body, headers={"From": from_email})),
                                self.change_timeout)

    def close(self) -> None:
        """End the thread pool and the REST client's connections."""
        self.pool.shutdown()
        if self.rest is not None:
            self.rest.close()
