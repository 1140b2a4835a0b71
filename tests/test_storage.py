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
    assert restored.index.related("component:default/artist-lookup", "ownedBy") == ("group:default/team-a",)

    path = root / "components" / "artist-lookup-component.yaml"
    path.write_text(path.read_text().replace("owner: team-a", "owner: team-b"))
    (root / "acme" / "team-d-group.yaml").write_text("")   # the file is now empty: its entities go
    report = await restored.refresh()
    assert report.changed_sources == 2
    assert restored.index.related("component:default/artist-lookup", "ownedBy") == ("group:default/team-b",)
    again = await catalog_in(db, root)
    assert again.index.related("component:default/artist-lookup", "ownedBy") == ("group:default/team-b",)
    assert set(again.index.entities) == set(restored.index.entities)
    await db.close()


async def test_a_retried_delivery_is_handled_once_even_across_replicas(database_url):
    db = Database(database_url)
    await db.migrate()
    replica_a, replica_b = Deliveries(db), Deliveries(db)
    assert await replica_a.already_handled("event_id:Ev1", is_retry=False) is False
    assert await replica_a.already_handled("event_id:Ev3", is_retry=False) is False
    await asyncio.sleep(0.5)  # first deliveries reach the database in one batch, in the background
    assert await replica_a.already_handled("event_id:Ev1", is_retry=True) is True
    assert await replica_b.already_handled("event_id:Ev1", is_retry=True) is True    # the other replica sees the record
    assert await replica_b.already_handled("event_id:Ev3", is_retry=True) is True
    assert await replica_b.already_handled("event_id:Ev2", is_retry=True) is False
    assert await replica_a.already_handled("event_id:Ev4", is_retry=False) is False
    await replica_a.close()  # a stop writes what is pending
    assert await replica_b.already_handled("event_id:Ev4", is_retry=True) is True
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


async def test_an_entity_defined_again_in_a_new_file_never_blocks_refresh(database_url, tmp_path):
    root = tmp_path / "catalog"
    shutil.copytree(BACKSTAGE_EXAMPLE, root)
    db = Database(database_url)
    await db.migrate()
    catalog = CatalogService(db, [str(root)], CatalogLoader(5_000_000))     # the whole directory
    await catalog.refresh()
    copy = root / "components" / "copy-of-artist-lookup.yaml"
    copy.write_text((root / "components" / "artist-lookup-component.yaml").read_text())
    report = await catalog.refresh()
    assert report.changed_sources == 1
    assert any("also defined in" in str(p) for p in catalog.index.problems)
    (root / "components" / "new.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: brand-new\n"
        "spec:\n  type: service\n  lifecycle: production\n  owner: team-a\n")
    await catalog.refresh()                                    # later files still load
    assert "component:default/brand-new" in catalog.index.entities
    restored = CatalogService(db, [str(root)], CatalogLoader(5_000_000))
    await restored.restore()
    assert "component:default/brand-new" in restored.index.entities
    await db.close()


async def test_fields_of_the_wrong_shape_are_reported_and_dropped(database_url, tmp_path):
    (tmp_path / "odd.yaml").write_text("""
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: odd
  title: [not, a, string]
  annotations: [slack.com/user-id]
  links: [{title: no url}]
spec:
  profile: just-a-string
  memberOf: []
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: odd-service
  annotations: {pagerduty.com/service-id: 12345}
  links: not-a-list
spec: {type: service, lifecycle: production, owner: nobody}
""".lstrip())
    db = Database(database_url)
    await db.migrate()
    catalog = CatalogService(db, [str(tmp_path / "odd.yaml")], CatalogLoader(5_000_000))
    await catalog.refresh()
    problems = "\n".join(str(p) for p in catalog.index.problems)
    for expected in ("odd.yaml:5: user:default/odd: metadata.title must be a string; ignored",
                     "odd.yaml:6: user:default/odd: metadata.annotations must be a mapping of strings; ignored",
                     "odd.yaml:7: user:default/odd: every metadata.links entry needs a url",
                     "odd.yaml:9: user:default/odd: spec.profile must be a mapping; ignored",
                     "metadata.annotations.pagerduty.com/service-id must be a string (quote it); ignored"):
        assert expected in problems
    restored = CatalogService(db, catalog.roots, CatalogLoader(5_000_000))
    await restored.restore()                                  # what was stored restores cleanly
    assert restored.index.entities["component:default/odd-service"].data["metadata"]["links"] == []
    await db.close()
