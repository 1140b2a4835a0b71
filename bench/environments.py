"""Self-service environments: `/env create` to the ready card, and the reaper over 5,000 environments.

1. Create-to-ready: the real server (`bot.server.start`, SQLite, the demo catalog) with a
   KubernetesFake as the cluster and a SlackFake for response URLs; `--creates` signed
   `/env create payment-service --purpose preview --ttl 1d --name bench-N`, one after another,
   timed from the request being sent to the ready card reaching the response URL.
2. The reaper: a fresh bot; `--envs` `Environment` rows inserted directly (status ready, owner
   group:default/payments-team), ~10% expired and ~10% inside the warning window at `now`, and
   the matching labelled, annotated namespaces seeded into the KubernetesFake. Then
   `services.reaper.run(now, dry_run=True)` and a real `run(now)` (warnings and destroys posted
   to the SlackFake), each timed.

    .venv/bin/python bench/environments.py [--creates 30] [--envs 5000]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (TimedSlackFake, bot_settings, client, latency_line, latency_ms, report,  # noqa: E402
                          slash_command, start_bot, tally_logs)
from sqlalchemy import select  # noqa: E402

from bot.environments.service import ENVIRONMENT_ID  # noqa: E402
from bot.models import Environment  # noqa: E402
from integrations.kubernetes import MANAGED_BY  # noqa: E402
from tests.conftest import DEMO_CATALOG  # noqa: E402
from tests.fakes.kubernetes import KubernetesFake  # noqa: E402

ADA = "U0ADA0001"
HOUR, DAY = 3600.0, 86400.0
ENV = {"PAVEDROAD_ENV_TEAM_LIMIT": "1000"}


async def create_to_ready(creates: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        async with TimedSlackFake() as slack, KubernetesFake() as k8s:
            slack.add_user(ADA, email="ada.lovelace@acme.example")
            server, _ = await start_bot(bot_settings(Path(tmp), slack.url, [DEMO_CATALOG], kubernetes=k8s, **ENV))
            latencies, failures = [], []
            try:
                async with client(1) as http:
                    for i in range(creates):
                        status, sent, _, url = await slash_command(
                            http, server.url, slack, f"create payment-service --purpose preview --ttl 1d --name bench-{i}",
                            command="/env")
                        answer = await slack.answer(url, timeout=30)
                        if status != 200 or answer is None:
                            failures.append(f"bench-{i}: HTTP {status}, {'no answer' if answer is None else 'answered'}")
                            continue
                        payload, at = answer
                        if "ready" not in payload.get("text", ""):
                            failures.append(f"bench-{i}: {payload.get('text', '')[:120]}")
                            continue
                        latencies.append(at - sent)
            finally:
                await server.stop()
            ready = sum(1 for i in range(creates) if k8s.get("v1", "Namespace", f"bench-{i}") is not None)
    print(latency_line("/env create → ready card", latencies))
    if len(latencies) > 1:
        slowest = max(range(len(latencies)), key=latencies.__getitem__)
        print(f"first create {latencies[0] * 1e3:.2f} ms; slowest is #{slowest}")
        print(latency_line("  without the first", latencies[1:]))
    print(f"namespaces made: {ready}/{creates}; failures: {len(failures)}")
    for line in failures[:5]:
        print("  " + line)
    s = latency_ms(latencies)
    return {"create_n": s["n"], "create_p50_ms": round(s["p50"], 2), "create_p99_ms": round(s["p99"], 2),
            "create_max_ms": round(s["max"], 2), "create_failures": len(failures)}


def expiry(i: int, n: int, now: float) -> float:
    """~10% expired, ~10% inside the 24 h warning window, the rest 1.5-6 days away."""
    bucket, spread = i % 10, (i // 10) / max(1, n // 10)  # spread in [0, 1)
    if bucket == 0:
        return now - HOUR - spread * 2 * DAY
    if bucket == 1:
        return now + HOUR + spread * 22 * HOUR
    return now + 1.5 * DAY + spread * 4.5 * DAY


async def seed(services, k8s: KubernetesFake, n: int, now: float) -> None:
    rows = [Environment(name=f"bench-env-{i:05d}", active_name=f"bench-env-{i:05d}", request_key=f"bench:{i}",
                        service_ref="component:default/payment-service", owner_ref="group:default/payments-team",
                        purpose="preview", size="small", requester=ADA, status="ready",
                        created_at=now - DAY, expires_at=expiry(i, n, now)) for i in range(n)]
    async with services.db.session() as session:
        session.add_all(rows)
        await session.commit()
        ids = dict((await session.exec(select(Environment.name, Environment.id)
                                       .where(Environment.request_key.like("bench:%")))).all())
    for name, env_id in ids.items():
        k8s.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": name, "labels": {MANAGED_BY: "pavedroad", "pavedroad.dev/owner": "payments-team"},
            "annotations": {ENVIRONMENT_ID: str(env_id)}}})


async def reaper(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        async with TimedSlackFake() as slack, KubernetesFake() as k8s:
            slack.add_user(ADA, email="ada.lovelace@acme.example")
            server, _ = await start_bot(bot_settings(Path(tmp), slack.url, [DEMO_CATALOG], kubernetes=k8s, **ENV))
            try:
                services = server.services
                now = time.time()
                t = time.perf_counter()
                await seed(services, k8s, n, now)
                print(f"seeded {n} environments and namespaces in {time.perf_counter() - t:.1f} s")
                posts_before = len(slack.calls("chat.postMessage"))
                t = time.perf_counter()
                dry = await services.reaper.run(now=now, dry_run=True)
                dry_s = time.perf_counter() - t
                t = time.perf_counter()
                real = await services.reaper.run(now=now)
                real_s = time.perf_counter() - t
                posts = len(slack.calls("chat.postMessage")) - posts_before
                left = sum(1 for i in range(n) if k8s.get("v1", "Namespace", f"bench-env-{i:05d}") is not None)
            finally:
                await server.stop()
    for label, rep, secs in (("dry run", dry, dry_s), ("real run", real, real_s)):
        print(f"reaper {label:<9} {secs:7.2f} s  warned={len(rep.warned):<5} destroyed={len(rep.destroyed):<5} "
              f"drift={len(rep.drift):<5} skipped={rep.skipped}  {secs / n * 1e3:.3f} ms per recorded env")
    acted = len(real.warned) + len(real.destroyed)
    if acted:
        print(f"real run per acted-on env (warned + destroyed = {acted}): {real_s / acted * 1e3:.2f} ms")
    print(f"chat.postMessage calls during the real run: {posts}; namespaces left: {left}/{n}")
    for line in real.drift[:3]:
        print("  drift: " + line)
    return {"reaper_envs": n, "reaper_dry_s": round(dry_s, 3), "reaper_real_s": round(real_s, 3),
            "reaper_dry_ms_per_env": round(dry_s / n * 1e3, 3), "reaper_real_ms_per_env": round(real_s / n * 1e3, 3),
            "reaper_warned": len(real.warned), "reaper_destroyed": len(real.destroyed), "reaper_drift": len(real.drift),
            "reaper_dry_warned": len(dry.warned), "reaper_dry_destroyed": len(dry.destroyed), "reaper_posts": posts}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=30)
    parser.add_argument("--envs", type=int, default=5000)
    args = parser.parse_args()
    logs = tally_logs()
    figures = await create_to_ready(args.creates)
    figures.update(await reaper(args.envs))
    report("environments", figures, logs=logs)


if __name__ == "__main__":
    asyncio.run(main())
