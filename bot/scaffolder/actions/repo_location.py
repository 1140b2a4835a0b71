"""What the publish actions share: reading `repoUrl`, the commit author and message, and the
mark a run leaves in its commits so that a second try recognises the first one's work."""
from __future__ import annotations

from pathlib import PurePosixPath

from bot.scaffolder.actions.base import ActionContext
from bot.scaffolder.expressions import parse_repo_url
from bot.scaffolder.model import ScaffolderError
from integrations.git_hosting import Author

REPO_URL = {"type": "string", "title": "Repository location: host?owner=OWNER&repo=NAME"}
AUTHOR_INPUTS = {"gitAuthorName": {"type": "string", "title": "Commit author name"},
                 "gitAuthorEmail": {"type": "string", "title": "Commit author e-mail"}}


def repository(ctx: ActionContext) -> tuple[str, str, str]:
    """(host, owner, name) from `repoUrl`, checked against `allowedHosts` when given."""
    try:
        parts = parse_repo_url(ctx.input["repoUrl"])
    except ValueError as exc:
        raise ScaffolderError(f"repoUrl: {exc}") from None
    allowed = ctx.input.get("allowedHosts")
    if allowed and parts["host"] not in allowed:
        raise ScaffolderError(f"repoUrl: host {parts['host']} is not one of {', '.join(allowed)}")
    return parts["host"], parts.get("owner") or parts.get("organization") or parts.get("workspace", ""), parts["repo"]


def author(ctx: ActionContext) -> Author:
    return Author(ctx.input.get("gitAuthorName") or "pavedroad",
                  ctx.input.get("gitAuthorEmail") or "pavedroad@users.noreply.github.com")


def run_mark(ctx: ActionContext) -> str:
    return f"Scaffolded-by: pavedroad run {ctx.run_id}"


def commit_message(ctx: ActionContext, first_line: str) -> str:
    return f"{first_line.strip()}\n\n{run_mark(ctx)}\n"


def repo_path(value: str, what: str) -> str:
    """A folder inside a repository: relative, without `..`."""
    path = PurePosixPath(value.strip() or ".")
    if path.is_absolute() or ".." in path.parts:
        raise ScaffolderError(f"{what} {value!r} must be a folder inside the repository")
    return "" if str(path) == "." else str(path)
