"""`fetch:template` (and its legacy form `fetch:cookiecutter`): render a skeleton folder of the
template into the workspace with the given values."""
from __future__ import annotations

import asyncio

from bot.scaffolder.actions.base import Action, ActionContext
from bot.scaffolder.skeleton import CopyOptions, copy_skeleton, skeleton_dir

GLOBS = {"type": "array", "items": {"type": "string"}}
INPUT = {
    "type": "object",
    "required": ["url"],
    "properties": {
        "url": {"type": "string", "title": "The skeleton folder, relative to the template"},
        "targetPath": {"type": "string", "title": "Where in the workspace to put it", "default": "./"},
        "values": {"type": "object", "title": "Values the skeleton sees as values.* (or cookiecutter.*)"},
        "copyWithoutRender": {**GLOBS, "title": "Globs copied untouched, names and contents"},
        "copyWithoutTemplating": {**GLOBS, "title": "Globs whose contents are copied untouched (names still rendered)"},
        "cookiecutterCompat": {"type": "boolean", "title": "Read {{ cookiecutter.x }} as in cookiecutter skeletons"},
        "templateFileExtension": {"type": ["boolean", "string"], "title": "Render only files with this extension (.njk when true)"},
        "replace": {"type": "boolean", "title": "Overwrite files already in the workspace"},
    },
}


async def _fetch(ctx: ActionContext, cookiecutter: bool) -> dict:
    given = ctx.input
    extension = given.get("templateFileExtension") or ""
    options = CopyOptions(
        values=given.get("values") or {}, cookiecutter=cookiecutter or bool(given.get("cookiecutterCompat")),
        without_render=tuple(given.get("copyWithoutRender") or ()),
        without_templating=tuple(given.get("copyWithoutTemplating") or ()),
        extension=".njk" if extension is True else str(extension), replace=bool(given.get("replace")))
    source = skeleton_dir(ctx.template_dir(), given["url"])
    written = await asyncio.to_thread(copy_skeleton, source, ctx.workspace, given.get("targetPath") or "./", options, ctx.log)
    ctx.log(f"rendered {len(written)} file(s) from {given['url']}")
    return {}


async def fetch_template_handler(ctx: ActionContext) -> dict:
    return await _fetch(ctx, cookiecutter=False)


async def fetch_cookiecutter_handler(ctx: ActionContext) -> dict:
    return await _fetch(ctx, cookiecutter=True)


fetch_template = Action(
    id="fetch:template",
    description="Render a skeleton folder of the template into the workspace.",
    input_schema=INPUT,
    handler=fetch_template_handler,
    supports_dry_run=True,
)

fetch_cookiecutter = Action(
    id="fetch:cookiecutter",
    description="Render a cookiecutter skeleton ({{ cookiecutter.x }}) into the workspace, without running cookiecutter.",
    input_schema={**INPUT, "properties": {k: v for k, v in INPUT["properties"].items()
                                          if k not in ("cookiecutterCompat", "templateFileExtension")}},
    handler=fetch_cookiecutter_handler,
    supports_dry_run=True,
)
