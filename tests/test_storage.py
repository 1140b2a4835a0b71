"""What the database records, on both SQLite and PostgreSQL: the catalog, pages, deliveries,
Slack identities and the audit log."""
from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from bot.audit import Audit
from bot.catalog.loader import CatalogLoader
from bot.catalog.service import CatalogService
from bot.db import Database
from bot.deliveries import Deliveries
from bot.people import People
from tests.conftest import BACKSTAGE_EXAMPLE

ROOTS = ("all.yaml", "acme/org.yaml")


async def catalog_in(db: Database, root: Path) -> CatalogService:
    service = CatalogService(db, [str(root / r) for r in ROOTS], CatalogLoader(5_000_000))
    await service.restore()
    return service


async def test_catalog_is_recorded_restored_and_only_changes_are_reread(database_url, tmp_path):
    root = tmp_path / "catalog"
    shutil.copytree(BACKSTAGE_EXAMPLE, root)
    db = Database(database_url)
    await db.migrate()
    first = await catalog_in(db, root)
    report = await first.refresh()
    assert (report.entities, report.changed_sources, report.removed_sources) == (62, 44, 0)
    assert (await first.refresh()).changed_sources == 0

    restored = await catalog_in(db, root)           # a restart: served from the record before any file is read
    assert restored.loaded and set(restored.index.entities) == set(first.index.entities)
    assert restored.index.related("component:default/artist-lookup", "ownedBy") == ["group:default/team-a"]

    path = root / "components" / "artist-lookup-component.yaml"
    path.write_text(path.read_text().replace("owner: team-a", "owner: team-b"))
    (root / "acme" / "team-d-group.yaml").write_text("")   # the file is now empty: its entities go
    report = await restored.refresh()
    assert report.changed_sources == 2
    assert restored.index.related("component:default/artist-lookup", "ownedBy") == ["group:default/team-b"]
    again = await catalog_in(db, root)
    assert again.index.related("component:default/artist-lookup", "ownedBy") == ["group:default/team-b"]
    assert set(again.index.entities) == set(restored.index.entities)
    await db.close()


async def test_a_retried_delivery_is_handled_once_even_across_replicas(database_url):
    db = Database(database_url)
    await db.migrate()
    replica_a, replica_b = Deliveries(db), Deliveries(db)
    assert await replica_a.already_handled("event_id:Ev1", is_retry=False) is False
    await asyncio.gather(*replica_a._writes)
    assert await replica_a.already_handled("event_id:Ev1", is_retry=True) is True
    assert await replica_b.already_handled("event_id:Ev1", is_retry=True) is True    # the other replica sees the record
    assert await replica_b.already_handled("event_id:Ev2", is_retry=True) is False
    await replica_b.forget_old()
    await db.close()


async def test_slack_identities_are_cached(database_url, tmp_path):
    db = Database(database_url)
    await db.migrate()
    catalog = await catalog_in(db, BACKSTAGE_EXAMPLE)
    await catalog.refresh()
    asked: list[str] = []

    async def email_of(user_id: str) -> str | None:
        asked.append(user_id)
        return "breanna-davison@example.com"

    async def nobody(_: str) -> str | None:
        return None

    people = People(catalog, db, email_of, nobody)
    person = await people.whois("U123")
    assert person.user_key == "user:default/breanna.davison"
    assert person.groups == ("group:default/team-a", "group:default/backstage", "group:default/infrastructure",
                             "group:default/acme-corp")
    assert (await People(catalog, db, email_of, nobody).whois("U123")).email == "breanna-davison@example.com"
    assert asked == ["U123"]                              # the second ask came from the database record
    await db.close()


async def test_audit_log_records_changes(database_url):
    db = Database(database_url)
    await db.migrate()
    audit = Audit(db)
    await audit.record("U1", "page", "component:default/a", "paged", "events abc")
    await audit.record("U2", "page", "component:default/b", "failed", "HTTP 500")
    entries = await audit.recent()
    assert [(e.actor, e.outcome) for e in entries] == [("U2", "failed"), ("U1", "paged")]
    await db.close()
