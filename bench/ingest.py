"""Catalog ingest at scale: YAML parsing alone against a full `CatalogService.refresh()`.

(a) every file through `yaml.load_all(..., Loader=yaml.CSafeLoader)` and nothing else;
(b) a full ingest into a fresh SQLite database (parse, validate, relations, index, write), after
`db.migrate()`; then a refresh with nothing changed, a refresh after one file's content changed,
and a restart's `restore()` from the database. The loader and the index build are also timed on
their own, to show where the ingest time goes.

    .venv/bin/python bench/ingest.py [--entities 100000]

Goals (issue): ingest ≤ 30 s and ≤ 3× the parse-only time.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from bench.common import Goal, report  # noqa: E402
from bench.synthetic_catalog import ensure  # noqa: E402
from bot.catalog.index import CatalogIndex  # noqa: E402
from bot.catalog.loader import CatalogLoader  # noqa: E402
from bot.catalog.service import CatalogService  # noqa: E402
from bot.db import Database  # noqa: E402

MAX_FILE_BYTES = 5_000_000


def parse_only(directory: Path) -> tuple[int, float]:
    """Documents parsed and seconds taken by the C YAML loader over every file, nothing else."""
    started = time.perf_counter()
    documents = 0
    for path in sorted(directory.rglob("*.yaml")):
        documents += sum(1 for _ in yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))
    return documents, time.perf_counter() - started


def stages(entry: Path) -> dict[str, float]:
    """Seconds for the loader alone (parse + validate) and for building the index from its result."""
    started = time.perf_counter()
    result = CatalogLoader(MAX_FILE_BYTES).load([str(entry)])
    loaded = time.perf_counter()
    CatalogIndex.build((e for s in result.sources.values() for e in s.entities),
                       [p for s in result.sources.values() for p in s.problems])
    return {"loader_s": loaded - started, "index_build_s": time.perf_counter() - loaded}


async def timed_refresh(service: CatalogService) -> tuple[float, int]:
    started = time.perf_counter()
    result = await service.refresh()
    return time.perf_counter() - started, result.changed_sources


def touch_one(directory: Path) -> Path:
    """Change one entity in one catalog file (its content, not just its mtime); the YAML stays valid."""
    path = sorted(directory.rglob("entities-*.yaml"))[0]
    text = path.read_text()
    changed = text.replace("lifecycle: production", "lifecycle: experimental", 1)
    path.write_text(changed if changed != text else text + f"# touched {time.time_ns()}\n")
    return path


async def main(entities: int) -> None:
    source = ensure(entities).parent
    with tempfile.TemporaryDirectory(prefix="pavedroad-bench-") as tmp:
        catalog = Path(tmp) / "catalog"
        shutil.copytree(source, catalog)  # so touching a file leaves the cached catalog alone
        entry = catalog / "all.yaml"
        documents, parse_s = parse_only(catalog)
        print(f"parse only (CSafeLoader)       {parse_s:7.2f} s  ({documents:,} documents)")
        parts = stages(entry)
        print(f"loader.load (parse + validate) {parts['loader_s']:7.2f} s")
        print(f"CatalogIndex.build             {parts['index_build_s']:7.2f} s")

        db = Database(f"sqlite:///{Path(tmp) / 'ingest.db'}")
        await db.migrate()
        service = CatalogService(db, [str(entry)], CatalogLoader(MAX_FILE_BYTES))
        ingest_s, changed = await timed_refresh(service)
        count = len(service.index.entities)
        print(f"full ingest (refresh, empty DB) {ingest_s:6.2f} s  ({count:,} entities, {changed:,} files, "
              f"{len(service.index.problems)} problems)")
        print(f"ingest / parse-only            {ingest_s / parse_s:7.2f} ×")
        unchanged_s, _ = await timed_refresh(service)
        print(f"refresh, nothing changed       {unchanged_s:7.2f} s")
        touched = touch_one(catalog)
        touched_s, changed = await timed_refresh(service)
        print(f"refresh, one file changed      {touched_s:7.2f} s  ({changed} file: {touched.name}; "
              f"{len(service.index.entities):,} entities)")
        restarted = CatalogService(db, [str(entry)], CatalogLoader(MAX_FILE_BYTES))
        started = time.perf_counter()
        await restarted.restore()
        restore_s = time.perf_counter() - started
        print(f"restore() from DB (restart)    {restore_s:7.2f} s  ({len(restarted.index.entities):,} entities)")
        await db.close()
    report("ingest", {"entities": count, "parse_only_s": round(parse_s, 2), **{k: round(v, 2) for k, v in parts.items()},
                      "ingest_s": round(ingest_s, 2), "ratio": round(ingest_s / parse_s, 2),
                      "refresh_unchanged_s": round(unchanged_s, 3), "refresh_one_file_s": round(touched_s, 3),
                      "restore_s": round(restore_s, 2)},
           [Goal("full ingest", ingest_s, 30, " s"), Goal("ingest / parse-only", ingest_s / parse_s, 3, "×")])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().entities))
