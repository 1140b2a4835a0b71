"""A Backstage instance's catalog API as a catalog source: paginated, authenticated, and when it
fails the last copy keeps serving."""
from __future__ import annotations

import aiohttp

from bot.catalog.loader import CatalogLoader
from bot.catalog.service import CatalogService
from bot.db import Database
from integrations.backstage import BackstageClient
from tests.fakes.backstage import BackstageFake


def components(n: int) -> list[dict]:
    return [{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
             "metadata": {"name": f"svc-{i}", "annotations": {"backstage.io/managed-by-location": "url:x"}},
             "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"},
             "relations": [{"type": "ownedBy", "targetRef": "group:default/team-a"}]} for i in range(n)]


async def test_entities_are_read_page_by_page_and_survive_an_outage(tmp_path):
    async with BackstageFake(token="backstage-token") as backstage, aiohttp.ClientSession() as http:
        backstage.add_entities(components(1203) + [{"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
                                                    "metadata": {"name": "team-a"}, "spec": {"type": "team", "children": []}}])
        db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
        await db.migrate()
        catalog = CatalogService(db, [], CatalogLoader(5_000_000), BackstageClient(http, backstage.url, "backstage-token"))
        report = await catalog.refresh()
        assert (report.entities, report.problems) == (1204, 0)
        pages = [r for r in backstage.requests if r.path == "/api/catalog/entities/by-query"]
        assert len(pages) >= 3 and all(r.headers["Authorization"] == "Bearer backstage-token" for r in pages)
        assert catalog.index.related("component:default/svc-7", "ownedBy") == ("group:default/team-a",)

        backstage.fail_status = 503
        await catalog.refresh()
        assert len(catalog.index.entities) == 1204
        assert any("HTTP 503; serving the last copy" in str(p) for p in catalog.index.problems)
        await db.close()


async def test_a_wrong_token_is_reported(tmp_path):
    async with BackstageFake(token="right") as backstage, aiohttp.ClientSession() as http:
        db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
        await db.migrate()
        catalog = CatalogService(db, [], CatalogLoader(5_000_000), BackstageClient(http, backstage.url, "wrong"))
        await catalog.refresh()
        assert [str(p) for p in catalog.index.problems] == [f"backstage:{backstage.url}: catalog API answered HTTP 401"]
        await db.close()
