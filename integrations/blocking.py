"""Run a synchronous client call in a thread, within a time limit, with its failures turned into
`IntegrationError` (the official PagerDuty and Kubernetes clients are both synchronous)."""
from __future__ import annotations

import asyncio
from typing import Callable, TypeVar

from integrations.errors import IntegrationError

T = TypeVar("T")


async def in_thread(system: str, call: Callable[[], T], timeout: float,
                    reason: Callable[[Exception], str | None]) -> T:
    """`reason` names what went wrong for the exceptions it knows; others propagate as bugs."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(call), timeout)
    except TimeoutError as exc:
        raise IntegrationError(system, f"no answer within {timeout:g}s", timed_out=True) from exc
    except Exception as exc:
        known = reason(exc)
        if known is None:
            raise
        raise IntegrationError(system, known) from exc
