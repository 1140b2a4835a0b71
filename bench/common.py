"""What every benchmark shares: percentiles, goals and the summary line, the bot's settings,
starting the real server, signed Slack slash commands and a bounded load generator.

Scripts are run as files (`.venv/bin/python bench/x.py`), so each puts the repository root on
`sys.path` before importing this module. Everything listens on 127.0.0.1 only.
"""
from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import math
import os
import random
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence

import aiohttp
import yaml
from aiohttp import web

from bot.config import Settings, load_settings
from bot.server import RunningServer, start
from tests.fakes.pagerduty import DEFAULT_API_TOKEN, PagerDutyFake
from tests.fakes.kubernetes import KubernetesFake
from tests.fakes.slack import DEFAULT_BOT_TOKEN, SlackFake
from tests.fakes.slack_requests import sign, slash_command_body
from tests.fakes.tls import ca_bundle_path
from tests.harness import SIGNING_SECRET, write_kubeconfig

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_PREFIX = "BENCH-SUMMARY "
ASKER = "U0ADA0001"  # the Slack user sending commands (Ada in the demo catalog)
NO_GITHUB = "http://127.0.0.1:9"  # nothing listens there: GitHub reads fail at once and never leave the machine


# -- figures -------------------------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    """n, p50, p99 and max of latencies given in seconds, in milliseconds."""
    return {"n": len(seconds), "p50": percentile(seconds, 50) * 1e3, "p99": percentile(seconds, 99) * 1e3,
            "max": max(seconds, default=math.nan) * 1e3}


def latency_line(label: str, seconds: Sequence[float]) -> str:
    s = latency_ms(seconds)
    return f"{label:<34} n={s['n']:<6} p50={s['p50']:8.2f} ms  p99={s['p99']:8.2f} ms  max={s['max']:8.2f} ms"


@dataclass(frozen=True)
class Goal:
    """A target from the issue: `value` must be at most `limit`."""

    name: str
    value: float
    limit: float
    unit: str = ""

    @property
    def ok(self) -> bool:
        return self.value <= self.limit

    def __str__(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.value:.2f}{self.unit} (goal ≤ {self.limit:g}{self.unit})"


def report(script: str, figures: dict[str, Any], goals: Sequence[Goal] = (), logs: "LogTally | None" = None) -> None:
    """Print the product's tallied warnings and the goals, then one machine-readable line that
    run_all.py collects (with the load average: the machine may be shared, and a neighbour shows there)."""
    figures = {**figures, "loadavg_1m": round(os.getloadavg()[0], 2)}
    if logs is not None:
        print("\n".join(logs.lines()) or "log: no warnings or errors")
        figures["log_warnings"] = sum(logs.counts.values())
    for goal in goals:
        print(goal)
    print(SUMMARY_PREFIX + json.dumps({"script": script, "figures": figures,
                                       "goals": [{"name": g.name, "value": round(g.value, 3), "limit": g.limit,
                                                  "unit": g.unit, "ok": g.ok} for g in goals]}), flush=True)


