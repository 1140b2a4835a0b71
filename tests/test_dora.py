"""DORA metrics: band boundaries and metric arithmetic on fixed, labelled data (hand-checked), the
GitHub and PagerDuty reads against their test servers, and `/dora` end to end through signed HTTP."""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest

from bot.metrics import dora as d
from bot.metrics.dora import (Delivery, ServiceData, Target, build_report, change_failure_band, ci_tally,
                              deliveries_from_runs, deployment_frequency_band, failed_deliveries, lead_time_band,
                              restore_band, weekly_counts)
from bot.db import Database
from bot.metrics.delivery_data import DeliveryData
from bot.metrics.delivery_sync import DeliverySync
from bot.metrics.dora_reports import Dora
from commands.dora import parse, report_blocks
from integrations.errors import IntegrationError
from integrations.github_delivery import GitHubDelivery, WorkflowRun
from integrations.pagerduty import IncidentRecord, PagerDutyClient
from tests.fakes.github import GitHubFake
from tests.fakes.pagerduty import DEFAULT_API_TOKEN, PagerDutyFake
from tests.fakes.slack import SlackFake
from tests.fakes.tls import ca_bundle_path
from tests.harness import start_bot, stop_bot

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
PNG = b"\x89PNG\r\n\x1a\n"


# -- bands: each boundary on both sides ---------------------------------------------------


@pytest.mark.parametrize(("count", "days", "band"), [
    (30, 30, "elite"), (29, 30, "high"),          # once a day on average
    (90, 90, "elite"), (89, 90, "high"),
    (5, 35, "high"), (4, 30, "medium"),           # once a week: 5*7 = 35 ≥ 35; 4*7 = 28 < 30
    (1, 30, "medium"), (0, 30, "low"),            # once a month
    (3, 90, "medium"), (2, 90, "low"),
])
def test_deployment_frequency_band(count: int, days: int, band: str) -> None:
    assert deployment_frequency_band(count, days) == band


def test_team_deployment_frequency_band_is_per_service() -> None:
    assert deployment_frequency_band(60, 30, services=2) == "elite"   # 30 each: daily
    assert deployment_frequency_band(59, 30, services=2) == "high"
    assert deployment_frequency_band(9, 30, services=2) == "high"     # 4.5 each: 9 × 7 = 63 ≥ 60
    assert deployment_frequency_band(8, 30, services=2) == "medium"


@pytest.mark.parametrize(("lead", "band"), [
    (DAY - timedelta(seconds=1), "elite"), (DAY, "high"),
    (7 * DAY - timedelta(seconds=1), "high"), (7 * DAY, "medium"),
    (30 * DAY - timedelta(seconds=1), "medium"), (30 * DAY, "low"),
])
def test_lead_time_band(lead: timedelta, band: str) -> None:
    assert lead_time_band(lead) == band


@pytest.mark.parametrize(("rate", "band"), [
    (0.0, "elite"), (0.05, "elite"), (0.0501, "high"), (0.10, "high"), (0.1001, "medium"),
    (0.15, "medium"), (3 / 20, "medium"), (0.1501, "low"), (1.0, "low"),
])
def test_change_failure_band(rate: float, band: str) -> None:
    assert change_failure_band(rate) == band


@pytest.mark.parametrize(("duration", "band"), [
    (H - timedelta(seconds=1), "elite"), (H, "high"),
    (DAY - timedelta(seconds=1), "high"), (DAY, "medium"),
    (7 * DAY - timedelta(seconds=1), "medium"), (7 * DAY, "low"),
])
def test_restore_band(duration: timedelta, band: str) -> None:
    assert restore_band(duration) == band


# -- metrics on labelled data ----------------------------------------------------------------


def incident(created: datetime, resolved: datetime | None, service: str = "P1") -> IncidentRecord:
    return IncidentRecord(f"I{created.timestamp():.0f}", service, "resolved" if resolved else "triggered", "high",
                          created, resolved)


