"""Loading catalog files: Locations, multi-document YAML, bad input reported with file and line."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.catalog.loader import CatalogLoader
from bot.catalog.refs import RefError, parse_ref
from bot.catalog.service import lint


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def component(name: str, owner: str = "team-a", extra: str = "") -> str:
    return textwrap.dedent(f"""
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata:
          name: {name}
        spec:
          type: service
          lifecycle: production
          owner: {owner}
        """).lstrip() + (extra + "\n" if extra else "")


GROUP = """
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
spec:
  type: team
  children: []
"""


def problems_of(*paths: Path, max_bytes: int = 5_000_000) -> list[str]:
    return [str(p) for p in lint(CatalogLoader(max_bytes), [str(p) for p in paths])]


def entities_of(*paths: Path) -> set[str]:
    result = CatalogLoader(5_000_000).load([str(p) for p in paths])
    return {e.key for s in result.sources.values() for e in s.entities}


@pytest.mark.parametrize("text,kind,namespace,name", [
    ("payment-service", "component", "default", "payment-service"),
    ("Component:Default/Payment-Service", "component", "default", "payment-service"),
    ("ops/db", "component", "ops", "db"),
    ("resource:db", "resource", "default", "db"),
])
def test_parse_ref(text, kind, namespace, name):
    ref = parse_ref(text, default_kind="component")
    assert (ref.kind, ref.namespace, ref.name) == (kind, namespace, name)


@pytest.mark.parametrize("text", ["", "   ", "component:", "a/b/c", ":x"])
def test_parse_ref_refuses(text):
    with pytest.raises(RefError):
        parse_ref(text, default_kind="component")


def test_reference_without_kind_where_backstage_requires_one(tmp_path):
    path = write(tmp_path / "c.yaml", GROUP.lstrip() + "---\n" + component("a", extra="  dependsOn: [b]"))
    assert problems_of(path) == [f"{path}:17: component:default/a: spec.dependsOn: 'b' has no kind; write it as kind:name (for example component:b)"]


def test_directories_multi_documents_and_locations(tmp_path):
    write(tmp_path / "org.yaml", GROUP)
    write(tmp_path / "services" / "many.yaml", component("a") + "---\n" + component("b"))
    write(tmp_path / "nested" / "deeper" / "c.yaml", component("c"))
    assert entities_of(tmp_path) == {"group:default/team-a", "component:default/a", "component:default/b", "component:default/c"}
    other = write(tmp_path.parent / f"{tmp_path.name}-abs" / "d.yaml", component("d"))
    root = write(tmp_path / "root" / "all.yaml", f"""
        apiVersion: backstage.io/v1alpha1
        kind: Location
        metadata:
          name: root
        spec:
          targets:
            - ../org.yaml
            - ../services/*.yaml
            - {other}
        """)
    assert entities_of(root) == {"location:default/root", "group:default/team-a", "component:default/a",
                                 "component:default/b", "component:default/d"}
    assert problems_of(root) == []


def test_location_cycles_are_refused(tmp_path):
    location = """
        apiVersion: backstage.io/v1alpha1
        kind: Location
        metadata:
          name: {name}
        spec:
          target: ./{target}
        """
    a = write(tmp_path / "a.yaml", location.format(name="a", target="b.yaml"))
    write(tmp_path / "b.yaml", location.format(name="b", target="a.yaml"))
    problems = problems_of(a)
    assert problems == [f"{tmp_path / 'b.yaml'}:1: location:default/b: target './a.yaml' leads back to itself (a Location cycle); not followed"]
    assert entities_of(a) == {"location:default/a", "location:default/b"}


def test_bad_files_are_reported_and_never_block_the_others(tmp_path):
    write(tmp_path / "good.yaml", GROUP.lstrip() + "---\n" + component("good"))
    write(tmp_path / "broken.yaml", "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: [oops\n")
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: nginx\n")
    write(tmp_path / "bad-name.yaml", component("Not A Valid Name!"))
    write(tmp_path / "no-owner.yaml", "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\nspec:\n  type: service\n  lifecycle: production\n")
    write(tmp_path / "unknown-kind.yaml", "apiVersion: backstage.io/v1alpha1\nkind: Spaceship\nmetadata:\n  name: x\n")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00garbage\x00")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))
    write(tmp_path / "bomb.yaml", "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: bomb\nspec:\n" +
          "".join("  " + line + "\n" for line in bomb.splitlines()))
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:
        handle.write(b"# filler\n" * (50_000_000 // 9 + 1))
    problems = problems_of(tmp_path)
    by_file = {Path(p.split(":", 1)[0]).name: p for p in problems}
    assert entities_of(tmp_path) == {"group:default/team-a", "component:default/good"}
    assert by_file["broken.yaml"].endswith(":5: invalid YAML: did not find expected ',' or ']' "
                                          "(in the flow sequence from line 4); rest of file skipped")
    assert by_file["compose.yaml"].endswith(":1: not a Backstage entity (no apiVersion and kind); skipped")
    assert ":4: metadata.name 'Not A Valid Name!' must be" in by_file["bad-name.yaml"]
    assert "spec.owner must be a string for a Component; skipped" in by_file["no-owner.yaml"]
    assert "unsupported kind 'Spaceship'" in by_file["unknown-kind.yaml"]
    assert "invalid YAML" in by_file["binary.yaml"]
    assert "expands past a million nodes" in by_file["bomb.yaml"]
    assert "50,000,004 bytes, over PAVEDROAD_CATALOG_MAX_FILE_BYTES" in by_file["huge.yaml"]
    assert len(problems) == 8


def test_dangling_and_duplicate_entities_are_reported_not_fatal(tmp_path):
    write(tmp_path / "one.yaml", component("a", owner="ghosts"))
    write(tmp_path / "two.yaml", component("a"))
    problems = problems_of(tmp_path / "one.yaml", tmp_path / "two.yaml")
    assert f"{tmp_path / 'two.yaml'}:1: component:default/a: also defined in {tmp_path / 'one.yaml'}:1; this one is ignored" in problems
    assert f"{tmp_path / 'one.yaml'}:8: component:default/a: spec.owner refers to group:default/ghosts, which is not in the catalog" in problems


def test_references_take_the_referring_entity_namespace(tmp_path):
    path = write(tmp_path / "ns.yaml", """
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata:
          name: a
          namespace: ops
        spec:
          type: service
          lifecycle: production
          owner: sre
          dependsOn: [resource:db, component:default/b]
        """)
    result = CatalogLoader(5_000_000).load([str(path)])
    entity = next(e for s in result.sources.values() for e in s.entities)
    assert [(r.relation, r.target) for r in entity.refs] == [
        ("ownedBy", "group:ops/sre"), ("dependsOn", "resource:ops/db"), ("dependsOn", "component:default/b")]


def test_many_changed_files_are_parsed_in_worker_processes_with_the_same_result(tmp_path):
    """Past PARALLEL_FILES changed files the loader parses in worker processes; what it loads,
    and every problem with its line, must be what one process loads."""
    targets = []
    for number in range(40):
        extra = "  dependsOn: [component:missing]" if number % 10 == 0 else ""
        write(tmp_path / f"teams/t{number:02d}.yaml", component(f"svc-{number}", extra=extra) + "---\nnot: backstage\n")
        targets.append(f"  - ./teams/t{number:02d}.yaml")
    write(tmp_path / "bad.yaml", "key: [unclosed\n")
    write(tmp_path / "all.yaml", "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: all\n"
                                 "spec:\n  targets:\n" + "\n".join(targets + ["  - ./bad.yaml", "  - ./all.yaml"]) + "\n")

    def flatten(workers: int) -> tuple[list[tuple[str, bytes]], list[str]]:
        result = CatalogLoader(1_000_000, workers=workers).load([str(tmp_path / "all.yaml")])
        entities = sorted((e.key, e.body) for s in result.sources.values() for e in s.entities)
        problems = sorted(str(p) for s in result.sources.values() for p in s.problems) + sorted(map(str, result.problems))
        return entities, problems

    parallel, serial = flatten(2), flatten(1)
    assert parallel == serial
    assert len(parallel[0]) == 41  # 40 components and the Location
    assert any("bad.yaml:2" in p and "invalid YAML" in p for p in parallel[1])
    assert any("Location cycle" in p for p in parallel[1])
    assert sum("not a Backstage entity" in p for p in parallel[1]) == 40
