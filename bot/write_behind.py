"""Writes that wait a moment in memory and reach the database together, in the background: what
an acknowledgement records (a delivery handled, a use of the bot) must never wait on a write, and
50 commands at once should cost one statement, not 50."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Awaitable, Callable, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class WriteBehind(Generic[K, V]):
    """Values noted by key, written by `write` `seconds` after the first of a batch. A key noted
    again before its batch is written keeps `combine(old, new)` (by default the new value)."""

    def __init__(self, write: Callable[[dict[K, V]], Awaitable[None]], seconds: float,
                 combine: Callable[[V, V], V] = lambda _, new: new) -> None:
        self._write = write
        self.seconds = seconds
        self._combine = combine
        self.pending: dict[K, V] = {}
        self._writer: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def note(self, key: K, value: V) -> None:
        self.pending[key] = self._combine(self.pending[key], value) if key in self.pending else value
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_batches())

    async def _write_batches(self) -> None:
        try:
            while self.pending:
                with contextlib.suppress(TimeoutError):  # closing writes the batch at once
                    await asyncio.wait_for(self._closing.wait(), self.seconds)
                await self.flush()
        finally:
            self._writer = None

    async def flush(self) -> None:
        """Write what is pending now."""
        batch, self.pending = self.pending, {}
        if batch:
            await self._write(batch)

    async def close(self) -> None:
        """Let the pending values reach the database before it closes."""
        self._closing.set()
        if self._writer is not None:
            await self._writer