def ci_rate(runs: list[WorkflowRun]) -> d.CiRate:
    return ci_tally((r.status, r.conclusion, 1) for r in runs)


def run(conclusion: str, at: datetime, sha: str = "s", status: str = "completed") -> WorkflowRun:
    return WorkflowRun(int(at.timestamp()), "CI", "main", sha, "push", status, conclusion, at)


def test_change_failure_rule_next_delivery_or_24_hours() -> None:
    deliveries = [Delivery("a", T0, "deployments"), Delivery("b", T0 + 2 * H, "deployments"),
                  Delivery("c", T0 + 3 * DAY, "deployments"), Delivery("d", T0 + 10 * DAY, "deployments")]
    incidents = [incident(T0 + 3 * H, None),                  # after b (before c, within 24 h): b failed
                 incident(T0 + 4 * DAY + 1 * H, None),        # 25 h after c: nobody's failure
                 incident(T0 + 10 * DAY, None)]               # at d's very moment: d failed
    assert failed_deliveries(deliveries, incidents) == [False, True, False, True]
    # an incident before the first delivery is not its failure
    assert failed_deliveries(deliveries[:1], [incident(T0 - H, None)]) == [False]


def test_ci_rate_excludes_cancelled() -> None:
    runs = [run("success", T0)] * 8 + [run("failure", T0), run("timed_out", T0), run("cancelled", T0),
                                       run("skipped", T0), run("", T0, status="in_progress")]
    rate = ci_rate(runs)
    assert (rate.success, rate.failure, rate.excluded) == (8, 2, 2)
    assert rate.rate == 0.8 and rate.text == "80% (8 of 10 runs)"
    assert ci_rate([run("cancelled", T0)]).rate is None


def test_runs_as_deliveries_one_per_commit() -> None:
    runs = [run("success", T0 + H, "x"), run("success", T0, "x"), run("failure", T0, "y"), run("success", T0 + 2 * H, "z")]
    assert deliveries_from_runs(runs) == [Delivery("x", T0, "workflow runs"), Delivery("z", T0 + 2 * H, "workflow runs")]


def test_weekly_counts() -> None:
    points = weekly_counts([T0, T0 + 6 * DAY, T0 + 7 * DAY, T0 + 29 * DAY, T0 + 30 * DAY], T0, T0 + 30 * DAY)
    assert [c for _, c in points] == [2, 1, 0, 0, 1]  # 5 buckets; the last (28-30 d) holds day 29; day 30 is outside
    assert points[1][0] == T0 + 7 * DAY


def labelled_service() -> ServiceData:
    """payment-service over 30 days from T0: four deployments, lead times 5, 3, 1, 10, 2 h; two failed."""
    deliveries = [Delivery("d0", T0 - 10 * DAY, "deployments"), Delivery("d1", T0 + 10 * DAY, "deployments"),
                  Delivery("d2", T0 + 15 * DAY, "deployments"), Delivery("d3", T0 + 20 * DAY, "deployments"),
                  Delivery("d4", T0 + 25 * DAY, "deployments")]
    incidents = [incident(T0 + 15 * DAY + 2 * H, T0 + 15 * DAY + 2.5 * H),     # d2 failed; 30 min
                 incident(T0 + 22 * DAY, T0 + 22 * DAY + 3 * H),               # 2 days after d3: not a failure; 3 h
                 incident(T0 + 25 * DAY + 0.5 * H, T0 + 25 * DAY + 2 * H)]     # d4 failed; 1.5 h
    return ServiceData("payment-service", "acme/payment-service", "P1", source="deployments", deliveries=deliveries,
                       lead_times=[5 * H, 3 * H, 1 * H, 10 * H, 2 * H],
                       ci=ci_rate([run("success", T0 + DAY)] * 8 + [run("failure", T0 + DAY)] * 2 + [run("cancelled", T0)]),
                       incidents=incidents)


