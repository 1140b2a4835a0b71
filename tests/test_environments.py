"""Self-service environments end to end: signed Slack requests to the running bot, a Kubernetes
API test server, the reaper on a controlled clock."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from bot.environments.reaper import Reaper
from bot.environments.rules import Refused, check_name, namespace_name
from bot.leases import Leases
from integrations.kubernetes import NamespacePlan
from tests.fakes.kubernetes import KubernetesFake, kube_error
from tests.fakes.kubernetes_store import NAMESPACES
from tests.fakes.slack import SlackFake
from tests.fakes.slack_requests import block_actions_body, event_body, view_submission_body
from tests.harness import Bot, start_bot, stop_bot

ADA, CHARLES, GRACE, ALAN, BOSS = "U0ADA0001", "U0CHA0002", "U0GRA0003", "U0ALA0010", "U0BOSS001"
DAY = 86400


class FlakyKubernetes(KubernetesFake):
    """Fails the creation of one kind of object, to see a half-made namespace rolled back."""

    fail_plural = ""

    async def _collection(self, request, resource, namespace):
        if request.method == "POST" and resource.plural == self.fail_plural:
            raise kube_error(500, "etcdserver: request timed out")
        return await super()._collection(request, resource, namespace)


@pytest.fixture
async def bot(tmp_path):
    async with SlackFake() as slack, FlakyKubernetes() as k8s:
        for user, email in ((ADA, "ada.lovelace@acme.example"), (GRACE, "grace.hopper@acme.example")):
            slack.add_user(user, email=email)
        running = await start_bot(tmp_path, slack, kubernetes=k8s, PAVEDROAD_PLATFORM_CHANNEL="C0PLATFORM",
                                  PAVEDROAD_PLATFORM_ADMINS=f"{BOSS},group:default/platform-team",
                                  PAVEDROAD_ENV_TEAM_LIMIT="2", PAVEDROAD_KUBE_CONTEXT="staging-eu",
                                  PAVEDROAD_ENV_RBAC_GROUP="oidc:{group}")
        yield running
        await stop_bot(running)


async def env(bot: Bot, text: str, user: str = ADA) -> dict:
    status, body, url = await bot.command("/env", text, user=user)
    assert status == 200, body
    return await bot.reply(url, timeout=10)


def text_of(payload: dict) -> str:
    return json.dumps(payload.get("blocks") or payload.get("text"))


def namespace(bot: Bot, name: str) -> dict | None:
    return bot.kubernetes.get("v1", "Namespace", name)


def namespaces(bot: Bot) -> list[str]:
    return [item["metadata"]["name"] for item in bot.kubernetes.store.list(NAMESPACES, None)["items"]]


async def test_create_in_one_line_makes_everything_the_namespace_needs(bot: Bot):
    started = time.time()
    reply = await env(bot, "create payment-service --ttl 2d --size small")
    text = text_of(reply)
    assert "Environment payment-service-preview" in text and "ready" in text
    assert "kubectl --context staging-eu --namespace payment-service-preview get pods" in text
    ns = namespace(bot, "payment-service-preview")
    assert ns["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "pavedroad", "pavedroad.dev/service": "payment-service",
                                        "pavedroad.dev/owner": "payments-team", "pavedroad.dev/purpose": "preview",
                                        "kubernetes.io/metadata.name": "payment-service-preview"}
    annotations = ns["metadata"]["annotations"]
    assert annotations["pavedroad.dev/requester"] == ADA
    assert annotations["pavedroad.dev/entity"] == "component:default/payment-service"
    expires = time.mktime(time.strptime(annotations["pavedroad.dev/expires-at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(expires - (started + 2 * DAY)) < 60
    quota = bot.kubernetes.get("v1", "ResourceQuota", "pavedroad-quota", "payment-service-preview")
    assert quota["spec"]["hard"] == {"requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "4", "limits.memory": "8Gi", "pods": "20"}
    limits = bot.kubernetes.get("v1", "LimitRange", "pavedroad-limits", "payment-service-preview")
    assert limits["spec"]["limits"][0]["default"] == {"cpu": "500m", "memory": "512Mi"}
    policy = bot.kubernetes.get("networking.k8s.io/v1", "NetworkPolicy", "pavedroad-default-ingress", "payment-service-preview")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in policy["spec"]["ingress"][0]["from"]
    binding = bot.kubernetes.get("rbac.authorization.k8s.io/v1", "RoleBinding", "pavedroad-owner-edit", "payment-service-preview")
    assert binding["roleRef"]["name"] == "edit" and binding["subjects"][0]["name"] == "oidc:payments-team"
    second = await env(bot, "create payment-service")
    assert "Environment payment-service-preview-2" in text_of(second)


async def test_list_show_extend_and_destroy_with_permissions(bot: Bot):
    await env(bot, "create payment-service --purpose staging --ttl 1d")
    name = "payment-service-staging"
    assert name in (await env(bot, "list"))["text"]
    assert name in (await env(bot, "list", user=CHARLES))["text"]                 # a teammate sees the team's
    assert "no environments" in (await env(bot, "list", user=GRACE))["text"]
    assert "Environment payment-service-staging" in text_of(await env(bot, f"show {name}", user=GRACE))
    assert "now expires" in (await env(bot, f"extend {name} 2d", user=CHARLES))["text"]
    assert "Only <@U0ADA0001>, members of the owning team or platform admins" in (await env(bot, f"extend {name} 1d", user=GRACE))["text"]
    refused = await env(bot, f"extend {name} 8d")
    assert "longer than the 7-day maximum" in refused["text"]
    assert "Only <@U0ADA0001>" in (await env(bot, f"destroy {name}", user=GRACE))["text"]
    assert namespace(bot, name) is not None
    assert "is destroyed" in (await env(bot, f"destroy {name}", user=BOSS))["text"]
    assert namespace(bot, name) is None
    assert "no environments" in (await env(bot, "list"))["text"]
    actions = [(e.action, e.actor) for e in await bot.server.services.audit.recent(10)]
    assert ("env.destroy", BOSS) in actions and ("env.create", ADA) in actions and ("env.extend", CHARLES) in actions


async def test_extensions_stop_at_the_maximum(bot: Bot):
    await env(bot, "create payment-service --ttl 5d")
    assert "now expires" in (await env(bot, "extend payment-service-preview 1d"))["text"]
    assert "now expires" in (await env(bot, "extend payment-service-preview 5d"))["text"]      # capped at 7 days
    assert "already lives as long as it may (7 days from creation)" in (await env(bot, "extend payment-service-preview 1d"))["text"]


async def test_large_sizes_wait_for_a_platform_admin(bot: Bot):
    reply = await env(bot, "create payment-service --size large --purpose load-test")
    assert "waiting for a platform admin" in text_of(reply)
    assert namespace(bot, "payment-service-load-test") is None
    request = await bot.slack.wait_for_call("chat.postMessage", lambda a: a["channel"] == "C0PLATFORM")
    buttons = json.loads(request["blocks"]) if isinstance(request["blocks"], str) else request["blocks"]
    assert [e["action_id"] for e in buttons[1]["elements"]] == ["env_approve", "env_deny"]
    url = await click(bot, "env_approve", "payment-service-load-test", GRACE)
    assert "Only platform admins" in (await bot.reply(url))["text"]
    url = await click(bot, "env_approve", "payment-service-load-test", ALAN)              # admin through the platform group
    assert "Approved `payment-service-load-test`" in (await bot.reply(url, timeout=10))["text"]
    assert namespace(bot, "payment-service-load-test") is not None
    told = await bot.slack.wait_for_call("chat.postMessage", lambda a: a["channel"] == ADA)
    assert "approved your environment; it is ready" in told["text"]
    url = await click(bot, "env_deny", "payment-service-load-test", BOSS)
    assert "is not waiting for approval" in (await bot.reply(url))["text"]


async def test_denied_requests_make_nothing(bot: Bot):
    await env(bot, "create payment-service --size large")
    url = await click(bot, "env_deny", "payment-service-preview", BOSS)
    assert "Denied" in (await bot.reply(url))["text"]
    told = await bot.slack.wait_for_call("chat.postMessage", lambda a: a["channel"] == ADA)
    assert "denied your environment" in told["text"]
    assert namespace(bot, "payment-service-preview") is None
    assert [(e.action, e.outcome) for e in await bot.server.services.audit.recent(5)][:1] == [("env.deny", "ok")]


async def test_team_limit(bot: Bot):
    await env(bot, "create payment-service")
    await env(bot, "create payment-service --purpose staging")
    assert "already has 2 environments" in (await env(bot, "create refund-worker"))["text"]


@pytest.mark.parametrize("text,message", [
    ("create payment-service --name 'Bad Name!'", "can't be a namespace name"),
    ("create payment-service --ttl 30d", "longer than the 7-day maximum"),
    ("create payment-service --ttl soon", "is not a duration"),
    ("create payment-service --size huge", "is not a size; choose one of small, medium, large"),
    ("create payment-service --purpose party", "is not a purpose"),
    ("create paymnt-service", "Did you mean `payment-service`"),
    ("create payment-service --ttl", "needs a value"),
])
async def test_impossible_input_is_refused_with_what_to_change(bot: Bot, text: str, message: str):
    reply = await env(bot, text)
    assert message in reply["text"]
    assert not [n for n in namespaces(bot) if n.startswith("payment")]


async def test_unknown_subcommand_gets_usage(bot: Bot):
    status, body, _ = await bot.command("/env", "launch rockets")
    assert status == 200 and body.startswith("Usage: `/env create")


def test_names_are_valid_dns_labels():
    assert namespace_name("Payment_Service.v2", "preview") == "payment-service-v2-preview"
    long = namespace_name("a" * 80, "load-test", "12")
    assert len(long) == 63 and long.endswith("-load-test-12")
    for name in ("payment-service-v2-preview", long):
        assert check_name(name) == name
    with pytest.raises(Refused):
        check_name("-bad-")


async def test_the_form_opens_offers_services_and_checks_fields(bot: Bot):
    await bot.command("/env", "create")
    view = (await bot.slack.wait_for_call("views.open"))["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == "env_create"
    status, body = await bot.post(f"payload={json.dumps({'type': 'block_suggestion', 'action_id': 'env_service', 'block_id': 'service', 'value': 'paym', 'user': {'id': ADA}, 'team': {'id': 'T0FAKE'}, 'api_app_id': 'A0FAKE', 'view': view})}".encode())
    assert status == 200 and "payment-service" in [o["value"] for o in json.loads(body)["options"]]
    values = form("payment-service", name="Not OK")
    status, body = await bot.post(view_submission_body("env_create", values, user_id=ADA, view_id="V0FORM1"))
    assert status == 200 and json.loads(body) == {"response_action": "errors", "errors": {
        "name": "Use lower-case letters, digits and dashes (at most 63), starting and ending with a letter or digit."}}


async def test_a_double_submitted_form_makes_one_environment(bot: Bot):
    body = view_submission_body("env_create", form("payment-service", name="pay-demo"), user_id=ADA, view_id="V0SAME")
    results = await asyncio.gather(bot.post(body), bot.post(body))
    assert [status for status, _ in results] == [200, 200]
    await bot.slack.wait_for_call("chat.postMessage", lambda a: a["channel"] == ADA)
    await asyncio.sleep(0.5)
    assert namespace(bot, "pay-demo") is not None
    assert len([a for a in bot.slack.calls("chat.postMessage") if a["channel"] == ADA]) == 1
    assert len(await bot.server.services.environments.visible_to(await bot.server.services.people.whois(ADA))) == 1


async def test_existing_objects_converge_and_failures_roll_back(bot: Bot):
    bot.kubernetes.add_namespace("someone-elses", labels={"team": "x"})
    assert "is taken" in (await env(bot, "create payment-service --name someone-elses"))["text"]
    assert namespace(bot, "someone-elses")["metadata"]["labels"]["team"] == "x"
    # Provisioning again (a retry, a race) converges what exists instead of failing on 409.
    plan = NamespacePlan("pay-x", {"app.kubernetes.io/managed-by": "pavedroad"}, {}, {"pods": "20"},
                         {"default": {"cpu": "1"}}, "ingress-nginx", "payments-team")
    kubernetes = bot.server.services.kubernetes
    await kubernetes.provision(plan)
    await kubernetes.provision(NamespacePlan(**{**plan.__dict__, "quota": {"pods": "30"}}))
    assert bot.kubernetes.get("v1", "ResourceQuota", "pavedroad-quota", "pay-x")["spec"]["hard"] == {"pods": "30"}
    bot.kubernetes.fail_plural = "rolebindings"
    reply = await env(bot, "create payment-service")
    assert "Kubernetes could not create `payment-service-preview` (HTTP 500" in reply["text"]
    assert "nothing was left behind" in reply["text"]
    assert namespace(bot, "payment-service-preview") is None                         # rolled back
    assert (await bot.server.services.environments.get("payment-service-preview")).status == "failed"
    bot.kubernetes.fail_plural = ""
    bot.kubernetes.fail_status = 500
    assert "Kubernetes could not check the name (HTTP 500" in (await env(bot, "create payment-service"))["text"]
    bot.kubernetes.fail_status = None
    assert "ready" in text_of(await env(bot, "create payment-service"))


async def test_the_reaper_warns_once_destroys_at_expiry_and_leaves_the_rest_alone(bot: Bot):
    services = bot.server.services
    await env(bot, "create payment-service --ttl 2d")
    bot.kubernetes.add_namespace("hand-made")
    bot.kubernetes.add_namespace("orphan", labels={"app.kubernetes.io/managed-by": "pavedroad"})
    created = (await services.environments.get("payment-service-preview")).created_at
    reaper = services.reaper
    quiet = await reaper.run(now=created + 0.5 * DAY)
    assert (quiet.warned, quiet.destroyed) == ([], [])
    assert quiet.drift == ["orphan: labelled managed-by=pavedroad but not recorded; left alone"]
    first = await reaper.run(now=created + 1.2 * DAY)
    assert first.warned == ["payment-service-preview"]
    warning = await bot.slack.wait_for_call("chat.postMessage", lambda a: "expires" in a["text"] and a["channel"] == ADA)
    await bot.slack.wait_for_call("chat.postMessage", lambda a: "expires" in a["text"] and a["channel"] == "C0PAYMENTS1")
    assert "env_extend" in json.dumps(warning["blocks"])
    assert (await reaper.run(now=created + 1.5 * DAY)).warned == []                 # warns once
    dry = await reaper.run(now=created + 2 * DAY + 1, dry_run=True)
    assert dry.destroyed == ["payment-service-preview"] and namespace(bot, "payment-service-preview") is not None
    done = await reaper.run(now=created + 2 * DAY + 1)
    assert done.destroyed == ["payment-service-preview"]
    assert namespace(bot, "payment-service-preview") is None
    assert namespace(bot, "hand-made") is not None and namespace(bot, "orphan") is not None
    await bot.slack.wait_for_call("chat.postMessage", lambda a: "is gone: it expired" in a["text"])


async def test_two_reapers_at_once_act_once(bot: Bot):
    services = bot.server.services
    await env(bot, "create payment-service --ttl 1d")
    created = (await services.environments.get("payment-service-preview")).created_at
    other = Reaper(services.environments, Leases(services.db))
    reports = await asyncio.gather(services.reaper.run(now=created + DAY + 1), other.run(now=created + DAY + 1))
    assert sorted(r.skipped for r in reports) == [False, True]
    assert sum(len(r.destroyed) for r in reports) == 1


async def test_recorded_but_gone_is_reported_as_drift(bot: Bot):
    services = bot.server.services
    await env(bot, "create payment-service --ttl 1d")
    await services.kubernetes.delete_namespace("payment-service-preview")
    report = await services.reaper.run(dry_run=True)
    assert report.drift == ["payment-service-preview: recorded but its namespace is gone"]


async def click(bot: Bot, action_id: str, value: str, user: str) -> str:
    url = bot.slack.response_url()
    status, _ = await bot.post(block_actions_body(action_id, value, user_id=user, response_url=url, block_id="env_actions"))
    assert status == 200
    return url


def form(service: str, purpose: str = "preview", size: str = "small", ttl: str = "3d", name: str = "") -> dict:
    return {"service": {"env_service": {"type": "external_select", "selected_option": {"text": {"type": "plain_text", "text": service}, "value": service}}},
            "purpose": {"value": {"type": "static_select", "selected_option": {"value": purpose}}},
            "size": {"value": {"type": "static_select", "selected_option": {"value": size}}},
            "ttl": {"value": {"type": "static_select", "selected_option": {"value": ttl}}},
            "name": {"value": {"type": "plain_text_input", "value": name or None}}}


async def test_app_home_lists_my_environments_with_buttons(bot: Bot):
    await env(bot, "create payment-service")
    status, _ = await bot.post(event_body({"type": "app_home_opened", "user": CHARLES, "tab": "home"}))
    assert status == 200
    view = (await bot.slack.wait_for_call("views.publish"))["view"]
    text = view if isinstance(view, str) else json.dumps(view)
    assert "payment-service-preview" in text and "env_extend" in text and "env_destroy" in text
