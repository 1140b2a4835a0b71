"""Golden path speed: a template whose skeleton has 50 files, through the whole path (render,
create the repository with one commit, topics and team access, register in the catalog), on
the local git provider and on the GitHub test server.

Each run is timed from `Scaffolder.start` being called (the form's submit) to: `start`
returning, the listener's first progress call (what the Slack surface turns into the first
progress message) and the run's `done`. The database is SQLite in a temporary folder; runs go
one after another, each creating a repository of its own.

    .venv/bin/python bench/scaffold.py [--runs 20] [--files 50]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
import yaml  # noqa: E402

from bench.common import Goal, latency_line, report, tally_logs  # noqa: E402
from integrations.github_publish import GitHubPublisher  # noqa: E402
from tests.fakes.github import GitHubFake  # noqa: E402
from tests.scaffolder_kit import ADA, Kit, Recorder, make_kit  # noqa: E402

TEMPLATE = {
    "apiVersion": "scaffolder.backstage.io/v1beta3", "kind": "Template",
    "metadata": {"name": "bench-service", "title": "Bench service"},
    "spec": {
        "owner": "group:default/platform-team", "type": "service",
        "parameters": [{"required": ["name", "owner", "repoUrl"], "properties": {
            "name": {"type": "string", "ui:field": "EntityNamePicker"},
            "owner": {"type": "string", "ui:field": "OwnerPicker"},
            "repoUrl": {"type": "string", "ui:field": "RepoUrlPicker"}}}],
        "steps": [
            {"id": "fetch", "name": "Render", "action": "fetch:template",
             "input": {"url": "./skeleton", "values": {"name": "${{ parameters.name }}", "owner": "${{ parameters.owner }}",
                                                       "package": "${{ parameters.name | replace('-', '_') }}"}}},
            {"id": "publish", "name": "Publish", "action": "publish:github",
             "input": {"repoUrl": "${{ parameters.repoUrl }}", "description": "Bench ${{ parameters.name }}",
                       "topics": ["bench"]}},
            {"id": "register", "name": "Register", "action": "catalog:register",
             "input": {"repoContentsUrl": "${{ steps.publish.output.repoContentsUrl }}"}}],
        "output": {"links": [{"title": "Repository", "url": "${{ steps.publish.output.remoteUrl }}"}]}},
}
CATALOG_INFO = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ${{ values.name | dump }}
spec:
  type: service
  lifecycle: experimental
  owner: ${{ values.owner | dump }}
"""


def write_template(root: Path, files: int) -> Path:
    """A template folder whose skeleton holds `files` files, some under templated folder names."""
    skeleton = root / "bench-service" / "skeleton"
    (skeleton / "src" / "${{ values.package }}").mkdir(parents=True)
    (skeleton / "docs").mkdir()
    (skeleton / "catalog-info.yaml").write_text(CATALOG_INFO)
    for i in range(files - 1):
        folder = ("src/${{ values.package }}", "docs", ".")[i % 3]
        lines = ["{% if values.owner %}# owned by ${{ values.owner }}{% endif %}\n"]
        lines += [f"VALUE_{n} = '" + "${{ values.name }}" + f"-{i}-{n}'\n" for n in range(40)]
        body = "".join(lines)
        (skeleton / folder / f"module_{i:02d}.py").write_text(body)
    (root / "bench-service" / "template.yaml").write_text(yaml.safe_dump(TEMPLATE, sort_keys=False))
    return root


async def run_all(kit: Kit, runs: int, label: str) -> dict[str, list[float]]:
    recorder: Recorder = kit.scaffolder.listener  # type: ignore[assignment]
    template = kit.scaffolder.template("bench-service")
    figures: dict[str, list[float]] = {"returned": [], "first_progress": [], "done": []}
    for i in range(runs):
        name = f"bench-{label}-{i}"
        values = {"name": name, "owner": "payments-team", "repoUrl": f"github.com?owner=acme&repo={name}"}
        submitted = time.perf_counter()
        run = await kit.scaffolder.start(template, values, ADA, f"{label}-{i}")
        returned = time.perf_counter()
        await kit.scaffolder.wait(run.id)
        seen = [(at, r) for at, r in recorder.seen if r.id == run.id]
        final = seen[-1][1]
        if final.state != "done":
            raise SystemExit(f"{label} run {i} ended {final.state}: {final.error}")
        figures["returned"].append(returned - submitted)
        figures["first_progress"].append(seen[0][0] - submitted)
        figures["done"].append(next(at for at, r in seen if r.state == "done") - submitted)
    return figures


async def main(runs: int, files: int) -> None:
    logs = tally_logs()
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        templates = write_template(Path(tmp) / "templates", files)
        local = await make_kit(f"sqlite:///{tmp}/local.db", Path(tmp) / "local", templates=[str(templates)])
        try:
            results["local git"] = await run_all(local, runs, "local")
        finally:
            await local.close()
        async with GitHubFake() as github, aiohttp.ClientSession() as http:
            github.add_org("acme")
            github.add_team("acme", "payments")
            remote = await make_kit(f"sqlite:///{tmp}/github.db", Path(tmp) / "github",
                                    GitHubPublisher(http, github.url, github.token), templates=[str(templates)])
            try:
                results["GitHub test server"] = await run_all(remote, runs, "github")
            finally:
                await remote.close()
            commits = {len(github.commits(name)) for name in github.repos}
            pushed = {len(github.files(name)) for name in github.repos}
    print(f"{runs} runs per provider, a {files}-file skeleton; SQLite; one run at a time")
    print(f"GitHub test server: {len(github.repos)} repositories, commits per repository {sorted(commits)}, "
          f"files per repository {sorted(pushed)}")
    goals, figures = [], {"runs": runs, "files": files}
    for provider, timings in results.items():
        for what, label in (("returned", "submit → start() returned"), ("first_progress", "submit → first progress"),
                            ("done", "submit → done")):
            print(latency_line(f"{provider}: {label}", timings[what]))
        key = provider.split()[0].lower()
        figures.update({f"{key}_done_p50_s": round(sorted(timings["done"])[len(timings["done"]) // 2], 3),
                        f"{key}_done_max_s": round(max(timings["done"]), 3),
                        f"{key}_first_progress_max_s": round(max(timings["first_progress"]), 3)})
        goals += [Goal(f"{provider}: submit → done (max)", max(timings["done"]), 5.0, "s"),
                  Goal(f"{provider}: submit → first progress (max)", max(timings["first_progress"]), 1.0, "s")]
    report("scaffold", figures, goals, logs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--files", type=int, default=50)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.files))
