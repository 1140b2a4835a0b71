"""What an action is, and what it is handed when it runs.

An action declares its id, a one-line description, a JSON-schema input, whether it supports dry
run and whether it changes the world. Actions that only build the workspace are replayed when a
run resumes (the workspace is not kept); actions that change the world run once, and use
checkpoints to find, on a second try, what their first try already did.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from bot.catalog.service import CatalogService
from bot.scaffolder.model import Template
from bot.scaffolder.workspace import Workspace
from integrations.git_hosting import GitHost


@dataclass
class ActionContext:
    input: dict[str, Any]
    workspace: Workspace
    template: Template
    run_id: str
    owner: str  # the owner group chosen in the form, "" if none
    dry_run: bool
    host: GitHost  # where publish:* actions publish
    catalog: CatalogService
    log: Callable[[str], None]
    checkpoints: dict[str, Any]
    save_checkpoint: Callable[[str, Any], Awaitable[None]]
    links: list[tuple[str, str]] = field(default_factory=list)

    async def checkpoint(self, key: str, value: Any) -> None:
        """Record that a part of the step is done, before going on (kept across restarts)."""
        self.checkpoints[key] = value
        await self.save_checkpoint(key, value)

    def template_dir(self) -> Path:
        """The folder of the template file, against which relative `url`s are read."""
        return Path(self.template.source).parent


Handler = Callable[[ActionContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Action:
    id: str
    description: str
    input_schema: dict[str, Any]
    handler: Handler
    supports_dry_run: bool = False
    changes_world: bool = False
    creates_repository: bool = False  # its `repoUrl` input is claimed when a run starts
