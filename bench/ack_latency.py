"""Time to acknowledge `/whoowns` (HTTP 200) under load: the real server against a bare Bolt app.

Both run in this process on 127.0.0.1, with a SlackFake as Slack's Web API (auth.test) and
response URLs: the real server (`bot.server.start`, SQLite, the synthetic catalog) and a bare
`AsyncApp` with the same signing secret and client whose `/whoowns` only does `await ack()`,
served through the same aiohttp route (`to_bolt_request` / `to_aiohttp_response`). Each gets
signed `/whoowns <name>` commands, `--total` in all, `--concurrency` in flight, after a warm-up;
the real server's answers (its lazy listener) run meanwhile, as in production. The load generator
shares the event loop with the servers, so absolute times include the client; the ratio is the
figure to watch.

The bare app is measured first, in a quiet process. The real server is measured once its catalog
is loaded and the docs reading it starts after each load (every entity's runbook and TechDocs;
GitHub is a local stub in which no file exists) is over, or after `--settle-timeout` seconds if it
is not (the summary says which).

    .venv/bin/python bench/ack_latency.py [--entities 100000] [--total 1000] [--concurrency 50]

Goal (issue): the real server's ack p99 ≤ 1.5× the bare app's.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web  # noqa: E402
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request  # noqa: E402
from slack_bolt.async_app import AsyncAck, AsyncApp  # noqa: E402

from bench.common import (GitHubStub, Goal, LoadResult, TimedSlackFake, background_settled, bot_settings,  # noqa: E402
                          client, latency_line, latency_ms, report, run_load, sample_names, serve, slash_command,
                          start_bot, stop_bot, tally_logs)
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


def ack_row(label: str, result: LoadResult) -> str:
    return latency_line(label, result.latencies) + f"  {result.rate:5.0f} req/s  errors={len(result.errors)}"


async def main(entities: int, total: int, concurrency: int, settle_timeout: float) -> None:
    catalog = ensure(entities)
    names = sample_names(catalog, 500)
    logs = tally_logs()
    async with TimedSlackFake() as slack, GitHubStub() as github:
        slack.add_user("U0ADA0001", email="ada.lovelace@acme.example", real_name="Ada Lovelace")
        with tempfile.TemporaryDirectory(prefix="pavedroad-bench-") as tmp:
            settings = bot_settings(Path(tmp), slack.url, [catalog], github_url=github.url)
            bare_runner, bare_url = await serve(bare_app(settings))  # first, while this process is quiet
            try:
                bare, _ = await hammer(bare_url, slack, names, total, concurrency)
            finally:
                await bare_runner.cleanup()
            print(ack_row("bare Bolt app: ack", bare))
            server, load_s = await start_bot(settings)
            try:
                docs_read, settle_s = await background_settled(server, github, settle_timeout)
                print(f"real server: catalog of {len(server.services.catalog.index.entities):,} entities loaded in {load_s:.1f} s; "
                      f"then {github.requests:,} GitHub requests reading docs in {settle_s:.0f} s, "
                      + ("over" if docs_read else f"still going after {settle_timeout:g} s (measured meanwhile)"))
                before = github.requests
                real, urls = await hammer(server.url, slack, names, total, concurrency)
                answers = await asyncio.gather(*(slack.answer(u, 60) for u, _ in urls))
            finally:
                await stop_bot(server)
    answer_s = [a[1] - sent for a, (_, sent) in zip(answers, urls) if a is not None]
    print(ack_row("real server: ack", real) + f"  ({github.requests - before:,} GitHub requests meanwhile)")
    print(latency_line("real server: answer", answer_s) + f"  {len(answer_s)}/{len(urls)} delivered")
    for error in sorted(set(bare.errors + real.errors))[:5]:
        print("error:", error)
    b, r = latency_ms(bare.latencies), latency_ms(real.latencies)
    report("ack_latency", {
        "entities": entities, "total": total, "concurrency": concurrency, "load_s": round(load_s, 1),
        "docs_read_before_measuring": docs_read, "github_requests": github.requests, "errors": len(bare.errors) + len(real.errors),
        **{name: {k: round(v, 2) for k, v in figures.items()} for name, figures in
           (("bare", b), ("real", r), ("answers", latency_ms(answer_s)))},
    }, [Goal("ack p99 real / bare" + ("" if docs_read else " (docs being read)"), r["p99"] / b["p99"], 1.5, "×")], logs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--total", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--settle-timeout", type=float, default=120, help="longest wait for the docs reading to end")
    args = parser.parse_args()
    asyncio.run(main(args.entities, args.total, args.concurrency, args.settle_timeout))
