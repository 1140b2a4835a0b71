"""`/whoowns`'s outside calls overlap: PagerDuty asks for the incidents beside the service and its
on-calls, Kubernetes for deployments beside pods, each client in a bounded thread pool of its own
(not asyncio's small default executor), and the catalog is read while they answer. A part that
misses the budget is left out without leaving "Task exception was never retrieved" behind."""
from __future__ import annotations

import asyncio
import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.catalog.index import CatalogIndex
from bot.catalog.loader import CatalogLoader
from bot.ownership import Ownership
from integrations.blocking import BlockingPool
from integrations.errors import IntegrationError
from integrations.kubernetes import Health, KubernetesClient
from integrations.pagerduty import PagerDutyClient, ServiceOnCall
from tests.conftest import DEMO_CATALOG
from tests.fakes.kubernetes import KubernetesFake
from tests.fakes.pagerduty import PagerDutyFake
from tests.harness import write_kubeconfig
from tests.test_whoowns import seed_kubernetes, seed_pagerduty

DELAY = 0.4  # every fake request; two requests less than DELAY apart were in flight together
PAYMENT_SERVICE = "component:default/payment-service"


@pytest.fixture
async def unretrieved():
    """What asyncio reports to the loop's exception handler ("... exception was never retrieved")."""
    loop = asyncio.get_running_loop()
    seen: list[dict] = []
    loop.set_exception_handler(lambda _, context: seen.append(context))
    yield seen
    loop.set_exception_handler(None)


async def settle() -> None:
    """Let late tasks and futures finish and be collected, so asyncio reports what it would."""
    await asyncio.sleep(DELAY + 0.3)
    gc.collect()
    await asyncio.sleep(0)


@pytest.fixture
async def pagerduty():
    async with PagerDutyFake() as fake:
        seed_pagerduty(fake)
        yield fake


@pytest.fixture
async def kubernetes():
    async with KubernetesFake() as fake:
        seed_kubernetes(fake)
        yield fake


def pd_client(fake: PagerDutyFake, **kwargs) -> PagerDutyClient:
    return PagerDutyClient(fake.api_token, fake.rest_url, fake.events_url, fake.ca_bundle_path, **kwargs)


def arrivals(fake, *paths: str) -> list[float]:
    return [fake.requests_to(path)[-1].received_at for path in paths]


async def test_pagerduty_asks_for_incidents_beside_the_service_then_on_calls(pagerduty: PagerDutyFake):
    client = pd_client(pagerduty)
    pagerduty.delay = DELAY
    try:
        oncall = await client.service_oncall("PPAY001")
        service, oncalls, incidents = arrivals(pagerduty, "/services/PPAY001", "/oncalls", "/incidents")
        assert abs(incidents - service) < DELAY           # the incidents did not wait for the service
        assert oncalls - service >= DELAY * 0.9           # the on-calls did: they need its escalation policy
        assert [(o.level, o.name) for o in oncall.oncalls] == [(1, "Ada Lovelace"), (2, "Casey Contractor")]
        assert [i.title for i in oncall.incidents] == ["Card authorisations failing in eu-west-1"]
        assert (oncall.service_name, oncall.escalation_policy) == ("Payment Service", "Payments escalation")

        pagerduty.clear_requests()
        again = await client.service_oncall("PPAY001")    # the service was read a moment ago
        assert pagerduty.requests_to("/services/PPAY001") == []
        oncalls, incidents = arrivals(pagerduty, "/oncalls", "/incidents")
        assert abs(oncalls - incidents) < DELAY
        assert again == oncall
    finally:
        client.close()


async def test_on_calls_are_read_page_by_page(pagerduty: PagerDutyFake):
    for n in range(130):
        pagerduty.add_user(f"PX{n:03}", f"Person {n:03}", f"person{n}@acme.example")
        pagerduty.add_oncall("PEP1", 3, f"PX{n:03}")
    client = pd_client(pagerduty)
    try:
        oncall = await client.service_oncall("PPAY001")
        assert len(oncall.oncalls) == 132 and oncall.oncalls[-1].name == "Person 129"
        assert len(pagerduty.requests_to("/oncalls")) == 2
    finally:
        client.close()


