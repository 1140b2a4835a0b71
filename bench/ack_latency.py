"""Time to acknowledge `/whoowns` (HTTP 200) under load: the real server against a bare Bolt app.

Each server runs as its own process on 127.0.0.1, as in production: the real server as
`python -m bot serve` (SQLite, the synthetic catalog; environment from `common.bot_env`) and the
bare app as `python bench/bare_bolt.py` (a Bolt `AsyncApp` with the same signing secret and Slack
client whose `/whoowns` only does `await ack()`, on the same route `/slack/events`). This process
holds the load generator and the fakes: a SlackFake as Slack's Web API (auth.test) and the
response URLs, and a GitHub stub in which no file exists. Each server gets signed
`/whoowns <name>` commands, `--total` per round, `--concurrency` in flight, after a warm-up of
100; the real server answers each one at its response URL (its lazy listener runs meanwhile, as
in production), and a real round ends once every answer has arrived (or 60 s have passed).

The real server is started first and measured once its catalog is loaded (`/readyz` 200) and the
docs reading it starts after the load (every entity's runbook and TechDocs, read from the GitHub
stub) is over: no GitHub request for `--settle-quiet` seconds, or `--settle-timeout` seconds at
most (the summary says which). Then the bare app is started and the two are measured in turn,
bare then real, `--rounds` times (2), so that a busy neighbour on the machine hits both; each round
is printed with the CPU seconds each process used during it. The goal is checked on the median
over the rounds of each server's p99. The servers' output (stderr) is tallied at the end.

    .venv/bin/python bench/ack_latency.py [--entities 100000] [--total 1000] [--concurrency 50]

Goal (issue): the real server's ack p99 ≤ 1.5× the bare app's.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (ROOT, GitHubStub, Goal, LoadResult, ServerProcess, TimedSlackFake, bot_env, client,  # noqa: E402
                          latency_line, latency_ms, report, run_load, sample_names, slash_command, tally_log_file,
                          tally_logs)
from bench.synthetic_catalog import ensure  # noqa: E402

WARM_UP = 100
ANSWER_TIMEOUT = 60


@dataclass(frozen=True)
class Usage:
    """Wall-clock time, CPU seconds of each process and GitHub requests so far."""

    wall: float
    real_cpu: float
    bare_cpu: float
    bench_cpu: float
    github: int

    def __sub__(self, other: "Usage") -> "Usage":
        return Usage(self.wall - other.wall, self.real_cpu - other.real_cpu, self.bare_cpu - other.bare_cpu,
                     self.bench_cpu - other.bench_cpu, self.github - other.github)

    def line(self) -> str:
        return (f"{'':<9}CPU over those {self.wall:.1f} s: real server {self.real_cpu:.1f} s, bare app {self.bare_cpu:.1f} s, "
                f"bench (load + fakes) {self.bench_cpu:.1f} s; {self.github:,} GitHub requests")

    def figures(self) -> dict[str, float]:
        return {"wall_s": round(self.wall, 2), "real_cpu_s": round(self.real_cpu, 2), "bare_cpu_s": round(self.bare_cpu, 2),
                "bench_cpu_s": round(self.bench_cpu, 2), "github_requests": self.github}


@dataclass
class Round:
    ack: LoadResult
    usage: Usage
    answers: list[float] | None = None  # real server: seconds from sending to the answer, of those delivered
    sent: int = 0


async def hammer(url: str, slack: TimedSlackFake, names: list[str], total: int, concurrency: int,
                 usage: Callable[[], Usage], answers: bool) -> Round:
    """Warm up, then send `total` signed /whoowns; with `answers`, then wait for each one's answer."""
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
        before = usage()
        result = await run_load(total, concurrency, one)
        spent = usage() - before
    if not answers:
        return Round(result, spent)
    arrived = await asyncio.gather(*(slack.answer(u, ANSWER_TIMEOUT) for u, _ in urls))
    return Round(result, spent, [a[1] - sent for a, (_, sent) in zip(arrived, urls) if a is not None], len(urls))


def ack_row(label: str, result: LoadResult) -> str:
    return latency_line(label, result.latencies) + f"  {result.rate:5.0f} req/s  errors={len(result.errors)}"


