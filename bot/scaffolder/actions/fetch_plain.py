"""`fetch:plain`: copy a folder of the template into the workspace as it is."""
from __future__ import annotations

import asyncio

from bot.scaffolder.actions.base import Action, ActionContext
from bot.scaffolder.skeleton import CopyOptions, copy_skeleton, skeleton_dir


async def fetch_plain_handler(ctx: ActionContext) -> dict:
    source = skeleton_dir(ctx.template_dir(), ctx.input["url"])
    written = await asyncio.to_thread(copy_skeleton, source, ctx.workspace, ctx.input.get("targetPath") or "./",
                                      CopyOptions(render=False, replace=True), ctx.log)
    ctx.log(f"copied {len(written)} file(s) from {ctx.input['url']}")
    return {}


fetch_plain = Action(
    id="fetch:plain",
    description="Copy a folder of the template into the workspace without rendering it.",
    input_schema={"type": "object", "required": ["url"], "properties": {
        "url": {"type": "string", "title": "The folder, relative to the template"},
        "targetPath": {"type": "string", "title": "Where in the workspace to put it", "default": "./"}}},
    handler=fetch_plain_handler,
    supports_dry_run=True,
)