async def test_the_service_is_read_every_time_without_the_cache(pagerduty: PagerDutyFake):
    client = pd_client(pagerduty, service_cache_seconds=0)
    try:
        await client.service_oncall("PPAY001")
        await client.service_oncall("PPAY001")
        assert len(pagerduty.requests_to("/services/PPAY001")) == 2
    finally:
        client.close()


async def test_a_failing_pagerduty_leaves_nothing_unretrieved(pagerduty: PagerDutyFake, unretrieved: list[dict]):
    client = pd_client(pagerduty)
    pagerduty.fail_status = 500
    try:
        with pytest.raises(IntegrationError, match="PagerDuty: HTTP 500"):
            await client.service_oncall("PPAY001")       # the service and the incidents both fail
        pagerduty.reset_faults()
        pagerduty.delay = 2
        client.timeout = 0.3
        with pytest.raises(IntegrationError, match="no answer within 0.3s") as raised:
            await client.service_oncall("PPAY001")
        assert raised.value.timed_out
        await settle()
        assert unretrieved == []
    finally:
        client.close()


async def test_kubernetes_asks_for_deployments_and_pods_at_once(kubernetes: KubernetesFake, tmp_path):
    client = KubernetesClient(str(write_kubeconfig(tmp_path / "kubeconfig", kubernetes.url)))
    kubernetes.delay = DELAY
    try:
        health = await client.health("backstage.io/kubernetes-id=payment-service", "payments")
        deployments = kubernetes.requests_to("/apis/apps/v1/namespaces/payments/deployments")[-1].received_at
        pods = kubernetes.requests_to("/api/v1/namespaces/payments/pods")[-1].received_at
        assert abs(deployments - pods) < DELAY
        assert [(d.name, d.ready, d.desired) for d in health.deployments] == [("payment-service", 2, 3)]
        assert (health.pods, health.pods_not_ready, health.restarts, health.recent_restarts) == (
            3, ("payment-service-2",), 4, 1)
        assert not health.healthy
        everywhere = await client.health("backstage.io/kubernetes-id=payment-service")
        assert everywhere == health
        kubernetes.fail_status = 503
        with pytest.raises(IntegrationError, match="Kubernetes: HTTP 503"):
            await client.health("backstage.io/kubernetes-id=payment-service", "payments")
    finally:
        client.close()


async def test_calls_run_in_the_clients_pool_not_the_default_executor(pagerduty: PagerDutyFake):
    """Eight answers at once with a one-thread default executor: as fast as one."""
    loop = asyncio.get_running_loop()
    one_thread = ThreadPoolExecutor(1)
    loop.set_default_executor(one_thread)
    client = pd_client(pagerduty)
    pagerduty.delay = DELAY
    try:
        started = time.perf_counter()
        answers = await asyncio.gather(*(client.service_oncall("PPAY001") for _ in range(8)))
        assert time.perf_counter() - started < 4 * DELAY  # two round trips each, all at once
        assert all(a.oncalls for a in answers)
    finally:
        client.close()
        loop.set_default_executor(ThreadPoolExecutor())
        one_thread.shutdown(wait=False)


async def test_a_pool_is_bounded_and_ends_when_shut_down():
    pool = BlockingPool("Test", threads=3)
    running, most = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.1)
        with lock:
            running -= 1

    await asyncio.gather(*(pool.start(work) for _ in range(7)))
    assert most == 3
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.start(work)


