"""`catalog:write`: write an entity into the workspace as a catalog-info.yaml."""
from __future__ import annotations

import yaml

from bot.scaffolder.actions.base import Action, ActionContext


async def write_entity(ctx: ActionContext) -> dict:
    path = ctx.workspace.path(ctx.input.get("filePath") or "catalog-info.yaml", "filePath")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(ctx.input["entity"], sort_keys=False, allow_unicode=True), encoding="utf-8")
    ctx.log(f"wrote {path.relative_to(ctx.workspace.root).as_posix()}")
    return {}


catalog_write = Action(
    id="catalog:write",
    description="Write a catalog entity into the workspace (catalog-info.yaml).",
    input_schema={"type": "object", "required": ["entity"], "properties": {
        "entity": {"type": "object", "title": "The entity"},
        "filePath": {"type": "string", "title": "Where in the workspace", "default": "catalog-info.yaml"}}},
    handler=write_entity,
    supports_dry_run=True,
)
