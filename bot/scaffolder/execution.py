"""One pass over a template's steps, for a run or a dry run: `if`, `each`, rendered and checked
input, the action, its output into the context of the next steps.

Steps already done are not done again: a world-changing one keeps its recorded output, one that
only builds the workspace is replayed quietly (the workspace is not kept between passes).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

from jsonschema import Draft7Validator

from bot.catalog.service import CatalogService
from bot.scaffolder.actions import Action, ActionContext
from bot.scaffolder.expressions import is_true, render_value
from bot.scaffolder.model import ScaffolderError, StepRecord, Template
from bot.scaffolder.workspace import Workspace
from integrations.errors import IntegrationError
from integrations.git_hosting import GitHost

log = logging.getLogger(__name__)
MASK = "***"


class StepFailed(Exception):
    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def mask(value: Any, secrets: Mapping[str, Any]) -> Any:
    """`value` with every secret's text replaced by ***."""
    hidden = [str(s) for s in secrets.values() if s not in (None, "")]
    if not hidden:
        return value
    if isinstance(value, str):
        for secret in hidden:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, secrets) for v in value]
    return value


def _iterations(each: Any) -> list[dict[str, Any]]:
    if isinstance(each, list):
        return [{"key": str(i), "value": v} for i, v in enumerate(each)]
    if isinstance(each, dict):
        return [{"key": str(k), "value": v} for k, v in each.items()]
    raise ScaffolderError("each must be a list or a mapping")


def _checked_input(action: Action, given: Any) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise ScaffolderError("input must be a mapping")
    given = {k: v for k, v in given.items() if v is not None}  # an undefined expression means "not given"
    errors = sorted(Draft7Validator(action.input_schema).iter_errors(given), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        where = ".".join(str(p) for p in error.path)
        raise ScaffolderError(f"input{'.' + where if where else ''}: {error.message}")
    return given


@dataclass
class Execution:
    template: Template
    values: dict[str, Any]
    run_id: str
    owner: str
    user: dict[str, Any]
    secrets: Mapping[str, Any]
    registry: Mapping[str, Action]
    host: GitHost
    catalog: CatalogService
    workspace: Workspace
    dry_run: bool
    records: list[StepRecord]
    checkpoints: list[dict[str, dict[str, Any]]]  # per step, per iteration
    on_change: Callable[[int, dict[str, Any] | None], Awaitable[None]]  # a step changed (with its resolved input)
    on_checkpoint: Callable[[int], Awaitable[None]]
    logs: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.logs = [[] for _ in self.records]

    def context(self, each: dict[str, Any] | None = None) -> dict[str, Any]:
        steps = {r.id: {"output": r.output} for r in self.records if r.state == "done"}
        return {"parameters": self.values, "steps": steps, "user": self.user, "secrets": self.secrets,
                **({"each": each} if each is not None else {})}

    def _logger(self, position: int, quiet: bool) -> Callable[[str], None]:
        def write(line: str) -> None:
            if not quiet:
                self.logs[position].append(mask(line, self.secrets))
        return write

    async def _run_action(self, position: int, action: Action, step: dict, quiet: bool) -> tuple[dict, dict | None]:
        """Every iteration of one step; returns its output and the resolved input to record."""
        iterations = [None] if "each" not in step else _iterations(render_value(step["each"], self.context()))
        outputs: list[dict[str, Any]] = []
        resolved: list[dict[str, Any]] = []
        record = self.records[position]
        for number, each in enumerate(iterations):
            given = _checked_input(action, render_value(step["input"], self.context(each)))
            resolved.append(mask(given, self.secrets))
            if not quiet and number == 0:
                await self.on_change(position, resolved[0] if each is None else {"each": resolved})
            checkpoints = self.checkpoints[position].setdefault(str(number), {})

            async def save(_key: str, _value: Any) -> None:
                await self.on_checkpoint(position)

            ctx = ActionContext(input=given, workspace=self.workspace, template=self.template, run_id=self.run_id,
                                owner=self.owner, dry_run=self.dry_run, host=self.host, catalog=self.catalog,
                                log=self._logger(position, quiet), checkpoints=checkpoints, save_checkpoint=save)
            outputs.append(await action.handler(ctx) or {})
            if not quiet:
                record.links.extend(link for link in ctx.links if link not in record.links)
        if each is None:
            return outputs[0], resolved[0]
        merged: dict[str, list[Any]] = {}
        for output in outputs:
            for key, value in output.items():
                merged.setdefault(key, []).append(value)
        return merged, {"each": resolved}

    async def _step(self, position: int, step: dict) -> None:
        record = self.records[position]
        action = self.registry[step["action"]]
        if record.state == "done":
            if not action.changes_world or self.dry_run:
                await self._run_action(position, action, step, quiet=True)
            return
        if not is_true(step.get("if"), self.context()):
            record.state = "skipped"
            await self.on_change(position, None)
            return
        if self.dry_run and not action.supports_dry_run:
            record.state = "skipped"
            self.logs[position].append(f"{action.id} does not support a dry run; skipped")
            await self.on_change(position, None)
            return
        record.state, record.error, record.links = "running", "", []
        record.output, resolved = await self._run_action(position, action, step, quiet=False)
        record.state = "done"
        await self.on_change(position, resolved)

    async def run(self) -> None:
        """Every step in order; raises StepFailed at the first that fails (its record says why)."""
        for position, step in enumerate(self.template.steps):
            try:
                await self._step(position, step)
            except (ScaffolderError, IntegrationError) as exc:
                await self._fail(position, str(exc))
            except Exception as exc:  # noqa: BLE001 - a bug in an action fails the run, not the bot
                log.exception("step %s of run %s failed", step["id"], self.run_id)
                await self._fail(position, f"internal error ({exc.__class__.__name__}); the platform team can see the log")

    async def _fail(self, position: int, message: str) -> None:
        record = self.records[position]
        record.state, record.error = "failed", mask(message, self.secrets)
        await self.on_change(position, None)
        raise StepFailed(position, record.error)

    def output(self) -> tuple[list[tuple[str, str]], str, list[str]]:
        """The template's output links and text, rendered after the steps (problems listed, not raised)."""
        context = self.context()
        problems: list[str] = []

        def rendered(items: list[dict]) -> list[dict]:
            done = []
            for item in items:
                try:
                    if is_true(item.get("if"), context):
                        done.append(render_value({k: v for k, v in item.items() if k != "if"}, context))
                except ScaffolderError as exc:
                    problems.append(str(exc))
            return done

        links = [(str(item.get("title") or target), str(target))
                 for item in rendered(self.template.output.get("links") or [])
                 if (target := item.get("url") or item.get("entityRef"))]
        texts = [f"*{item['title']}*\n{item.get('content', '')}".strip() if item.get("title")
                 else str(item.get("content", "")).strip()
                 for item in rendered(self.template.output.get("text") or [])]
        return links, mask("\n\n".join(t for t in texts if t), self.secrets), problems
