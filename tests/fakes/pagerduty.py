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

Endpoints: ``GET /services`` (``query``, ``include[]=escalation_policies``),
``GET /services/{id}``, ``GET /escalation_policies/{id}``, ``GET /oncalls``
(``escalation_policy_ids[]``, ``user_ids[]``, ``since``/``until``, default
now, ``earliest``, ``include[]=users|escalation_policies``), ``GET /users``
(``query`` on name or email), ``GET /users/{id}``, ``GET /incidents``
(``service_ids[]``, ``statuses[]``, ``urgencies[]``, ``incident_key``,
``since``/``until`` defaulting to the last 30 days, ``date_range=all``,
``sort_by``), ``POST /incidents``, ``GET``/``PUT /incidents/{id}``,
``POST /v2/enqueue``, ``POST /v2/change/enqueue``. Seeding and state are in
``pagerduty_account.py``; ``add_resolved_incident`` (here) seeds an incident
with its own resolution time, for time-to-restore data.

A quirk of pagerduty 7.2 to know: ``EventsApiV2Client.submit()`` without
``timestamp=`` raises ``AttributeError`` (its ``event_timestamp`` calls
``datetime.timezone``), before anything is sent.
"""
from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

from aiohttp import web

from .base import FakeHTTPError, FakeServer, JsonDict, json_response, parse_iso, reason_phrase, recorded, utc_now
from .pagerduty_account import PagerDutyAccount

DEFAULT_API_TOKEN = "pd-fake-api-token"
STATUSES = ("triggered", "acknowledged", "resolved")
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


class PagerDutyFake(PagerDutyAccount, FakeServer):
    """REST API v2 at ``rest_url``, Events API v2 at ``events_url`` (the same server)."""

    def __init__(self, *, api_token: str = DEFAULT_API_TOKEN, tls: bool = True) -> None:
        FakeServer.__init__(self, tls=tls)
        PagerDutyAccount.__init__(self)
        self.api_token = api_token
        self.api_tokens = {api_token}
        self.events: list[JsonDict] = []
        self.change_events: list[JsonDict] = []

    def add_resolved_incident(self, service_id: str, title: str, created_at: datetime | str,
                              resolved_at: datetime | str, **extra: object) -> JsonDict:
        """An incident created at ``created_at`` and resolved at ``resolved_at`` (for time-to-restore
        data); returns it as the API shows it."""
        shown = self.add_incident(service_id, title, status="resolved", created_at=created_at, **extra)  # type: ignore[arg-type]
        stored = self.incidents[shown["id"]]
        resolved = parse_iso(resolved_at) if isinstance(resolved_at, str) else resolved_at
        stored.update(resolved_at=resolved, last_status_change_at=resolved, updated_at=resolved)
        return self._incident(stored)

    @property
    def rest_url(self) -> str:
        return self.root

    @property
    def events_url(self) -> str:
        return self.root

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
        if created["status"] == "acknowledged":
            self.incidents[created["id"]]["acknowledger_ids"] = [requester["id"]]
            created = self._incident(self.incidents[created["id"]])
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
