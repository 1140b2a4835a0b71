"""The one error type every integration raises, so callers can degrade an answer uniformly; and
the hook (`observed`) through which the bot times, counts and traces calls to outside systems."""
import contextvars
from contextlib import AbstractContextManager, nullcontext
from typing import Callable


class IntegrationError(Exception):
    """An outside system failed, timed out or refused; the message says which and why, briefly."""

    def __init__(self, system: str, reason: str, timed_out: bool = False) -> None:
        super().__init__(f"{system}: {reason}")
        self.system = system
        self.reason = reason
        self.timed_out = timed_out


# A hook the bot sets so that calls to outside systems are timed, counted and traced without
# `integrations/` knowing about the bot: `observed(system)` wraps one call; the observer is a
# context manager factory `(system, operation) -> ContextManager` set per context (an app's own).
call_observer: contextvars.ContextVar[Callable[[str, str], AbstractContextManager[None]] | None] = \
    contextvars.ContextVar("pavedroad_call_observer", default=None)


def observed(system: str, operation: str = "") -> AbstractContextManager[None]:
    observer = call_observer.get()
    return nullcontext() if observer is None else observer(system, operation)
