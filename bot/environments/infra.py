"""Environments through an infrastructure repository (`PAVEDROAD_ENV_PROVISIONING=pull-request`),
for teams that apply Kubernetes objects with Terraform/Atlantis or a GitOps pipeline instead of
letting the bot call the API.

An environment is one file, `<folder>/<name>.yaml`, holding exactly the objects the API path
creates (`namespace_objects`). Creating or extending an environment commits that file on the
branch `pavedroad/env-<name>`, on top of the default branch, and opens a pull request, or finds
the open one, as `publish:github:pull-request` does, through the same `GitHost`; destroying one
opens a pull request removing the file and deletes that branch, which closes a pull request never
merged. What is merged, the infra pipeline applies.
"""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from integrations.errors import IntegrationError
from integrations.git_hosting import Author, Commit, GitHost, PullRequest, Repository
from integrations.kubernetes import NamespacePlan, namespace_objects

AUTHOR = Author("pavedroad", "pavedroad@users.noreply.github.com")


class _Dumper(yaml.SafeDumper):
    """Block YAML without anchors (the objects share their labels)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def manifest(plan: NamespacePlan) -> str:
    """The environment's objects as a multi-document YAML file."""
    header = f"# Environment {plan.name}, managed by pavedroad: merging applies it, removing this file deletes it.\n"
    return header + yaml.dump_all(namespace_objects(plan), Dumper=_Dumper, sort_keys=False, explicit_start=True)


@dataclass(frozen=True)
class InfraRepository:
    host: GitHost
    owner: str
    name: str
    folder: str  # where the files go, "" for the repository's root

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def path(self, env_name: str) -> str:
        return f"{self.folder}/{env_name}.yaml" if self.folder else f"{env_name}.yaml"

    @staticmethod
    def branch(env_name: str) -> str:
        return f"pavedroad/env-{env_name}"

    async def propose(self, plan: NamespacePlan, title: str, body: str) -> PullRequest:
        """Commit the environment's file on its branch and open a pull request, or find the open
        one; the branch's head is kept when it already holds this very file (a retry)."""
        repo, base = await self._base()
        text = manifest(plan)
        branch = self.branch(plan.name)
        message = f"{title}\n\nPavedroad-Manifest: {hashlib.sha256(text.encode()).hexdigest()[:16]}\n"
        head = await self.host.head(self.owner, self.name, branch)
        if head is None or head.message.strip() != message.strip():
            with tempfile.TemporaryDirectory() as scratch:
                Path(scratch, f"{plan.name}.yaml").write_text(text, encoding="utf-8")
                await self.host.commit_files(self.owner, self.name, branch, Path(scratch), message, AUTHOR,
                                             parent=base.sha, prefix=self.folder)
        return await self.host.open_pull_request(self.owner, self.name, branch, repo.default_branch, title, body, draft=False)

    async def propose_removal(self, env_name: str, title: str, body: str) -> PullRequest | None:
        """A pull request removing the environment's file; None when the default branch never
        held it. Either way the environment's own branch is deleted, closing its pull request."""
        repo, base = await self._base()
        branch = f"pavedroad/remove-{env_name}"
        pull = None
        if await self.host.remove_files(self.owner, self.name, branch, [self.path(env_name)], title, AUTHOR, parent=base.sha):
            pull = await self.host.open_pull_request(self.owner, self.name, branch, repo.default_branch, title, body, draft=False)
        await self.host.delete_branch(self.owner, self.name, self.branch(env_name))
        return pull

    async def withdraw(self, env_name: str) -> None:
        """Delete the environment's branch after a failed proposal (best effort: a leftover branch harms nothing)."""
        try:
            await self.host.delete_branch(self.owner, self.name, self.branch(env_name))
        except IntegrationError:
            pass

    async def _base(self) -> tuple[Repository, Commit]:
        repo = await self.host.repository(self.owner, self.name)
        if repo is None:
            raise IntegrationError(self.host.system, f"the infrastructure repository {self.full_name} does not exist "
                                                     "(PAVEDROAD_ENV_INFRA_REPO)")
        base = await self.host.head(self.owner, self.name, repo.default_branch)
        if base is None:
            raise IntegrationError(self.host.system, f"{self.full_name} has no branch {repo.default_branch}")
        return repo, base