async def test_closing_a_client_ends_its_pool(pagerduty: PagerDutyFake, kubernetes: KubernetesFake, tmp_path):
    clients = [pd_client(pagerduty), KubernetesClient(str(write_kubeconfig(tmp_path / "kubeconfig", kubernetes.url)))]
    await clients[0].service_oncall("PPAY001")
    await clients[1].health("backstage.io/kubernetes-id=payment-service", "payments")
    for client in clients:
        client.close()
        with pytest.raises(RuntimeError):
            client.pool.start(lambda: None)


# -- Ownership: the budget, the overlap with the catalog, and late failures ---------------------

@pytest.fixture(scope="module")
def index() -> CatalogIndex:
    result = CatalogLoader(5_000_000).load([str(DEMO_CATALOG)])
    return CatalogIndex.build([e for s in result.sources.values() for e in s.entities])


class NoSlack:
    async def slack_id_for(self, email: str) -> str | None:
        return None


class StubPagerDuty:
    """Answers after `seconds`; `fail_when_cancelled` raises instead of being cancelled, as a call
    does whose thread fails just as the budget runs out (the task then ends with that error)."""

    can_read = True

    def __init__(self, seconds: float, fail_when_cancelled: bool = False, events: list[str] | None = None) -> None:
        self.seconds, self.fail_when_cancelled, self.events = seconds, fail_when_cancelled, events

    async def service_oncall(self, service_id: str) -> ServiceOnCall:
        if self.events is not None:
            self.events.append("pagerduty asked")
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            if self.fail_when_cancelled:
                raise IntegrationError("PagerDuty", "unreachable (Error)") from None
            raise
        return ServiceOnCall(service_id, "Payment Service", "", "Payments escalation", (), ())


class StubKubernetes:
    def __init__(self, seconds: float = 0.0, events: list[str] | None = None) -> None:
        self.seconds, self.events = seconds, events

    async def health(self, selector: str, namespace: str = "") -> Health:
        if self.events is not None:
            self.events.append("kubernetes asked")
        await asyncio.sleep(self.seconds)
        return Health((), 0, (), 0, 0)


async def test_a_part_failing_as_the_budget_ends_leaves_no_unretrieved_exception(index: CatalogIndex,
                                                                                   unretrieved: list[dict]):
    ownership = Ownership(NoSlack(), StubPagerDuty(10, fail_when_cancelled=True), StubKubernetes(), 0.2)
    answer = await ownership.answer(index, index.entities[PAYMENT_SERVICE])
    assert answer.missing == {"on-call": "PagerDuty did not answer within 0.2s"}
    assert answer.health is not None
    await settle()
    assert not [c for c in unretrieved if "never retrieved" in c.get("message", "")], unretrieved


async def test_the_answer_arrives_within_the_budget_when_pagerduty_is_slow(index: CatalogIndex, unretrieved: list[dict]):
    ownership = Ownership(NoSlack(), StubPagerDuty(10), StubKubernetes(0.05), 0.3)
    started = time.perf_counter()
    answer = await ownership.answer(index, index.entities[PAYMENT_SERVICE])
    assert time.perf_counter() - started < 0.3 + 0.25
    assert answer.missing == {"on-call": "PagerDuty did not answer within 0.3s"}
    assert answer.health is not None and answer.owner is not None
    await settle()
    assert unretrieved == []


async def test_outside_calls_are_sent_before_the_catalog_is_read(index: CatalogIndex):
    events: list[str] = []

    class Recording(Ownership):
        def describe(self, index, entity):
            events.append("catalog read")
            time.sleep(0.2)  # a slow catalog walk (a big blast radius), on the event loop
            return super().describe(index, entity)

    ownership = Recording(NoSlack(), StubPagerDuty(0.2, events=events), StubKubernetes(0.2, events=events), 1.0)
    started = time.perf_counter()
    answer = await ownership.answer(index, index.entities[PAYMENT_SERVICE])
    assert events == ["pagerduty asked", "kubernetes asked", "catalog read"]
    assert time.perf_counter() - started < 0.35  # the waits overlapped
    assert answer.oncall is not None and answer.health is not None and answer.missing == {}
