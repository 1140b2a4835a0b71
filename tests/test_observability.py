"""The bot's own observability, through the real server: `/metrics` after a scripted session,
structured logs with a request id and no secrets, traces when an exporter is configured."""
from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Settings
from bot.models import Environment
from bot.observability import logs, metrics as observe
from bot.observability.logs import Redactor
from bot.observability.metrics import Metrics
from integrations.errors import IntegrationError, observed
from tests.fakes.pagerduty import DEFAULT_API_TOKEN
from tests.fakes.slack import DEFAULT_BOT_TOKEN
from tests.fakes.slack_requests import slash_command_body
from tests.harness import SIGNING_SECRET, Bot
from tests.test_whoowns import running_bot

GITHUB_TOKEN = "ghp_0123456789abcdefSECRETgithubTOKEN"
BACKSTAGE_TOKEN = "backstage-very-secret-token-42"
APP_TOKEN_IN_TEXT = "xapp-1-A0SECRET-4242-deadbeefcafe"
NO_GITHUB = "http://127.0.0.1:9"   # the demo catalog's docs on GitHub: refused at once, not looked up
USER_TOKEN_IN_TEXT = "xoxp-1111-2222-SECRETuserTOKEN"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) → value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scraped: dict, metric: str, /, **labels: str) -> float:
    return scraped.get((metric, tuple(sorted(labels.items()))), 0.0)


