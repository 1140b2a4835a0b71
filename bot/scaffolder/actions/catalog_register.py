"""`catalog:register`: add the new component's catalog-info.yaml to the catalog at once, so
`/whoowns` finds it; the file is read back from where it was published."""
from __future__ import annotations

import yaml

from bot.catalog.entity import validate
from bot.scaffolder.actions.base import Action, ActionContext
from bot.scaffolder.model import ScaffolderError

PREFERRED_KINDS = ("Component", "API", "Resource", "System")


async def _read(ctx: ActionContext, url: str, path: str) -> bytes:
    if ctx.dry_run:  # nothing was published: the workspace holds what would be
        file = ctx.workspace.path(path, "catalogInfoPath")
        if not file.is_file():
            raise ScaffolderError(f"the workspace has no {path}")
        return file.read_bytes()
    where = ctx.host.locate(url)
    if where is None:
        raise ScaffolderError(f"{url} is not a repository URL of {ctx.host.system}")
    return await ctx.host.read_file(where.owner, where.name, where.ref, where.path)


async def register(ctx: ActionContext) -> dict:
    path = (ctx.input.get("catalogInfoPath") or "/catalog-info.yaml").lstrip("/")
    url = ctx.input.get("catalogInfoUrl") or ""
    if not url:
        if not ctx.input.get("repoContentsUrl"):
            raise ScaffolderError("catalog:register needs catalogInfoUrl, or repoContentsUrl and catalogInfoPath")
        url = f"{ctx.input['repoContentsUrl'].rstrip('/')}/{path}"
    try:
        documents = [d for d in yaml.safe_load_all(await _read(ctx, url, path)) if d is not None]
    except yaml.YAMLError as exc:
        raise ScaffolderError(f"{url} is not YAML ({str(exc).splitlines()[0]})") from None
    if ctx.dry_run:
        checked = [validate(doc, lambda _p: 0, url) for doc in documents]
        entities = [e for e, _ in checked if e is not None]
        problems = [p for _, found in checked for p in found]
    else:
        entities, problems = await ctx.catalog.register(url, documents)
    for problem in problems:
        ctx.log(f"catalog: {problem.message}")
    if not entities:
        raise ScaffolderError(f"{url} holds no valid catalog entity")
    entity = min(entities, key=lambda e: PREFERRED_KINDS.index(e.kind) if e.kind in PREFERRED_KINDS else len(PREFERRED_KINDS))
    ctx.log(("would register " if ctx.dry_run else "registered ") + ", ".join(e.key for e in entities))
    ctx.links.append(("Catalog entry", entity.key))
    return {"entityRef": entity.key, "catalogInfoUrl": url}


catalog_register = Action(
    id="catalog:register",
    description="Add the catalog-info.yaml just published to the catalog.",
    input_schema={"type": "object", "properties": {
        "repoContentsUrl": {"type": "string", "title": "The repository contents URL (publish:github's output)"},
        "catalogInfoPath": {"type": "string", "default": "/catalog-info.yaml"},
        "catalogInfoUrl": {"type": "string", "title": "Or the file's full URL"},
        "optional": {"type": "boolean"}}},
    handler=register,
    supports_dry_run=True,
    changes_world=True,
)