class LogTally(logging.Handler):
    """Counts the product's warnings and errors by message template instead of printing each one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = f"{record.levelname} {record.name}: {record.msg}"
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            key += f" [{error.__class__.__module__}.{error.__class__.__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}]"
        elif record.args:
            key += f" [{', '.join(str(a) for a in (record.args if isinstance(record.args, tuple) else (record.args,)))[:80]}]"
        self.counts[key] = self.counts.get(key, 0) + 1

    def lines(self) -> list[str]:
        return [f"log: {count}× {key}" for key, count in sorted(self.counts.items(), key=lambda kv: -kv[1])]


def tally_logs() -> LogTally:
    """Route every warning and error of this process to a tally (print `.lines()` at the end)."""
    tally = LogTally()
    root = logging.getLogger()
    root.handlers[:] = [tally]
    root.setLevel(logging.WARNING)
    return tally


# -- the bot -------------------------------------------------------------------------------------

def bot_env(data_dir: Path, slack_url: str, catalog: Sequence[str | Path], pagerduty: PagerDutyFake | None = None,
            kubernetes: KubernetesFake | None = None, *, github_url: str = NO_GITHUB, **extra: str) -> dict[str, str]:
    """The environment of a bot on SQLite in `data_dir`, talking only to local servers (Slack, GitHub
    and, when given, PagerDuty and Kubernetes fakes), never refreshing by itself."""
    return {
        "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack_url,
        "GITHUB_API_URL": github_url,
        "DATABASE_URL": f"sqlite:///{data_dir / 'bot.db'}", "PAVEDROAD_DATA_DIR": str(data_dir / "data"),
        "PAVEDROAD_CATALOG": ",".join(str(c) for c in catalog), "HOST": "127.0.0.1",
        "PAVEDROAD_CATALOG_REFRESH_SECONDS": "0", "LOG_LEVEL": "WARNING",
        **({"PAGERDUTY_API_TOKEN": DEFAULT_API_TOKEN, "PAGERDUTY_API_URL": pagerduty.rest_url,
            "PAGERDUTY_EVENTS_URL": pagerduty.events_url, "SSL_CERT_FILE": ca_bundle_path()} if pagerduty else {}),
        **({"KUBECONFIG": str(write_kubeconfig(data_dir / "kubeconfig", kubernetes.url))} if kubernetes else {}),
        **extra,
    }


def bot_settings(*args: Any, **kwargs: Any) -> Settings:
    return load_settings(bot_env(*args, **kwargs))


async def start_bot(settings: Settings, load_timeout: float = 600) -> tuple[RunningServer, float]:
    """The real server (`bot.server.start`, port 0) once its catalog is loaded; and seconds to load it.
    Work the server starts after the load (reading docs) may still run: see `GitHubStub.settled`."""
    started = time.perf_counter()
    server = await start(settings, port=0)
    deadline = time.monotonic() + load_timeout
    while not server.services.catalog.loaded:
        if time.monotonic() > deadline:
            await server.stop()
            raise TimeoutError(f"catalog not loaded within {load_timeout}s")
        await asyncio.sleep(0.05)
    return server, time.perf_counter() - started


async def stop_bot(server: RunningServer, timeout: float = 60) -> float:
    """`server.stop()`, bounded: it waits for running background jobs to finish their run. Returns
    the seconds it took; gives up (leaving the rest to the end of the event loop) after `timeout`."""
    started = time.perf_counter()
    try:
        await asyncio.wait_for(server.stop(), timeout)
    except TimeoutError:
        print(f"server.stop() had not returned after {timeout:g} s (a background job was still running)")
    return time.perf_counter() - started


class GitHubStub:
    """A local stand-in for api.github.com in which no file exists (404), counting the requests:
    with a default GITHUB_API_URL the bot would read docs from the real GitHub."""

    def __init__(self) -> None:
        self.requests = 0
        self.files: Counter[str] = Counter()  # requests by file name asked for (mkdocs.yml, index.md, ...)
        self.last_request = 0.0  # time.monotonic() of the latest request
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> "GitHubStub":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner, self.url = await serve(app)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _not_found(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.files[request.path.rsplit("/", 1)[-1]] += 1
        self.last_request = time.monotonic()
        return web.json_response({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, status=404)

    async def settled(self, timeout: float = 600, quiet: float = 5.0, first_within: float = 60.0) -> tuple[bool, float]:
        """Wait for the bot's docs reading to be over: its first request (if one comes within
        `first_within` seconds), then `quiet` seconds without one. Returns (over, seconds waited);
        not over when `timeout` seconds pass first."""
        started = time.monotonic()
        seen = self.requests
        while self.requests == seen and time.monotonic() - started < min(first_within, timeout):
            await asyncio.sleep(0.1)
        if self.requests == seen:
            return True, time.monotonic() - started  # nothing to read
        while time.monotonic() - self.last_request < quiet:
            if time.monotonic() - started >= timeout:
                return False, time.monotonic() - started
            await asyncio.sleep(0.1)
        return True, self.last_request - started


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve an aiohttp application on 127.0.0.1, on a free port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


class TimedSlackFake(SlackFake):
    """SlackFake that also notes when the first answer reached each response URL (perf_counter)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answered_at: dict[str, float] = {}
        self._answered: dict[str, asyncio.Event] = {}

    def response_url(self) -> str:
        url = super().response_url()
        self._answered[url] = asyncio.Event()
        return url

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        response = await super()._handle_response_url(request)
        url = f"{self.root}{request.path}"
        self.answered_at.setdefault(url, time.perf_counter())
        if url in self._answered:
            self._answered[url].set()
        return response

    async def answer(self, url: str, timeout: float) -> tuple[dict[str, Any], float] | None:
        """The first payload posted to `url` and when it arrived, or None after `timeout` seconds."""
        try:
            await asyncio.wait_for(self._answered[url].wait(), timeout)
        except TimeoutError:
            return None
        return self.response_urls[url].payloads[0], self.answered_at[url]