def test_report_hand_checked() -> None:
    report = build_report(Target("Payment Service", "service", ()), 30, T0, T0 + 30 * DAY, [labelled_service()])
    df, lt, cfr, ttr = report.metrics
    assert (df.value, df.band, df.text) == (4 / 30, "medium", "0.9/week (4 in 30 days)")
    assert df.reason == "from deployments"
    assert (lt.value, lt.band, lt.text) == (3.0, "elite", "3.0 h")
    assert (cfr.value, cfr.band, cfr.text) == (0.5, "low", "50% (2 of 4)")
    assert (ttr.value, ttr.band, ttr.text) == (1.5, "high", "1.5 h")
    assert report.ci.text == "80% (8 of 10 runs)"
    assert [c for _, c in report.weekly["deployments"]] == [0, 1, 2, 1, 0]  # days 10, 15, 20, 25 in 7-day buckets
    assert [c for _, c in report.weekly["failed deployments"]] == [0, 0, 1, 1, 0]
    assert report.missing == []


def test_team_pools_and_no_data_is_not_zero() -> None:
    other = ServiceData("search", "acme/search", "", missing=["no `pagerduty.com/service-id` annotation (PagerDuty)"],
                        source="workflow runs", deliveries=[Delivery("s1", T0 + DAY, "workflow runs")],
                        lead_times=[7 * H], ci=ci_rate([run("failure", T0 + DAY)]))
    report = build_report(Target("payments", "team", ()), 30, T0, T0 + 30 * DAY, [labelled_service(), other])
    df, lt, cfr, ttr = report.metrics
    assert df.text == "1.2/week (5 in 30 days, 2 services; band per service)"
    assert df.band == "medium" and df.reason == "from deployments and workflow runs"  # 2.5 each: 2.5 × 7 < 30 ≤ 2.5 × 30
    assert lt.value == 4.0  # median of 1, 2, 3, 5, 7, 10 h
    assert cfr.text == "50% (2 of 4)"  # only the service with PagerDuty data counts
    assert report.ci.text == "73% (8 of 11 runs)"
    assert report.ci_by_repo["acme/search"].rate == 0.0
    assert report.missing == ["search: no `pagerduty.com/service-id` annotation (PagerDuty)"]

    nothing = ServiceData("x", "", "", missing=["GitHub: HTTP 500", "PagerDuty: HTTP 500"])
    report = build_report(Target("x", "service", ()), 30, T0, T0 + 30 * DAY, [nothing])
    assert [m.value for m in report.metrics] == [None] * 4
    assert [m.text for m in report.metrics] == ["no data"] * 4
    assert report.deployment_frequency.reason == "GitHub: HTTP 500"
    assert report.time_to_restore.reason == "PagerDuty: HTTP 500"
    assert "*CI success rate*: _no data_ (GitHub: HTTP 500)" in str(report_blocks(report))  # why, not "no runs"
    quiet = ServiceData("q", "acme/q", "P9", source="deployments", deliveries=[], ci=ci_rate([]), incidents=[incident(T0 + DAY, None, "P9")])
    report = build_report(Target("q", "service", ()), 30, T0, T0 + 30 * DAY, [quiet])
    assert report.lead_time.value is None and report.change_failure_rate.value is None
    assert report.time_to_restore.reason == "no resolved incidents in the window (1 still open)"


def test_parse_window() -> None:
    assert parse("payment-service") == ("payment-service", 30)
    assert parse("payments-team 90d") == ("payments-team", 90)
    assert parse("payment-service 7d") is None
    assert parse("") is None


# -- the test servers and the clients -----------------------------------------------------------


