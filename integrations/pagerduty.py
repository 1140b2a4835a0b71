"""PagerDuty through its official client (`pagerduty`, the successor of pdpyras).

The client is synchronous, so every call runs in a thread with a time limit; 429 is retried a
bounded number of times. Answers are small dataclasses.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, TypeVar

import pagerduty

from integrations.blocking import in_thread
from integrations.tls import ssl_context

T = TypeVar("T")
OPEN_STATUSES = ["triggered", "acknowledged"]
RECENT_INCIDENTS = 5


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


class PagerDutyClient:
    """Reads (on-call, incidents) need a REST API token; paging with an integration key through
    the Events API needs none. Changes get a longer time limit than reads: a page that is slow to
    confirm is not a page that failed."""

    def __init__(self, token: str, api_url: str, events_url: str, ca_file: str = "", timeout: float = 5.0,
                 change_timeout: float = 10.0) -> None:
        self.events_url = events_url
        self.ca_file = ca_file
        self.timeout = timeout
        self.change_timeout = change_timeout
        self.rest = pagerduty.RestApiV2Client(token, base_url=api_url, verify=ssl_context(ca_file)) if token else None
        if self.rest is not None:
            self._bound(self.rest, timeout)

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
        return await in_thread("PagerDuty", what, timeout or self.timeout, _reason)

    async def service_oncall(self, service_id: str) -> ServiceOnCall:
        """The service, who is on call for it at each escalation level, and its open incidents."""
        return await self._call(lambda: self._service_oncall(service_id))

    def _service_oncall(self, service_id: str) -> ServiceOnCall:
        rest = self._api()
        service = rest.rget(f"services/{service_id}")
        policy = service.get("escalation_policy") or {}
        oncalls = rest.list_all("oncalls", params={
            "escalation_policy_ids[]": [policy.get("id")], "earliest": True, "include[]": ["users"]}) if policy.get("id") else []
        incidents = itertools.islice(rest.iter_all("incidents", params={
            "service_ids[]": [service_id], "statuses[]": OPEN_STATUSES, "sort_by": "created_at:desc"}), RECENT_INCIDENTS)
        people = sorted((OnCall(int(o.get("escalation_level") or 0), (o.get("user") or {}).get("name") or (o.get("user") or {}).get("summary", "?"),
                                (o.get("user") or {}).get("email", ""), _time(o.get("end"))) for o in oncalls),
                        key=lambda o: (o.level, o.name))
        return ServiceOnCall(service_id, service.get("name") or service.get("summary", service_id), service.get("html_url", ""),
                             policy.get("summary") or policy.get("name", ""), tuple(people), tuple(_incident(i) for i in incidents))

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
