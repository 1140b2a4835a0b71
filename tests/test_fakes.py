"""The fakes speak their APIs well enough for the real clients: one short check per behaviour."""
from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import kubernetes.client
import pagerduty
import pytest
from kubernetes.client.exceptions import ApiException
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes import BackstageFake, KubernetesFake, PagerDutyFake, SlackFake
from tests.fakes.base import utc_now
from tests.fakes.slack_requests import (block_actions_body, event_body, sign, slash_command_body,
                                        url_verification_body)

ROUTING_KEY = "R" * 32
SIGNING_SECRET = "signing-secret"


@pytest.fixture
async def slack() -> AsyncIterator[SlackFake]:
    async with SlackFake() as fake:
        yield fake


@pytest.fixture
async def pd() -> AsyncIterator[PagerDutyFake]:
    async with PagerDutyFake() as fake:
        fake.add_user("PALICE", "Alice", "alice@example.com")
        fake.add_user("PBOB", "Bob", "bob@example.com")
        fake.add_escalation_policy("PEP1", "Payments", levels=[["PALICE"], ["PBOB"]])
        fake.add_service("PSVC1", "payments-api", "PEP1")
        fake.add_integration_key(ROUTING_KEY, "PSVC1")
        yield fake


@pytest.fixture
async def k8s() -> AsyncIterator[KubernetesFake]:
    async with KubernetesFake() as fake:
        yield fake


def slack_client(slack: SlackFake, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.url, **kwargs)


def pd_context(pd: PagerDutyFake) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=pd.ca_bundle_path)


def core_api(k8s: KubernetesFake) -> kubernetes.client.CoreV1Api:
    configuration = kubernetes.client.Configuration()
    configuration.host = k8s.url
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(configuration))


# -- Slack -------------------------------------------------------------------

async def test_slack_post_message_is_recorded(slack: SlackFake) -> None:
    response = await slack_client(slack).chat_postMessage(channel="C1", text="deployed")
    assert response["ok"] and response["ts"] == "1700000000.000100"
    assert slack.calls("chat.postMessage") == [{"channel": "C1", "text": "deployed"}]
    request = await slack.wait_for(lambda r: r.path == "/api/chat.postMessage")
    assert request.headers["Authorization"] == f"Bearer {slack.bot_token}" and request.body["text"] == "deployed"
    second = await slack_client(slack).chat_postMessage(channel="C1", text="again")
    assert second["ts"] > response["ts"]


async def test_slack_lookup_by_email(slack: SlackFake) -> None:
    slack.add_user("U1", email="alice@example.com", real_name="Alice", tz="Europe/Paris")
    found = await slack_client(slack).users_lookupByEmail(email="Alice@example.com")
    assert found["user"]["id"] == "U1" and found["user"]["tz"] == "Europe/Paris"
    with pytest.raises(SlackApiError) as error:
        await slack_client(slack).users_lookupByEmail(email="nobody@example.com")
    assert error.value.response["error"] == "users_not_found"


async def test_slack_bad_token_and_unknown_method(slack: SlackFake) -> None:
    with pytest.raises(SlackApiError) as error:
        await AsyncWebClient(token="xoxb-wrong", base_url=slack.url).auth_test()
    assert error.value.response.status_code == 200 and error.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as error:
        await slack_client(slack).api_call("no.such.method")
    assert error.value.response["error"] == "unknown_method"


async def test_slack_rate_limit_is_retried(slack: SlackFake) -> None:
    slack.rate_limit(1, retry_after=1)
    client = slack_client(slack, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    response = await client.chat_postMessage(channel="C1", text="hi")
    assert response["ok"]
    attempts = slack.requests_to("/api/chat.postMessage")
    assert len(attempts) == 2 and attempts[1].received_at - attempts[0].received_at >= 1


async def test_slack_fail_status_and_delay(slack: SlackFake) -> None:
    slack.fail_status = 503
    with pytest.raises(SlackApiError) as error:
        await slack_client(slack).auth_test()
    assert error.value.response.status_code == 503
    assert error.value.response["error"] == "service_unavailable"
    slack.reset_faults()
    slack.delay = 0.5
    with pytest.raises(asyncio.TimeoutError):
        await slack_client(slack, timeout=0.1).auth_test()


async def test_slack_files_upload_v2(slack: SlackFake) -> None:
    response = await slack_client(slack).files_upload_v2(channel="C1", filename="log.txt", content="line 1\n",
                                                         title="Logs")
    upload = slack.uploads[response["file"]["id"]]
    assert upload["content"] == b"line 1\n" and upload["title"] == "Logs" and upload["channel_id"] == "C1"


async def test_slack_views_trigger_is_single_use(slack: SlackFake) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "Hi"}, "blocks": []}
    opened = await slack_client(slack).views_open(trigger_id="1.2.abc", view=view)
    assert opened["view"]["id"].startswith("V")
    with pytest.raises(SlackApiError) as error:
        await slack_client(slack).views_open(trigger_id="1.2.abc", view=view)
    assert error.value.response["error"] == "exchanged_trigger_id"