def seed(github: GitHubFake, pagerduty: PagerDutyFake, now: datetime) -> None:
    """The labelled data of `test_report_hand_checked`, as raw GitHub and PagerDuty data ending at `now`."""
    github.add_repo("acme/payment-service")
    start = now - 30 * DAY
    github.add_dated_commit("acme/payment-service", start - 10 * DAY - 2 * H, "c0")
    github.add_deployment("acme/payment-service", created_at=start - 10 * DAY)
    for day, hours in ((10, (5, 3)), (15, (1,)), (20, (10,)), (25, (2,))):
        for h in hours:
            github.add_dated_commit("acme/payment-service", start + day * DAY - h * H, f"change {day}-{h}")
        github.add_deployment("acme/payment-service", created_at=start + day * DAY - 10 * timedelta(minutes=1),
                              status_at=start + day * DAY)
        if day == 15:  # a failed deployment is never counted
            github.add_deployment("acme/payment-service", created_at=start + 16 * DAY, state="failure")
    for i in range(8):
        github.add_workflow_run("acme/payment-service", created_at=start + (i + 1) * DAY)
    github.add_workflow_run("acme/payment-service", conclusion="failure", created_at=start + 2 * DAY)
    github.add_workflow_run("acme/payment-service", conclusion="failure", created_at=start + 3 * DAY)
    github.add_workflow_run("acme/payment-service", conclusion="cancelled", created_at=start + 3 * DAY)
    github.add_workflow_run("acme/payment-service", conclusion="failure", created_at=start - 5 * DAY)  # outside
    github.add_workflow_run("acme/payment-service", conclusion="failure", created_at=start + DAY, branch="feature")
    pagerduty.add_user("PU1", "Alan", "alan@acme.example")
    pagerduty.add_escalation_policy("PEP1", "Payments", ["PU1"])
    pagerduty.add_service("PPAY001", "Payment Service", "PEP1")
    pagerduty.add_resolved_incident("PPAY001", "errors", start + 15 * DAY + 2 * H, start + 15 * DAY + 2.5 * H)
    pagerduty.add_resolved_incident("PPAY001", "slow", start + 22 * DAY, start + 22 * DAY + 3 * H)
    pagerduty.add_resolved_incident("PPAY001", "down", start + 25 * DAY + 0.5 * H, start + 25 * DAY + 2 * H)
    pagerduty.add_resolved_incident("PPAY001", "old", start - 3 * DAY, start - 2 * DAY)  # outside


async def test_readers_against_the_test_servers() -> None:
    now = datetime.now(timezone.utc)
    async with GitHubFake() as github, PagerDutyFake() as pagerduty, aiohttp.ClientSession() as http:
        seed(github, pagerduty, now)
        reader = GitHubDelivery(http, github.url, github.token)
        since = now - 30 * DAY
        deployments = await reader.deployments("acme/payment-service", since)
        assert [x.state for x in deployments] == ["success"] * 3 + ["failure"] + ["success"] * 2
        assert sum(x.succeeded and x.created_at >= since for x in deployments) == 4
        runs = await reader.workflow_runs("acme/payment-service", since)
        assert len(runs) == 11 and {r.branch for r in runs} == {"main"}
        commits = await reader.commits_between("acme/payment-service", deployments[0].sha, deployments[1].sha)
        assert len(commits) == 2 and commits[0].committed_at < commits[1].committed_at
        client = PagerDutyClient(DEFAULT_API_TOKEN, pagerduty.rest_url, pagerduty.events_url, ca_bundle_path())
        try:
            found = await client.incidents_between(["PPAY001"], since, now)
            assert [i.resolved_at - i.created_at for i in found] == [0.5 * H, 3 * H, 1.5 * H]
        finally:
            client.close()
        with pytest.raises(IntegrationError, match="not found"):
            await reader.deployments("acme/nothing", since)
        github.rate_limit(5)
        with pytest.raises(IntegrationError, match="rate limited"):
            await reader.workflow_runs("acme/payment-service", since)


