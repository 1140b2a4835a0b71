"""The one error type every integration raises, so callers can degrade an answer uniformly."""


class IntegrationError(Exception):
    """An outside system failed, timed out or refused; the message says which and why, briefly."""

    def __init__(self, system: str, reason: str, timed_out: bool = False) -> None:
        super().__init__(f"{system}: {reason}")
        self.system = system
        self.reason = reason
        self.timed_out = timed_out
