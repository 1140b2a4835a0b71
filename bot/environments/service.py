"""Requesting, provisioning, approving, extending and destroying environments.

Every change is recorded before and after it happens, so a Slack retry or a double click finds
the request already made (its `request_key`), and a failed provisioning is rolled back and said.
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
from bot.environments.rules import PURPOSES, Refused, Rules, check_name, namespace_name, slug
from bot.models import Environment
from bot.ownership import Team, team
from bot.people import Person
from bot.policy import Policy
from integrations.errors import IntegrationError
from integrations.kubernetes import MANAGED_BY, KubernetesClient, NamespacePlan

T = TypeVar("T")
ACTIVE = ("awaiting_approval", "provisioning", "ready")
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
                 policy: Policy, rules: Rules, notifier: Notifier, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.catalog = catalog
        self.kubernetes = kubernetes
        self.audit = audit
        self.policy = policy
        self.rules = rules
        self.notifier = notifier
        self.clock = clock

    def owner(self, env: Environment) -> Team | None:
        entity = self.catalog.index.entities.get(env.owner_ref)
        return team(entity) if entity else None

    async def _kubernetes(self, call: Awaitable[T], doing: str) -> T:
        """A cluster call whose failure is told to the user, with nothing changed on our side."""
        try:
            return await call
        except IntegrationError as exc:
            raise Refused(f"Kubernetes could not {doing} ({exc.reason}); nothing was changed. "
                          "Try again, or ask the platform team.") from exc

    def cluster(self) -> KubernetesClient:
        if self.kubernetes is None:
            raise Refused("Environments need a Kubernetes cluster, and none is configured here (KUBECONFIG).")
        return self.kubernetes

    async def request(self, person: Person, service: str, purpose: str, size: str | None, ttl: str | None,
                      name: str | None, request_key: str) -> tuple[Environment, list[str]]:
        """Create an environment, or queue it for approval; the same `request_key` twice returns the first."""
        earlier = await self._by_key(request_key)
        if earlier is not None:
            return earlier, []
        cluster = self.cluster()
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
        env = await self._insert(env, name, entity.name, purpose, cluster)
        await self.audit.record(person.slack_id, "env.create", env.name, env.status, f"{size} {purpose} for {entity.key}")
        if needs_approval:
            await self.notifier.approval_needed(env, self.owner(env))
            return env, []
        return await self._provision(env)

    async def _insert(self, env: Environment, wanted: str | None, service: str, purpose: str,
                      cluster: KubernetesClient) -> Environment:
        candidates = [check_name(wanted)] if wanted else [namespace_name(service, purpose, "" if i == 1 else str(i)) for i in range(1, 30)]
        for candidate in candidates:
            if await self._kubernetes(cluster.namespace(candidate), "check the name") is not None:
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

    async def _provision(self, env: Environment) -> tuple[Environment, list[str]]:
        cluster = self.cluster()
        index = self.catalog.index
        service, owner = index.entities.get(env.service_ref), index.entities.get(env.owner_ref)
        service_name, owner_name = (service.name if service else env.service_ref), (owner.name if owner else env.owner_ref)
        quota, limits = self.rules.quota(env.size)
        plan = NamespacePlan(
            name=env.name,
            labels={MANAGED_BY: "pavedroad", "pavedroad.dev/service": slug(service_name)[:63],
                    "pavedroad.dev/owner": slug(owner_name)[:63], "pavedroad.dev/purpose": env.purpose},
            annotations={ENVIRONMENT_ID: str(env.id), "pavedroad.dev/requester": env.requester,
                         "pavedroad.dev/entity": env.service_ref, "pavedroad.dev/created-at": iso(env.created_at),
                         EXPIRES_AT: iso(env.expires_at)},
            quota=quota, container_limits=limits, ingress_namespace=self.rules.ingress_namespace,
            edit_group=self.rules.rbac_group.format(group=owner_name))
        try:
            made = await cluster.provision(plan)
        except IntegrationError as exc:
            await self._roll_back(env)
            await self.record_end(env, "failed", exc.reason)
            await self.audit.record(env.requester, "env.provision", env.name, "failed", exc.reason)
            raise Refused(f"Kubernetes could not create `{env.name}` ({exc.reason}); nothing was left behind. "
                          "Try again, or ask the platform team.") from exc
        await self.update(env, status="ready")
        return env, made

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
        if env.status == "ready":
            await self._kubernetes(self.cluster().annotate(env.name, {EXPIRES_AT: iso(new_expiry)}), "extend it")
        await self.update(env, expires_at=new_expiry, warned_at=None)
        await self.audit.record(person.slack_id, "env.extend", env.name, "ok", f"until {iso(new_expiry)}")
        return env

    async def destroy(self, person: Person, name: str) -> Environment:
        env = await self._manageable(person, name)
        await self.tear_down(env, person.slack_id)
        return env

    async def tear_down(self, env: Environment, by: str) -> None:
        """Delete the namespace (gone already is fine) and record the end; used by people and the reaper."""
        if env.status in ("provisioning", "ready", "failed"):
            await self._kubernetes(self.cluster().delete_namespace(env.name), f"delete {env.name}")
        await self.record_end(env, "destroyed", f"by {by}")
        await self.audit.record(by, "env.destroy", env.name, "ok")
        await self.notifier.destroyed(env, self.owner(env), by)

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
