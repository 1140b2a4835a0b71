"""A fake PagerDuty: REST API v2 and Events API v2 on one HTTPS server.

The official client insists on ``https://`` base URLs (``UrlError``
otherwise), so the fake serves TLS with the test CA of ``tls.py``. Both
clients are ``httpx2.Client`` subclasses: ``base_url=`` sets the API root
and extra keyword arguments reach ``httpx2.Client``, so ``verify=`` takes
an ``ssl.SSLContext`` (a path string still works but is deprecated). With
``verify`` left at ``True`` the context is built from ``SSL_CERT_FILE`` when
that is set, read when the client is constructed::

    context = ssl.create_default_context(cafile=pd.ca_bundle_path)
    rest = pagerduty.RestApiV2Client(pd.api_token, base_url=pd.rest_url,
                                     default_from="alice@example.com", verify=context)
    events = pagerduty.EventsApiV2Client(routing_key, base_url=pd.events_url, verify=context)

The clients are synchronous: call them through ``asyncio.to_thread``. On a
429 they sleep 3 s, then 6 s... before retrying, however small Retry-After is.

REST (https://developer.pagerduty.com/docs/rest-api-v2/): ``Authorization:
Token token=...`` (or ``Bearer``) or 401; errors ``{"error": {"message",
"code", "errors"}}``; classic pagination (``limit`` default 25, at most
100, ``offset``, ``more``, ``total`` only with ``total=true``, 400 past
10000); ``POST /incidents`` and ``PUT /incidents/{id}`` need ``From`` with a
known user's email. Events (https://developer.pagerduty.com/docs/events-api-v2/):
``POST /v2/enqueue`` answers 202 or 400 ``{"status": "invalid event",
"message", "errors"}``; routing keys are 32 characters, registered with
``add_integration_key``.
"""
from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

from .base import (FakeHTTPError, FakeServer, JsonDict, iso, json_response, parse_iso, reason_phrase,
                              recorded, utc_now)

HTML_ROOT = "https://fake.pagerduty.com"
DEFAULT_API_TOKEN = "pd-fake-api-token"
PLURALS = {"user": "users", "service": "services", "escalation_policy": "escalation_policies",
           "incident": "incidents"}
STATUSES = ("triggered", "acknowledged", "resolved")
OPEN = ("triggered", "acknowledged")
SEVERITIES = ("critical", "error", "warning", "info")
MAX_LIMIT, ITERATION_LIMIT, DEFAULT_LIMIT = 100, 10000, 25
INCIDENT_SORTS = ("incident_number", "created_at", "resolved_at", "urgency")
FOREVER_AGO = datetime.min.replace(tzinfo=timezone.utc)
NO_FROM = 'You must specify a user\'s email address in the "From" header to perform this action'
DUPLICATE_KEY = "Open incident with matching dedup key already exists on this service"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def pd_error(status: int, message: str, code: int, *errors: str) -> FakeHTTPError:
    """A REST API error answer."""
    error: JsonDict = {"message": message, "code": code}
    if errors:
        error["errors"] = list(errors)
    return FakeHTTPError(status, {"error": error})


def invalid_input(*errors: str) -> FakeHTTPError:
    return pd_error(400, "Invalid Input Provided", 2001, *errors)


def invalid_event(*errors: str) -> FakeHTTPError:
    return FakeHTTPError(400, {"status": "invalid event", "message": "Event object is invalid",
                               "errors": list(errors)})


def _moment(value: datetime | str | None) -> datetime | None:
    return parse_iso(value) if isinstance(value, str) else value


def _earliest(oncalls: list[JsonDict]) -> list[JsonDict]:
    """The first of each (policy, level, user) combination, as ``earliest=true`` asks."""
    seen: set[tuple[str, int, str]] = set()
    kept = []
    for oncall in oncalls:
        key = (oncall["escalation_policy_id"], oncall["level"], oncall["user_id"])
        if key not in seen:
            seen.add(key)
            kept.append(oncall)
    return kept


def _list_param(request: web.Request, name: str) -> list[str]:
    """``name[]=a&name[]=b`` (what the client sends) or ``name=a``."""
    return request.query.getall(f"{name}[]", []) + request.query.getall(name, [])