async def scrape(bot: Bot) -> dict:
    async with bot.http.get(f"{bot.url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return samples(await response.text())


@contextlib.contextmanager
def captured_logs(settings: Settings, level: str = "DEBUG", fmt: str = "json"):
    """The bot's logging set up as `serve` sets it (JSON by default), into a buffer; pytest's handlers put back after."""
    root = logging.getLogger()
    handlers, old_level = list(root.handlers), root.level
    buffer = io.StringIO()
    logs.configure(settings, fmt=fmt, level=level, stream=buffer)
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(old_level)


async def test_metrics_after_a_scripted_session(tmp_path):
    async with running_bot(tmp_path, GITHUB_API_URL=NO_GITHUB) as bot:
        for _ in range(2):
            status, body, url = await bot.command("/whoowns", "payment-service")
            assert status == 200 and body == ""
            await bot.reply(url)
        status, body, _ = await bot.command("/whoowns", "")           # usage, in the ack: no outside call
        assert status == 200 and "whoowns" in body.lower()
        await bot.server.services.knowledge.reindex()
        for question in ("payment service high latency", "quantum entanglement"):
            _, _, url = await bot.command("/docs", question)
            await bot.reply(url, timeout=10)
        status, _ = await bot.post(b"command=%2Fwhoowns", secret="not-the-secret")   # refused: not dispatched
        assert status == 401
        async with bot.server.services.db.session() as session:        # environments, read at scrape time
            now = time.time()
            for number, state in enumerate(["ready", "ready", "failed"]):
                session.add(Environment(name=f"pr-{number}", request_key=f"k{number}", service_ref="component:default/x",
                                        owner_ref="group:default/payments", purpose="test", size="small",
                                        requester="U1", status=state, created_at=now, expires_at=now + 3600))
            await session.commit()
        bot.server.metrics.activate()      # as start() does for the jobs it starts, the reaper's among them
        await bot.server.services.reaper.run(dry_run=True)             # only reported, not counted
        report = await bot.server.services.reaper.run()                # both ready ones lack a namespace
        assert (len(report.warned), len(report.destroyed), len(report.drift)) == (0, 0, 2)

        scraped = await scrape(bot)
        whoowns = dict(kind="command", name="/whoowns", listener="answer")
        assert value(scraped, "pavedroad_slack_requests_total", **whoowns) == 3
        assert value(scraped, "pavedroad_slack_request_seconds_count", **whoowns) == 3
        assert value(scraped, "pavedroad_slack_requests_total", kind="command", name="/docs", listener="docs") == 2
        assert value(scraped, "pavedroad_listener_seconds_count", listener="runbook.docs", outcome="ok") == 2  # after the ack
        assert value(scraped, "pavedroad_slack_ack_seconds_count", kind="command") == 5
        assert value(scraped, "pavedroad_slack_ack_seconds_count", kind="refused") == 1
        assert value(scraped, "pavedroad_slack_ack_seconds_bucket", kind="command", le="+Inf") == 5
        # per answer: PagerDuty one lookup (service, on-calls, incidents); Kubernetes deployments beside pods
        for system, calls in (("pagerduty", 2), ("kubernetes", 4)):
            assert value(scraped, "pavedroad_integration_calls_total", system=system, outcome="ok") == calls, system
            assert value(scraped, "pavedroad_integration_call_seconds_count", system=system, outcome="ok") == calls
            assert value(scraped, "pavedroad_integration_call_seconds_sum", system=system, outcome="ok") > 0
        assert value(scraped, "pavedroad_integration_calls_total", system="slack", outcome="ok") >= 1
        assert value(scraped, "pavedroad_knowledge_searches_total", result="hit") == 1
        assert value(scraped, "pavedroad_knowledge_searches_total", result="miss") == 1
        assert value(scraped, "pavedroad_knowledge_hits_total") >= 1
        assert value(scraped, "pavedroad_environments", state="ready") == 2
        assert value(scraped, "pavedroad_environments", state="failed") == 1
        assert value(scraped, "pavedroad_reaper_actions_total", action="warned") == 0
        assert value(scraped, "pavedroad_reaper_actions_total", action="destroyed") == 0
        assert value(scraped, "pavedroad_reaper_actions_total", action="drift") == 2
        assert value(scraped, "pavedroad_scaffold_runs_total", outcome="done") == 0


async def test_integration_outcomes_and_scaffold_runs_are_counted():
    metrics = Metrics()
    token = observe.current.set(metrics)
    metrics.activate()
    try:
        with observed("PagerDuty"):
            pass
        with pytest.raises(IntegrationError), observed("GitHub"):
            raise IntegrationError("GitHub", "HTTP 502")
        with pytest.raises(IntegrationError), observed("Kubernetes"):
            raise IntegrationError("Kubernetes", "no answer within 2s", timed_out=True)
        with pytest.raises(TimeoutError), observed("Backstage"):
            raise TimeoutError
        from bot.scaffolder.model import StepRecord
        observe.scaffold_run("failed", [StepRecord("a", "A", "fetch:template", state="done"),
                                        StepRecord("b", "B", "publish:github", state="failed")])
        observe.scaffold_run("done", [StepRecord("a", "A", "fetch:template", state="done")])
    finally:
        observe.current.reset(token)
    scraped = samples((await metrics.render()).decode())
    assert value(scraped, "pavedroad_integration_calls_total", system="pagerduty", outcome="ok") == 1
    assert value(scraped, "pavedroad_integration_calls_total", system="github", outcome="error") == 1
    assert value(scraped, "pavedroad_integration_calls_total", system="kubernetes", outcome="timeout") == 1
    assert value(scraped, "pavedroad_integration_calls_total", system="backstage", outcome="timeout") == 1
    assert value(scraped, "pavedroad_scaffold_runs_total", outcome="failed") == 1
    assert value(scraped, "pavedroad_scaffold_runs_total", outcome="done") == 1
    assert value(scraped, "pavedroad_scaffold_step_failures_total", action="publish:github") == 1
    assert value(scraped, "pavedroad_scaffold_step_failures_total", action="fetch:template") == 0


async def test_two_servers_keep_their_own_metrics(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    async with running_bot(tmp_path / "one") as one, running_bot(tmp_path / "two") as two:
        _, _, url = await one.command("/whoowns", "payment-service")
        await one.reply(url)
        assert value(await scrape(one), "pavedroad_slack_requests_total", kind="command", name="/whoowns", listener="answer") == 1
        assert value(await scrape(two), "pavedroad_slack_requests_total", kind="command", name="/whoowns", listener="answer") == 0


async def test_no_token_or_secret_reaches_the_logs(tmp_path):
    settings = Settings(slack_bot_token=DEFAULT_BOT_TOKEN, slack_signing_secret=SIGNING_SECRET,
                        pagerduty_api_token=DEFAULT_API_TOKEN, github_token=GITHUB_TOKEN, backstage_token=BACKSTAGE_TOKEN)
    secrets = [DEFAULT_BOT_TOKEN, SIGNING_SECRET, DEFAULT_API_TOKEN, GITHUB_TOKEN, BACKSTAGE_TOKEN,
               APP_TOKEN_IN_TEXT, USER_TOKEN_IN_TEXT, "Bearer abc.def.ghi-header"]
    with captured_logs(settings) as buffer:
        async with running_bot(tmp_path, GITHUB_TOKEN=GITHUB_TOKEN, GITHUB_API_URL=NO_GITHUB,
                               BACKSTAGE_TOKEN=BACKSTAGE_TOKEN) as bot:
            status, _, url = await bot.command("/whoowns", f"payment-service {APP_TOKEN_IN_TEXT} {USER_TOKEN_IN_TEXT}")
            assert status == 200
            await bot.reply(url)
            status, _ = await bot.post(slash_command_body("/whoowns", f"token={GITHUB_TOKEN}",
                                                          response_url=bot.slack.response_url()),
                                       headers={"Authorization": "Bearer abc.def.ghi-header"})
            assert status == 200
            log = logging.getLogger("pavedroad.test")
            log.info("calling GitHub with Authorization: Bearer %s and %s", GITHUB_TOKEN, BACKSTAGE_TOKEN)
            log.info("headers %s", {"Authorization": "Token token=" + DEFAULT_API_TOKEN, "X-Slack-Signature": "v0=abcdef"})
            log.info("slack said %s, app %s, signing with %s", DEFAULT_BOT_TOKEN, APP_TOKEN_IN_TEXT, SIGNING_SECRET)
            try:
                raise RuntimeError(f"refused token {GITHUB_TOKEN} for {DEFAULT_BOT_TOKEN}")
            except RuntimeError:
                log.exception("a failure with secrets in it")
            await asyncio.sleep(0.2)
    output = buffer.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]   # one JSON object per line
    assert len(lines) > 20 and any("exception" in line and "RuntimeError" in line["exception"] for line in lines)
    assert any(line.get("command", "").startswith("/whoowns payment-service") for line in lines)
    for secret in secrets:
        assert secret not in output, secret
    assert "abcdef" not in output and "[REDACTED]" in output


def test_redactor_knows_token_shapes_and_configured_values():
    redact = Redactor(["s3cr3t-value", "ab"])          # too short a value would redact everything: ignored
    text = redact("xoxb-1-2-abc xoxe.xoxp-1-x xapp-1-A-2-f ghs_abcdefghijklmnop gho_abcdefghijklmnop "
                  "postgresql://bot:hunter2@db/pavedroad s3cr3t-value Authorization: Basic dXNlcjpwYXNz ab")
    for secret in ("xoxb-1-2-abc", "xoxp-1-x", "xapp-1-A-2-f", "ghs_", "gho_", "hunter2", "s3cr3t-value", "dXNlcjpwYXNz"):
        assert secret not in text
    assert text.endswith(" ab") and "postgresql://bot:[REDACTED]@db/pavedroad" in text


async def test_one_request_id_for_the_lines_of_one_request(tmp_path):
    with captured_logs(Settings()) as buffer:
        async with running_bot(tmp_path) as bot:
            urls = []
            for _ in range(2):
                _, _, url = await bot.command("/whoowns", "payment-service")
                urls.append(url)
            for url in urls:
                await bot.reply(url)
            await asyncio.sleep(0.1)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    starts = [line for line in lines if line["logger"] == "pavedroad.requests"]
    assert len(starts) == 2 and starts[0]["request_id"] != starts[1]["request_id"]
    for start in starts:
        assert start["user"] == "U0ADA0001" and start["command"] == "/whoowns payment-service"
        mine = [line for line in lines if line.get("request_id") == start["request_id"]]
        # lines from Bolt before the middleware, the listener after its ack, and the worker threads
        assert {"slack_bolt.AsyncApp", "pavedroad.requests"} <= {line["logger"] for line in mine}
        assert any(line["logger"].startswith(("urllib3", "httpcore", "httpx", "kubernetes")) for line in mine)
        assert all(line["request_id"] for line in mine)
    assert not any(line.get("request_id") for line in lines if line["message"].startswith("listening on"))


def test_text_format_for_local_use():
    with captured_logs(Settings(), level="INFO", fmt="text") as buffer:
        token = logs.request_context.set(logs.RequestContext("r123", "U1", "/whoowns x"))
        logging.getLogger("pavedroad.test").info("hello %s", "xoxb-123-secret")
        logs.request_context.reset(token)
    line = buffer.getvalue().strip()
    assert line.endswith("INFO pavedroad.test [r123]: hello [REDACTED]")


async def test_traces_one_per_request_with_a_span_per_integration_call(tmp_path, monkeypatch):
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from bot import server
    from bot.observability.tracing import Tracing

    exporter = InMemorySpanExporter()

    class InMemoryTracing:   # what start() builds from the settings, with the spans kept in memory
        @staticmethod
        def from_settings(settings: Settings) -> Tracing | None:
            return Tracing.from_settings(settings, exporter) if settings.otel_exporter_otlp_endpoint else None

    monkeypatch.setattr(server, "Tracing", InMemoryTracing)
    async with running_bot(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9") as bot:
        assert bot.server.metrics.tracing is not None
        _, _, url = await bot.command("/whoowns", "payment-service")
        await bot.reply(url)
        await asyncio.sleep(0.1)
        spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.name == "slack command /whoowns"]
    assert len(roots) == 1
    root = roots[0]
    assert root.parent is None and root.attributes["listener"] == "answer" and root.attributes["user"] == "U0ADA0001"
    children = [s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id]
    systems = {s.attributes.get("system") for s in children}
    assert {"pagerduty", "kubernetes"} <= systems
    assert all(s.context.trace_id == root.context.trace_id for s in children)


def test_tracing_is_off_without_an_endpoint():
    from bot.observability.tracing import Tracing

    assert Tracing.from_settings(Settings()) is None


def test_a_clear_line_when_the_endpoint_is_set_but_the_packages_are_missing(monkeypatch, caplog):
    import sys

    from bot.observability.tracing import Tracing

    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)   # as if not installed
    with caplog.at_level(logging.WARNING, logger="bot.observability.tracing"):
        assert Tracing.from_settings(Settings(otel_exporter_otlp_endpoint="http://collector:4318")) is None
    assert "pavedroad[otel]" in caplog.text and "tracing is off" in caplog.text
