"""`Services`: every domain service and outside client, built once from the settings.

The Slack wiring, the shell and the command line all use the same object; nothing here knows
Slack except the two profile lookups the wiring hands to `People`.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp

from bot.audit import Audit
from bot.catalog.loader import CatalogLoader
from bot.catalog.service import CatalogService
from bot.config import ConfigError, Settings
from bot.db import Database
from bot.deliveries import Deliveries
from bot.environments.infra import InfraRepository
from bot.environments.reaper import Reaper
from bot.environments.rules import Rules
from bot.environments.service import Environments, Notifier
from bot.knowledge.search import KnowledgeBase
from bot.knowledge.service import Knowledge
from bot.knowledge.sources import DocSources
from bot.leases import Leases
from bot.metrics.delivery_data import DeliveryData
from bot.metrics.delivery_sync import DeliverySync
from bot.metrics.dora_reports import Dora
from bot.officehours import OfficeHours
from bot.ownership import Ownership, github_web_url
from bot.paging import Paging
from bot.people import Lookup, People
from bot.policy import Policy
from bot.scaffolder.service import Scaffolder
from bot.usage import Usage
from integrations.backstage import BackstageClient
from integrations.git_hosting import GitHost
from integrations.git_local import LocalGit
from integrations.github import GitHubClient
from integrations.github_delivery import GitHubDelivery
from integrations.github_publish import AppCredentials, GitHubPublisher
from integrations.kubernetes import KubernetesClient
from integrations.pagerduty import PagerDutyClient
from integrations.tls import ssl_context

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    db: Database
    http: aiohttp.ClientSession
    catalog: CatalogService
    people: People
    ownership: Ownership
    paging: Paging
    audit: Audit
    deliveries: Deliveries
    kubernetes: KubernetesClient | None
    environments: Environments
    reaper: Reaper
    policy: Policy
    leases: Leases
    knowledge: Knowledge
    office_hours: OfficeHours
    scaffolder: Scaffolder
    dora: Dora
    usage: Usage
    github_delivery: GitHubDelivery | None = None
    """GitHub reads for `/dora` and CI success rates (deployments, workflow runs, commits)."""

    async def prepare(self) -> None:
        """Migrate the schema and serve the catalog as recorded; `refresh()` re-reads it."""
        await self.db.migrate()
        await self.catalog.restore()

    async def refresh(self) -> None:
        """Re-read the catalog, then the runbooks, docs and FAQ it points to (the shell; the server
        runs the two as separate jobs)."""
        await self.catalog.refresh()
        await self.knowledge.reindex()

    async def close(self) -> None:
        await self.scaffolder.close()
        await self.deliveries.close()
        await self.usage.close()
        await self.dora.sync.close()
        await self.http.close()
        await asyncio.to_thread(self.paging.pagerduty.close)
        if self.kubernetes is not None:
            await asyncio.to_thread(self.kubernetes.close)
        await self.db.close()


async def _no_lookup(_: str) -> str | None:
    return None


def _kubernetes(settings: Settings) -> KubernetesClient | None:
    if not settings.kubernetes_enabled:
        return None
    try:
        return KubernetesClient(settings.kubeconfig, timeout=settings.answer_budget_seconds)
    except Exception as exc:  # the client raises several unrelated types for a bad config
        where = f"KUBECONFIG ({settings.kubeconfig})" if settings.kubeconfig else "the in-cluster service account"
        raise ConfigError(f"cannot load the Kubernetes configuration from {where}: "
                          f"{(str(exc).splitlines() or [exc.__class__.__name__])[0][:200]}") from None


def _git_host(settings: Settings, http: aiohttp.ClientSession) -> GitHost:
    """GitHub when a token or an App is configured; otherwise bare repositories under the data directory."""
    if not settings.github_publishing:
        return LocalGit(settings.data_dir / "git")
    app = AppCredentials(settings.github_app_id, settings.github_app_private_key,
                         settings.github_app_installation_id) if settings.github_app_id else None
    return GitHubPublisher(http, settings.github_api_url, settings.github_token, app)


def build_services(settings: Settings, notifier: Notifier, email_of_slack_user: Lookup = _no_lookup,
                   slack_user_of_email: Lookup = _no_lookup) -> Services:
    kubernetes = _kubernetes(settings)
    db = Database(settings.database_url)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context(settings.ssl_cert_file)))
    backstage = BackstageClient(http, settings.backstage_url, settings.backstage_token) if settings.backstage_url else None
    catalog = CatalogService(db, settings.catalog, CatalogLoader(settings.catalog_max_file_bytes), backstage)
    pagerduty = PagerDutyClient(settings.pagerduty_api_token, settings.pagerduty_api_url, settings.pagerduty_events_url,
                                settings.ssl_cert_file, timeout=settings.answer_budget_seconds,
                                change_timeout=settings.page_timeout_seconds)
    people = People(catalog, db, email_of_slack_user, slack_user_of_email)
    audit = Audit(db)
    policy, leases = Policy(settings.platform_admins), Leases(db)
    git_host = _git_host(settings, http)  # one for the scaffolder and environments: GitHub writes go one at a time
    infra_owner, _, infra_name = settings.env_infra_repo.partition("/")
    infra = (InfraRepository(git_host, infra_owner, infra_name, settings.env_infra_path)
             if settings.env_provisioning == "pull-request" else None)
    environments = Environments(db, catalog, kubernetes, audit, policy, Rules.from_settings(settings), notifier, infra=infra)
    knowledge = Knowledge(KnowledgeBase(db), DocSources(GitHubClient(http, settings.github_api_url, settings.github_token)),
                          catalog, settings.faq_dir, settings.docs_full_pass_seconds)
    github_delivery = GitHubDelivery(http, settings.github_api_url, settings.github_token)
    return Services(
        settings=settings, db=db, http=http, catalog=catalog, people=people,
        ownership=Ownership(people, pagerduty, kubernetes, settings.answer_budget_seconds,
                            github_web_url(settings.github_api_url), settings.backstage_url),
        paging=Paging(db, pagerduty, audit, settings.page_dedup_minutes), audit=audit,
        deliveries=Deliveries(db), kubernetes=kubernetes, environments=environments,
        reaper=Reaper(environments, leases), policy=policy, leases=leases, knowledge=knowledge,
        office_hours=OfficeHours(db, knowledge),
        scaffolder=Scaffolder(db, catalog, people, policy, audit, leases, git_host,
                              template_paths=settings.templates, work_dir=settings.data_dir / "scaffolder"),
        github_delivery=github_delivery, usage=Usage(db),
        dora=Dora(lambda: catalog.index, DeliverySync(DeliveryData(db), github_delivery, pagerduty,
                                                      incident_timeout=max(settings.answer_budget_seconds * 4, 6.0)),
                  budget_seconds=max(settings.answer_budget_seconds * 4, 6.0)),
    )
