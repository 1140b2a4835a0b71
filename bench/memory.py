"""Peak and current memory (RSS) of the real server process serving the synthetic catalog.

Starts `python -m bot serve` in a subprocess (SQLite, Slack API pointed at a SlackFake in this
process), waits for `/healthz` (listening) and `/readyz` (catalog loaded), sends `--lookups`
signed `/whoowns` commands and waits for their answers, then reads `VmHWM` (peak RSS) and `VmRSS`
from /proc/<pid>/status; also the peak once `/readyz` is 200 and once the docs reading the server
starts after each catalog load is over (GitHub is a local stub in which no file exists; waiting at
most 120 s). Twice: a cold start on an empty database, then a restart on the database the first
run filled (the path a deployment takes every time it restarts).

    .venv/bin/python bench/memory.py [--entities 100000] [--lookups 300]

Goal (issue): peak RSS ≤ 300 MB.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from bench.common import (ROOT, GitHubStub, Goal, TimedSlackFake, bot_env, client, latency_line, report,  # noqa: E402
                          run_load, sample_names, slash_command, tally_logs)
from bench.synthetic_catalog import ensure  # noqa: E402

START_TIMEOUT = 600
SETTLE_TIMEOUT = 120
CONCURRENCY = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def memory_mb(pid: int) -> dict[str, float]:
    """VmHWM (peak resident set) and VmRSS of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) / 1024 for name in ("VmHWM", "VmRSS")}


async def wait_for(http: aiohttp.ClientSession, url: str, process: subprocess.Popen, deadline: float) -> float:
    """Seconds until `url` answers 200; fails if the server exits or the deadline passes."""
    started = time.perf_counter()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            async with http.get(url) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} not ready within {START_TIMEOUT}s")


async def run_server(label: str, data_dir: Path, slack: TimedSlackFake, github: GitHubStub, catalog: Path,
                     names: list[str], lookups: int) -> dict[str, float]:
    port = free_port()
    env = bot_env(data_dir, slack.url, [catalog], github_url=github.url, PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    with open(data_dir / f"{label}.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            async with client(CONCURRENCY) as http:
                listen_s = await wait_for(http, f"{url}/healthz", process, deadline)
                ready_s = listen_s + await wait_for(http, f"{url}/readyz", process, deadline)
                at_ready = memory_mb(process.pid)
                requests_before = github.requests
                docs_read, settle_s = await github.settled(SETTLE_TIMEOUT, quiet=35)  # > the 30 s DB pool timeout
                at_settled = memory_mb(process.pid)

                async def one(i: int) -> float:
                    status, sent, _, response_url = await slash_command(http, url, slack, names[i % len(names)])
                    answer = await slack.answer(response_url, 30) if status == 200 else None
                    if answer is None:
                        raise RuntimeError(f"no answer (HTTP {status})")
                    return answer[1] - sent

                result = await run_load(lookups, CONCURRENCY, one)
                after = memory_mb(process.pid)
        finally:
            stopping = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
                stopped = f"stopped {time.perf_counter() - stopping:.1f} s after SIGTERM"
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
                stopped = "still running 30 s after SIGTERM: killed"
    print(f"{label}: listening after {listen_s:.1f} s, /readyz 200 after {ready_s:.1f} s (peak RSS {at_ready['VmHWM']:.0f} MB); "
          f"docs reading {'took' if docs_read else 'not over after'} {settle_s:.0f} s ({github.requests - requests_before:,} GitHub requests; "
          f"peak {at_settled['VmHWM']:.0f} MB); "
          f"after {len(result.latencies)} lookups (errors {len(result.errors)}): peak {after['VmHWM']:.0f} MB, current {after['VmRSS']:.0f} MB")
    print(latency_line(f"{label}: answers", result.latencies) + f"  (server {stopped})")
    return {"listen_s": round(listen_s, 1), "ready_s": round(ready_s, 1), "peak_at_ready_mb": round(at_ready["VmHWM"]),
            "docs_read": docs_read, "docs_reading_s": round(settle_s, 1), "peak_after_docs_mb": round(at_settled["VmHWM"]),
            "peak_mb": round(after["VmHWM"]), "rss_mb": round(after["VmRSS"]), "lookup_errors": len(result.errors),
            "stop": stopped}


async def main(entities: int, lookups: int) -> None:
    logs = tally_logs()
    catalog = ensure(entities)
    names = sample_names(catalog, 500)
    async with TimedSlackFake() as slack, GitHubStub() as github:
        slack.add_user("U0ADA0001", email="ada.lovelace@acme.example", real_name="Ada Lovelace")
        with tempfile.TemporaryDirectory(prefix="pavedroad-bench-") as tmp:
            cold = await run_server("cold start (empty DB)", Path(tmp), slack, github, catalog, names, lookups)
            warm = await run_server("restart (DB has catalog)", Path(tmp), slack, github, catalog, names, lookups)
    report("memory", {"entities": entities, "lookups": lookups, "cold": cold, "restart": warm},
           [Goal("peak RSS, cold start", cold["peak_mb"], 300, " MB"), Goal("peak RSS, restart", warm["peak_mb"], 300, " MB")],
           logs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.entities, args.lookups))
