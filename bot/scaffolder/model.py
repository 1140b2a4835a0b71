"""The scaffolder's value types: a template, a run and its steps, a dry run, and the errors a
user is shown. No behaviour here; `service.py` and the Slack surface both code against these."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

StepState = Literal["pending", "running", "done", "failed", "skipped"]
RunState = Literal["pending", "running", "done", "failed"]


@dataclass(frozen=True)
class Template:
    """A parsed `kind: Template`. `parameters` is `spec.parameters` as a list of JSON-schema pages;
    `source` is the template file (or the catalog entity's source), against which `fetch:*` urls
    are resolved."""

    ref: str  # "template:default/name"
    name: str
    title: str
    description: str
    owner: str
    tags: tuple[str, ...]
    parameters: tuple[dict, ...]
    steps: tuple[dict, ...]
    output: dict
    source: str


@dataclass
class StepRecord:
    id: str
    name: str
    action: str
    state: StepState = "pending"
    output: dict = field(default_factory=dict)
    error: str = ""
    links: list[tuple[str, str]] = field(default_factory=list)  # (title, url)
    started_at: float | None = None
    finished_at: float | None = None


@dataclass
class Run:
    id: str
    template_ref: str
    requester: str  # Slack user id
    owner: str  # owner group ref chosen in the form ("" if none)
    state: RunState
    values: dict
    steps: list[StepRecord]
    output_links: list[tuple[str, str]] = field(default_factory=list)  # (title, url)
    output_text: str = ""
    error: str = ""
    submitted_at: float = 0.0
    finished_at: float | None = None
    slack_channel: str = ""  # where the progress message lives (Scaffolder.attach_message)
    slack_ts: str = ""

    @property
    def seconds(self) -> float | None:
        """Submit-to-done time, once the run has finished."""
        return None if self.finished_at is None else self.finished_at - self.submitted_at


@dataclass
class DryRun:
    files: dict[str, bytes]  # workspace path → content
    steps: list[tuple[str, str, dict]]  # (step id, action id, resolved input)
    log: list[str]
    error: str = ""  # the step that failed and why; "" when every step could run


class RunListener(Protocol):
    async def run_changed(self, run: Run) -> None: ...


class ScaffolderError(Exception):
    """A refusal the user is shown as it is: bad values, not allowed, a duplicate name..."""


class ValidationErrors(ScaffolderError):
    """Parameter values that break the template's rules: parameter name → message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = errors
