"""`/dora TEAM` over a year of events for many services: the time to gather and compute the answer.

The GitHub and PagerDuty test servers are seeded with `--services` repositories (default 500),
each with a year of weekly deployments (one dated commit each), `--runs-per-week` workflow runs
and an incident a month; then `Dora.report` runs for one team owning all of them (the data the
`/dora` listener gathers after its acknowledgement), `--repeat` times, and the figures print.
The first answer reads GitHub (about a dozen calls per repository);
later ones within `GITHUB_CACHE_SECONDS` reuse each repository's data. The goal is 2 s.

    .venv/bin/python bench/dora.py [--services 500] [--days 30] [--repeat 3]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from bot.metrics.dora import GITHUB_SLUG, PAGERDUTY_SERVICE, Dora, Target  # noqa: E402
from integrations.github_delivery import GitHubDelivery  # noqa: E402
from integrations.pagerduty import PagerDutyClient  # noqa: E402
from tests.fakes.github import GitHubFake  # noqa: E402
from tests.fakes.pagerduty import DEFAULT_API_TOKEN, PagerDutyFake  # noqa: E402
from tests.fakes.tls import ca_bundle_path  # noqa: E402

GOAL_SECONDS = 2.0


@dataclass(frozen=True)
class Component:
    name: str
    annotations: dict[str, str] = field(default_factory=dict)


def seed(github: GitHubFake, pagerduty: PagerDutyFake, services: int, runs_per_week: int, now: datetime) -> list[Component]:
    pagerduty.add_user("PU1", "Bench", "bench@acme.example")
    pagerduty.add_escalation_policy("PEP1", "Bench", ["PU1"])
    components = []
    start = now - timedelta(days=365)
    for n in range(services):
        slug, pd_id = f"acme/svc-{n:04d}", f"PS{n:05d}"
        github.add_repo(slug)
        pagerduty.add_service(pd_id, f"svc-{n:04d}", "PEP1")
        for week in range(52):
            at = start + timedelta(days=7 * week, hours=n % 24)
            github.add_dated_commit(slug, at - timedelta(hours=3), f"change {week}")
            github.add_deployment(slug, created_at=at)
            for r in range(runs_per_week):
                github.add_workflow_run(slug, conclusion="failure" if (week + r) % 7 == 0 else "success",
                                        created_at=at + timedelta(hours=r))
            if week % 4 == 0:
                pagerduty.add_resolved_incident(pd_id, "bench", at + timedelta(hours=2), at + timedelta(hours=4))
        components.append(Component(f"svc-{n:04d}", {GITHUB_SLUG: slug, PAGERDUTY_SERVICE: pd_id}))
    return components


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs-per-week", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3, help="the first is cold, the rest warm")
    args = parser.parse_args()
    now = datetime.now(timezone.utc)
    async with GitHubFake() as github, PagerDutyFake() as pagerduty, aiohttp.ClientSession() as http:
        began = time.perf_counter()
        components = seed(github, pagerduty, args.services, args.runs_per_week, now)
        print(f"seeded {args.services} services (52 deployments, {52 * args.runs_per_week} runs, 13 incidents each) "
              f"in {time.perf_counter() - began:.1f}s")
        client = PagerDutyClient(DEFAULT_API_TOKEN, pagerduty.rest_url, pagerduty.events_url, ca_bundle_path(), timeout=60)
        dora = Dora(lambda: None, GitHubDelivery(http, github.url, github.token, timeout=60), client, budget_seconds=300)
        target = Target("bench-team", "team", tuple(components))  # type: ignore[arg-type]
        github.rate_limit_limit = 15000  # a GitHub App on Enterprise Cloud; a token's 5 000/h would not last one cold answer
        times, calls = [], []
        try:
            for _ in range(args.repeat):
                github.requests.clear()
                pagerduty.requests.clear()
                began = time.perf_counter()
                report = await dora.report(target, args.days)
                times.append(time.perf_counter() - began)
                calls.append((len(github.requests), len(pagerduty.requests)))
        finally:
            client.close()
        print("; ".join(f"{m.name}: {m.text} ({m.band})" for m in report.metrics) + f"; CI {report.ci.text}")
        print(f"missing: {len(report.missing)} {report.missing[:3]}; HTTP calls (GitHub, PagerDuty) per answer: "
              f"{'; '.join(f'{g}, {p}' for g, p in calls)}")
        warm = statistics.median(times[1:]) if len(times) > 1 else None
        print(f"/dora TEAM over {args.services} services, {args.days}d: cold (GitHub read) {times[0]:.2f}s; "
              + (f"warm (repository data cached {dora.cache_seconds:.0f}s) median {warm:.2f}s; " if warm is not None else "")
              + f"goal ≤ {GOAL_SECONDS:.0f}s: cold {'met' if times[0] <= GOAL_SECONDS else 'NOT met'}"
              + (f", warm {'met' if warm <= GOAL_SECONDS else 'NOT met'}" if warm is not None else ""))


if __name__ == "__main__":
    asyncio.run(main())
