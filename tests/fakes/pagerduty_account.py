"""The state of the fake PagerDuty account and how the REST API v2 prints it.

``PagerDutyAccount`` keeps users, escalation policies, services, on-call
entries, incidents and Events API integration keys, and renders them as
the API does (``self``/``html_url`` links, ``*_reference`` objects,
``null`` on-call bounds). It is a mixin of ``PagerDutyFake``
(``pagerduty.py``), which serves it over HTTP; its links need ``root``.
"""
from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any

from .base import JsonDict, iso, parse_iso, utc_now

HTML_ROOT = "https://fake.pagerduty.com"
PLURALS = {"user": "users", "service": "services", "escalation_policy": "escalation_policies",
           "incident": "incidents"}
OPEN = ("triggered", "acknowledged")


def _moment(value: datetime | str | None) -> datetime | None:
    return parse_iso(value) if isinstance(value, str) else value


class PagerDutyAccount:
    """Users, escalation policies, services, on-calls, incidents and integration keys."""

    root: str

    def __init__(self) -> None:
        self.users: dict[str, JsonDict] = {}
        self.escalation_policies: dict[str, JsonDict] = {}
        self.services: dict[str, JsonDict] = {}
        self.oncalls: list[JsonDict] = []
        self.incidents: dict[str, JsonDict] = {}
        self.integration_keys: dict[str, str] = {}
        self._numbers = itertools.count(1)

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

    # -- queries and state changes -----------------------------------------

    def open_incident(self, service_id: str, incident_key: str) -> JsonDict | None:
        """The triggered or acknowledged incident with that key on that service (stored form), if any."""
        return next((i for i in self.incidents.values() if i["service_id"] == service_id
                     and i["incident_key"] == incident_key and i["status"] in OPEN), None)

    def _first_level(self, policy_id: str) -> list[str]:
        """The new incident's assignees: on call at level 1 now, else the policy's first-level users."""
        now = utc_now()
        on_call = [o["user_id"] for o in self.oncalls if o["escalation_policy_id"] == policy_id and o["level"] == 1
                   and (o["start"] is None or o["start"] <= now) and (o["end"] is None or o["end"] > now)]
        levels = self.escalation_policies.get(policy_id, {}).get("levels") or [[]]
        return on_call or list(levels[0])

    def _transition(self, incident: JsonDict, status: str, user_id: str | None) -> None:
        """Acknowledge or resolve ``incident`` (``user_id``: who, when a person did it)."""
        now = utc_now()
        if status == "acknowledged" and user_id and user_id not in incident["acknowledger_ids"]:
            incident["acknowledger_ids"].append(user_id)
        incident.update(status=status, updated_at=now, last_status_change_at=now,
                        resolved_at=now if status == "resolved" else None)

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
