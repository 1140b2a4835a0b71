"""Requesting, provisioning, approving, extending and destroying environments.

Every change is recorded before and after it happens, so a Slack retry or a double click finds
the request already made (its `request_key`), and a failed provisioning is rolled back and said.
With an infrastructure repository (`infra.py`), environments are proposed there as pull requests
instead of made through the Kubernetes API: they wait as `pending_merge`, with the pull request's
address as their detail, and destroying one records it destroyed once its removal is proposed.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Awaitable, Callable, Protocol, Sequence, TypeVar

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.audit import Audit
from bot.catalog.service import CatalogService
from bot.db import Database
from bot.environments.infra import InfraRepository
from bot.environments.rules import PURPOSES, Refused, Rules, check_name, namespace_name, slug
from bot.models import Environment
from bot.ownership import Team, team
from bot.people import Person
from bot.policy import Policy
from integrations.errors import IntegrationError
from integrations.kubernetes import MANAGED_BY, KubernetesClient, NamespacePlan, namespace_objects

T = TypeVar("T")
ACTIVE = ("awaiting_approval", "provisioning", "ready", "pending_merge")
ENVIRONMENT_ID = "pavedroad.dev/environment-id"
EXPIRES_AT = "pavedroad.dev/expires-at"


class Notifier(Protocol):
    """Tells people what happened to an environment (the Slack surface implements it); `owner`
    is the owning team, with its channel, when the catalog knows it."""

    async def approval_needed(self, env: Environment, owner: Team | None) -> None: ...
    async def decided(self, env: Environment, owner: Team | None, approved: bool, by: str, made: Sequence[str]) -> None: ...
    async def expiring(self, env: Environment, owner: Team | None) -> None: ...
    async def destroyed(self, env: Environment, owner: Team | None, by: str) -> None: ...


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class Environments:
    def __init__(self, db: Database, catalog: CatalogService, kubernetes: KubernetesClient | None, audit: Audit,
                 policy: Policy, rules: Rules, notifier: Notifier, clock: Callable[[], float] = time.time,
                 infra: InfraRepository | None = None) -> None:
        self.db = db
        self.catalog = catalog
        self.kubernetes = kubernetes
        self.audit = audit
        self.policy = policy
        self.rules = rules
        self.notifier = notifier
        self.clock = clock
        self.infra = infra

    def owner(self, env: Environment) -> Team | None:
        entity = self.catalog.index.entities.get(env.owner_ref)
        return team(entity) if entity else None

    async def _outside(self, call: Awaitable[T], doing: str) -> T:
        """A cluster or repository call whose failure is told to the user, with nothing changed on our side."""
        try:
            return await call
        except IntegrationError as exc:
            raise Refused(f"{exc.system} could not {doing} ({exc.reason}); nothing was changed. "
                          "Try again, or ask the platform team.") from exc

    @property
    def provisioned(self) -> bool:
        """Whether environments can be made here (and so reaped): through a cluster or an infra repository."""
        return self.kubernetes is not None or self.infra is not None

    def cluster(self) -> KubernetesClient:
        if self.kubernetes is None:
            raise Refused("Environments need a Kubernetes cluster, and none is configured here (KUBECONFIG).")
        return self.kubernetes

    def repository(self) -> InfraRepository:
        if self.infra is None:
            raise Refused("This environment was proposed in an infrastructure pull request, but "
                          "PAVEDROAD_ENV_PROVISIONING is no longer pull-request here; ask the platform team.")
        return self.infra

    async def request(self, person: Person, service: str, purpose: str, size: str | None, ttl: str | None,
                      name: str | None, request_key: str) -> tuple[Environment, list[str]]:
        """Create an environment, or queue it for approval; the same `request_key` twice returns the first."""
        earlier = await self._by_key(request_key)
        if earlier is not None:
            return earlier, []
        found = self.catalog.index.find(service)
        if found.entity is None or found.entity.kind not in ("Component", "Resource", "System"):
            hint = f" Did you mean {', '.join(f'`{s}`' for s in found.suggestions)}?" if found.suggestions else ""
            raise Refused(f"I couldn't find a service called `{service[:80]}` in the catalog.{hint}")
        entity = found.entity
        owner = self.catalog.index.owner_of(entity.key)
        if not owner or owner not in self.catalog.index.entities:
            raise Refused(f"{entity.name} has no owner group in the catalog, so nobody could look after the environment.")
        if purpose not in PURPOSES:
            raise Refused(f"`{purpose[:40]}` is not a purpose; choose one of {', '.join(PURPOSES)}.")
        size, hours = self.rules.size(size), self.rules.ttl_hours(ttl)
        if await self._count_active(owner) >= self.rules.team_limit:
            raise Refused(f"{self.catalog.index.entities[owner].display_name} already has {self.rules.team_limit} environments, "
                          "the most a team may have at once. Destroy one with `/env destroy NAME` first.")
        now = self.clock()
        needs_approval = size in self.rules.approval_sizes
        env = Environment(name="", request_key=request_key, service_ref=entity.key, owner_ref=owner, purpose=purpose, size=size,
                          requester=person.slack_id, status="awaiting_approval" if needs_approval else "provisioning",
                          created_at=now, expires_at=now + hours * 3600)
        saved = await self._insert(env, name, entity.name, purpose)
        if saved is not env:  # the same request, submitted twice at once: the first one goes on
            return saved, []
        await self.audit.record(person.slack_id, "env.create", env.name, env.status, f"{size} {purpose} for {entity.key}")
        if needs_approval:
            await self.notifier.approval_needed(env, self.owner(env))
            return env, []
        return await self._provision(env)

    async def _insert(self, env: Environment, wanted: str | None, service: str, purpose: str) -> Environment:
        candidates = [check_name(wanted)] if wanted else [namespace_name(service, purpose, "" if i == 1 else str(i)) for i in range(1, 30)]
        for candidate in candidates:
            if await self._taken(candidate):
                continue
            env.name = env.active_name = candidate
            try:
                async with self.db.session() as session:
                    session.add(env)
                    await session.commit()
                    await session.refresh(env)
                return env
            except IntegrityError:
                earlier = await self._by_key(env.request_key)
                if earlier is not None:  # the same request, submitted twice at once
                    return earlier
        raise Refused(f"The name `{candidates[0]}` is taken; give the environment another name." if wanted
                      else "I could not find a free namespace name; give the environment a name.")

    async def _taken(self, name: str) -> bool:
        """A namespace of that name exists; proposing through a repository without a cluster to
        ask, only the records (unique live names) decide."""
        if self.infra is not None and self.kubernetes is None:
            return False
        return await self._outside(self.cluster().namespace(name), "check the name") is not None

    def _plan(self, env: Environment, expires_at: float) -> NamespacePlan:
        index = self.catalog.index
        service, owner = index.entities.get(env.service_ref), index.entities.get(env.owner_ref)
        service_name, owner_name = (service.name if service else env.service_ref), (owner.name if owner else env.owner_ref)
        quota, limits = self.rules.quota(env.size)
        return NamespacePlan(
            name=env.name,
            labels={MANAGED_BY: "pavedroad", "pavedroad.dev/service": slug(service_name)[:63],
                    "pavedroad.dev/owner": slug(owner_name)[:63], "pavedroad.dev/purpose": env.purpose},
            annotations={ENVIRONMENT_ID: str(env.id), "pavedroad.dev/requester": env.requester,
                         "pavedroad.dev/entity": env.service_ref, "pavedroad.dev/created-at": iso(env.created_at),
                         EXPIRES_AT: iso(expires_at)},
            quota=quota, container_limits=limits, ingress_namespace=self.rules.ingress_namespace,
            edit_group=self.rules.rbac_group.format(group=owner_name))

    async def _provision(self, env: Environment) -> tuple[Environment, list[str]]:
        plan = self._plan(env, env.expires_at)
        if self.infra is not None:
            return await self._propose(env, plan, self.infra)
        try:
            made = await self.cluster().provision(plan)
        except IntegrationError as exc:
            await self._roll_back(env)
            raise await self._failed(env, exc, "create") from exc
        await self.update(env, status="ready")
        return env, made

    async def _propose(self, env: Environment, plan: NamespacePlan, infra: InfraRepository) -> tuple[Environment, list[str]]:
        """Open the pull request that adds the environment's objects; they are what it lists."""
        try:
            pull = await infra.propose(plan, f"Create environment {env.name}", self._pull_body(env, "creates", env.expires_at))
        except IntegrationError as exc:
            await infra.withdraw(env.name)
            raise await self._failed(env, exc, f"open the pull request on {infra.full_name} for") from exc
        await self.update(env, status="pending_merge", detail=pull.html_url)
        return env, [f"{body['kind']} {body['metadata']['name']}" for body in namespace_objects(plan)]

    async def _failed(self, env: Environment, exc: IntegrationError, doing: str) -> Refused:
        """Record a provisioning that failed (its name is free again), and say so."""
        await self.record_end(env, "failed", exc.reason)
        await self.audit.record(env.requester, "env.provision", env.name, "failed", exc.reason)
        return Refused(f"{exc.system} could not {doing} `{env.name}` ({exc.reason}); nothing was left behind. "
                       "Try again, or ask the platform team.")

    @staticmethod
    def _pull_body(env: Environment, does: str, expires_at: float) -> str:
        return (f"This {does} the {env.size} {env.purpose} environment `{env.name}` of `{env.service_ref}`, asked for by "
                f"Slack user {env.requester} through pavedroad; it expires {iso(expires_at)}. The infra pipeline "
                "applies it once merged.")

    async def _roll_back(self, env: Environment) -> None:
        """Delete what a failed provisioning made, and only that (the namespace carries our id)."""
        try:
            existing = await self.cluster().namespace(env.name)
            if existing and existing.annotations.get(ENVIRONMENT_ID) == str(env.id):
                await self.cluster().delete_namespace(env.name)
        except IntegrationError:
            pass  # the reaper finds what is left: labelled, recorded as failed

    async def decide(self, person: Person, name: str, approve: bool) -> tuple[Environment, list[str]]:
        if not self.policy.is_admin(person):
            raise Refused("Only platform admins may approve or deny environments.")
        env = await self._active(name)
        if env is None or not await self._transition(env, "awaiting_approval", "provisioning" if approve else "denied"):
            raise Refused(f"`{name}` is not waiting for approval (someone may have decided already).")
        await self.audit.record(person.slack_id, "env.approve" if approve else "env.deny", env.name, "ok")
        made: list[str] = []
        if approve:
            try:
                env, made = await self._provision(env)
            except Refused:
                pass  # recorded as failed; the requester is told below
        else:
            await self.record_end(env, "denied", f"denied by {person.slack_id}")
        await self.notifier.decided(env, self.owner(env), approve, person.slack_id, made)
        return env, made

    async def extend(self, person: Person, name: str, duration: str) -> Environment:
        env = await self._manageable(person, name)
        hours = self.rules.ttl_hours(duration)
        latest = env.created_at + self.rules.max_ttl_hours * 3600
        new_expiry = min(env.expires_at + hours * 3600, latest)
        if new_expiry <= env.expires_at:
            raise Refused(f"`{name}` already lives as long as it may ({self.rules.max_ttl_hours / 24:g} days from creation).")
        changed: dict[str, object] = {}
        if env.status == "pending_merge":  # the same branch: an open pull request gets the new expiry, a merged one a successor
            proposal = self.repository().propose(self._plan(env, new_expiry), f"Extend environment {env.name} until {iso(new_expiry)}",
                                                 self._pull_body(env, "extends", new_expiry))
            changed["detail"] = (await self._outside(proposal, "open the pull request that extends it")).html_url
        elif env.status == "ready":
            await self._outside(self.cluster().annotate(env.name, {EXPIRES_AT: iso(new_expiry)}), "extend it")
        await self.update(env, expires_at=new_expiry, warned_at=None, **changed)
        await self.audit.record(person.slack_id, "env.extend", env.name, "ok", f"until {iso(new_expiry)}")
        return env

    async def destroy(self, person: Person, name: str) -> Environment:
        env = await self._manageable(person, name)
        await self.tear_down(env, person.slack_id)
        return env

    async def tear_down(self, env: Environment, by: str) -> None:
        """Delete the namespace (gone already is fine), or propose removing its file, and record
        the end; used by people and the reaper."""
        detail = f"by {by}"
        if env.status == "pending_merge":
            detail = await self._propose_removal(env, by)
        elif env.status in ("provisioning", "ready", "failed"):
            await self._outside(self.cluster().delete_namespace(env.name), f"delete {env.name}")
        await self.record_end(env, "destroyed", detail)
        await self.audit.record(by, "env.destroy", env.name, "ok")
        await self.notifier.destroyed(env, self.owner(env), by)

    async def _propose_removal(self, env: Environment, by: str) -> str:
        """Open the pull request that removes the environment's file; returns what the record says."""
        infra = self.repository()
        why = "it expired" if by == "reaper" else f"Slack user {by} destroyed it"
        removal = infra.propose_removal(env.name, f"Remove environment {env.name}",
                                        f"`{env.name}` is no longer needed ({why} through pavedroad). "
                                        "The infra pipeline deletes its namespace once merged.")
        pull = await self._outside(removal, f"open the pull request that removes {env.name}")
        if pull is None:
            return "Its pull request was closed before it was merged, so nothing was made"
        return f"{pull.html_url} removes it from {infra.full_name}; the namespace is deleted once that is merged"

    async def visible_to(self, person: Person) -> list[Environment]:
        """Active environments the person asked for or their teams own, soonest to expire first."""
        query = select(Environment).where(Environment.status.in_(ACTIVE), or_(
            Environment.requester == person.slack_id, Environment.owner_ref.in_(person.groups or ("",))))
        async with self.db.session() as session:
            return list((await session.exec(query.order_by(Environment.expires_at))).scalars().all())

    async def get(self, name: str) -> Environment | None:
        env = await self._active(name)
        if env is not None:
            return env
        async with self.db.session() as session:
            query = select(Environment).where(Environment.name == name).order_by(Environment.created_at.desc()).limit(1)
            return (await session.exec(query)).scalars().first()

    async def _manageable(self, person: Person, name: str) -> Environment:
        env = await self._active(name)
        if env is None:
            raise Refused(f"There is no live environment called `{name[:80]}`. `/env list` shows yours.")
        if not self.policy.may_manage(person, env.requester, env.owner_ref):
            raise Refused(f"Only <@{env.requester}>, members of the owning team or platform admins may change `{name}`.")
        return env

    async def _active(self, name: str) -> Environment | None:
        async with self.db.session() as session:
            return (await session.exec(select(Environment).where(Environment.active_name == name))).scalars().first()

    async def _by_key(self, request_key: str) -> Environment | None:
        async with self.db.session() as session:
            return (await session.exec(select(Environment).where(Environment.request_key == request_key))).scalars().first()

    async def _count_active(self, owner: str) -> int:
        async with self.db.session() as session:
            query = select(func.count()).select_from(Environment).where(Environment.owner_ref == owner, Environment.status.in_(ACTIVE))
            return (await session.exec(query)).scalar_one()

    async def _transition(self, env: Environment, before: str, after: str) -> bool:
        """Move from one state to another only if nobody else did first."""
        async with self.db.session() as session:
            result = await session.exec(update(Environment).where(Environment.id == env.id, Environment.status == before)
                                        .values(status=after))
            await session.commit()
        if result.rowcount:
            env.status = after
        return bool(result.rowcount)

    async def update(self, env: Environment, **values: object) -> None:
        async with self.db.session() as session:
            await session.exec(update(Environment).where(Environment.id == env.id).values(**values))
            await session.commit()
        for key, value in values.items():
            setattr(env, key, value)

    async def record_end(self, env: Environment, status: str, detail: str) -> None:
        await self.update(env, status=status, active_name=None, ended_at=self.clock(), detail=detail)
