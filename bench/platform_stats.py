"""`/platform stats` over a year of stored events for 500 services: the time to compute its answer.

A fresh database (SQLite in a temp dir, or a new one on `--postgres URL`, dropped after) is seeded
in bulk with a year ending now: golden-path runs, environments, office-hours questions, NPS answers,
daily use of the bot, and each repository's workflow runs over the kept `KEEP_DAYS` with its
`delivery_source` read just now (so nothing is fetched: a GitHub test server counts any call). The
catalog holds `--services` Components (`github.com/project-slug: acme/svc-NNNN`). Then, `--repeat`
times for 365d and 30d, the listener's work: `PlatformMetrics.figures` with `Dora.org_ci_success`,
the text, then the PNG chart in a thread (the first chart also imports matplotlib, as the bot's does).

    .venv/bin/python bench/platform_stats.py [--services 500] [--repeat 5] [--postgres URL]

Goal (issue): `/platform stats` over a year of events for 500 services answers within 2 s.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.common import Goal, report  # noqa: E402
from bench.search import postgres_database  # noqa: E402
from bench.synthetic_catalog import _envelope  # noqa: E402
from bot.catalog.index import CatalogIndex  # noqa: E402
from bot.catalog.loader import parse_documents  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.metrics.charts import line_chart  # noqa: E402
from bot.metrics.delivery_data import GITHUB, KEEP_DAYS, DeliveryData  # noqa: E402
from bot.metrics.delivery_sync import DeliverySync  # noqa: E402
from bot.metrics.dora import GITHUB_SLUG  # noqa: E402
from bot.metrics.dora_reports import Dora  # noqa: E402
from bot.metrics.platform import DAY, PlatformMetrics  # noqa: E402
from bot.models import (DeliverySource, Environment, FeedbackResponse, Question, ScaffolderRun,  # noqa: E402
                        UsageDay, WorkflowRunEvent)
from bot.usage import day_of  # noqa: E402
from commands.platform import ci_success_text, stats_lines  # noqa: E402
from integrations.github_delivery import GitHubDelivery  # noqa: E402
from tests.fakes.github import GitHubFake  # noqa: E402

GOAL_SECONDS = 2.0
SEED = 20240611
RUNS_PER_DAY = 2  # workflow runs stored per repository and day
ACTIONS = ["/whoowns", "/env", "/docs", "/runbook", "/dora", "/platform", "/create-service", "/officehours"]
Rows = list[dict[str, Any]]


def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def user(rng: random.Random, people: int = 400) -> str:
    return f"U0BENCH{rng.randrange(people):04d}"


def catalog(services: int) -> CatalogIndex:
    teams = [f"team-{t:02d}" for t in range(max(1, services // 20))]
    docs = [_envelope("Group", t, {"type": "team", "children": []}) for t in teams]
    docs += [_envelope("Component", f"svc-{n:04d}", {
        "type": "service", "lifecycle": "production",
        "owner": "group:retired-team" if n % 20 == 19 else f"group:{teams[n % len(teams)]}"},
        annotations={GITHUB_SLUG: f"acme/svc-{n:04d}"}) for n in range(services)]
    entities, problems = parse_documents(yaml.dump_all(docs, Dumper=yaml.CSafeDumper).encode(), "bench.yaml")
    assert not problems, problems[:3]
    return CatalogIndex.build(entities)


def scaffolder_runs(rng: random.Random, services: int, now: float) -> Rows:
    rows = []
    for n in range(services + services // 10):  # every service created once; a failed run per ten
        submitted = now - rng.uniform(0, 365) * DAY
        rows.append({"id": f"run-{n:05d}", "idempotency_key": f"bench-{n:05d}", "values_digest": f"d{n}",
                     "template_ref": "template:default/python-service", "template": "{}", "requester": user(rng),
                     "owner": "group:default/team-00", "state": "done" if n < services else "failed",
                     "error": "" if n < services else "step publish failed", "submitted_at": submitted,
                     "started_at": submitted + 1, "finished_at": submitted + rng.uniform(40, 900)})
    return rows


def environments(rng: random.Random, services: int, now: float) -> Rows:
    rows: Rows = []
    for day in range(365):
        for _ in range(rng.randint(8, 16)):
            created = now - (day + rng.random()) * DAY
            expires = created + rng.choice((1, 1, 2, 3, 7)) * DAY
            status, ended = rng.choices([("destroyed", expires + rng.uniform(60, 900)),  # reaped at expiry
                                         ("destroyed", created + rng.uniform(0.1, 0.9) * (expires - created)),
                                         ("denied", created + 600), ("failed", created + 300)], (55, 35, 5, 5))[0]
            name = f"env-{len(rows):05d}"
            alive = ended > now
            rows.append({"name": name, "active_name": name if alive else None, "request_key": name,
                         "service_ref": f"component:default/svc-{rng.randrange(services):04d}",
                         "owner_ref": "group:default/team-00", "purpose": "preview", "size": "small",
                         "requester": user(rng), "status": "ready" if alive else status, "created_at": created,
                         "expires_at": expires, "ended_at": None if alive else ended, "detail": ""})
    return rows


def questions(rng: random.Random, now: float) -> Rows:
    rows: Rows = []
    for day in range(365):
        for _ in range(rng.randint(14, 26)):
            asked = now - (day + rng.random()) * DAY
            status = rng.choices(("self_served", "answered", "open"), (45, 40, 15))[0]
            rows.append({"channel": "C0OFFICEHRS", "ts": f"{int(asked)}.{len(rows):06d}", "user": user(rng),
                         "text": "how do I get a database for my service?", "asked_at": asked, "status": status,
                         "answered_at": None if status == "open" else asked + rng.uniform(30, 3600),
                         "answered_by": "" if status == "open" else "pavedroad", "answer_key": ""})
    return rows


def feedback(rng: random.Random, now: float, count: int = 400) -> Rows:
    return [{"response_key": f"view:bench-{n}", "user_id": user(rng), "comment": "", "source": "survey",
             "score": rng.choices(range(11), (1, 1, 1, 2, 2, 3, 4, 8, 12, 10, 6))[0],
             "submitted_at": now - rng.uniform(0, 365) * DAY} for n in range(count)]


def usage_days(rng: random.Random, now: float) -> Rows:
    """~150 of 1,000 engineers a day, 1-3 kinds of use each: what `Usage` keeps."""
    return [{"day": day_of(now - day * DAY), "user_id": who, "action": action, "count": rng.randint(1, 5)}
            for day in range(366) for who in sorted({user(rng, 1000) for _ in range(rng.randint(100, 200))})
            for action in rng.sample(ACTIONS, rng.randint(1, 3))]


def workflow_runs(rng: random.Random, slugs: list[str], now: float, per_day: int) -> Rows:
    return [{"slug": slug, "run_id": day * per_day + r, "sha": f"{rng.getrandbits(160):040x}", "status": "completed",
             "conclusion": rng.choices(("success", "failure", "cancelled"), (85, 12, 3))[0],
             "created_at": now - (day + rng.random()) * DAY}
            for slug in slugs for day in range(KEEP_DAYS) for r in range(per_day)]


async def seed(db: Database, services: int) -> dict[str, int]:
    rng, now = random.Random(SEED), time.time()
    slugs = [f"acme/svc-{n:04d}" for n in range(services)]
    tables = [(ScaffolderRun, scaffolder_runs(rng, services, now), ("id",)),
              (Environment, environments(rng, services, now), ("request_key",)),
              (Question, questions(rng, now), ("channel", "ts")),
              (FeedbackResponse, feedback(rng, now), ("response_key",)),
              (UsageDay, usage_days(rng, now), ("day", "user_id", "action")),
              (WorkflowRunEvent, workflow_runs(rng, slugs, now, RUNS_PER_DAY), ("slug", "run_id")),
              (DeliverySource, [{"system": GITHUB, "key": s, "read_at": time.time(), "source": "deployments",  # read now:
                                 "error": "", "tried_at": time.time()} for s in slugs], ("system", "key"))]  # last
    for model, rows, keys in tables:
        await db.upsert(model, rows, keys, batch=2000)
    return {model.__tablename__: len(rows) for model, rows, _ in tables}


async def engine_name(db: Database) -> str:
    if db.is_sqlite:
        return f"SQLite {sqlite3.sqlite_version} (aiosqlite)"
    async with db.engine.connect() as connection:
        return f"PostgreSQL {(await connection.execute(text('SHOW server_version'))).scalar_one()} (asyncpg)"


async def answer(metrics: PlatformMetrics, dora: Dora, days: int) -> tuple[float, float, list[str]]:
    """One `/platform stats {days}d`: seconds to the figures, CI rate and text; seconds with the chart too."""
    began = time.perf_counter()
    figures, ci = await asyncio.gather(metrics.figures(days), dora.org_ci_success(days))
    lines = [*stats_lines(figures), ci_success_text(*ci, label=f"last {min(days, KEEP_DAYS)} days")]
    computed = time.perf_counter() - began
    png = await asyncio.to_thread(line_chart, f"Platform trends, {figures.window.label} (per week)",
                                  figures.trends, "count per week")
    return computed, time.perf_counter() - began, [*lines, f"(chart: {len(png):,} bytes of PNG)"]


def timing_line(label: str, seconds: list[float]) -> tuple[str, Goal]:
    goal = Goal(label, max(seconds), GOAL_SECONDS, " s")
    runs = ", ".join(f"{s:.3f}" for s in seconds)
    return (f"{label:<38} runs [{runs}] s; median {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s: "
            f"goal ≤ {GOAL_SECONDS:g} s {'met' if goal.ok else 'NOT met'}"), goal


async def run(url: str, services: int, repeat: int) -> tuple[dict[str, Any], list[Goal]]:
    db = Database(url)
    await db.migrate()
    print(f"python {platform.python_version()}, {await engine_name(db)}")
    began = time.perf_counter()
    counts = await seed(db, services)
    print(f"seeded in {time.perf_counter() - began:.1f} s: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    index = catalog(services)
    figures: dict[str, Any] = {"rows": counts}
    goals: list[Goal] = []
    async with GitHubFake() as github, aiohttp.ClientSession() as http:
        metrics = PlatformMetrics(db, lambda: index)
        dora = Dora(lambda: index, DeliverySync(DeliveryData(db), GitHubDelivery(http, github.url, github.token), None),
                    budget_seconds=8)
        for days in (365, 30):
            results = [await answer(metrics, dora, days) for _ in range(repeat)]
            print(f"/platform stats {days}d answered:\n  " + "\n  ".join(results[-1][2]))
            for part, label in ((0, "figures + CI rate + text"), (1, "figures + CI rate + text + chart")):
                line, goal = timing_line(f"{days}d {label}", [r[part] for r in results])
                print(line)
                goals.append(goal)
                figures[f"{days}d_{'chart' if part else 'figures'}_max_s"] = round(goal.value, 3)
        print(f"GitHub test server requests: {len(github.requests)} (0 expected: every repository was read just now)")
        figures["github_requests"] = len(github.requests)
    await db.close()
    return figures, goals


async def main(services: int, repeat: int, postgres: str | None) -> None:
    print(f"load average at start: {loadavg()} (1, 5, 15 min); {os.cpu_count()} cores")
    if postgres:
        async with postgres_database(postgres) as url:
            figures, goals = await run(url, services, repeat)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-platform-") as tmp:
            figures, goals = await run(f"sqlite:///{tmp}/bot.db", services, repeat)
    print(f"load average at end: {loadavg()}")
    report("platform_stats", {"services": services, "engine": "postgresql" if postgres else "sqlite", **figures}, goals)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server (a database is created and dropped)")
    args = parser.parse_args()
    asyncio.run(main(args.services, args.repeat, args.postgres))
