"""Who owns a thing, gathered for one answer: the entity, its owner and escalation path, who is
on call and open incidents (PagerDuty), links, blast radius and health (Kubernetes).

PagerDuty and Kubernetes are asked at the same time under one time budget, and the catalog is
read while they answer; whatever has not answered in time is left out and the answer says so and why.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from bot.catalog.entity import Entity
from bot.catalog.index import CatalogIndex
from bot.catalog.relations import CHILD_OF, PART_OF
from bot.paging import SERVICE_ID, annotation
from bot.people import People
from integrations.blocking import discard
from integrations.errors import IntegrationError
from integrations.kubernetes import Health, KubernetesClient
from integrations.pagerduty import PagerDutyClient, ServiceOnCall

log = logging.getLogger(__name__)
KUBERNETES_ID = "backstage.io/kubernetes-id"
KUBERNETES_NAMESPACE = "backstage.io/kubernetes-namespace"
KUBERNETES_SELECTOR = "backstage.io/kubernetes-label-selector"
PROJECT_SLUG = "github.com/project-slug"
TECHDOCS_REF = "backstage.io/techdocs-ref"
SLACK_CHANNEL_ID = "slack.com/channel-id"
SLACK_CHANNEL_NAME = "slack.com/channel-name"


@dataclass(frozen=True)
class Link:
    title: str
    url: str
    type: str = ""


@dataclass(frozen=True)
class Team:
    key: str
    name: str
    channel_id: str = ""
    channel_name: str = ""
    email: str = ""


@dataclass(frozen=True)
class OnCallPerson:
    name: str
    level: int
    until: Any
    slack_id: str | None


@dataclass
class Answer:
    entity: Entity
    owner: Team | None
    owner_missing: str
    escalation: list[Team]
    system: str
    domain: str
    runbook: Link | None
    links: list[Link]
    repository: str
    repository_url: str
    docs: str
    docs_url: str
    depends_on: list[str]
    dependents: list[str]
    blast_radius: int
    oncall: ServiceOnCall | None = None
    oncall_people: list[OnCallPerson] = field(default_factory=list)
    health: Health | None = None
    missing: dict[str, str] = field(default_factory=dict)


@dataclass
class _Found:
    """What the outside systems have answered so far, while the catalog is read."""
    oncall: ServiceOnCall | None = None
    oncall_people: list[OnCallPerson] = field(default_factory=list)
    health: Health | None = None


def team(entity: Entity) -> Team:
    """A group (or user) as a team: display name, Slack channel, e-mail."""
    data = entity.data
    annotations = (data.get("metadata") or {}).get("annotations") or {}
    profile = (data.get("spec") or {}).get("profile") or {}
    return Team(entity.key, entity.title or profile.get("displayName") or entity.name,
                annotations.get(SLACK_CHANNEL_ID, ""), annotations.get(SLACK_CHANNEL_NAME, "").lstrip("#"),
                profile.get("email", ""))


def _links(metadata: dict[str, Any]) -> tuple[Link | None, list[Link]]:
    runbook, others = None, []
    for raw in metadata.get("links") or []:
        if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
            continue
        link = Link(str(raw.get("title") or raw["url"]), raw["url"], str(raw.get("type") or ""))
        if runbook is None and "runbook" in f"{link.title} {link.type}".lower():
            runbook = link
        else:
            others.append(link)
    return runbook, others


def github_web_url(api_url: str) -> str:
    """`https://api.github.com` → `https://github.com`; GitHub Enterprise `https://ghe/api/v3` → `https://ghe`."""
    if api_url.rstrip("/") == "https://api.github.com":
        return "https://github.com"
    return api_url.rstrip("/").removesuffix("/api/v3")


def kubernetes_selector(annotations: dict[str, str]) -> str:
    if annotations.get(KUBERNETES_SELECTOR):
        return annotations[KUBERNETES_SELECTOR]
    if annotations.get(KUBERNETES_ID):
        return f"{KUBERNETES_ID}={annotations[KUBERNETES_ID]}"
    return ""


class Ownership:
    def __init__(self, people: People, pagerduty: PagerDutyClient, kubernetes: KubernetesClient | None,
                 budget_seconds: float, github_web_url: str = "https://github.com", backstage_url: str = "") -> None:
        self.github_web_url = github_web_url.rstrip("/")
        self.backstage_url = backstage_url.rstrip("/")
        self.people = people
        self.pagerduty = pagerduty
        self.kubernetes = kubernetes
        self.budget = budget_seconds

    def describe(self, index: CatalogIndex, entity: Entity) -> Answer:
        """Everything the catalog itself knows; no outside calls."""
        data = entity.data
        metadata = data.get("metadata") or {}
        owner_key = index.owner_of(entity.key)
        owner_entity = index.entities.get(owner_key)
        owner = team(owner_entity) if owner_entity else None
        escalation, seen = [], {owner_key}
        parent = next(iter(index.related(owner_key, CHILD_OF)), "") if owner_key else ""
        while parent and parent not in seen and parent in index.entities:
            seen.add(parent)
            escalation.append(team(index.entities[parent]))
            parent = next(iter(index.related(parent, CHILD_OF)), "")
        system = entity.key if entity.kind == "System" else next(
            (k for k in index.related(entity.key, PART_OF) if k.startswith("system:")), "")
        domain = next((k for k in index.related(system, PART_OF) if k.startswith("domain:")), "") if system else ""
        runbook, links = _links(metadata)
        annotations = metadata.get("annotations") or {}
        return Answer(
            entity=entity, owner=owner,
            owner_missing="" if owner or not owner_key else f"{owner_key} is not in the catalog",
            escalation=escalation, system=system, domain=domain, runbook=runbook, links=links,
            repository=annotations.get(PROJECT_SLUG, ""),
            repository_url=f"{self.github_web_url}/{annotations[PROJECT_SLUG]}" if annotations.get(PROJECT_SLUG) else "",
            docs=annotations.get(TECHDOCS_REF, ""),
            docs_url=(f"{self.backstage_url}/docs/{entity.namespace}/{entity.kind.lower()}/{entity.name}"
                      if self.backstage_url and annotations.get(TECHDOCS_REF) else ""),
            depends_on=index.dependencies(entity.key), dependents=index.dependents(entity.key),
            blast_radius=index.blast_radius(entity.key),
        )

    async def answer(self, index: CatalogIndex, entity: Entity) -> Answer:
        """The catalog's description plus on-call and health, each within the time budget.

        PagerDuty and Kubernetes are asked first, and the catalog is read while they answer; the
        budget counts from the asking. A part that is late is cancelled and left out, and nothing
        it raises afterwards is left unretrieved."""
        deadline = asyncio.get_running_loop().time() + self.budget
        owner_entity = index.entities.get(index.owner_of(entity.key) or "")
        service_id = annotation(SERVICE_ID, entity, owner_entity)
        selector = kubernetes_selector(entity.annotations)
        found = _Found()
        missing: dict[str, str] = {}
        jobs: dict[str, asyncio.Task] = {}
        if not service_id:
            missing["on-call"] = f"no {SERVICE_ID} annotation on {entity.name} or its owner"
        elif not self.pagerduty.can_read:
            missing["on-call"] = "PagerDuty is not configured (PAGERDUTY_API_TOKEN)"
        else:
            jobs["on-call"] = asyncio.create_task(self._oncall(found, service_id))
        if not selector:
            missing["health"] = f"no {KUBERNETES_ID} or {KUBERNETES_SELECTOR} annotation"
        elif self.kubernetes is None:
            missing["health"] = "Kubernetes is not configured (KUBECONFIG)"
        else:
            jobs["health"] = asyncio.create_task(self._health(found, selector, entity.annotations.get(KUBERNETES_NAMESPACE, "")))
        try:
            if jobs:
                await asyncio.sleep(0)  # let the jobs send their requests before the catalog work below
            answer = self.describe(index, entity)
            answer.missing.update(missing)
            if jobs:
                _, pending = await asyncio.wait(jobs.values(), timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
                for part, job in jobs.items():
                    if job in pending:
                        discard(job)
                        if part == "on-call" and found.oncall is not None:
                            continue  # PagerDuty answered; only some Slack mentions are missing
                        answer.missing[part] = f"{'PagerDuty' if part == 'on-call' else 'Kubernetes'} did not answer within {self.budget:g}s"
                    elif job.cancelled():
                        answer.missing[part] = "the lookup was cancelled"
                    elif isinstance(job.exception(), IntegrationError):
                        answer.missing[part] = str(job.exception())
                    elif job.exception() is not None:
                        log.error("%s lookup failed", part, exc_info=job.exception())
                        answer.missing[part] = "the lookup failed unexpectedly (see the bot's log)"
        finally:
            discard(*(job for job in jobs.values() if not job.done()))
        answer.oncall, answer.oncall_people, answer.health = found.oncall, list(found.oncall_people), found.health
        return answer

    async def _oncall(self, found: _Found, service_id: str) -> None:
        """Names first, then Slack mentions where they arrive within the budget."""
        oncall = await self.pagerduty.service_oncall(service_id)
        found.oncall = oncall
        found.oncall_people = [OnCallPerson(o.name, o.level, o.until, None) for o in oncall.oncalls]
        slack_ids = await asyncio.gather(*(self.people.slack_id_for(o.email) for o in oncall.oncalls), return_exceptions=True)
        found.oncall_people = [OnCallPerson(o.name, o.level, o.until, s if isinstance(s, str) else None)
                               for o, s in zip(oncall.oncalls, slack_ids)]

    async def _health(self, found: _Found, selector: str, namespace: str) -> None:
        found.health = await self.kubernetes.health(selector, namespace)