async def test_slack_response_url_and_signing(slack: SlackFake) -> None:
    url = slack.response_url()
    body = slash_command_body("/oncall", "payments", response_url=url)
    headers = sign(body, "secret")
    assert SignatureVerifier("secret").is_valid_request(body, headers)
    async with aiohttp.ClientSession() as http:
        for _ in range(5):
            async with http.post(url, json={"text": "working on it"}) as answer:
                assert answer.status == 200 and await answer.text() == "ok"
        async with http.post(url, json={"text": "once too often"}) as answer:
            assert answer.status == 404 and await answer.text() == "used_url"
    assert (await slack.wait_for_response(url=url))["text"] == "working on it"
    assert len(slack.responses_to(url)) == len(slack.responses) == 5


async def test_bolt_accepts_the_signed_request_builders(slack: SlackFake) -> None:
    app = AsyncApp(client=slack_client(slack), signing_secret=SIGNING_SECRET)

    @app.command("/oncall")
    async def oncall(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        await ack()
        await respond(f"on call for {command['text']}")

    @app.action("approve")
    async def approve(ack: Any, say: Any, action: dict[str, Any]) -> None:
        await ack()
        await say(f"approved {action['value']}")

    @app.event("app_mention")
    async def mention(event: dict[str, Any], client: AsyncWebClient) -> None:
        await client.reactions_add(channel=event["channel"], timestamp=event["ts"], name="eyes")

    async def deliver(body: bytes) -> int:
        answer = await app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=sign(body, SIGNING_SECRET)))
        return answer.status

    assert await deliver(slash_command_body("/oncall", "payments", response_url=slack.response_url())) == 200
    assert (await slack.wait_for_response())["text"] == "on call for payments"
    assert await deliver(block_actions_body("approve", "deploy-42", channel_id="C9")) == 200
    assert (await slack.wait_for_call("chat.postMessage"))["channel"] == "C9"
    assert await deliver(event_body({"type": "app_mention", "user": "U1", "text": "<@U0BOT> hi",
                                     "channel": "C1", "ts": "1700000001.000100"})) == 200
    assert (await slack.wait_for_call("reactions.add"))["name"] == "eyes"
    assert await deliver(url_verification_body("xyz")) == 200
    forged = slash_command_body("/oncall", "x")
    answer = await app.async_dispatch(AsyncBoltRequest(body=forged.decode(), headers=sign(forged, "wrong")))
    assert answer.status == 401


# -- PagerDuty ---------------------------------------------------------------

async def test_pagerduty_list_all_oncalls_across_pages(pd: PagerDutyFake) -> None:
    now = utc_now()
    for hours in range(5):
        pd.add_oncall("PEP1", 1, "PALICE", now - timedelta(hours=1), now + timedelta(hours=hours + 1))
    client = pagerduty.RestApiV2Client(pd.api_token, base_url=pd.rest_url, verify=pd_context(pd))
    oncalls = await asyncio.to_thread(client.list_all, "oncalls", params={"include[]": ["users"]}, page_size=2)
    assert len(oncalls) == 5
    assert oncalls[0]["user"]["email"] == "alice@example.com"
    assert [r.query["offset"] for r in pd.requests_to("/oncalls")] == ["0", "2", "4"]


async def test_pagerduty_rest_needs_token(pd: PagerDutyFake) -> None:
    client = pagerduty.RestApiV2Client("wrong", base_url=pd.rest_url, verify=pd_context(pd))
    with pytest.raises(pagerduty.HttpError) as error:
        await asyncio.to_thread(client.rget, "services")
    assert error.value.response.status_code == 401


async def test_pagerduty_create_incident_needs_from(pd: PagerDutyFake) -> None:
    incident = {"incident": {"type": "incident", "title": "Checkout down", "incident_key": "checkout",
                             "service": {"id": "PSVC1", "type": "service_reference"}}}
    anonymous = pagerduty.RestApiV2Client(pd.api_token, base_url=pd.rest_url, verify=pd_context(pd))
    with pytest.raises(pagerduty.HttpError) as error:
        await asyncio.to_thread(anonymous.rpost, "incidents", json=incident)
    assert error.value.response.status_code == 400
    assert '"From" header' in error.value.response.json()["error"]["message"]

    alice = pagerduty.RestApiV2Client(pd.api_token, base_url=pd.rest_url, default_from="alice@example.com",
                                      verify=pd_context(pd))
    created = await asyncio.to_thread(alice.rpost, "incidents", json=incident)
    assert created["status"] == "triggered" and created["assignments"][0]["assignee"]["id"] == "PALICE"
    with pytest.raises(pagerduty.HttpError) as error:
        await asyncio.to_thread(alice.rpost, "incidents", json=incident)
    assert error.value.response.json()["error"]["code"] == 2002


