"""Time to acknowledge `/whoowns` (HTTP 200) under load: the real server against a bare Bolt app.

Both run in this process on 127.0.0.1, with a SlackFake as Slack's Web API (auth.test) and
response URLs: the real server (`bot.server.start`, SQLite, the synthetic catalog) and a bare
`AsyncApp` with the same signing secret and client whose `/whoowns` only does `await ack()`,
served through the same aiohttp route (`to_bolt_request` / `to_aiohttp_response`). Each gets
signed `/whoowns <name>` commands, `--total` in all, `--concurrency` in flight, after a warm-up;
the real server's answers (its lazy listener) run meanwhile, as in production. The load generator
shares the event loop with the servers, so absolute times include the client; the ratio is the
figure to watch.

    .venv/bin/python bench/ack_latency.py [--entities 100000] [--total 1000] [--concurrency 50]

Goal (issue): the real server's ack p99 ≤ 1.5× the bare app's.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web  # noqa: E402
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request  # noqa: E402
from slack_bolt.async_app import AsyncAck, AsyncApp  # noqa: E402

from bench.common import (GitHubStub, Goal, LoadResult, TimedSlackFake, bot_settings, client, latency_line,  # noqa: E402
                          latency_ms, report, run_load, serve, slash_command, start_bot, tally_logs)
from bench.synthetic_catalog import ensure  # noqa: E402
from bot.app import slack_client  # noqa: E402
from bot.config import Settings  # noqa: E402

WARM_UP = 100


def bare_app(settings: Settings) -> web.Application:
    """A Bolt app that only acknowledges /whoowns, behind the route bot/server.py uses."""
    app = AsyncApp(client=slack_client(settings), signing_secret=settings.slack_signing_secret)

    @app.command("/whoowns")
    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", slack_events)
    return web_app


async def hammer(url: str, slack: TimedSlackFake, names: list[str], total: int,
                 concurrency: int) -> tuple[LoadResult, list[tuple[str, float]]]:
    """Warm up, then send `total` signed /whoowns; returns the ack latencies and (response URL, sent at)."""
    urls: list[tuple[str, float]] = []
    async with client(concurrency) as http:
        async def one(i: int) -> float:
            status, sent, seconds, response_url = await slash_command(http, url, slack, names[i % len(names)])
            urls.append((response_url, sent))
            if status != 200:
                raise RuntimeError(f"HTTP {status}")
            return seconds

        await run_load(WARM_UP, concurrency, one)
        urls.clear()
        return await run_load(total, concurrency, one), urls


async def main(entities: int, total: int, concurrency: int) -> None:
    catalog = ensure(entities)
    logs = tally_logs()
    async with TimedSlackFake() as slack, GitHubStub() as github:
        slack.add_user("U0ADA0001", email="ada.lovelace@acme.example", real_name="Ada Lovelace")
        with tempfile.TemporaryDirectory(prefix="pavedroad-bench-") as tmp:
            settings = bot_settings(Path(tmp), slack.url, [catalog], github_url=github.url)
            server, load_s = await start_bot(settings)
            settle_s = await github.settled()
            print(f"real server: catalog of {len(server.services.catalog.index.entities):,} entities loaded in {load_s:.1f} s; "
                  f"docs reading after it took {settle_s:.1f} s more ({github.requests:,} GitHub requests)")
            rng = random.Random(3)
            names = [e.name for e in rng.sample(list(server.services.catalog.index.entities.values()), 500)]
            bare_runner, bare_url = await serve(bare_app(settings))
            try:
                bare, _ = await hammer(bare_url, slack, names, total, concurrency)
            finally:
                await bare_runner.cleanup()
            try:
                real, urls = await hammer(server.url, slack, names, total, concurrency)
                drain_started = time.perf_counter()
                answers = await asyncio.gather(*(slack.answer(u, 60) for u, _ in urls))
                drained_s = time.perf_counter() - drain_started
            finally:
                await server.stop()
    print(latency_line("bare Bolt app: ack", bare.latencies) + f"  {bare.rate:6.0f} req/s  errors={len(bare.errors)}")
    print(latency_line("real server: ack", real.latencies) + f"  {real.rate:6.0f} req/s  errors={len(real.errors)}")
    answer_s = [a[1] - sent for a, (_, sent) in zip(answers, urls) if a is not None]
    delivered = len(answer_s)
    print(latency_line("real server: answer (under load)", answer_s) +
          f"  {delivered}/{len(urls)} delivered, the last {drained_s:.1f} s after the last ack")
    for error in sorted(set(bare.errors + real.errors))[:5]:
        print("error:", error)
    b, r = latency_ms(bare.latencies), latency_ms(real.latencies)
    report("ack_latency", {"entities": entities, "total": total, "concurrency": concurrency, "load_s": round(load_s, 1),
                           "docs_reading_s": round(settle_s, 1), "github_requests": github.requests,
                           "bare": {k: round(v, 2) for k, v in b.items()}, "real": {k: round(v, 2) for k, v in r.items()},
                           "p99_ratio": round(r["p99"] / b["p99"], 2), "errors": len(bare.errors) + len(real.errors),
                           "answers_delivered": delivered,
                           "answer_under_load": {k: round(v, 2) for k, v in latency_ms(answer_s).items()}},
           [Goal("ack p99 real / bare", r["p99"] / b["p99"], 1.5, "×")], logs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--total", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.entities, args.total, args.concurrency))
