"""Slack delivery de-duplication: a retried delivery (`X-Slack-Retry-Num`) already handled does
nothing twice. First deliveries are remembered in memory at once and in the database in the
background (so the acknowledgement never waits on a write); retries are checked in both, which
also covers a retry that lands on another replica.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.db import Database
from bot.models import HandledDelivery

log = logging.getLogger(__name__)
KEEP_SECONDS = 3600.0


def delivery_key(body: dict[str, Any], raw_body: str) -> str:
    """Events carry an `event_id`; commands and interactions a single-use `trigger_id`."""
    for name in ("event_id", "trigger_id"):
        if body.get(name):
            return f"{name}:{body[name]}"
    return "body:" + hashlib.sha256(raw_body.encode()).hexdigest()


class Deliveries:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._seen: dict[str, float] = {}
        self._writes: set[asyncio.Task] = set()

    async def already_handled(self, key: str, is_retry: bool) -> bool:
        """Record `key`; True when it was handled before (only retries are checked in the database)."""
        now = time.time()
        if key in self._seen:
            return True
        self._seen[key] = now
        if is_retry:
            return not await self._claim(key, now)
        task = asyncio.create_task(self._claim(key, now))
        self._writes.add(task)
        task.add_done_callback(self._written)
        return False

    def _written(self, task: asyncio.Task) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not record a Slack delivery: %s", task.exception().__class__.__name__)

    async def _claim(self, key: str, now: float) -> bool:
        try:
            async with self.db.session() as session:
                session.add(HandledDelivery(key=key, received_at=now))
                await session.commit()
            return True
        except IntegrityError:
            return False

    async def forget_old(self) -> None:
        cutoff = time.time() - KEEP_SECONDS
        self._seen = {k: t for k, t in self._seen.items() if t > cutoff}
        async with self.db.session() as session:
            await session.exec(delete(HandledDelivery).where(HandledDelivery.received_at < cutoff))
            await session.commit()