class PagerDutyFake(FakeServer):
    """REST API v2 at ``rest_url``, Events API v2 at ``events_url`` (the same server)."""

    def __init__(self, *, api_token: str = DEFAULT_API_TOKEN, tls: bool = True) -> None:
        super().__init__(tls=tls)
        self.api_token = api_token
        self.api_tokens = {api_token}
        self.users: dict[str, JsonDict] = {}
        self.escalation_policies: dict[str, JsonDict] = {}
        self.services: dict[str, JsonDict] = {}
        self.oncalls: list[JsonDict] = []
        self.incidents: dict[str, JsonDict] = {}
        self.integration_keys: dict[str, str] = {}
        self.events: list[JsonDict] = []
        self.change_events: list[JsonDict] = []
        self._numbers = itertools.count(1)

    @property
    def rest_url(self) -> str:
        return self.root

    @property
    def events_url(self) -> str:
        return self.root

    # -- seeding -----------------------------------------------------------

    def add_user(self, user_id: str, name: str, email: str, *, time_zone: str = "Etc/UTC", role: str = "user",
                 **extra: Any) -> None:
        self.users[user_id] = {"id": user_id, "type": "user", "summary": name, "name": name, "email": email,
                               "time_zone": time_zone, "role": role, "job_title": None, "description": None,
                               "color": "purple", "invitation_sent": False, "teams": [], "contact_methods": [],
                               "notification_rules": [], **extra}

    def add_escalation_policy(self, policy_id: str, name: str, levels: list[list[str] | str] | None = None, *,
                              num_loops: int = 0, delay_minutes: int = 30) -> None:
        """``levels[0]`` is who is notified first: a user ID or a list of them."""
        self.escalation_policies[policy_id] = {
            "id": policy_id, "type": "escalation_policy", "summary": name, "name": name, "description": "",
            "num_loops": num_loops, "on_call_handoff_notifications": "if_has_services",
            "levels": [[level] if isinstance(level, str) else list(level) for level in levels or []],
            "delay_minutes": delay_minutes}

    def add_service(self, service_id: str, name: str, escalation_policy_id: str, *, status: str = "active",
                    description: str = "") -> None:
        self.services[service_id] = {
            "id": service_id, "type": "service", "summary": name, "name": name, "description": description,
            "status": status, "escalation_policy_id": escalation_policy_id, "created_at": iso(utc_now()),
            "auto_resolve_timeout": 14400, "acknowledgement_timeout": 1800,
            "alert_creation": "create_alerts_and_incidents"}

    def add_oncall(self, escalation_policy_id: str, level: int, user_id: str,
                   start: datetime | str | None = None, end: datetime | str | None = None) -> None:
        """``None`` bounds mean always on call (PagerDuty prints them as ``null``)."""
        self.oncalls.append({"escalation_policy_id": escalation_policy_id, "level": level, "user_id": user_id,
                             "start": _moment(start), "end": _moment(end)})

    def add_integration_key(self, key: str, service_id: str) -> None:
        self.integration_keys[key] = service_id

    def add_incident(self, service_id: str, title: str, *, status: str = "triggered", urgency: str = "high",
                     incident_key: str | None = None, created_at: datetime | str | None = None,
                     assignee_ids: list[str] | None = None, incident_id: str | None = None,
                     details: str | None = None, escalation_policy_id: str | None = None) -> JsonDict:
        """Store an incident (assigned by default to who is on call at level 1); returns it as the API shows it."""
        created = _moment(created_at) or utc_now()
        number = next(self._numbers)
        policy_id = escalation_policy_id or self.services[service_id]["escalation_policy_id"]
        incident = {
            "id": incident_id or f"Q{number:06X}", "type": "incident", "incident_number": number,
            "title": title, "summary": f"[#{number}] {title}", "description": title, "status": status,
            "urgency": urgency, "incident_key": incident_key or uuid.uuid4().hex, "service_id": service_id,
            "escalation_policy_id": policy_id, "created_at": created, "updated_at": created,
            "last_status_change_at": created, "resolved_at": created if status == "resolved" else None,
            "assignee_ids": list(assignee_ids) if assignee_ids is not None else self._first_level(policy_id),
            "acknowledger_ids": [], "details": details, "alerts": 1}
        self.incidents[incident["id"]] = incident
        return self._incident(incident)

    def open_incident(self, service_id: str, incident_key: str) -> JsonDict | None:
        return next((i for i in self.incidents.values() if i["service_id"] == service_id
                     and i["incident_key"] == incident_key and i["status"] in OPEN), None)

    # -- rendering ---------------------------------------------------------

    def _links(self, kind: str, entity_id: str) -> JsonDict:
        plural = PLURALS[kind]
        return {"self": f"{self.root}/{plural}/{entity_id}", "html_url": f"{HTML_ROOT}/{plural}/{entity_id}"}

    def _ref(self, kind: str, entity_id: str) -> JsonDict:
        store = {"user": self.users, "service": self.services, "escalation_policy": self.escalation_policies,
                 "incident": self.incidents}[kind]
        summary = store[entity_id]["summary"] if entity_id in store else entity_id
        return {"id": entity_id, "type": f"{kind}_reference", "summary": summary, **self._links(kind, entity_id)}

    def _user(self, user: JsonDict) -> JsonDict:
        return {**user, **self._links("user", user["id"])}

    def _policy(self, policy: JsonDict) -> JsonDict:
        rendered = {k: v for k, v in policy.items() if k not in ("levels", "delay_minutes")}
        rendered["escalation_rules"] = [
            {"id": f"R{policy['id']}{n}", "escalation_delay_in_minutes": policy["delay_minutes"],
             "targets": [self._ref("user", user_id) for user_id in level]}
            for n, level in enumerate(policy["levels"], start=1)]
        rendered["services"] = [self._ref("service", s["id"]) for s in self.services.values()
                                if s["escalation_policy_id"] == policy["id"]]
        return {**rendered, "teams": [], **self._links("escalation_policy", policy["id"])}

    def _service(self, service: JsonDict, embed_policy: bool = False) -> JsonDict:
        rendered = {k: v for k, v in service.items() if k != "escalation_policy_id"}
        policy_id = service["escalation_policy_id"]
        policy = self.escalation_policies.get(policy_id)
        rendered["escalation_policy"] = (self._policy(policy) if embed_policy and policy
                                         else self._ref("escalation_policy", policy_id))
        last = [i["created_at"] for i in self.incidents.values() if i["service_id"] == service["id"]]
        rendered.update(teams=[], integrations=[], last_incident_timestamp=iso(max(last)) if last else None,
                        incident_urgency_rule={"type": "constant", "urgency": "high"})
        return {**rendered, **self._links("service", service["id"])}

    def _incident(self, incident: JsonDict) -> JsonDict:
        hidden = ("service_id", "escalation_policy_id", "assignee_ids", "acknowledger_ids", "details", "alerts")
        rendered = {k: (iso(v) if isinstance(v, datetime) else v) for k, v in incident.items() if k not in hidden}
        resolved = incident["status"] == "resolved"
        rendered.update(
            service=self._ref("service", incident["service_id"]),
            escalation_policy=self._ref("escalation_policy", incident["escalation_policy_id"]),
            assignments=[] if resolved else [{"at": rendered["created_at"], "assignee": self._ref("user", u)}
                                             for u in incident["assignee_ids"]],
            acknowledgements=[{"at": rendered["last_status_change_at"], "acknowledger": self._ref("user", u)}
                              for u in incident["acknowledger_ids"]] if not resolved else [],
            teams=[], priority=None, incident_type={"name": "incident_default"},
            alert_counts={"all": incident["alerts"], "triggered": 0 if resolved else incident["alerts"],
                          "resolved": incident["alerts"] if resolved else 0})
        if incident["details"] is not None:
            rendered["body"] = {"type": "incident_body", "details": incident["details"]}
        return {**rendered, **self._links("incident", incident["id"])}

    def _oncall(self, oncall: JsonDict, includes: list[str]) -> JsonDict:
        user, policy = self.users.get(oncall["user_id"]), self.escalation_policies.get(oncall["escalation_policy_id"])
        return {
            "escalation_policy": (self._policy(policy) if "escalation_policies" in includes and policy
                                  else self._ref("escalation_policy", oncall["escalation_policy_id"])),
            "escalation_level": oncall["level"],
            "schedule": None,
            "user": self._user(user) if "users" in includes and user else self._ref("user", oncall["user_id"]),
            "start": iso(oncall["start"]) if oncall["start"] else None,
            "end": iso(oncall["end"]) if oncall["end"] else None,
        }

    # -- HTTP plumbing -----------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        rest = self._rest
        router.add_get("/services", rest(self._list_services))
        router.add_get("/services/{id}", rest(self._get_service))
        router.add_get("/escalation_policies/{id}", rest(self._get_escalation_policy))
        router.add_get("/oncalls", rest(self._list_oncalls))
        router.add_get("/users", rest(self._list_users))
        router.add_get("/users/{id}", rest(self._get_user))
        router.add_get("/incidents", rest(self._list_incidents))
        router.add_post("/incidents", rest(self._create_incident))
        router.add_get("/incidents/{id}", rest(self._get_incident))
        router.add_put("/incidents/{id}", rest(self._update_incident))
        router.add_post("/v2/enqueue", self._enqueue)
        router.add_post("/v2/change/enqueue", self._enqueue_change)

    def _rest(self, handler: Handler) -> Handler:
        async def authorized(request: web.Request) -> web.StreamResponse:
            header = request.headers.get("Authorization", "")
            token = header.removeprefix("Token token=").removeprefix("Bearer ").strip()
            if not header or token not in self.api_tokens:
                raise pd_error(401, "Authentication failed", 2006)
            return await handler(request)
        return authorized

    def error_response(self, status: int, request: web.Request) -> web.Response:
        if request.path.startswith("/v2/"):
            if status == 429:
                return json_response({"status": "throttle event", "message":
                                      "Requests for this service are arriving too quickly.  Please retry later."},
                                     status=429)
            return json_response({"status": "error", "message": reason_phrase(status)}, status=status)
        if status == 429:
            return pd_error(429, "Rate Limit Exceeded", 2020).response()
        if status == 404:
            return pd_error(404, "Not Found", 2100).response()
        if status >= 500:
            return pd_error(status, "An internal error has occurred. PagerDuty team has been notified.",
                            2000).response()
        return pd_error(status, reason_phrase(status), 2001).response()

    def rate_limited_response(self, request: web.Request) -> web.Response:
        response = self.error_response(429, request)
        if not request.path.startswith("/v2/"):
            response.headers.update({"ratelimit-limit": "960", "ratelimit-remaining": "0",
                                     "ratelimit-reset": str(self._retry_after)})
        return response

    def _page(self, request: web.Request, key: str, items: list[JsonDict]) -> web.Response:
        """Classic offset pagination (https://developer.pagerduty.com/docs/pagination)."""
        try:
            limit = min(int(request.query.get("limit", DEFAULT_LIMIT)), MAX_LIMIT)
            offset = int(request.query.get("offset", 0))
        except ValueError:
            raise invalid_input("limit and offset must be integers") from None
        if limit < 0 or offset < 0:
            raise invalid_input("limit and offset must not be negative")
        if offset + limit > ITERATION_LIMIT:
            raise invalid_input(f"Offset + limit must not exceed {ITERATION_LIMIT}.")
        page = items[offset:offset + limit]
        total = len(items) if request.query.get("total") == "true" else None
        return json_response({key: page, "limit": limit, "offset": offset, "more": offset + len(page) < len(items),
                              "total": total})

    def _found(self, store: dict[str, JsonDict], request: web.Request) -> JsonDict:
        entity = store.get(request.match_info["id"])
        if entity is None:
            raise pd_error(404, "Not Found", 2100)
        return entity

    def _requester(self, request: web.Request) -> JsonDict:
        email = request.headers.get("From", "").strip().lower()
        if not email:
            # Observed in the wild with code 2016 (quintoandar/airflow-pagerduty-plugin#1).
            raise pd_error(400, NO_FROM, 2016)
        user = next((u for u in self.users.values() if u["email"].lower() == email), None)
        if user is None:
            raise invalid_input("Requester User Not Found")
        return user

    def _window(self, request: web.Request, default: timedelta) -> tuple[datetime, datetime]:
        try:
            until = parse_iso(request.query["until"]) if "until" in request.query else utc_now()
            since = parse_iso(request.query["since"]) if "since" in request.query else until - default
        except ValueError:
            raise pd_error(400, "Invalid time values in 'since' and/or 'until' parameters", 2004) from None
        if since > until:
            raise pd_error(400, "Invalid Query Date Range", 2005)
        return since, until

    def _first_level(self, policy_id: str) -> list[str]:
        """The new incident's assignees: on call at level 1 now, else the policy's first-level users."""
        now = utc_now()
        on_call = [o["user_id"] for o in self.oncalls if o["escalation_policy_id"] == policy_id and o["level"] == 1
                   and (o["start"] is None or o["start"] <= now) and (o["end"] is None or o["end"] > now)]
        levels = self.escalation_policies.get(policy_id, {}).get("levels") or [[]]
        return on_call or list(levels[0])

    # -- REST endpoints ----------------------------------------------------

    async def _list_services(self, request: web.Request) -> web.Response:
        query = request.query.get("query", "").lower()
        embed = "escalation_policies" in _list_param(request, "include")
        services = sorted((s for s in self.services.values() if query in s["name"].lower()),
                          key=lambda s: s["name"].lower())
        return self._page(request, "services", [self._service(s, embed) for s in services])

    async def _get_service(self, request: web.Request) -> web.Response:
        embed = "escalation_policies" in _list_param(request, "include")
        return json_response({"service": self._service(self._found(self.services, request), embed)})

    async def _get_escalation_policy(self, request: web.Request) -> web.Response:
        return json_response({"escalation_policy": self._policy(self._found(self.escalation_policies, request))})

    async def _list_users(self, request: web.Request) -> web.Response:
        query = request.query.get("query", "").lower()
        users = [self._user(u) for u in sorted(self.users.values(), key=lambda u: u["name"].lower())
                 if query in u["name"].lower() or query in u["email"].lower()]
        return self._page(request, "users", users)

    async def _get_user(self, request: web.Request) -> web.Response:
        return json_response({"user": self._user(self._found(self.users, request))})

    async def _list_oncalls(self, request: web.Request) -> web.Response:
        since, until = self._window(request, timedelta(0))
        policies, users = _list_param(request, "escalation_policy_ids"), _list_param(request, "user_ids")
        entries = [o for o in self.oncalls
                   if (not policies or o["escalation_policy_id"] in policies)
                   and (not users or o["user_id"] in users)
                   and (o["start"] is None or o["start"] <= until) and (o["end"] is None or o["end"] > since)]
        entries.sort(key=lambda o: (o["escalation_policy_id"], o["level"], o["start"] or FOREVER_AGO))
        if request.query.get("earliest") == "true":
            entries = _earliest(entries)
        includes = _list_param(request, "include")
        return self._page(request, "oncalls", [self._oncall(o, includes) for o in entries])

    async def _list_incidents(self, request: web.Request) -> web.Response:
        statuses = _list_param(request, "statuses")
        if any(s not in STATUSES for s in statuses):
            raise invalid_input("Status must be a list of triggered, acknowledged, or resolved.")
        urgencies, services = _list_param(request, "urgencies"), _list_param(request, "service_ids")
        key = request.query.get("incident_key")
        everything = request.query.get("date_range") == "all"
        since, until = self._window(request, timedelta(days=30))
        incidents = [i for i in self.incidents.values()
                     if (not statuses or i["status"] in statuses) and (not urgencies or i["urgency"] in urgencies)
                     and (not services or i["service_id"] in services) and (key is None or i["incident_key"] == key)
                     and (everything or since <= i["created_at"] <= until)]
        field, _, order = request.query.get("sort_by", "created_at:asc").partition(":")
        if field not in INCIDENT_SORTS or order not in ("", "asc", "desc"):
            raise invalid_input(f"sort_by must be one of {', '.join(INCIDENT_SORTS)}, optionally with :asc or :desc")
        incidents.sort(key=lambda i: (i[field] is not None, i[field] or 0), reverse=order == "desc")
        return self._page(request, "incidents", [self._incident(i) for i in incidents])

    async def _get_incident(self, request: web.Request) -> web.Response:
        return json_response({"incident": self._incident(self._found(self.incidents, request))})

    async def _create_incident(self, request: web.Request) -> web.Response:
        requester = self._requester(request)
        body = recorded(request).body
        incident = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(incident, dict):
            raise invalid_input("params must be a Hash")
        if not incident.get("title"):
            raise invalid_input("Title cannot be empty.")
        service_id = (incident.get("service") or {}).get("id")
        if service_id not in self.services:
            raise invalid_input("Service Not Found")
        urgency = incident.get("urgency", "high")
        if urgency not in ("high", "low"):
            raise invalid_input("Urgency must be one of high or low.")
        key = incident.get("incident_key")
        if key and self.open_incident(service_id, key):
            raise pd_error(400, "Arguments Caused Error", 2002, DUPLICATE_KEY)
        assignees = [a["assignee"]["id"] for a in incident.get("assignments") or []]
        created = self.add_incident(
            service_id, incident["title"], urgency=urgency, incident_key=key,
            assignee_ids=assignees or None, details=(incident.get("body") or {}).get("details"),
            escalation_policy_id=(incident.get("escalation_policy") or {}).get("id"),
            status="acknowledged" if assignees == [requester["id"]] else "triggered")
        return json_response({"incident": created}, status=201)

    async def _update_incident(self, request: web.Request) -> web.Response:
        requester = self._requester(request)
        incident = self._found(self.incidents, request)
        body = recorded(request).body
        change = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(change, dict):
            raise invalid_input("params must be a Hash")
        status = change.get("status")
        if status is not None:
            if status not in STATUSES:
                raise pd_error(400, "Invalid Status Provided", 1003)
            if incident["status"] == "resolved":
                raise pd_error(400, "Incident Already Resolved", 1001)
            self._transition(incident, status, requester["id"])
        for key in ("title", "urgency"):
            if key in change:
                incident[key] = change[key]
        return json_response({"incident": self._incident(incident)})

    def _transition(self, incident: JsonDict, status: str, user_id: str | None) -> None:
        now = utc_now()
        if status == "acknowledged" and user_id and user_id not in incident["acknowledger_ids"]:
            incident["acknowledger_ids"].append(user_id)
        incident.update(status=status, updated_at=now, last_status_change_at=now,
                        resolved_at=now if status == "resolved" else None)

    # -- Events API --------------------------------------------------------

    def _routing_errors(self, event: JsonDict) -> list[str]:
        key = event.get("routing_key")
        if not key:
            return ["'routing_key' is missing or blank"]
        if len(key) != 32:
            return ["Length of 'routing_key' is incorrect (should be 32 characters)"]
        if key not in self.integration_keys:
            return ["Invalid routing key"]
        return []

    def _event_errors(self, event: JsonDict) -> list[str]:
        errors = self._routing_errors(event)
        action = event.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is missing or blank" if not action else
                          "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
        elif action == "trigger":
            payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}
            errors += [f"'payload.{name}' is missing or blank" for name in ("summary", "source", "severity")
                       if not payload.get(name)]
            if payload.get("severity") and payload["severity"] not in SEVERITIES:
                errors.append("'payload.severity' is invalid (must be one of: critical, error, warning, info)")
        elif not event.get("dedup_key"):
            errors.append("'dedup_key' is missing or blank")
        if len(str(event.get("dedup_key") or "")) > 255:
            errors.append("'dedup_key' is too long (must be at most 255 characters)")
        return errors

    async def _enqueue(self, request: web.Request) -> web.Response:
        event = recorded(request).body
        if not isinstance(event, dict):
            raise invalid_event("Event object is not valid JSON")
        errors = self._event_errors(event)
        if errors:
            raise invalid_event(*errors)
        service_id = self.integration_keys[event["routing_key"]]
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        self.events.append({**event, "dedup_key": dedup_key})
        existing = self.open_incident(service_id, dedup_key)
        if event["event_action"] == "trigger":
            if existing:
                existing["alerts"] += 1
            else:
                self.add_incident(service_id, event["payload"]["summary"], incident_key=dedup_key,
                                  urgency="high" if event["payload"]["severity"] in ("critical", "error") else "low")
        elif existing:  # acknowledge / resolve of an unknown or closed alert is dropped
            self._transition(existing, "acknowledged" if event["event_action"] == "acknowledge" else "resolved",
                             None)
        return json_response({"status": "success", "message": "Event processed", "dedup_key": dedup_key},
                             status=202)

    async def _enqueue_change(self, request: web.Request) -> web.Response:
        event = recorded(request).body
        if not isinstance(event, dict):
            raise invalid_event("Event object is not valid JSON")
        payload = event.get("payload") if isinstance(event.get("payload"), dict) else {}
        errors = self._routing_errors(event) + ([] if payload.get("summary") else
                                                ["'payload.summary' is missing or blank"])
        if errors:
            raise invalid_event(*errors)
        self.change_events.append(event)
        return json_response({"status": "success", "message": "Change event processed"}, status=202)
