"""Who is asking: a Slack user mapped to a catalog `User` and, through it, to groups.

A Slack user is matched by the `slack.com/user-id` annotation, else by the e-mail on their
Slack profile. Looking a profile up is a Slack call, so the wiring hands in the two lookups
(this module knows no Slack); answers are cached in memory and in the database.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.catalog.relations import CHILD_OF, MEMBER_OF
from bot.catalog.service import CatalogService
from bot.db import Database
from bot.models import SlackIdentity

Lookup = Callable[[str], Awaitable[str | None]]
CACHE_SECONDS = 3600.0


@dataclass(frozen=True)
class Person:
    slack_id: str
    email: str
    user_key: str
    groups: tuple[str, ...]


class People:
    def __init__(self, catalog: CatalogService, db: Database, email_of_slack_user: Lookup,
                 slack_user_of_email: Lookup, cache_seconds: float = CACHE_SECONDS) -> None:
        self.catalog = catalog
        self.db = db
        self.email_of_slack_user = email_of_slack_user
        self.slack_user_of_email = slack_user_of_email
        self.cache_seconds = cache_seconds
        self._emails: dict[str, tuple[str, float]] = {}
        self._slack_ids: dict[str, tuple[str, float]] = {}

    async def whois(self, slack_id: str) -> Person:
        """The catalog user and groups (with their parent groups) behind a Slack user id."""
        index = self.catalog.index
        user_key = index.users_by_slack_id.get(slack_id, "")
        email = await self._email(slack_id)
        if not user_key and email:
            user_key = index.users_by_email.get(email.lower(), "")
        return Person(slack_id, email, user_key, self.groups_of(user_key))

    def groups_of(self, user_key: str) -> tuple[str, ...]:
        index = self.catalog.index
        found: list[str] = []
        pending = list(index.related(user_key, MEMBER_OF)) if user_key else []
        while pending:
            group = pending.pop(0)
            if group not in found:
                found.append(group)
                pending.extend(index.related(group, CHILD_OF))
        return tuple(found)

    async def slack_id_for(self, email: str) -> str | None:
        """The Slack user with this e-mail: from the catalog annotation, else asked of Slack."""
        if not email:
            return None
        index = self.catalog.index
        known = index.slack_id_of_user.get(index.users_by_email.get(email.lower(), ""))
        if known:
            return known
        cached = self._slack_ids.get(email.lower())
        if cached and time.monotonic() - cached[1] < self.cache_seconds:
            return cached[0] or None
        slack_id = await self.slack_user_of_email(email)
        if slack_id is not None:  # a failed lookup is asked again next time, not remembered as "nobody"
            self._slack_ids[email.lower()] = (slack_id, time.monotonic())
        return slack_id or None

    async def _email(self, slack_id: str) -> str:
        """From memory, else the database record, else Slack (no database session held meanwhile)."""
        cached = self._emails.get(slack_id)
        if cached and time.monotonic() - cached[1] < self.cache_seconds:
            return cached[0]
        async with self.db.session() as session:
            row = (await session.exec(select(SlackIdentity).where(SlackIdentity.slack_user_id == slack_id))).scalar_one_or_none()
        email = row.email if row else ""
        if row is None or time.time() - row.fetched_at > self.cache_seconds:
            asked = await self.email_of_slack_user(slack_id)
            if asked is None:  # Slack could not say: keep what we knew, ask again next time
                return email
            email = asked
            try:
                async with self.db.session() as session:
                    await session.merge(SlackIdentity(slack_user_id=slack_id, email=email, fetched_at=time.time()))
                    await session.commit()
            except IntegrityError:  # a concurrent request recorded the same user first
                pass
        self._emails[slack_id] = (email, time.monotonic())
        return email
