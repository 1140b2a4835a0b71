"""Platform metrics: figures on fixed, labelled stored data with hand-checked answers; scorecards
on a small catalog; charts; and `/platform` end to end through signed Slack requests."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from bot.catalog.index import CatalogIndex
from bot.catalog.loader import CatalogLoader, parse_documents
from bot.config import DEMO_CATALOG, ConfigError, load_settings
from bot.db import Database
from bot.metrics.charts import PNG_SIGNATURE, line_chart
from bot.metrics.dora import CiRate
from bot.metrics.platform import (BadWindow, Feedback, PlatformMetrics, active_users, catalog_coverage, nps, parse_window,
                                  percentile, weekly_counts, Window)
from bot.metrics.scorecard import (DEFAULT_CHECKS, ScorecardError, all_scorecards, find_team, parse_checks,
                                   team_scorecard)
from bot.models import Environment, FeedbackResponse, Question, ScaffolderRun
from bot.usage import Adoption, Usage
from tests.fakes.slack import SlackFake
from commands.platform import ci_success_text, post_survey_if_due
from tests.fakes.slack_requests import DEFAULT_CHANNEL, block_actions_body, view_submission_body
from tests.harness import Bot, start_bot, stop_bot

DAY = 86400.0
NOW = 1_800_000_000.0          # 2027-01-15T08:00:00Z
ADA, GRACE, CHARLES, ALAN, BOSS = "U0ADA0001", "U0GRA0003", "U0CHA0002", "U0ALA0010", "U0BOSS001"


# -- pure figures ---------------------------------------------------------------------------

def test_nps_edge_cases():
    assert nps([]).score is None                                     # no responses: no data, not 0
    assert nps([7, 8, 8]).score == 0                                   # all passives
    assert nps([10, 9, 10]).score == 100 and nps([0, 6, 3]).score == -100
    mixed = nps([10, 9, 8, 6])                                         # 2 promoters, 1 passive, 1 detractor of 4
    assert (mixed.promoters, mixed.passives, mixed.detractors, mixed.score) == (2, 1, 1, 25.0)
    boundaries = nps([6, 7, 8, 9])                                     # 6 detracts, 7–8 are passive, 9 promotes
    assert (boundaries.promoters, boundaries.passives, boundaries.detractors) == (1, 2, 1)
    with pytest.raises(ValueError):
        nps([11])


def test_percentiles_and_windows():
    assert percentile([], 0.9) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9.0  # nearest rank: ceil(0.9 × 10) = 9th
    assert percentile([1.0, 2.0, 3.0], 0.9) == 3.0                   # ceil(2.7) = 3rd
    assert percentile([600.0, 60.0, 300.0, 120.0], 0.9) == 600.0     # unsorted input
    assert parse_window("") == 30 and parse_window("7d") == 7 and parse_window("90D") == 90 and parse_window("12w") == 84
    for bad in ("0d", "abc", "30", "400d", "-3d"):
        with pytest.raises(BadWindow):
            parse_window(bad)


def test_weekly_counts_count_back_from_the_end():
    window = Window.ending(NOW, 30)                                    # 4 full weeks and a 2-day partial one first
    points = weekly_counts([NOW - 2 * DAY, NOW - 3 * DAY, NOW - 10 * DAY, NOW - 20 * DAY, NOW - 40 * DAY, NOW], window)
    assert [v for _, v in points] == [0, 0, 1, 1, 2]                   # NOW itself and 40 days ago are outside
    assert points[0][0] == datetime.fromtimestamp(NOW - 30 * DAY, tz=timezone.utc)
    assert points[-1][0] == datetime.fromtimestamp(NOW - 7 * DAY, tz=timezone.utc)


def test_line_chart_is_a_png_and_says_no_data_when_empty():
    points = [(datetime(2027, 1, d, tzinfo=timezone.utc), float(d % 3)) for d in (1, 8, 15)]
    png = line_chart("Trends", {"a": points, "b": [], "c": points[::-1]}, "per week")
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5000
    empty = line_chart("Nothing", {})
    assert empty.startswith(PNG_SIGNATURE) and len(empty) > 1000


# -- figures over stored data ----------------------------------------------------------------

def run(run_id: str, state: str, submitted_days_ago: float, seconds: float | None) -> ScaffolderRun:
    submitted = NOW - submitted_days_ago * DAY
    return ScaffolderRun(id=run_id, idempotency_key=run_id, values_digest="d", template_ref="template:default/python-service",
                         template="{}", requester=ADA, state=state, submitted_at=submitted,
                         finished_at=submitted + seconds if seconds is not None else None)


def environment(name: str, status: str, created_days_ago: float, expires_days_ago: float,
                ended_days_ago: float | None) -> Environment:
    return Environment(name=name, active_name=name if ended_days_ago is None else None, request_key=name,
                       service_ref="component:default/payment-service", owner_ref="group:default/payments-team",
                       purpose="preview", size="small", requester=ADA, status=status,
                       created_at=NOW - created_days_ago * DAY, expires_at=NOW - expires_days_ago * DAY,
                       ended_at=NOW - ended_days_ago * DAY if ended_days_ago is not None else None)


def question(ts: str, status: str, days_ago: float) -> Question:
    return Question(channel="C0OH", ts=ts, user=GRACE, text="how do I get a database", asked_at=NOW - days_ago * DAY,
                    status=status)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def small_index(text: str) -> CatalogIndex:
    entities, problems = parse_documents(text.encode(), "test.yaml")
    assert not problems, problems
    return CatalogIndex.build(entities)


async def seeded(database_url: str) -> tuple[Database, Clock]:
    db = Database(database_url)
    await db.migrate()
    async with db.session() as session:
        session.add_all([
            run("r1", "done", 2, 60), run("r2", "done", 3, 120), run("r3", "done", 10, 300), run("r4", "done", 20, 600),
            run("r5", "failed", 5, 30), run("r6", "done", 40, 10), run("r7", "running", 1, None),
            environment("e1", "ready", 5, -2, None),             # alive: created, active
            environment("e2", "destroyed", 10, 7, 7 - 300 / DAY),  # reaped 5 minutes after expiry: expired
            environment("e3", "destroyed", 12, 5, 11),            # destroyed by a person before expiry
            environment("e4", "destroyed", 60, 53, 50),           # ended before the 30-day window
            environment("e5", "denied", 3, -4, 3),                # never active
            question("1.1", "self_served", 1), question("1.2", "answered", 2), question("1.3", "open", 8),
            question("1.4", "self_served", 40),
        ])
        await session.commit()
    clock = Clock(NOW)
    feedback = Feedback(db, clock)
    for user, score, days_ago in ((ADA, 3, 20), (ADA, 10, 1), (GRACE, 6, 2), (CHARLES, 8, 3), (ALAN, 9, 45)):
        clock.now = NOW - days_ago * DAY
        assert await feedback.record(user, score, f"comment {score}", key=f"{user}-{days_ago}")
    clock.now = NOW
    return db, clock


async def test_figures_over_fixed_data_in_three_windows(database_url):
    db, clock = await seeded(database_url)
    index = small_index("")
    metrics = PlatformMetrics(db, lambda: index, clock)
    try:
        month = await metrics.figures(30)
        assert (month.golden_path.created, month.golden_path.failed) == (4, 1)           # r1–r4 done, r5 failed
        assert month.golden_path.median_seconds == 210 and month.golden_path.p90_seconds == 600  # of 60, 120, 300, 600
        assert (month.environments.created, month.environments.active, month.environments.expired) == (4, 1, 1)
        assert (month.office_hours.questions, month.office_hours.self_served) == (3, 1)
        assert month.office_hours.self_served_rate == pytest.approx(1 / 3)
        # each person's latest answer: Ada 10 (her 3 is older), Grace 6, Charles 8; Alan's is 45 days old
        assert (month.nps.responses, month.nps.promoters, month.nps.passives, month.nps.detractors) == (3, 1, 1, 1)
        assert month.nps.score == 0
        assert [v for _, v in month.trends["services created"]] == [0, 0, 1, 1, 2]
        assert [v for _, v in month.trends["environments created"]] == [0, 0, 0, 2, 2]  # e3 12d, e2 10d | e1 5d, e5 3d
        quarter = await metrics.figures(90)
        assert (quarter.golden_path.created, quarter.golden_path.median_seconds, quarter.golden_path.p90_seconds) == (5, 120, 600)
        assert (quarter.environments.created, quarter.environments.expired) == (5, 2)
        assert (quarter.office_hours.questions, quarter.office_hours.self_served) == (4, 2)
        assert (quarter.nps.responses, quarter.nps.score) == (4, 25.0)                      # + Alan's 9
        week = await metrics.figures(7)
        assert (week.golden_path.created, week.golden_path.median_seconds, week.golden_path.p90_seconds) == (2, 90, 120)
        assert (week.environments.created, week.environments.active, week.environments.expired) == (2, 1, 1)
        assert (week.office_hours.questions, week.office_hours.self_served) == (2, 1)
        comments = await metrics.feedback.comments(30)
        assert [c.comment for c in comments] == ["comment 10", "comment 6", "comment 8", "comment 3"]
    finally:
        await db.close()


async def test_adoption_counts_people_and_uses_per_day(database_url):
    db = Database(database_url)
    await db.migrate()
    usage = Usage(db)
    for user, action, days_ago in ((ADA, "/whoowns", 1), (ADA, "/whoowns", 1), (ADA, "/whoowns", 1.2),
                                   (GRACE, "/env", 2), (ADA, "/dora", 10), (ALAN, "/whoowns", 40)):
        usage.note(user, action, at=NOW - days_ago * DAY)
    await usage.flush()
    usage.note(ADA, "/whoowns", at=NOW - DAY)     # a later batch adds to the same day's count
    await usage.flush()
    try:
        metrics = PlatformMetrics(db, lambda: small_index(""), Clock(NOW), usage=usage)
        month = await metrics.figures(30)
        assert month.adoption == Adoption(2, 6, [("/whoowns", 4), ("/dora", 1), ("/env", 1)])
        assert [v for _, v in month.trends["people using the bot"]] == [0, 0, 0, 1, 2]   # Ada 10 d ago | Ada and Grace
        quarter = await metrics.figures(90)
        assert (quarter.adoption.people, quarter.adoption.actions) == (3, 7)
        assert (await PlatformMetrics(db, lambda: small_index(""), Clock(NOW + 100 * DAY)).figures(7)).adoption is None
        assert await active_users(db, NOW - 7 * DAY, NOW) == [ADA, GRACE]
    finally:
        await db.close()


async def test_no_data_is_none_not_zero(database_url):
    db = Database(database_url)
    await db.migrate()
    try:
        figures = await PlatformMetrics(db, lambda: small_index(""), Clock(NOW)).figures(30)
        assert figures.golden_path.created is None and figures.golden_path.median_seconds is None
        assert figures.environments.created is None and figures.environments.active is None
        assert figures.office_hours.questions is None and figures.office_hours.self_served_rate is None
        assert figures.nps.score is None and figures.coverage.share is None
        assert all(points == [] for points in figures.trends.values())
    finally:
        await db.close()


async def test_a_response_key_is_stored_once(database_url):
    db = Database(database_url)
    await db.migrate()
    try:
        feedback = Feedback(db, Clock(NOW))
        assert await feedback.record(ADA, 9, "good", key="view:V1")
        assert not await feedback.record(ADA, 2, "changed my mind", key="view:V1")
        with pytest.raises(ValueError):
            await feedback.record(ADA, 11, key="view:V2")
        rows = await feedback.responses(0, NOW + 1)
        assert [(r.user_id, r.score, r.comment) for r in rows] == [(ADA, 9, "good")]
    finally:
        await db.close()


# -- catalog coverage and scorecards ---------------------------------------------------------

SMALL_CATALOG = """
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
  annotations:
    pagerduty.com/service-id: PTEAMA1
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: good
  annotations:
    github.com/project-slug: acme/good
    backstage.io/techdocs-ref: dir:.
    backstage.io/kubernetes-id: good
  links:
    - {url: 'https://runbooks.example/good', title: Runbook}
