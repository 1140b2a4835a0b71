"""`debug:log`: write a message to the run log, or list the workspace."""
from __future__ import annotations

from bot.scaffolder.actions.base import Action, ActionContext


async def write_log(ctx: ActionContext) -> dict:
    if ctx.input.get("message"):
        ctx.log(str(ctx.input["message"]))
    listing = ctx.input.get("listWorkspace")
    if listing:
        files = ctx.workspace.files()
        for path, data in files.items():
            ctx.log(f"{path}:\n{data.decode('utf-8', 'replace')}" if listing == "with-contents" else path)
    return {}


debug_log = Action(
    id="debug:log",
    description="Write a message to the run log, or list the workspace.",
    input_schema={"type": "object", "properties": {
        "message": {"type": "string", "title": "What to write"},
        "listWorkspace": {"type": ["boolean", "string"], "enum": [True, False, "with-filenames", "with-contents"],
                          "title": "List the workspace's files (and contents)"}}},
    handler=write_log,
    supports_dry_run=True,
)
