"""Leases in the database: with several replicas of the bot, one at a time runs a singleton job."""
from __future__ import annotations

import time

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bot.db import Database
from bot.models import Lease


class Leases:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def acquire(self, name: str, holder: str, seconds: float, now: float | None = None) -> bool:
        """Take or renew the lease; False while another holder's lease has not expired."""
        now = time.time() if now is None else now
        async with self.db.session() as session:
            taken = await session.exec(update(Lease).where(
                Lease.name == name, (Lease.expires_at < now) | (Lease.holder == holder)).values(holder=holder, expires_at=now + seconds))
            await session.commit()
            if taken.rowcount:
                return True
            try:
                session.add(Lease(name=name, holder=holder, expires_at=now + seconds))
                await session.commit()
                return True
            except IntegrityError:
                return False

    async def release(self, name: str, holder: str) -> None:
        async with self.db.session() as session:
            await session.exec(update(Lease).where(Lease.name == name, Lease.holder == holder).values(expires_at=0.0))
            await session.commit()
