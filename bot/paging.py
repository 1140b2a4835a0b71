"""Paging on-call for an entity: PagerDuty Events API v2 with the entity's integration key, or
an incident created through the REST API on behalf of the asking user. One page per entity
per dedup window, however many people click, however often Slack retries.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bot.audit import Audit
from bot.catalog.entity import Entity
from bot.db import Database
from bot.models import PageRecord
from bot.people import Person
from integrations.errors import IntegrationError
from integrations.pagerduty import PagerDutyClient

INTEGRATION_KEY = "pagerduty.com/integration-key"
SERVICE_ID = "pagerduty.com/service-id"


def annotation(name: str, entity: Entity, owner: Entity | None) -> str:
    """An annotation of the entity, else of its owner group (PagerDuty's are often set per team)."""
    return entity.annotations.get(name) or (owner.annotations.get(name, "") if owner else "")


class PagingError(Exception):
    """Paging is not possible or failed; the message says why in words for the user."""


@dataclass(frozen=True)
class PageOutcome:
    paged: bool
    paged_by: str
    at: float
    method: str
    reference: str


class Paging:
    def __init__(self, db: Database, pagerduty: PagerDutyClient, audit: Audit, window_minutes: float) -> None:
        self.db = db
        self.pagerduty = pagerduty
        self.audit = audit
        self.window = max(window_minutes * 60, 1.0)

    def route(self, entity: Entity, owner: Entity | None) -> tuple[str, str] | None:
        """("events", routing key) or ("rest", service id) when this entity can be paged here, else None."""
        if key := annotation(INTEGRATION_KEY, entity, owner):
            return "events", key
        if (service_id := annotation(SERVICE_ID, entity, owner)) and self.pagerduty.can_read:
            return "rest", service_id
        return None

    async def page(self, entity: Entity, owner: Entity | None, person: Person, reason: str) -> PageOutcome:
        route = self.route(entity, owner)
        if route is None:
            raise PagingError(f"{entity.name} can't be paged from here: it needs a {INTEGRATION_KEY} annotation, "
                              f"or a {SERVICE_ID} with PAGERDUTY_API_TOKEN set")
        method, target = route
        if method == "rest" and not person.email:
            raise PagingError("I could not find your e-mail in Slack, and PagerDuty needs it to open an incident for you")
        now = time.time()
        earlier = await self._recent(entity.key, now)
        if earlier is not None:
            return PageOutcome(False, earlier.paged_by, earlier.created_at, earlier.method, earlier.reference)
        dedup_key = f"pavedroad/{entity.key}/{int(now // self.window)}"
        if not await self._claim(dedup_key, entity.key, person.slack_id, method, now):
            earlier = await self._recent(entity.key, now)
            return PageOutcome(False, earlier.paged_by if earlier else "", now, method, "")
        summary = f"{entity.display_name}: paged from Slack by {person.email or person.slack_id}" + (f": {reason}" if reason else "")
        try:
            if method == "events":
                reference = await self.pagerduty.trigger(target, summary[:1024], entity.key, dedup_key,
                                                         details={"entity": entity.key, "paged_by": person.email or person.slack_id})
            else:
                incident = await self.pagerduty.create_incident(target, summary[:1024], person.email, dedup_key, reason or summary)
                reference = f"#{incident.number}" if incident.number else incident.id
        except IntegrationError as exc:
            if exc.timed_out:  # it may have gone through: keep the record so nobody pages twice
                await self.audit.record(person.slack_id, "page", entity.key, "unknown", exc.reason)
                raise PagingError(f"PagerDuty did not confirm the page ({exc.reason}); it may have gone through. "
                                  "Check PagerDuty before paging again.") from exc
            await self._release(dedup_key)
            await self.audit.record(person.slack_id, "page", entity.key, "failed", exc.reason)
            raise PagingError(f"PagerDuty refused the page: {exc.reason}") from exc
        await self._set_reference(dedup_key, reference)
        await self.audit.record(person.slack_id, "page", entity.key, "paged", f"{method} {reference}")
        return PageOutcome(True, person.slack_id, now, method, reference)

    async def _recent(self, entity_key: str, now: float) -> PageRecord | None:
        query = (select(PageRecord).where(PageRecord.entity_key == entity_key, PageRecord.created_at > now - self.window)
                 .order_by(PageRecord.created_at.desc()).limit(1))
        async with self.db.session() as session:
            return (await session.exec(query)).scalars().first()

    async def _claim(self, dedup_key: str, entity_key: str, by: str, method: str, now: float) -> bool:
        try:
            async with self.db.session() as session:
                session.add(PageRecord(dedup_key=dedup_key, entity_key=entity_key, paged_by=by, method=method, created_at=now))
                await session.commit()
            return True
        except IntegrityError:
            return False

    async def _release(self, dedup_key: str) -> None:
        async with self.db.session() as session:
            await session.exec(delete(PageRecord).where(PageRecord.dedup_key == dedup_key))
            await session.commit()

    async def _set_reference(self, dedup_key: str, reference: str) -> None:
        async with self.db.session() as session:
            record = (await session.exec(select(PageRecord).where(PageRecord.dedup_key == dedup_key))).scalar_one()
            record.reference = reference
            await session.commit()