@asynccontextmanager
async def stored_dora(database_url: str, github: GitHubFake, pagerduty: PagerDutyFake | None,
                      index: object = None, budget: float = 5.0) -> AsyncIterator[Dora]:
    """A `Dora` over a migrated database, reading the test servers."""
    db = Database(database_url)
    await db.migrate()
    async with aiohttp.ClientSession() as http:
        client = (PagerDutyClient(DEFAULT_API_TOKEN, pagerduty.rest_url, pagerduty.events_url, ca_bundle_path())
                  if pagerduty else None)
        sync = DeliverySync(DeliveryData(db), GitHubDelivery(http, github.url, github.token), client)
        dora = Dora(lambda: index, sync, budget_seconds=budget)
        try:
            yield dora
        finally:
            for task in list(sync.reading.values()):
                task.cancel()
            await asyncio.gather(*sync.reading.values(), return_exceptions=True)
            if client is not None:
                client.close()
            await db.close()


def payment_target() -> Target:
    entity = type("E", (), {"name": "payment-service", "annotations": {
        d.GITHUB_SLUG: "acme/payment-service", d.PAGERDUTY_SERVICE: "PPAY001"}})()
    return Target("Payment Service", "service", (entity,))  # type: ignore[arg-type]


async def test_failing_github_degrades_the_report(database_url: str) -> None:
    now = datetime.now(timezone.utc)
    async with GitHubFake() as github, PagerDutyFake() as pagerduty:
        seed(github, pagerduty, now)
        async with stored_dora(database_url, github, pagerduty) as dora:
            github.fail_status = 502
            report = await dora.report(payment_target(), 30)
            assert report.deployment_frequency.value is None and "GitHub: HTTP 502" in report.deployment_frequency.reason
            assert report.time_to_restore.text == "1.5 h"  # PagerDuty still answered
            github.fail_status = None
            assert "GitHub: HTTP 502" in (await dora.report(payment_target(), 30)).deployment_frequency.reason  # not asked again at once
            github.delay = 3
            dora.budget_seconds, dora.fresh_seconds = 0.5, 0
            report = await dora.report(payment_target(), 30)
            assert "payment-service: GitHub: first read still under way; ask again in a minute" in report.missing
            assert report.deployment_frequency.value is None and report.time_to_restore.text == "1.5 h"
            assert list(dora.sync.reading) == [("github", "acme/payment-service")]  # the slow read goes on
            github.delay = 0
            await dora.sync.reading[("github", "acme/payment-service")]
            report = await dora.report(payment_target(), 30)  # answered from what the slow read stored
            assert report.deployment_frequency.text == "0.9/week (4 in 30 days)" and report.missing == []


async def test_stored_data_answers_and_says_how_old_it_is(database_url: str) -> None:
    now = datetime.now(timezone.utc)
    async with GitHubFake() as github, PagerDutyFake() as pagerduty:
        seed(github, pagerduty, now)
        async with stored_dora(database_url, github, pagerduty) as dora:
            first = await dora.report(payment_target(), 30)
            calls = len(github.requests)
            github.fail_status = 502
            again = await dora.report(payment_target(), 30)  # read less than `fresh_seconds` ago: no GitHub call
            assert len(github.requests) == calls
            assert again.deployment_frequency.text == first.deployment_frequency.text == "0.9/week (4 in 30 days)"
            dora.fresh_seconds = 0
            stale = await dora.report(payment_target(), 30)  # the refresh fails: the stored figures stay, with a note
            assert stale.deployment_frequency.text == "0.9/week (4 in 30 days)" and stale.lead_time.text == "3.0 h"
            assert any(m.startswith("payment-service: GitHub: the last read failed (HTTP 502); showing data read 0 min ago")
                       for m in stale.missing)
            github.fail_status = None
            github.add_dated_commit("acme/payment-service", now - H, "hotfix")
            github.add_deployment("acme/payment-service", created_at=now - 30 * MINUTE, status_at=now - 10 * MINUTE)
            fresh = await dora.report(payment_target(), 30)  # the refresh reads only what is new
            assert fresh.deployment_frequency.text == "1.2/week (5 in 30 days)" and fresh.missing == []


