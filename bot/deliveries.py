"""Slack delivery de-duplication: a retried delivery (`X-Slack-Retry-Num`) already handled does
nothing twice. First deliveries are remembered in memory at once and written to the database
in batches in the background (so an acknowledgement never waits on a write, and 50 commands at
once cost one insert, not 50); retries are checked in both, which also covers a retry that
lands on another replica. Slack retries after its 3-second timeout, well after a batch is written.
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.db import Database
from bot.models import HandledDelivery
from bot.write_behind import WriteBehind

log = logging.getLogger(__name__)
KEEP_SECONDS = 3600.0
BATCH_SECONDS = 0.2


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
        self._pending: WriteBehind[str, float] = WriteBehind(self._write, BATCH_SECONDS)

    async def already_handled(self, key: str, is_retry: bool) -> bool:
        """Record `key`; True when it was handled before (only retries are checked in the database)."""
        now = time.time()
        if key in self._seen:
            return True
        self._seen[key] = now
        if is_retry:
            return not await self._claim(key, now)
        self._pending.note(key, now)
        return False

    async def _write(self, batch: dict[str, float]) -> None:
        try:
            await self.db.upsert(HandledDelivery, [{"key": key, "received_at": at} for key, at in batch.items()], ("key",))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not record %d Slack deliveries: %s", len(batch), exc.__class__.__name__)

    async def close(self) -> None:
        """Let the pending batch reach the database before it closes."""
        await self._pending.close()

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

