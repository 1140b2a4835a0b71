"""`publish:github`: create the repository and push the workspace to it as one commit, with its
description, visibility, topics and default branch, and give the owning team access.

A second try (a retry, or a resume after a crash) finds what the first did: the checkpoints say
which parts are done, and a repository this run created is recognised by its commit mark, or,
when the first try stopped right after creating it, by holding nothing but GitHub's first commit.
"""
from __future__ import annotations

from bot.scaffolder.actions.base import Action, ActionContext
from bot.scaffolder.actions.repo_location import (AUTHOR_INPUTS, REPO_URL, author, commit_message, repository,
                                                  run_mark)
from bot.scaffolder.model import ScaffolderError
from integrations.git_hosting import RepoSettings, Repository, RepositoryExists

TEAM_SLUG = "github.com/team-slug"
AUTO_INIT_MESSAGE = "Initial commit"


def owner_team(ctx: ActionContext) -> str:
    """The GitHub team of the owning group: its `github.com/team-slug` annotation, else its name."""
    group = ctx.catalog.index.entities.get(ctx.owner) if ctx.owner.startswith("group:") else None
    if group is None:
        return ""
    return group.annotations.get(TEAM_SLUG) or group.name


async def _create_or_adopt(ctx: ActionContext, owner: str, name: str, settings: RepoSettings) -> Repository:
    host = ctx.host
    if "repository" in ctx.checkpoints:
        found = await host.repository(owner, name)
        if found is None:
            raise ScaffolderError(f"{owner}/{name}, created by this run, is gone from {host.system}")
        return found
    tried_before = "creating" in ctx.checkpoints
    await ctx.checkpoint("creating", f"{owner}/{name}")
    try:
        created = await host.create_repository(owner, name, settings)
    except RepositoryExists:
        created = await host.repository(owner, name)
        head = await host.head(owner, name, created.default_branch) if created else None
        ours = created is not None and (
            (head is not None and run_mark(ctx) in head.message)
            or (tried_before and (head is None or (head.parents == 0 and head.message.strip() == AUTO_INIT_MESSAGE))))
        if not ours:
            raise ScaffolderError(f"repository {owner}/{name} already exists on {host.system}; choose another name") from None
        ctx.log(f"found {owner}/{name}, created by an earlier try of this run")
        if head is not None and run_mark(ctx) in head.message:
            await ctx.checkpoint("commit", head.sha)
    else:
        ctx.log(f"created {owner}/{name} on {host.system}")
    await ctx.checkpoint("repository", f"{owner}/{name}")
    return created


async def publish(ctx: ActionContext) -> dict:
    server, owner, name = repository(ctx)
    branch = ctx.input.get("defaultBranch") or "main"
    settings = RepoSettings(description=ctx.input.get("description") or "", homepage=ctx.input.get("homepage") or "",
                            visibility=ctx.input.get("repoVisibility") or "private", default_branch=branch)
    topics = list(ctx.input.get("topics") or [])
    team = ctx.input.get("access") or owner_team(ctx)
    source = ctx.workspace.path(ctx.input.get("sourcePath") or ".", "sourcePath")
    if ctx.dry_run:
        ctx.log(f"would create {settings.visibility} repository {owner}/{name} on {ctx.host.system} with "
                f"{len(ctx.workspace.files(ctx.input.get('sourcePath') or '.'))} file(s) on {branch}"
                + (f", topics {', '.join(topics)}" if topics else "") + (f", access for team {team}" if team else ""))
        remote = f"https://{server}/{owner}/{name}"
        return {"remoteUrl": remote, "repoContentsUrl": f"{remote}/blob/{branch}", "commitHash": ""}
    repo = await _create_or_adopt(ctx, owner, name, settings)
    if "commit" not in ctx.checkpoints:
        message = commit_message(ctx, ctx.input.get("gitCommitMessage") or "initial commit")
        sha = await ctx.host.commit_files(owner, name, branch, source, message, author(ctx))
        if repo.default_branch != branch:
            await ctx.host.set_default_branch(owner, name, branch)
            await ctx.host.delete_branch(owner, name, repo.default_branch)
        await ctx.checkpoint("commit", sha)
        ctx.log(f"pushed one commit {sha[:10]} to {branch}")
    if topics and "topics" not in ctx.checkpoints:
        await ctx.host.set_topics(owner, name, topics)
        await ctx.checkpoint("topics", topics)
    team_org = team.rpartition("/")[0]
    if team_org and team_org.lower() != owner.lower():
        ctx.log(f"team {team} belongs to another organization than {owner}; no team access given")
        team = ""
    if team and "access" not in ctx.checkpoints:
        permission = ctx.input.get("accessPermission") or "admin"
        await ctx.host.grant_team(owner, name, team, permission)
        await ctx.checkpoint("access", team)
        ctx.log(f"gave team {team} {permission} access")
    ctx.links.append(("Repository", repo.html_url))
    return {"remoteUrl": repo.html_url, "repoContentsUrl": ctx.host.contents_url(repo, branch),
            "commitHash": ctx.checkpoints["commit"]}


publish_github = Action(
    id="publish:github",
    description="Create a GitHub repository and push the workspace to it as one commit.",
    input_schema={"type": "object", "required": ["repoUrl"], "properties": {
        "repoUrl": REPO_URL,
        "allowedHosts": {"type": "array", "items": {"type": "string"}, "title": "Hosts repoUrl may name"},
        "description": {"type": "string", "title": "Repository description"},
        "homepage": {"type": "string", "title": "Repository homepage"},
        "repoVisibility": {"type": "string", "enum": ["private", "internal", "public"], "default": "private"},
        "defaultBranch": {"type": "string", "default": "main"},
        "topics": {"type": "array", "items": {"type": "string"}},
        "access": {"type": "string", "title": "Team (org/slug) given access; default: the owner group's team"},
        "accessPermission": {"type": "string", "enum": ["pull", "triage", "push", "maintain", "admin"], "default": "admin"},
        "sourcePath": {"type": "string", "title": "Publish only this folder of the workspace"},
        "gitCommitMessage": {"type": "string", "default": "initial commit"},
        **AUTHOR_INPUTS}},
    handler=publish,
    supports_dry_run=True,
    changes_world=True,
    creates_repository=True,
)
