"""Who used the bot, how: a count per UTC day, Slack user and action (`/whoowns`, a button's
action id, a modal's callback id). It is what adoption figures and the NPS survey's "active
users" are made of.

Counting happens in memory, where the request is acknowledged, and reaches the database in
batches a few seconds later (one upsert per batch), so it never delays an acknowledgement."""
from __future__ import annotations

import logging
import math
import operator
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError

from bot.db import Database
from bot.models import UsageDay
from bot.write_behind import WriteBehind

log = logging.getLogger(__name__)
BATCH_SECONDS = 2.0
DAY = 86400.0
MAX_ACTION = 100


def day_of(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=timezone.utc).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Adoption:
    """Use of the bot over a window: distinct people, all their actions, and the most used."""
    people: int
    actions: int
    top: list[tuple[str, int]]


class Usage:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: WriteBehind[tuple[str, str, str], int] = WriteBehind(self._write, BATCH_SECONDS, operator.add)

    def note(self, user_id: str, action: str, at: float | None = None) -> None:
        """Count one use; written with the next batch."""
        if user_id and action:
            self._pending.note((day_of(time.time() if at is None else at), user_id, action[:MAX_ACTION]), 1)

    async def _write(self, batch: dict[tuple[str, str, str], int]) -> None:
        rows = [{"day": d, "user_id": u, "action": a, "count": n} for (d, u, a), n in batch.items()]
        try:
            await self.db.upsert(UsageDay, rows, ("day", "user_id", "action"), add=("count",))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not record %d uses of the bot: %s", len(batch), exc.__class__.__name__)

    async def flush(self) -> None:
        """Write the pending counts now."""
        await self._pending.flush()

    async def close(self) -> None:
        """Let the pending counts reach the database before it closes."""
        await self._pending.close()

    async def people(self, start: float, end: float) -> set[str]:
        """Who used the bot on the days of [start, end) (whole UTC days: that is what is kept)."""
        query = select(UsageDay.user_id).where(UsageDay.day >= day_of(start), UsageDay.day <= day_of(end)).distinct()
        async with self.db.session() as session:
            return set((await session.exec(query)).scalars().all())

    async def adoption(self, start: float, end: float, top: int = 5) -> Adoption:
        window = (UsageDay.day >= day_of(start), UsageDay.day <= day_of(end))
        async with self.db.session() as session:
            people = (await session.exec(select(func.count(UsageDay.user_id.distinct())).where(*window))).scalar_one()
            rows = (await session.exec(select(UsageDay.action, func.sum(UsageDay.count)).where(*window)
                                       .group_by(UsageDay.action))).all()
        ranked = sorted(((action, int(count)) for action, count in rows), key=lambda row: (-row[1], row[0]))
        return Adoption(int(people), sum(count for _, count in ranked), ranked[:top])

    async def people_per_week(self, starts: Sequence[float], end: float) -> list[int]:
        """Distinct people in each week beginning at `starts` (the last one ends at `end`), counted
        in the database; a day belongs to the week its start falls in (the first week for a day
        that began before it)."""
        # the first day of each following week: the first whose start is at or after the week's start
        firsts = [day_of(math.ceil(start / DAY) * DAY) for start in starts[1:]]
        week = case(*((UsageDay.day < first, number) for number, first in enumerate(firsts)), else_=len(firsts))
        query = (select(week, func.count(UsageDay.user_id.distinct()))
                 .where(UsageDay.day >= day_of(starts[0]), UsageDay.day <= day_of(end)).group_by(week))
        async with self.db.session() as session:
            counted = dict((await session.exec(query)).all())
        return [int(counted.get(number, 0)) for number in range(len(starts))]