async def main(entities: int, total: int, concurrency: int, rounds: int, settle_timeout: float, settle_quiet: float) -> None:
    catalog = ensure(entities)
    names = sample_names(catalog, 500)
    logs = tally_logs()
    measured: list[tuple[Round, Round]] = []
    async with TimedSlackFake() as slack, GitHubStub() as github:
        slack.add_user("U0ADA0001", email="ada.lovelace@acme.example", real_name="Ada Lovelace")
        with tempfile.TemporaryDirectory(prefix="pavedroad-bench-") as tmp:
            env = bot_env(Path(tmp), slack.url, [catalog], github_url=github.url)
            real = ServerProcess("real server", [sys.executable, "-m", "bot", "serve"], env, Path(tmp) / "real.log")
            bare = ServerProcess("bare app", [sys.executable, str(ROOT / "bench" / "bare_bolt.py")], env, Path(tmp) / "bare.log")

            def usage() -> Usage:
                return Usage(time.perf_counter(), real.cpu_seconds(), bare.cpu_seconds(), time.process_time(), github.requests)

            stopped: dict[str, str] = {}
            try:
                real.start()
                async with client(2) as http:
                    listen_s, _ = await real.ready(http, "/healthz")
                    ready_s, body = await real.ready(http, "/readyz")
                    loaded = (body or {}).get("entities", 0)
                    docs_read, settle_s = await github.settled(settle_timeout, quiet=settle_quiet)
                    print(f"real server (python -m bot serve): listening after {listen_s:.1f} s, catalog of {loaded:,} entities "
                          f"loaded (/readyz 200) after {ready_s:.1f} s; then {github.requests:,} GitHub requests reading docs "
                          f"in {settle_s:.0f} s, " + ("over" if docs_read else f"still going after {settle_timeout:g} s (measured meanwhile)"),
                          flush=True)
                    bare.start()
                    await bare.ready(http, "/healthz", timeout=60)
                for n in range(1, rounds + 1):
                    b = await hammer(bare.url, slack, names, total, concurrency, usage, answers=False)
                    print(ack_row(f"round {n}: bare app: ack", b.ack) + "\n" + b.usage.line(), flush=True)
                    r = await hammer(real.url, slack, names, total, concurrency, usage, answers=True)
                    print(ack_row(f"round {n}: real server: ack", r.ack) + "\n"
                          + latency_line(f"round {n}: real server: answer", r.answers) + f"  {len(r.answers)}/{r.sent} delivered\n"
                          + r.usage.line(), flush=True)
                    measured.append((b, r))
            finally:
                stopped = {"bare": await bare.stop(), "real": await real.stop()}
                tally_log_file(real.log_path, logs, "real server")
                tally_log_file(bare.log_path, logs, "bare app")
    bare_p99 = [latency_ms(b.ack.latencies)["p99"] for b, _ in measured]
    real_p99 = [latency_ms(r.ack.latencies)["p99"] for _, r in measured]
    ratio = statistics.median(real_p99) / statistics.median(bare_p99)
    answers = [s for _, r in measured for s in r.answers]
    sent = sum(r.sent for _, r in measured)
    errors = [e for b, r in measured for e in b.ack.errors + r.ack.errors]
    print(f"ack p99 by round: bare {', '.join(f'{p:.1f}' for p in bare_p99)} ms; real {', '.join(f'{p:.1f}' for p in real_p99)} ms; "
          f"median real / median bare = {statistics.median(real_p99):.1f} / {statistics.median(bare_p99):.1f} ms = {ratio:.2f}×")
    print(latency_line("all rounds: real server: answer", answers) + f"  {len(answers)}/{sent} delivered")
    print(f"servers: real {stopped['real']}, bare {stopped['bare']}")
    for error in sorted(set(errors))[:5]:
        print("error:", error)
    report("ack_latency", {
        "entities": entities, "total": total, "concurrency": concurrency, "rounds": rounds,
        "listen_s": round(listen_s, 1), "ready_s": round(ready_s, 1), "docs_read_before_measuring": docs_read,
        "settle_s": round(settle_s, 1), "github_requests": github.requests, "errors": len(errors),
        "delivered": len(answers), "sent": sent,
        "bare_p99_ms": [round(p, 2) for p in bare_p99], "real_p99_ms": [round(p, 2) for p in real_p99],
        **{name: {k: round(v, 2) for k, v in latency_ms(values).items()} for name, values in
           (("bare", [s for b, _ in measured for s in b.ack.latencies]), ("real", [s for _, r in measured for s in r.ack.latencies]),
            ("answers", answers))},
        "usage": [{"bare": b.usage.figures(), "real": r.usage.figures()} for b, r in measured],
    }, [Goal("ack p99 real / bare, median of rounds" + ("" if docs_read else " (docs being read)"), ratio, 1.5, "×")], logs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--total", type=int, default=1_000, help="commands per server per round, after the warm-up")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (bare, real)")
    parser.add_argument("--settle-timeout", type=float, default=120, help="longest wait for the docs reading to end")
    parser.add_argument("--settle-quiet", type=float, default=5,
                        help="seconds without a GitHub request after which the docs reading counts as over")
    args = parser.parse_args()
    asyncio.run(main(args.entities, args.total, args.concurrency, args.rounds, args.settle_timeout, args.settle_quiet))
