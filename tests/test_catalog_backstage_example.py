"""The real Backstage example catalog loads with every entity and relation; its quirks are reported."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from bot.catalog.index import CatalogIndex
from bot.catalog.loader import CatalogLoader
from bot.catalog.relations import INVERSE
from tests.conftest import BACKSTAGE_EXAMPLE

ROOTS = [str(BACKSTAGE_EXAMPLE / "all.yaml"), str(BACKSTAGE_EXAMPLE / "acme" / "org.yaml")]


def _load() -> CatalogIndex:
    result = CatalogLoader(5_000_000).load(ROOTS)
    entities = [e for s in result.sources.values() for e in s.entities]
    problems = [p for s in result.sources.values() for p in s.problems] + result.problems
    return CatalogIndex.build(entities, problems)


def _documents_on_disk() -> list[dict]:
    """Every entity document in the example files, read independently of the loader."""
    docs = []
    for path in sorted(BACKSTAGE_EXAMPLE.rglob("*.yaml")):
        if path.name.endswith(".oas.yaml"):  # an OpenAPI document a $text placeholder points at, not an entity
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and "kind" in d)
    return docs


def test_every_entity_on_disk_is_loaded():
    index = _load()
    expected = {f"{d['kind']}:{d['metadata'].get('namespace', 'default')}/{d['metadata']['name']}".lower() for d in _documents_on_disk()}
    assert set(index.entities) == expected
    assert Counter(e.kind for e in index.entities.values()) == Counter(d["kind"] for d in _documents_on_disk())
    assert len(expected) == 62


def test_relations_are_derived_as_backstage_does():
    index = _load()
    rel = index.related
    assert rel("component:default/artist-lookup", "ownedBy") == ("group:default/team-a",)
    assert "component:default/artist-lookup" in rel("group:default/team-a", "ownerOf")
    assert rel("component:default/artist-lookup", "partOf") == ("system:default/artist-engagement-portal",)
    assert "component:default/artist-lookup" in rel("system:default/artist-engagement-portal", "hasPart")
    assert rel("user:default/breanna.davison", "memberOf") == ("group:default/team-a",)
    assert "user:default/breanna.davison" in rel("group:default/team-a", "hasMember")
    assert rel("group:default/team-a", "childOf") == ("group:default/backstage",)
    assert "group:default/team-a" in rel("group:default/backstage", "parentOf")
    assert "group:default/infrastructure" in rel("group:default/acme-corp", "parentOf")
    # Every relation has its inverse on the other side, as in Backstage.
    for relation, by_source in index.relations.items():
        for source, targets in by_source.items():
            for target in targets:
                assert source in rel(target, INVERSE[relation]), (source, relation, target)


def test_api_and_dependency_relations():
    index = _load()
    providers = {s for s, targets in index.relations["providesApi"].items() for t in targets}
    consumers = {s for s, targets in index.relations["consumesApi"].items() for t in targets}
    docs = _documents_on_disk()
    assert providers == {f"component:default/{d['metadata']['name']}" for d in docs if d["spec"].get("providesApis")}
    assert consumers == {f"component:default/{d['metadata']['name']}" for d in docs if d["spec"].get("consumesApis")}
    owned = sum(len(t) for t in index.relations["ownedBy"].values())
    assert owned == sum(1 for d in docs if d.get("spec", {}).get("owner"))


def test_quirks_are_reported_with_file_and_line():
    problems = [str(p) for p in _load().problems]
    guest = [p for p in problems if "guest" in p]
    assert len(guest) == 1
    assert guest[0].endswith("components/playback-order-component.yaml:12: component:default/playback-order: "
                             "spec.owner refers to group:default/guest, which is not in the catalog")
    missing = [p for p in problems if "swapi-graphql" in p]
    assert len(missing) == 1 and "not found" in missing[0] and "all-apis.yaml" in missing[0]
    assert len(problems) == 2, problems


def test_lookup_on_the_example():
    index = _load()
    assert index.find("ARTIST-LOOKUP").entity.key == "component:default/artist-lookup"
    assert index.find("component:default/artist-lookup").entity.kind == "Component"
    assert index.find("api:petstore").entity.key == "api:default/petstore"
    assert index.find("artst-lookup").suggestions[0] == "artist-lookup"
    assert Path(index.find("team-a").entity.source).name == "team-a-group.yaml"
