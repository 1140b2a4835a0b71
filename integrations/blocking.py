"""Run synchronous client calls in threads, within a time limit, with their failures turned into
`IntegrationError` (the official PagerDuty and Kubernetes clients are both synchronous).

Each client owns a `BlockingPool`: a bounded pool of threads of its own, so its calls neither
queue behind asyncio's default executor (`min(32, cpus + 4)` threads, shared with everything
else that uses `asyncio.to_thread`) nor behind another system's slow calls. The client shuts its
pool down when it is closed.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator, Callable, TypeVar

from integrations.errors import IntegrationError, observed

T = TypeVar("T")
log = logging.getLogger(__name__)

# Threads per system. One `/whoowns` answer keeps two calls of each system in flight (PagerDuty:
# the service then its on-calls, beside its incidents; Kubernetes: deployments beside pods), so
# 32 serve 16 answers at once; more wait their turn, within their own time limit. Threads start
# only when needed.
POOL_THREADS = 32

Reason = Callable[[Exception], str | None]


class BlockingPool:
    """A bounded pool of threads for one system's blocking calls."""

    def __init__(self, system: str, threads: int = POOL_THREADS) -> None:
        if threads < 1:
            raise ValueError("a pool needs at least one thread")
        self.system = system
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"pavedroad-{system.lower()}")

    def start(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """Submit `call` now (with the caller's context variables, as `asyncio.to_thread` does)
        and return its future. Cancelling the future before a thread takes the call drops it."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, functools.partial(contextvars.copy_context().run, call))

    def shutdown(self) -> None:
        """Drop the queued calls and let the threads end; calls already running finish (each has
        its own socket time limit) without anyone waiting for them."""
        self._executor.shutdown(wait=False, cancel_futures=True)


@contextlib.asynccontextmanager
async def guarded(system: str, timeout: float, reason: Reason) -> AsyncIterator[None]:
    """The body must finish within `timeout`; failures that `reason` names (and the time running
    out) become `IntegrationError`, others propagate as bugs."""
    with observed(system):
        async with _guarded(system, timeout, reason):
            yield


@contextlib.asynccontextmanager
async def _guarded(system: str, timeout: float, reason: Reason) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(timeout):
            yield
    except IntegrationError:
        raise
    except TimeoutError as exc:
        raise IntegrationError(system, f"no answer within {timeout:g}s", timed_out=True) from exc
    except Exception as exc:
        known = reason(exc)
        if known is None:
            raise
        raise IntegrationError(system, known) from exc


def discard(*futures: asyncio.Future) -> None:
    """Cancel futures nobody will await any more; one that has already failed, or fails before it
    can be cancelled, has its exception retrieved so asyncio does not log it as never retrieved."""
    for future in futures:
        future.cancel()
        future.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.debug("a call nobody waits for any more failed: %r", future.exception())


async def in_thread(system: str, call: Callable[[], T], timeout: float, reason: Reason,
                    pool: BlockingPool | None = None) -> T:
    """Run `call` in `pool` (asyncio's default executor without one) within `timeout`.
    `reason` names what went wrong for the exceptions it knows; others propagate as bugs."""
    future = pool.start(call) if pool is not None else asyncio.ensure_future(asyncio.to_thread(call))
    try:
        async with guarded(system, timeout, reason):
            return await future
    finally:
        if not future.done():
            discard(future)
