"""The audit log: every change the bot makes in the world, with who, what, when and the outcome."""
from __future__ import annotations

import time
from typing import Sequence

from sqlalchemy import select

from bot.db import Database
from bot.models import AuditEntry


class Audit:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, actor: str, action: str, target: str, outcome: str, detail: str = "") -> None:
        async with self.db.session() as session:
            session.add(AuditEntry(at=time.time(), actor=actor, action=action, target=target, outcome=outcome, detail=detail))
            await session.commit()

    async def recent(self, limit: int = 50, action: str | None = None) -> Sequence[AuditEntry]:
        query = select(AuditEntry).order_by(AuditEntry.at.desc()).limit(limit)
        if action:
            query = query.where(AuditEntry.action == action)
        async with self.db.session() as session:
            return (await session.exec(query)).scalars().all()
