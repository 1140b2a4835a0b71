"""`publish:github:pull-request`: commit the workspace to a new branch of an existing repository
and open a pull request (on the local git host, the branch is the pull request)."""
from __future__ import annotations

from bot.scaffolder.actions.base import Action, ActionContext
from bot.scaffolder.actions.repo_location import (AUTHOR_INPUTS, REPO_URL, author, commit_message, repo_path, repository,
                                                  run_mark)
from bot.scaffolder.model import ScaffolderError


async def _commit(ctx: ActionContext, owner: str, name: str, branch: str, base: str) -> str:
    head = await ctx.host.head(owner, name, branch)
    if head is not None:
        if run_mark(ctx) in head.message:
            return head.sha
        raise ScaffolderError(f"branch {branch} already exists in {owner}/{name}; choose another branch name")
    base_head = await ctx.host.head(owner, name, base)
    if base_head is None:
        raise ScaffolderError(f"{owner}/{name} has no branch {base}")
    source = ctx.workspace.path(ctx.input.get("sourcePath") or ".", "sourcePath")
    message = commit_message(ctx, ctx.input.get("commitMessage") or ctx.input["title"])
    return await ctx.host.commit_files(owner, name, branch, source, message, author(ctx), parent=base_head.sha,
                                       prefix=repo_path(ctx.input.get("targetPath") or "", "targetPath"))


async def open_pull_request(ctx: ActionContext) -> dict:
    _, owner, name = repository(ctx)
    branch = ctx.input["branchName"]
    if ctx.dry_run:
        ctx.log(f"would commit {len(ctx.workspace.files(ctx.input.get('sourcePath') or '.'))} file(s) to branch {branch} "
                f"of {owner}/{name} under {repo_path(ctx.input.get('targetPath') or '', 'targetPath') or '/'} "
                f"and open a pull request {ctx.input['title']!r}")
        return {"remoteUrl": "", "pullRequestNumber": 0, "targetBranchName": ctx.input.get("targetBranchName") or ""}
    repo = await ctx.host.repository(owner, name)
    if repo is None:
        raise ScaffolderError(f"{owner}/{name} does not exist on {ctx.host.system}; a pull request needs an existing repository")
    base = ctx.input.get("targetBranchName") or repo.default_branch
    if "commit" not in ctx.checkpoints:
        await ctx.checkpoint("commit", await _commit(ctx, owner, name, branch, base))
    pull = await ctx.host.open_pull_request(owner, name, branch, base, ctx.input["title"],
                                            ctx.input.get("description") or "", bool(ctx.input.get("draft")))
    ctx.log(f"pull request {pull.html_url}")
    ctx.links.append(("Pull request", pull.html_url))
    return {"remoteUrl": pull.html_url, "pullRequestNumber": pull.number, "targetBranchName": base}


publish_pull_request = Action(
    id="publish:github:pull-request",
    description="Commit the workspace to a new branch of an existing repository and open a pull request.",
    input_schema={"type": "object", "required": ["repoUrl", "branchName", "title"], "properties": {
        "repoUrl": REPO_URL,
        "branchName": {"type": "string", "title": "The new branch"},
        "targetBranchName": {"type": "string", "title": "The branch to merge into (default: the repository's)"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "draft": {"type": "boolean"},
        "targetPath": {"type": "string", "title": "Folder of the repository the files go to"},
        "sourcePath": {"type": "string", "title": "Commit only this folder of the workspace"},
        "commitMessage": {"type": "string"},
        **AUTHOR_INPUTS}},
    handler=open_pull_request,
    supports_dry_run=True,
    changes_world=True,
)