async def slash_command(http: aiohttp.ClientSession, bot_url: str, slack: SlackFake, text: str,
                        command: str = "/whoowns", user: str = ASKER) -> tuple[int, float, float, str]:
    """POST a signed slash command; returns (status, sent at, seconds to the HTTP answer, response URL)."""
    response_url = slack.response_url()
    body = slash_command_body(command, text, user_id=user, response_url=response_url)
    headers = sign(body, SIGNING_SECRET)
    sent = time.perf_counter()
    async with http.post(f"{bot_url}/slack/events", data=body, headers=headers) as response:
        await response.read()
        return response.status, sent, time.perf_counter() - sent, response_url


async def background_settled(server: RunningServer, github: GitHubStub, timeout: float) -> tuple[bool, float]:
    """Wait (at most `timeout` s) for the work the server does after starting, the first catalog load
    and the docs reading that follows it: its `_until_done` job when it has one, else the GitHub
    stub's quiet. Returns (over, seconds waited)."""
    started = time.monotonic()
    tasks = getattr(server.jobs, "tasks", server.jobs)  # a list of tasks, or a `Jobs` holding them
    first_load = [task for task in tasks if getattr(task.get_coro(), "__name__", "") == "_until_done"]
    if not first_load:
        return await github.settled(timeout)
    done, _ = await asyncio.wait(first_load, timeout=timeout)
    return bool(done), time.monotonic() - started


def sample_names(catalog: Path, count: int, seed: int = 11) -> list[str]:
    """Entity names from the first ten files of a synthetic catalog (cheaper than loading it)."""
    names = []
    for path in sorted(catalog.parent.rglob("entities-*.yaml"))[:10]:
        names += [doc["metadata"]["name"] for doc in yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader)]
    return random.Random(seed).sample(names, min(count, len(names)))


# -- load ----------------------------------------------------------------------------------------

@dataclass
class LoadResult:
    latencies: list[float]
    errors: list[str]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def run_load(total: int, concurrency: int, one: Callable[[int], Awaitable[float]],
                   request_timeout: float = 30, deadline: float = 300) -> LoadResult:
    """Call `one(i)` for i < total, `concurrency` at a time; each returns its latency in seconds.

    Bounded: a call over `request_timeout` counts as an error, and no call starts after `deadline`.
    """
    latencies: list[float] = []
    errors: list[str] = []
    numbers = iter(range(total))
    started = time.perf_counter()
    stop_at = time.monotonic() + deadline

    async def worker() -> None:
        for i in numbers:
            if time.monotonic() > stop_at:
                errors.append("deadline")
                return
            try:
                latencies.append(await asyncio.wait_for(one(i), request_timeout))
            except Exception as exc:  # noqa: BLE001 - counted and shown, the run goes on
                errors.append(f"{exc.__class__.__name__}: {exc}"[:200])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(latencies, errors, time.perf_counter() - started)