async def test_pagerduty_events_trigger_deduplicates(pd: PagerDutyFake) -> None:
    events = pagerduty.EventsApiV2Client(ROUTING_KEY, base_url=pd.events_url, verify=pd_context(pd))
    first = await asyncio.to_thread(events.trigger, "Disk full", "db-1", dedup_key="disk-db-1")
    again = await asyncio.to_thread(events.trigger, "Disk full", "db-1", dedup_key="disk-db-1")
    assert first == again == "disk-db-1"
    assert [i["title"] for i in pd.incidents.values()] == ["Disk full"]
    await asyncio.to_thread(events.resolve, "disk-db-1")
    assert pd.open_incident("PSVC1", "disk-db-1") is None

    wrong = pagerduty.EventsApiV2Client("short", base_url=pd.events_url, verify=pd_context(pd))
    with pytest.raises(pagerduty.HttpError) as error:
        await asyncio.to_thread(wrong.trigger, "x", "y")
    assert error.value.response.json()["status"] == "invalid event"


# -- Kubernetes --------------------------------------------------------------

async def test_kubernetes_create_namespace_twice_conflicts(k8s: KubernetesFake) -> None:
    core = core_api(k8s)
    body = kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name="team-a"))
    created = await asyncio.to_thread(core.create_namespace, body)
    assert created.metadata.labels == {"kubernetes.io/metadata.name": "team-a"} and created.metadata.uid
    with pytest.raises(ApiException) as error:
        await asyncio.to_thread(core.create_namespace, body)
    assert error.value.status == 409 and '"reason":"AlreadyExists"' in error.value.body.replace(" ", "")


async def test_kubernetes_rejects_invalid_names(k8s: KubernetesFake) -> None:
    bad = kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name="Team_A"))
    with pytest.raises(ApiException) as error:
        await asyncio.to_thread(core_api(k8s).create_namespace, bad)
    assert error.value.status == 422 and "RFC 1123 label" in error.value.body


async def test_kubernetes_list_pods_by_label_with_pagination(k8s: KubernetesFake) -> None:
    for n, app in enumerate(["web", "web", "worker", "web"]):
        k8s.add({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": f"pod-{n}", "namespace": "team-a", "labels": {"app": app}},
                 "status": {"phase": "Running", "containerStatuses": [
                     {"name": "main", "image": "app:1", "imageID": "sha256:1", "restartCount": n, "ready": True}]}})
    core = core_api(k8s)
    page = await asyncio.to_thread(core.list_namespaced_pod, "team-a", label_selector="app in (web)", limit=2)
    assert [p.metadata.name for p in page.items] == ["pod-0", "pod-1"] and page.metadata.var_continue
    rest = await asyncio.to_thread(core.list_namespaced_pod, "team-a", label_selector="app in (web)", limit=2,
                                   _continue=page.metadata.var_continue)
    assert [p.metadata.name for p in rest.items] == ["pod-3"] and not rest.metadata.var_continue
    workers = await asyncio.to_thread(core.list_pod_for_all_namespaces, label_selector="app!=web")
    assert [p.status.container_statuses[0].restart_count for p in workers.items] == [2]


async def test_kubernetes_get_missing_is_404_status(k8s: KubernetesFake) -> None:
    with pytest.raises(ApiException) as error:
        await asyncio.to_thread(core_api(k8s).read_namespace, "ghost")
    assert error.value.status == 404 and 'namespaces \\"ghost\\" not found' in error.value.body


# -- Backstage ---------------------------------------------------------------

async def test_backstage_cursor_pagination_and_auth() -> None:
    async with BackstageFake(token="s3cret") as backstage, aiohttp.ClientSession() as http:
        backstage.add_entities([{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
                                 "metadata": {"name": f"svc-{n}"}, "spec": {"type": "service"}} for n in range(5)])
        url = f"{backstage.url}/api/catalog/entities/by-query"
        async with http.get(url) as denied:
            assert denied.status == 401 and (await denied.json())["error"]["name"] == "AuthenticationError"
        names, params = [], {"limit": "2", "filter": "kind=component,spec.type=service"}
        while True:
            async with http.get(url, params=params, headers={"Authorization": "Bearer s3cret"}) as answer:
                page = await answer.json()
            assert page["totalItems"] == 5
            names += [e["metadata"]["name"] for e in page["items"]]
            if "nextCursor" not in page["pageInfo"]:
                break
            params = {"limit": "2", "cursor": page["pageInfo"]["nextCursor"]}
        assert sorted(names) == [f"svc-{n}" for n in range(5)] and len(names) == 5