async def test_dora_end_to_end(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    async with SlackFake() as slack, GitHubFake() as github, PagerDutyFake() as pagerduty:
        seed(github, pagerduty, now)
        bot = await start_bot(tmp_path, slack, pagerduty, GITHUB_API_URL=github.url, GITHUB_TOKEN=github.token)
        try:
            status, body, url = await bot.command("/dora", "payment-service 30d")
            assert status == 200 and "Computing DORA metrics" in body
            reply = await bot.reply(url, timeout=30)
            text = str(reply["blocks"])
            for figure in ("0.9/week (4 in 30 days)", "medium", "3.0 h", "elite", "50% (2 of 4)", "low", "1.5 h",
                           "high", "80% (8 of 10 runs)", "from deployments"):
                assert figure in text, figure
            assert "Missing" not in text
            uploads = [u for u in slack.uploads.values() if u["content"]]
            assert uploads and bytes(uploads[0]["content"]).startswith(PNG)

            status, body, url = await bot.command("/dora", "payments-team 90d")  # one repository seeded, the rest 404
            team = str((await bot.reply(url, timeout=30))["blocks"])
            assert "team · 6 services" in team and "last 90 days" in team
            # payment-service and payments-client share acme/payment-service: counted once; d0 is inside 90 days (lead 2 h)
            assert "(5 in 90 days)" in team and "40% (2 of 5)" in team and "2.5 h" in team
            assert "Missing" in team and "ledger-service: GitHub: HTTP 404 (not found)" in team

            status, body, url = await bot.command("/dora", "feature-flags")
            missing = (await bot.reply(url, timeout=30))["text"]
            assert "github.com/project-slug" in missing and "pagerduty.com/service-id" in missing

            status, body, url = await bot.command("/dora", "payment-service 7d")
            assert "Usage" in body
            status, body, url = await bot.command("/dora", "no-such-thing")
            assert "couldn't find" in (await bot.reply(url, timeout=30))["text"]
        finally:
            await stop_bot(bot)


async def test_github_test_server_delivery_endpoints() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    async with GitHubFake() as github, aiohttp.ClientSession() as http:
        github.add_repo("acme/api")
        for day in range(1, 6):
            github.add_workflow_run("acme/api", created_at=now - day * DAY)
        deployment = github.add_deployment("acme/api", created_at=now - DAY, state=None)
        github.add_deployment_status("acme/api", deployment["id"], "in_progress", now - DAY)
        github.add_deployment_status("acme/api", deployment["id"], "success", now - DAY + H)
        headers = {"Authorization": f"token {github.token}"}

        async def get(path: str) -> tuple[int, dict | list, str]:
            async with http.get(f"{github.url}{path}", headers=headers) as response:
                return response.status, await response.json(), response.headers.get("Link", "")
        status, body, _ = await get("/repos/acme/api/actions/runs?created=%3E%3D2026-02-27")
        assert status == 200 and body["total_count"] == 2  # runs at noon on 28 and 27 February
        assert [r["created_at"][:10] for r in body["workflow_runs"]] == ["2026-02-28", "2026-02-27"]  # newest first
        status, body, link = await get("/repos/acme/api/actions/runs?created=2026-02-24..2026-02-26&per_page=1")
        assert body["total_count"] == 3 and 'rel="next"' in link
        status, body, _ = await get(f"/repos/acme/api/deployments/{deployment['id']}/statuses")
        assert [s["state"] for s in body] == ["success", "in_progress"]  # newest first
        status, body, _ = await get("/repos/acme/api/deployments/999999/statuses")
        assert status == 404 and body["message"] == "Not Found"
        github.rate_limit(1)
        status, body, _ = await get("/repos/acme/api/deployments")
        assert status == 429
        status, body, _ = await get("/repos/acme/api/compare/nope...main")
        assert status == 404


async def test_org_ci_success_over_catalog_repositories(database_url: str) -> None:
    now = datetime.now(timezone.utc)
    async with GitHubFake() as github:
        github.add_repo("acme/a")
        github.add_repo("acme/b")
        for conclusion in ("success", "success", "failure", "cancelled"):
            github.add_workflow_run("acme/a", conclusion=conclusion, created_at=now - DAY)
        github.add_workflow_run("acme/b", conclusion="success", created_at=now - DAY)
        entities = {k: type("E", (), {"kind": kind, "annotations": {d.GITHUB_SLUG: slug}})()
                    for k, kind, slug in (("a", "Component", "acme/a"), ("b", "Component", "acme/B"),
                                          ("b2", "Component", "acme/b"), ("c", "Component", "acme/gone"),
                                          ("r", "Resource", "acme/r"))}
        index = type("I", (), {"entities": entities})()
        async with stored_dora(database_url, github, None, index) as dora:
            total, per_repo, missing = await dora.org_ci_success(30)  # nothing read yet, and no first reads started
            assert (total.rate, per_repo, github.requests) == (None, {}, [])
            assert missing[0] == "acme/a: not read yet (the collector, or a `/dora` about it, reads it)"
            await dora.collect(3600)
            total, per_repo, missing = await dora.org_ci_success(30)
            assert total.text == "75% (3 of 4 runs)" and total.excluded == 1
            assert per_repo["acme/a"].rate == 2 / 3 and per_repo["acme/b"].rate == 1.0
            assert missing == ["acme/gone: HTTP 404 (not found)"]


async def test_collector_pass_reads_the_catalog_and_backs_off(database_url: str) -> None:
    now = datetime.now(timezone.utc)
    async with GitHubFake() as github, PagerDutyFake() as pagerduty:
        seed(github, pagerduty, now)
        names = [f"svc-{n}" for n in range(6)]
        for name in names:
            github.add_repo(f"acme/{name}")
            github.add_workflow_run(f"acme/{name}", created_at=now - DAY)
        entities = {name: type("E", (), {"name": name, "kind": "Component", "annotations": {d.GITHUB_SLUG: f"acme/{name}"}})()
                    for name in names}
        entities["payment-service"] = type("E", (), {"name": "payment-service", "kind": "Component", "annotations": {
            d.GITHUB_SLUG: "acme/payment-service", d.PAGERDUTY_SERVICE: "PPAY001"}})()
        index = type("I", (), {"entities": entities})()
        async with stored_dora(database_url, github, pagerduty, index) as dora:
            github.rate_limit(1000, retry_after=60)
            counts = await dora.collect(every_seconds=3600)
            assert counts["repositories"] == 0 and counts["skipped"] == 7 and counts["services"] == 1
            # GitHub said to slow down: the pass stopped after the reads already under way
            assert len(github.requests) <= 4 * 3
            sources = await dora.data.sources("github", [f"acme/{n}" for n in names] + ["acme/payment-service"])
            assert all("rate limited" in s.error for s in sources.values()) and len(sources) <= 4
            github.reset_faults()
            counts = await dora.collect(every_seconds=3600)  # the ones tried are not due yet; the others are
            assert counts["repositories"] == 7 - len(sources)
            counts = await dora.collect(every_seconds=0)
            assert counts == {"repositories": 7, "failed": 0, "skipped": 0, "services": 1, "services failed": 0}

            github.clear_requests()
            pagerduty.clear_requests()
            report = await dora.report(payment_target(), 30)  # all stored and fresh: no outside call
            assert (github.requests, pagerduty.requests) == ([], [])
            assert report.deployment_frequency.text == "0.9/week (4 in 30 days)" and report.time_to_restore.text == "1.5 h"
            assert report.change_failure_rate.text == "50% (2 of 4)" and report.lead_time.text == "3.0 h"
            total, per_repo, missing = await dora.org_ci_success(30)
            assert (github.requests, missing) == ([], [])
            assert len(per_repo) == 7 and total.text == "88% (14 of 16 runs)"  # 8 + 6 of 10 + 6


async def test_server_collects_delivery_data_at_start(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    async with SlackFake() as slack, GitHubFake() as github, PagerDutyFake() as pagerduty:
        seed(github, pagerduty, now)
        bot = await start_bot(tmp_path, slack, pagerduty, GITHUB_API_URL=github.url, GITHUB_TOKEN=github.token,
                              PAVEDROAD_DORA_COLLECT_MINUTES="60")
        try:
            data = bot.server.services.dora.data
            deadline = asyncio.get_running_loop().time() + 30
            while not (read := await data.sources("github", ["acme/payment-service"])).get("acme/payment-service"):
                assert asyncio.get_running_loop().time() < deadline, "the collector did not run"
                await asyncio.sleep(0.1)
            assert read["acme/payment-service"].source == "deployments"
            while not (await data.sources("pagerduty", ["PPAY001"])).get("PPAY001"):
                assert asyncio.get_running_loop().time() < deadline, "the collector did not read PagerDuty"
                await asyncio.sleep(0.1)
        finally:
            await stop_bot(bot)


async def test_a_repository_that_starts_deploying_counts_its_deployments(database_url: str) -> None:
    now = datetime.now(timezone.utc)
    async with GitHubFake() as github, PagerDutyFake() as pagerduty:
        seed(github, pagerduty, now)
        github.add_repo("acme/search")
        for day in (3, 2, 1):
            sha = github.add_dated_commit("acme/search", now - day * DAY - H, f"change {day}")
            github.add_workflow_run("acme/search", created_at=now - day * DAY, head_sha=sha)
        target = Target("Search", "service", (type("E", (), {"name": "search", "annotations": {
            d.GITHUB_SLUG: "acme/search"}})(),))  # type: ignore[arg-type]
        async with stored_dora(database_url, github, None) as dora:
            first = await dora.report(target, 30)
            assert first.deployment_frequency.text == "0.7/week (3 in 30 days)" and first.sources == {"search": "workflow runs"}
            for day in (10, 5):  # older than the two days a later read looks back
                github.add_deployment("acme/search", created_at=now - day * DAY)
            github.add_deployment("acme/search", created_at=now - H)
            dora.fresh_seconds = 0
            switched = await dora.report(target, 30)
            assert switched.sources == {"search": "deployments"}
            assert switched.deployment_frequency.text == "0.7/week (3 in 30 days)"  # 10 d, 5 d and 1 h ago


async def test_commits_a_force_push_removed_do_not_block_the_repository(database_url: str) -> None:
    now = datetime.now(timezone.utc)
    async with GitHubFake() as github:
        github.add_repo("acme/search")
        for day in (3, 2, 1):  # runs of commits the repository no longer has: GitHub answers 422 and 404
            github.add_workflow_run("acme/search", created_at=now - day * DAY, head_sha=f"{day:040x}")
        target = Target("Search", "service", (type("E", (), {"name": "search", "annotations": {
            d.GITHUB_SLUG: "acme/search"}})(),))  # type: ignore[arg-type]
        async with stored_dora(database_url, github, None) as dora:
            report = await dora.report(target, 30)
            asked = sorted(part for r in github.requests for part in r.path.split("/")[4:5] if part in ("commits", "compare"))
            assert asked == ["commits", "compare", "compare"]  # the first delivery's commit, then each one's changes
            assert report.deployment_frequency.text == "0.7/week (3 in 30 days)" and report.missing == [
                "search: no `pagerduty.com/service-id` annotation (PagerDuty)"]
            assert report.lead_time.reason == "no successful deliveries with commits in the window"
            github.clear_requests()
            dora.fresh_seconds = 0
            await dora.report(target, 30)  # read and measured once: not asked again
            assert not [r for r in github.requests if "/commits/" in r.path or "/compare/" in r.path]
