"""/whoowns end to end: signed Slack requests to the running server; Slack, PagerDuty and
Kubernetes are local test servers that follow the public APIs."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.fakes.kubernetes import KubernetesFake
from tests.fakes.pagerduty import PagerDutyFake
from tests.fakes.slack import SlackFake
from tests.fakes.slack_requests import event_body, url_verification_body
from tests.fakes.tls import ca_bundle_path
from tests.harness import Bot, start_bot, stop_bot

NOW = datetime.now(timezone.utc)


def seed_pagerduty(pd: PagerDutyFake) -> None:
    pd.add_user("PU1", "Ada Lovelace", "ada.lovelace@acme.example")
    pd.add_user("PU2", "Casey Contractor", "casey@contractors.example")  # not in the catalog: found by e-mail in Slack
    pd.add_user("PU3", "Joan Clarke", "joan.clarke@acme.example")
    pd.add_escalation_policy("PEP1", "Payments escalation", [["PU1"], ["PU2"]])
    pd.add_service("PPAY001", "Payment Service", "PEP1")
    pd.add_service("PCAT001", "Product Catalog", "PEP1")
    pd.add_oncall("PEP1", 1, "PU1", NOW - timedelta(hours=2), NOW + timedelta(hours=6))
    pd.add_oncall("PEP1", 2, "PU2", NOW - timedelta(days=1), NOW + timedelta(days=6))
    pd.add_integration_key("56f3e17646909251fd0274182a73b9cb", "PPAY001")
    pd.add_incident("PPAY001", "Card authorisations failing in eu-west-1")
    pd.add_incident("PPAY001", "Old resolved thing", status="resolved")


def seed_kubernetes(k8s: KubernetesFake) -> None:
    k8s.add_namespace("payments")
    labels = {"backstage.io/kubernetes-id": "payment-service"}
    k8s.add({"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "payment-service", "namespace": "payments", "labels": labels},
             "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}},
             "status": {"replicas": 3, "readyReplicas": 2}})
    for i, ready in enumerate([True, True, False]):
        restarted = (NOW - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
        k8s.add({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": f"payment-service-{i}", "namespace": "payments", "labels": labels},
                 "status": {"phase": "Running", "containerStatuses": [{
                     "name": "app", "ready": ready, "restartCount": 4 if not ready else 0, "image": "x", "imageID": "x",
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": restarted}} if not ready else {}}]}})


@contextlib.asynccontextmanager
async def running_bot(tmp_path, database_url: str = "", **env: str):
    async with SlackFake() as slack, PagerDutyFake() as pd, KubernetesFake() as k8s:
        slack.add_user("U0ADA0001", email="ada.lovelace@acme.example", real_name="Ada Lovelace")
        slack.add_user("U0GRACE01", email="casey@contractors.example", real_name="Casey Contractor")
        seed_pagerduty(pd)
        seed_kubernetes(k8s)
        running = await start_bot(tmp_path, slack, pd, k8s, database_url=database_url, **env)
        try:
            yield running
        finally:
            await stop_bot(running)


@pytest.fixture
async def bot(tmp_path):
    async with running_bot(tmp_path) as running:
        yield running


@pytest.fixture
async def bot_any_db(tmp_path, database_url):
    """The bot on SQLite and on PostgreSQL, for what depends on the database."""
    async with running_bot(tmp_path, database_url) as running:
        yield running


def text_of(payload: dict) -> str:
    return json.dumps(payload.get("blocks") or payload.get("text"))


async def test_whoowns_answers_everything_in_one_message(bot: Bot):
    started = time.perf_counter()
    status, body, url = await bot.command("/whoowns", "payment-service")
    assert status == 200 and body == ""
    assert time.perf_counter() - started < 1.0
    answer = await bot.reply(url)
    assert answer["response_type"] == "ephemeral"
    text = text_of(answer)
    assert "Payment Service" in text and "component:default/payment-service" in text
    assert "Payments" in text and "<#C0PAYMENTS1>" in text                                # owner and its channel
    assert "Acme Shop Engineering" in text                                               # escalation path
    assert "L1 <@U0ADA0001>" in text and "L2 <@U0GRACE01>" in text                       # on call, as mentions
    assert "Card authorisations failing" in text and "Old resolved thing" not in text    # open incidents only
    assert "https://runbooks.acme.example/payment-service" in text                      # runbook
    assert "acme/payment-service" in text and "dir:." in text                            # repo and docs
    assert "2/3 replicas ready" in text and "1 pod(s) not ready" in text                 # Kubernetes health
    assert "4 restart(s) in all; 1 container(s) restarted in the last hour" in text
    assert "Dependents* (5 direct, 11 in all)" in text
    assert "Missing from this answer" not in text
    actions = next(b for b in answer["blocks"] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == ["whoowns_page", "whoowns_share", "whoowns_dependencies"]
    assert actions["elements"][0]["confirm"]["confirm"]["text"] == "Page"


@pytest.mark.parametrize("query", ["Payment Service", "component:default/payment-service", "PAYMENT-SERVICE",
                                   "Component:Default/Payment-Service"])
async def test_whoowns_accepts_names_titles_and_references(bot: Bot, query: str):
    _, _, url = await bot.command("/whoowns", query)
    assert "component:default/payment-service" in text_of(await bot.reply(url))


async def test_typo_gets_did_you_mean_and_nothing_says_how_to_search(bot: Bot):
    _, _, url = await bot.command("/whoowns", "paymnt-servce")
    assert "Did you mean `payment-service`" in (await bot.reply(url))["text"]
    _, _, url = await bot.command("/whoowns", "zzzzqqqq")
    text = (await bot.reply(url))["text"]
    assert "couldn't find" in text and "component:default/payment-service" in text


async def test_empty_command_gets_usage_in_the_ack(bot: Bot):
    status, body, _ = await bot.command("/whoowns", "   ")
    assert status == 200 and body.startswith("Tell me what to look up: `/whoowns payment-service`")


@pytest.mark.parametrize("text", ["x" * 20_000, "💥" * 3000 + "\u202e", "<script>&amp;</script> `;DROP TABLE`", "\x00\x01\x02"])
async def test_any_text_gets_an_answer_never_a_500(bot: Bot, text: str):
    status, _, url = await bot.command("/whoowns", text)
    assert status == 200
    reply = await bot.reply(url)
    assert "couldn't find" in reply["text"] and "<script>" not in reply["text"]


async def test_slow_pagerduty_and_kubernetes_do_not_delay_the_answer(bot: Bot):
    bot.pagerduty.delay = 6
    bot.kubernetes.delay = 6
    started = time.perf_counter()
    _, _, url = await bot.command("/whoowns", "payment-service")
    answer = await bot.reply(url)
    assert time.perf_counter() - started < 2.9
    text = text_of(answer)
    assert "Payments" in text and "runbooks.acme.example" in text
    assert "on-call: PagerDuty did not answer within 2s" in text
    assert "health: Kubernetes did not answer within 2s" in text


async def test_failing_pagerduty_is_named_in_the_answer(bot: Bot):
    bot.pagerduty.fail_status = 500
    bot.kubernetes.fail_status = 503
    _, _, url = await bot.command("/whoowns", "payment-service")
    text = text_of(await bot.reply(url))
    assert "on-call: PagerDuty: HTTP 500" in text
    assert "health: Kubernetes: HTTP 503" in text


@pytest.mark.parametrize("secret,age", [("wrong-secret", 0), ("test-signing-secret", 301)])
async def test_forged_or_stale_requests_are_refused(bot: Bot, secret: str, age: int):
    from tests.fakes.slack_requests import slash_command_body
    url = bot.slack.response_url()
    status, _ = await bot.post(slash_command_body("/whoowns", "payment-service", response_url=url),
                               secret=secret, timestamp=int(time.time()) - age)
    assert status == 401
    await asyncio.sleep(0.3)
    assert bot.slack.response_urls[url].payloads == []


async def test_unsigned_request_is_refused(bot: Bot):
    from tests.fakes.slack_requests import slash_command_body
    async with bot.http.post(f"{bot.url}/slack/events", data=slash_command_body("/whoowns", "x"),
                             headers={"Content-Type": "application/x-www-form-urlencoded"}) as response:
        assert response.status == 401


async def test_a_slack_retry_does_nothing_twice(bot_any_db: Bot):
    bot = bot_any_db
    from tests.fakes.slack_requests import slash_command_body
    url = bot.slack.response_url()
    body = slash_command_body("/whoowns", "payment-service", response_url=url, user_id="U0ADA0001")
    assert (await bot.post(body))[0] == 200
    assert (await bot.post(body, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}))[0] == 200
    await bot.reply(url)
    await asyncio.sleep(0.5)
    assert len(bot.slack.response_urls[url].payloads) == 1


async def test_page_on_call_with_the_events_api_pages_once(bot_any_db: Bot):
    bot = bot_any_db
    url = await bot.click("whoowns_page", "component:default/payment-service")
    notice = await bot.reply(url)
    assert notice["response_type"] == "in_channel"
    assert "<@U0ADA0001> paged on-call for *Payment Service*" in notice["text"]
    events = [r for r in bot.pagerduty.requests if r.path == "/v2/enqueue"]
    assert len(events) == 1
    event = events[0].body
    assert event["routing_key"] == "56f3e17646909251fd0274182a73b9cb" and event["event_action"] == "trigger"
    assert event["dedup_key"].startswith("pavedroad/component:default/payment-service/")
    again = await bot.click("whoowns_page", "component:default/payment-service", user="U0GRACE01")
    assert "already paged by <@U0ADA0001>" in (await bot.reply(again))["text"]
    assert len([r for r in bot.pagerduty.requests if r.path == "/v2/enqueue"]) == 1


async def test_simultaneous_clicks_page_once(bot_any_db: Bot):
    urls = await asyncio.gather(*(bot_any_db.click("whoowns_page", "component:default/payment-service", user=user)
                                  for user in ("U0ADA0001", "U0GRACE01", "U0ADA0001")))
    texts = [(await bot_any_db.reply(url))["text"] for url in urls]
    assert sum("paged on-call for" in t for t in texts) == 1
    assert sum("already paged" in t for t in texts) == 2
    assert len([r for r in bot_any_db.pagerduty.requests if r.path == "/v2/enqueue"]) == 1


async def test_page_on_call_through_the_rest_api_on_behalf_of_the_user(bot: Bot):
    url = await bot.click("whoowns_page", "component:default/product-catalog-service")
    notice = await bot.reply(url)
    assert "paged on-call for *Product Catalog Service* (PagerDuty incident #" in notice["text"]
    created = [r for r in bot.pagerduty.requests if r.method == "POST" and r.path == "/incidents"]
    assert len(created) == 1
    assert created[0].headers["From"] == "ada.lovelace@acme.example"
    assert created[0].body["incident"]["service"] == {"id": "PCAT001", "type": "service_reference"}


async def test_page_refused_by_pagerduty_is_explained_and_can_be_retried(bot: Bot):
    bot.pagerduty.fail_status = 500
    url = await bot.click("whoowns_page", "component:default/payment-service")
    assert "Not paged: PagerDuty refused the page: HTTP 500" in (await bot.reply(url))["text"]
    bot.pagerduty.fail_status = None
    url = await bot.click("whoowns_page", "component:default/payment-service")
    assert "paged on-call" in (await bot.reply(url))["text"]


async def test_share_in_channel_and_dependencies(bot: Bot):
    url = await bot.click("whoowns_share", "component:default/payment-service")
    shared, deleted = await bot.replies(url, 2)
    assert shared["response_type"] == "in_channel" and "Shared by <@U0ADA0001>" in text_of(shared)
    assert deleted["delete_original"] is True
    url = await bot.click("whoowns_dependencies", "component:default/payment-service")
    text = (await bot.reply(url))["text"]
    assert "`resource:default/payments-db`" in text and "`component:default/checkout-service`" in text
    assert "Everything affected if it fails:* 11 entities" in text


async def test_url_verification_health_and_readiness(bot: Bot):
    status, body = await bot.post(url_verification_body("challenge-123"))
    assert status == 200 and "challenge-123" in body
    async with bot.http.get(f"{bot.url}/healthz") as response:
        assert response.status == 200
    async with bot.http.get(f"{bot.url}/readyz") as response:
        assert response.status == 200 and (await response.json())["catalog"] is True


async def test_app_home_lists_what_the_bot_can_do(bot: Bot):
    status, _ = await bot.post(event_body({"type": "app_home_opened", "user": "U0ADA0001", "tab": "home"}))
    assert status == 200
    view = (await bot.slack.wait_for_call("views.publish"))["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert "/whoowns NAME" in json.dumps(view)


async def test_slack_rate_limits_are_honoured(bot: Bot):
    bot.slack.rate_limit(1, retry_after=1)
    _, _, url = await bot.command("/whoowns", "payment-service")
    text = text_of(await bot.reply(url))
    assert "L2 <@U0GRACE01>" in text                   # users.lookupByEmail got a 429, waited and asked again
    limited = [r for r in bot.slack.requests if r.path.startswith("/api/")]
    assert limited[0].path == limited[1].path


@pytest.mark.parametrize("body,content_type", [
    (b"\xff\xfe\xfa not utf-8", "application/x-www-form-urlencoded"),
    (b"{not json", "application/json"),
    (b"payload=%7Bbroken", "application/x-www-form-urlencoded; charset=klingon"),
])
async def test_junk_gets_401_unsigned_and_400_signed_never_500(bot: Bot, body: bytes, content_type: str):
    async with bot.http.post(f"{bot.url}/slack/events", data=body, headers={"Content-Type": content_type}) as response:
        assert response.status in (400, 401)
    status, _ = await bot.post(body, {"Content-Type": content_type})
    assert status in (400, 200)  # signed junk: refused as unreadable, or acknowledged and ignored by Bolt
    assert status != 500


async def test_an_event_retry_is_recognised_from_the_record(bot_any_db: Bot):
    bot = bot_any_db
    body = event_body({"type": "app_home_opened", "user": "U0ADA0001", "tab": "home"}, event_id="Ev0RETRY1")
    assert (await bot.post(body))[0] == 200
    await bot.slack.wait_for_call("views.publish")
    await asyncio.sleep(0.3)                                    # the first delivery's record is written
    bot.server.services.deliveries._seen.clear()                # as if the retry reached another replica
    assert (await bot.post(body, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}))[0] == 200
    await asyncio.sleep(0.3)
    assert len(bot.slack.calls("views.publish")) == 1


async def test_a_page_pagerduty_is_slow_to_confirm_is_never_sent_twice(tmp_path):
    async with running_bot(tmp_path, PAVEDROAD_PAGE_TIMEOUT_SECONDS="1") as bot:
        bot.pagerduty.delay = 2
        url = await bot.click("whoowns_page", "component:default/payment-service")
        assert "did not confirm the page (no answer within 1s); it may have gone through" in (await bot.reply(url))["text"]
        bot.pagerduty.delay = 0
        again = await bot.click("whoowns_page", "component:default/payment-service", user="U0GRACE01")
        assert "already paged by <@U0ADA0001>" in (await bot.reply(again))["text"]
        assert [(e.action, e.outcome) for e in await bot.server.services.audit.recent(5)] == [("page", "unknown")]


async def test_paging_with_an_integration_key_needs_no_rest_token(tmp_path):
    async with SlackFake() as slack, PagerDutyFake() as pd:
        seed_pagerduty(pd)
        bot = await start_bot(tmp_path, slack, PAGERDUTY_EVENTS_URL=pd.events_url, SSL_CERT_FILE=ca_bundle_path())
        try:
            _, _, url = await bot.command("/whoowns", "payment-service")
            answer = await bot.reply(url)
            assert "on-call: PagerDuty is not configured (PAGERDUTY_API_TOKEN)" in text_of(answer)
            assert "whoowns_page" in text_of(answer)
            _, _, url = await bot.command("/whoowns", "product-catalog-service")    # only a service id: no button
            assert "whoowns_page" not in text_of(await bot.reply(url))
            url = await bot.click("whoowns_page", "component:default/payment-service")
            assert "paged on-call" in (await bot.reply(url))["text"]
            assert len([r for r in pd.requests if r.path == "/v2/enqueue"]) == 1
        finally:
            await stop_bot(bot)