spec: {type: service, lifecycle: production, owner: team-a, system: shop}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: bare}
spec: {type: service, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: lib
  annotations: {github.com/project-slug: acme/lib}
spec: {type: library, lifecycle: production, owner: team-a, system: shop}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: orphan}
spec: {type: service, lifecycle: experimental, owner: ghost-team}
"""


def test_catalog_coverage_counts_owners_the_catalog_holds():
    coverage = catalog_coverage(small_index(SMALL_CATALOG))
    assert (coverage.components, coverage.with_resolvable_owner, coverage.share) == (4, 3, 0.75)  # orphan's owner is missing


def test_scorecard_on_a_small_catalog_with_hand_checked_scores():
    index = small_index(SMALL_CATALOG)
    card = team_scorecard("group:default/team-a", index)
    # weights: owner 2, on-call 2, runbook 1, docs 1, lifecycle 1, system 1, repository 1, kubernetes 1 (10 in all);
    # on-call, runbook and kubernetes only apply to services and websites.
    scores = {c.name: c.score for c in card.components}
    assert scores == {"good": 1.0, "bare": 0.5, "lib": pytest.approx(5 / 6)}  # bare: owner 2 + on-call from team 2 + lifecycle 1
    assert [c.name for c in card.components] == ["bare", "lib", "good"]       # worst first
    assert card.score == pytest.approx((1 + 0.5 + 5 / 6) / 3)
    assert [(g.check.id, g.failing) for g in card.gaps] == [
        ("docs", ("bare", "lib")), ("kubernetes", ("bare",)), ("repository", ("bare",)), ("runbook", ("bare",)),
        ("system", ("bare",))]
    ghost = team_scorecard("group:default/ghost-team", index)
    assert ghost.components[0].failed[:2] == ("owner", "oncall")
    assert [c.team for c in all_scorecards(index)] == ["group:default/ghost-team", "group:default/team-a"]
    assert find_team("team-a", index) == find_team("group:default/team-a", index) == "group:default/team-a"
    assert find_team("ghost-team", index) == "group:default/ghost-team" and find_team("nobody", index) is None


def test_checks_are_data_and_bad_definitions_are_refused(tmp_path):
    index = small_index(SMALL_CATALOG)
    only_docs = parse_checks({"checks": [{"id": "docs", "title": "Docs", "annotation": "backstage.io/techdocs-ref"}]})
    assert {c.name: c.score for c in team_scorecard("group:default/team-a", index, only_docs).components} == \
        {"good": 1.0, "bare": 0.0, "lib": 0.0}
    for bad in ({"checks": []}, [{"title": "no id", "spec": "system"}], [{"id": "x"}], [{"id": "x", "spec": "a", "colour": 1}],
                [{"id": "x", "spec": "a", "weight": 0}], [{"id": "x", "owner": "maybe"}],
                [{"id": "x", "spec": "a"}, {"id": "x", "spec": "b"}]):
        with pytest.raises(ScorecardError):
            parse_checks(bad)
    assert len(DEFAULT_CHECKS) == 8
    good = tmp_path / "scorecard.yaml"
    good.write_text("checks:\n  - {id: lifecycle, title: Lifecycle, spec: lifecycle}\n")
    assert load_settings({"PAVEDROAD_SCORECARD": str(good)}).scorecard_file == str(good)
    bad = tmp_path / "bad.yaml"
    bad.write_text("checks:\n  - {id: lifecycle}\n")
    with pytest.raises(ConfigError, match="PAVEDROAD_SCORECARD"):
        load_settings({"PAVEDROAD_SCORECARD": str(bad)})


def test_the_demo_catalog_scores():
    result = CatalogLoader(5_000_000).load([str(DEMO_CATALOG)])
    index = CatalogIndex.build([e for s in result.sources.values() for e in s.entities])
    assert catalog_coverage(index).share == 1.0
    payments = team_scorecard("group:default/payments-team", index)
    assert {c.name: round(c.score, 3) for c in payments.components}["payment-service"] == 1.0
    assert payments.gaps[0].check.id == "docs"
    assert all_scorecards(index)[0].team == "group:default/data-team"


# -- end to end --------------------------------------------------------------------------------

@pytest.fixture
async def bot(tmp_path):
    async with SlackFake() as slack:
        slack.add_user(ADA, email="ada.lovelace@acme.example")
        running = await start_bot(tmp_path, slack, PAVEDROAD_PLATFORM_ADMINS=BOSS, PAVEDROAD_NPS_SURVEY_DAYS="90")
        yield running
        await stop_bot(running)


async def platform(bot: Bot, text: str, user: str = ADA, **extra) -> dict:
    status, body, url = await bot.command("/platform", text, user=user, **extra)
    assert status == 200, body
    return await bot.reply(url, timeout=10)


def text_of(payload: dict) -> str:
    return json.dumps(payload.get("blocks") or payload.get("text"))


def feedback_form(score: str | None, comment: str = "") -> dict:
    return {"score": {"value": {"type": "static_select", "selected_option": {"value": score} if score else None}},
            "comment": {"value": {"type": "plain_text_input", "value": comment or None}}}


async def test_feedback_modal_stores_a_response_once(bot: Bot):
    await bot.command("/platform", "feedback", user=ADA)
    view = (await bot.slack.wait_for_call("views.open"))["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == "platform_feedback"
    assert [o["value"] for o in view["blocks"][0]["element"]["options"]] == [str(n) for n in range(11)]
    status, body = await bot.post(view_submission_body("platform_feedback", feedback_form(None), user_id=ADA, view_id="V0FB0"))
    assert status == 200 and json.loads(body)["errors"] == {"score": "Pick a number from 0 to 10."}
    submission = view_submission_body("platform_feedback", feedback_form("9", "Fast environments"), user_id=ADA,
                                      view_id="V0FB1", private_metadata="command")
    assert (await bot.post(submission))[0] == 200
    assert (await bot.post(submission))[0] == 200                    # a double submit
    await bot.slack.wait_for_call("chat.postMessage", lambda a: a["channel"] == ADA)
    async with bot.server.services.db.session() as session:
        rows = (await session.exec(select(FeedbackResponse))).scalars().all()
    assert [(r.user_id, r.score, r.comment, r.source) for r in rows] == [(ADA, 9, "Fast environments", "command")]
    assert "9" in (await platform(bot, "comments", user=BOSS))["text"]
    assert "platform admins" in (await platform(bot, "comments", user=ADA))["text"]


async def test_stats_answers_with_figures_and_uploads_the_chart(bot: Bot):
    await bot.server.services.office_hours.ask("C0OH", "1700000000.000100", GRACE, "how do I get a postgres database")
    reply = await platform(bot, "stats 7d")
    assert reply["response_type"] == "in_channel"
    text = text_of(reply)
    assert "Platform figures, last 7 days" in text
    assert "*Office-hours questions* (last 7 days): 1" in text
    assert "*Services created through golden paths* (last 7 days): _no data_" in text
    assert "*Developer NPS* (last 7 days): _no data_" in text
    assert "of components have an owner found in the catalog" in text
    call = await bot.slack.wait_for_call("files.completeUploadExternal")
    assert call["channel_id"] == DEFAULT_CHANNEL
    upload = bot.slack.uploads[call["files"][0]["id"]]
    assert upload["completed"] and upload["name"] == "platform-stats-7d.png"
    assert upload["content"].startswith(PNG_SIGNATURE) and len(upload["content"]) > 5000
    ci = next(line for line in reply["text"].splitlines() if "*CI success rate*" in line)
    assert "_no data_" in ci and "not read:" in ci  # the tests' GitHub is unreachable: said, not zero


def test_ci_success_text_names_the_total_the_lowest_and_what_was_not_read():
    per_repo = {"acme/a": CiRate(9, 1, 2), "acme/b": CiRate(1, 3, 0), "acme/c": CiRate(0, 0, 4)}
    text = ci_success_text(sum(per_repo.values(), CiRate(0, 0, 0)), per_repo, ["acme/d: GitHub: HTTP 500"], "last 30 days")
    assert text == ("*CI success rate* (GitHub Actions on default branches, last 30 days): 71% (10 of 14 runs) over "
                    "3 repositories · lowest: `acme/b` 25%, `acme/a` 90% · not read: 1 (acme/d: GitHub: HTTP 500)")
    assert "_no data_" in ci_success_text(CiRate(0, 0, 0), {}, [], "last 7 days")


async def test_the_chart_goes_to_the_dm_where_the_bot_may_not_post(bot: Bot):
    bot.slack.add_channel("C0PRIV", "secret", is_private=True, members=[ADA])
    await platform(bot, "stats", channel_id="C0PRIV")
    call = await bot.slack.wait_for_call("files.completeUploadExternal", lambda a: a.get("channel_id") == ADA)
    assert bot.slack.uploads[call["files"][0]["id"]]["content"].startswith(PNG_SIGNATURE)


async def test_scorecard_and_usage(bot: Bot):
    overview = text_of(await platform(bot, "scorecard"))
    assert "Scorecards by team, worst first" in overview and overview.index("data-team") < overview.index("payments-team")
    team = text_of(await platform(bot, "scorecard payments-team"))
    assert "Scorecard: payments-team" in team and "Score 86%" in team and "Docs (TechDocs)" in team
    assert "no team `nobody`" in (await platform(bot, "scorecard nobody"))["text"]
    assert "`2y` is not a window" in (await platform(bot, "stats 2y"))["text"]
    status, body, _ = await bot.command("/platform", "frobnicate")
    assert status == 200 and "Usage: `/platform stats" in body


async def test_the_survey_asks_active_users_once_per_period_and_its_button_opens_the_modal(bot: Bot):
    services, client = bot.server.services, bot.server.app.client
    await services.audit.record(GRACE, "env.create", "pay-demo", "ok")
    await services.audit.record("reaper", "env.destroy", "old-env", "ok")               # not a person
    await services.office_hours.ask("C0OH", "1700000000.000200", CHARLES, "where are the runbooks")
    status, _, url = await bot.command("/whoowns", "payment-service", user=ALAN)          # only asked a question
    await bot.reply(url)
    await services.usage.flush()
    assert await post_survey_if_due(client, services) == 3                               # Grace, Charles and Alan
    asked = sorted(a["channel"] for a in bot.slack.calls("chat.postMessage"))
    assert asked == [ALAN, CHARLES, GRACE]
    assert await post_survey_if_due(client, services) is None                            # once per period
    status, _ = await bot.post(block_actions_body("platform_feedback_open", "survey", user_id=GRACE, block_id="platform_survey"))
    assert status == 200
    view = (await bot.slack.wait_for_call("views.open"))["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == "platform_feedback" and view["private_metadata"] == "survey"