def client(concurrency: int) -> aiohttp.ClientSession:
    """An HTTP client with one keep-alive connection per concurrent request."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency))


# -- servers in processes of their own -----------------------------------------------------------

LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+): (.*)$")
TRACEBACK_NOISE = ("Traceback ", "During handling of ", "The above exception ")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server that takes its port from PORT)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process (all its threads) has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM this child if the benchmark dies (run_all's watchdog kills only the benchmark)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def tally_log_file(path: Path, tally: LogTally, label: str) -> None:
    """Add the warnings and errors a process wrote to `path` (the bot's format, `%(asctime)s
    %(levelname)s %(name)s: %(message)s`, tracebacks after their record) to `tally`, keyed by
    `label`. Records are grouped by their message with the variable-looking words (those holding a
    digit, `:`, `/`, `.`, `=` or a quote) masked, since only the formatted text is left; the first
    one of each group is shown."""
    records: list[list[str]] = []
    stray: list[str] = []  # lines outside any record (a crash's traceback before logging is set up)
    for line in path.read_text(errors="replace").splitlines():
        match = LOG_RECORD.match(line)
        if match:
            records.append([match.group(1), match.group(2), match.group(3)])
        elif records:
            records[-1].append(line)
        elif line.strip():
            stray.append(line)
    if stray:
        records.append(["STDERR", "-", stray[-1]])
    shown: dict[tuple[str, ...], str] = {}
    counts: Counter[tuple[str, ...]] = Counter()
    for level, name, message, *more in records:
        if level in ("DEBUG", "INFO"):
            continue
        error = next((m for m in reversed(more) if m.strip() and not m[:1].isspace() and not m.startswith(TRACEBACK_NOISE)), "")
        masked = " ".join("%s" if re.search(r"[\d:/.='\"]", word) else word for word in message.split())
        key = (level, name, masked, error.split(":", 1)[0])
        counts[key] += 1
        shown.setdefault(key, f"{label}: {level} {name}: {message[:160]}" + (f" [{error[:120]}]" if error else ""))
    for key, count in counts.items():
        tally.counts[shown[key]] = tally.counts.get(shown[key], 0) + count


class ServerProcess:
    """A server run as its own process, as in production: `argv` with `env` plus PORT (a free port
    on 127.0.0.1), its stdout and stderr in `log_path`. `start()`, `await ready(path)` for each
    health URL, `cpu_seconds()` meanwhile, `await stop()` (SIGTERM, then SIGKILL after `timeout`)."""

    def __init__(self, label: str, argv: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.label, self.argv, self.log_path = label, list(argv), log_path
        self.port = free_port()
        self.env = {**env, "HOST": "127.0.0.1", "PORT": str(self.port)}
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.started = time.perf_counter()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def ready(self, http: aiohttp.ClientSession, path: str, timeout: float = 600) -> tuple[float, Any]:
        """Seconds since `start()` until GET `path` answers 200, and its JSON body (or None); fails
        with the end of the process's output when it exits first, or after `timeout` seconds."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.process.returncode}:\n{self.tail()}")
            try:
                async with http.get(f"{self.url}{path}") as response:
                    if response.status == 200:
                        body = await response.json(content_type=None) if response.content_length != 0 else None
                        return time.perf_counter() - self.started, body
            except (aiohttp.ClientError, ValueError):
                pass
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.label}: {path} not 200 within {timeout:g} s:\n{self.tail()}")

    def cpu_seconds(self) -> float:
        try:
            return cpu_seconds(self.pid)
        except (OSError, AssertionError, IndexError):
            return math.nan

    async def stop(self, timeout: float = 30) -> str:
        """SIGTERM and wait (the fakes in this process keep answering meanwhile); how it went."""
        if self.process is None or self.process.poll() is not None:
            return "not running" if self.process is None else f"had exited with {self.process.returncode}"
        stopping = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, timeout)
            return f"stopped {time.perf_counter() - stopping:.1f} s after SIGTERM"
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait, 10)
            return f"still running {timeout:g} s after SIGTERM: killed"

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
