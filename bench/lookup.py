"""Lookup latency of `CatalogIndex.find` at catalog scale, for hits and for "did you mean".

Builds the index of the synthetic catalog (loader + `CatalogIndex.build`), then times `find(q)`
for ~2,000 seeded queries: exact names, titles, references (`kind:namespace/name` and
`kind:name`) and typos (1-2 random character edits of existing names, which mostly miss and take
the suggestion path). Latencies are reported by the path taken: hit or did-you-mean.

    .venv/bin/python bench/lookup.py [--entities 100000] [--queries 2000]

Goal (issue): p99 ≤ 5 ms, for hits and for did-you-mean.
"""
from __future__ import annotations

import argparse
import random
import string
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Goal, latency_line, latency_ms, report  # noqa: E402
from bench.synthetic_catalog import ensure  # noqa: E402
from bot.catalog.entity import Entity  # noqa: E402
from bot.catalog.index import CatalogIndex  # noqa: E402
from bot.catalog.loader import CatalogLoader  # noqa: E402

SEED = 7


def build_index(entities: int) -> tuple[CatalogIndex, float]:
    started = time.perf_counter()
    result = CatalogLoader(5_000_000).load([str(ensure(entities))])
    index = CatalogIndex.build(e for s in result.sources.values() for e in s.entities)
    return index, time.perf_counter() - started


def typo(rng: random.Random, name: str) -> str:
    """One or two random edits: substitute, delete, insert or swap neighbours."""
    chars = list(name)
    for _ in range(rng.choice((1, 2))):
        at = rng.randrange(len(chars))
        edit = rng.choice(("substitute", "delete", "insert", "swap"))
        if edit == "substitute":
            chars[at] = rng.choice(string.ascii_lowercase)
        elif edit == "delete" and len(chars) > 3:
            del chars[at]
        elif edit == "insert":
            chars.insert(at, rng.choice(string.ascii_lowercase))
        elif at + 1 < len(chars):
            chars[at], chars[at + 1] = chars[at + 1], chars[at]
    return "".join(chars)


def queries(index: CatalogIndex, count: int) -> list[tuple[str, str, Entity]]:
    """(category, query, the entity meant), a quarter of each category, seeded (drawn with
    replacement, so small catalogs work too)."""
    rng = random.Random(SEED)
    entities = [e for e in index.entities.values() if e.kind != "Location"]
    titled = [e for e in entities if e.title]
    quarter = count // 4
    found: list[tuple[str, str, Entity]] = []
    for entity in rng.choices(entities, k=quarter):
        found.append(("name", entity.name, entity))
    for entity in rng.choices(titled, k=quarter):
        found.append(("title", entity.title, entity))
    for entity in rng.choices(entities, k=quarter):
        short = rng.random() < 0.5 and entity.namespace == "default"
        found.append(("reference", f"{entity.kind.lower()}:{entity.name}" if short else entity.key, entity))
    for entity in rng.choices(entities, k=count - 3 * quarter):
        found.append(("typo", typo(rng, entity.name), entity))
    rng.shuffle(found)
    return found


def main(entities: int, count: int) -> None:
    index, build_s = build_index(entities)
    print(f"index of {len(index.entities):,} entities built in {build_s:.1f} s (loader + CatalogIndex.build); "
          f"{len(index.by_name):,} names")
    planned = queries(index, count)
    for _, text, _ in planned[:20]:  # warm-up, not measured
        index.find(text)
    by_path: dict[str, list[float]] = {"hit": [], "did-you-mean": []}
    by_category: dict[str, list[float]] = {}
    right = {"hit": 0, "suggested": 0}
    for category, text, meant in planned:
        started = time.perf_counter()
        found = index.find(text)
        elapsed = time.perf_counter() - started
        path = "hit" if found.entity is not None else "did-you-mean"
        by_path[path].append(elapsed)
        by_category.setdefault(category, []).append(elapsed)
        if found.entity is not None and found.entity.name.lower() == meant.name.lower():
            right["hit"] += 1
        elif found.entity is None and meant.name.lower() in found.suggestions:
            right["suggested"] += 1
    for category, seconds in by_category.items():
        print(latency_line(f"category {category}", seconds))
    for path, seconds in by_path.items():
        print(latency_line(f"path {path}", seconds))
    typos = len(by_category.get("typo", []))
    print(f"correct: {right['hit']}/{len(by_path['hit'])} hits found the entity meant; "
          f"{right['suggested']}/{len(by_path['did-you-mean'])} did-you-mean listed the name meant")
    hits, dym = latency_ms(by_path["hit"]), latency_ms(by_path["did-you-mean"])
    report("lookup", {"entities": len(index.entities), "queries": len(planned), "typos": typos,
                      "hit": {k: round(v, 3) for k, v in hits.items()}, "did_you_mean": {k: round(v, 3) for k, v in dym.items()},
                      "suggestion_recall": round(right["suggested"] / max(1, len(by_path["did-you-mean"])), 3)},
           [Goal("find p99, hits", hits["p99"], 5, " ms"), Goal("find p99, did-you-mean", dym["p99"], 5, " ms")])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2_000)
    args = parser.parse_args()
    main(args.entities, args.queries)
