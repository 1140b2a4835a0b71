"""A synthetic, deterministic Backstage catalog of N entities (default 100,000) for the benchmarks.

The mix follows a large organisation: ~2% Groups (org → divisions → departments → teams, with
`parent`/`children`), ~8% Users (`memberOf`, profile e-mail, some `slack.com/user-id`), ~1% Domains,
~3% Systems, ~8% APIs, ~8% Resources and the rest (~70%) Components with owner, system,
2-4 kind-prefixed `dependsOn`, `providesApis`/`consumesApis`, links and annotations
(`pagerduty.com/service-id`, `backstage.io/kubernetes-id`, ...). Dependencies mostly stay inside a
system (earlier components, its resources and APIs, so the graph is a DAG); the cross-system edges
go to a shared "platform" layer (1% of components, in 1% of systems, and the APIs they provide),
which is what makes a few entities depended on, transitively, by nearly everything. About 0.2% of components depend on something that is not in
the catalog, as real catalogs do.

Files hold ~100 entities each (multi-document YAML) and `all.yaml` is a `Location` listing them.

    .venv/bin/python bench/synthetic_catalog.py [--entities N] [--out DIR]

Other scripts call `ensure(n)`, which generates once into `bench/out/` and reuses it afterwards.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

OUT_DIR = Path(__file__).resolve().parent / "out"
SEED = 20240611
VERSION = 2  # bump when the generator changes, so cached catalogs are regenerated
PER_FILE = 100
SHARE = {"Group": 0.02, "User": 0.08, "Domain": 0.01, "System": 0.03, "API": 0.08, "Resource": 0.08}

AREAS = """payment billing ledger invoice checkout cart order shipping inventory catalog search pricing promo
loyalty account identity auth session profile notification email sms push fraud risk compliance audit report
analytics metrics event stream ingest export media image video upload storage config feature flag experiment
recommend review rating support ticket chat message partner merchant vendor supplier warehouse fulfilment return
refund tax currency fx wallet card bank payout settlement subscription plan usage quota gateway edge routing geo
address map delivery courier store locale translation content cms blog seo consent privacy backup schedule
calendar booking survey onboarding kyc document contract""".split()
ROLES = """core engine hub manager processor router sync bridge adapter connector collector aggregator indexer
resolver validator scheduler dispatcher publisher consumer registry tracker monitor scanner builder renderer
exporter importer planner calculator matcher ranker scorer classifier enricher mapper orchestrator coordinator
proxy relay broker buffer archiver cleaner replayer notifier emitter listener watcher handler controller
allocator balancer limiter throttler signer verifier encoder decoder parser formatter generator loader reader
writer fetcher poller streamer batcher splitter merger deduper reconciler auditor reporter checker evaluator
estimator forecaster optimizer compactor partitioner migrator provisioner deployer inspector profiler sampler
tagger linker tokenizer crawler annotator curator""".split()
SUFFIX = {
    "Component": "service worker job ui lib cli gateway daemon cron web app bff".split(),
    "API": "api grpc events graphql webhooks rest feed".split(),
    "Resource": "db cache queue bucket topic cluster index table".split(),
    "System": "system platform suite".split(),
    "Domain": "domain".split(),
    "Group": "team squad guild".split(),
}
FIRST = """ada grace alan joan katherine margaret linus guido barbara dennis ken bjarne james tim radia frances
edsger donald john hedy annie mary claude niklaus leslie shafi sophie yukihiro rasmus anders brendan""".split()
LAST = """lovelace hopper turing clarke johnson hamilton torvalds rossum liskov ritchie thompson stroustrup gosling
berners-lee perlman allen dijkstra knuth backus lamarr easley kenneth shannon wirth lamport goldwasser wilson
matsumoto lerdorf hejlsberg eich""".split()
TAGS = "go java python rust typescript kotlin grpc rest kafka postgres redis pci gdpr tier-1 tier-2 tier-3".split()
LIFECYCLES = ["production"] * 6 + ["experimental", "deprecated"]


def _counts(n: int) -> dict[str, int]:
    counts = {kind: max(1, round(n * share)) for kind, share in SHARE.items()}
    counts["Component"] = max(1, n - sum(counts.values()))
    return counts


def _names(rng: random.Random, kind: str, count: int) -> list[str]:
    """`count` distinct `area-role-suffix` names for one kind."""
    suffixes = SUFFIX[kind]
    space = len(AREAS) * len(ROLES) * len(suffixes)
    if count > space:
        raise ValueError(f"at most {space} {kind} entities can be named")
    names = []
    for number in rng.sample(range(space), count):
        rest, suffix = divmod(number, len(suffixes))
        area, role = divmod(rest, len(ROLES))
        names.append(f"{AREAS[area]}-{ROLES[role]}-{suffixes[suffix]}")
    return names


def _user_names(count: int) -> list[str]:
    return [f"{FIRST[i % len(FIRST)]}.{LAST[(i // len(FIRST)) % len(LAST)]}{i // (len(FIRST) * len(LAST)) or ''}"
            for i in range(count)]


def _title(name: str) -> str:
    return " ".join(word.capitalize() for word in name.split("-"))


def _envelope(kind: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "backstage.io/v1alpha1", "kind": kind,
            "metadata": {"name": name, **{k: v for k, v in metadata.items() if v}}, "spec": spec}


def _groups(rng: random.Random, names: list[str]) -> list[dict[str, Any]]:
    """A tree: one organisation, ~1% divisions, ~10% departments, the rest teams."""
    levels = [names[:1], names[1:1 + max(1, len(names) // 100)]]
    levels.append(names[len(levels[0]) + len(levels[1]):len(levels[0]) + len(levels[1]) + max(1, len(names) // 10)])
    levels.append(names[sum(map(len, levels)):])
    types = ["organization", "division", "department", "team"]
    parent_of: dict[str, str] = {}
    children: dict[str, list[str]] = {name: [] for name in names}
    for depth in range(1, len(levels)):
        for name in levels[depth]:
            parent = rng.choice(levels[depth - 1] or levels[0])
            parent_of[name] = parent
            children[parent].append(name)
    docs = []
    for depth, level in enumerate(levels):
        for name in level:
            spec: dict[str, Any] = {"type": types[depth], "profile": {"displayName": _title(name), "email": f"{name}@acme.example"},
                                    "children": children[name]}
            if name in parent_of:
                spec["parent"] = parent_of[name]
            annotations = {"slack.com/channel-id": f"C{rng.randrange(16**9):09X}", "slack.com/channel-name": f"#{name}",
                           "pagerduty.com/service-id": f"PT{rng.randrange(36**5):05d}"}
            docs.append(_envelope("Group", name, spec, description=f"The {_title(name)}.", annotations=annotations))
    return docs


def _entities(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    counts = _counts(n)
    names = {kind: _names(rng, kind, counts[kind]) for kind in ("Group", "Domain", "System", "API", "Resource", "Component")}
    teams = names["Group"][max(1, len(names["Group"]) // 100) + max(1, len(names["Group"]) // 10) + 1:] or names["Group"]
    owner_of = lambda: rng.choice([lambda t: t, lambda t: f"group:{t}", lambda t: f"group:default/{t}"])(rng.choice(teams))  # noqa: E731
    docs = _groups(rng, names["Group"])
    for i, user in enumerate(_user_names(counts["User"])):
        annotations = {"slack.com/user-id": f"U{rng.randrange(16**9):09X}"} if i % 3 == 0 else {}
        docs.append(_envelope("User", user, {"profile": {"displayName": _title(user.replace(".", "-")), "email": f"{user}@acme.example"},
                                             "memberOf": rng.sample(teams, min(len(teams), rng.choice((1, 1, 1, 2))))},
                              annotations=annotations))
    for domain in names["Domain"]:
        docs.append(_envelope("Domain", domain, {"owner": owner_of()}, title=_title(domain)))
    systems, components = names["System"], names["Component"]
    platform = components[:max(1, len(components) // 100)]  # shared services everything ends up depending on
    platform_systems = systems[:max(1, len(systems) // 100)]
    system_of = {c: rng.choice(platform_systems if i < len(platform) else systems) for i, c in enumerate(components)}
    provider_of = {api: rng.choice(components) for api in names["API"]}  # an API lives in its provider's system
    system_of.update({api: system_of[provider] for api, provider in provider_of.items()})
    system_of.update({r: rng.choice(systems) for r in names["Resource"]})
    for system in systems:
        docs.append(_envelope("System", system, {"owner": owner_of(), "domain": rng.choice(names["Domain"])},
                              title=_title(system), description=f"Everything about {system.split('-')[0]}."))
    for api in names["API"]:
        docs.append(_envelope("API", api, {"type": "openapi", "lifecycle": rng.choice(LIFECYCLES), "owner": owner_of(),
                                           "system": system_of[api],
                                           "definition": f"openapi: 3.0.3\ninfo:\n  title: {_title(api)}\n  version: 1.{rng.randrange(20)}.0\npaths: {{}}\n"},
                              title=_title(api) if rng.random() < 0.5 else None, tags=rng.sample(TAGS, 1)))
    for resource in names["Resource"]:
        docs.append(_envelope("Resource", resource, {"type": resource.rsplit("-", 1)[1], "owner": owner_of(), "system": system_of[resource]},
                              title=_title(resource) if rng.random() < 0.5 else None))
    docs.extend(_components(rng, names, platform, system_of, provider_of, owner_of))
    return docs


def _by_system(system_of: dict[str, str], names: list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name in names:
        grouped.setdefault(system_of[name], []).append(name)
    return grouped


def _components(rng: random.Random, names: dict[str, list[str]], platform: list[str], system_of: dict[str, str],
                provider_of: dict[str, str], owner_of: Any) -> list[dict[str, Any]]:
    """Dependencies stay mostly inside a system (a DAG over earlier peers and its resources); the
    cross-system edges go to the platform layer: its components and the APIs they provide."""
    resources, apis = _by_system(system_of, names["Resource"]), _by_system(system_of, names["API"])
    platform_set = set(platform)
    platform_apis = [api for api, provider in provider_of.items() if provider in platform_set] or names["API"]
    provides: dict[str, list[str]] = {}
    for api, component in provider_of.items():
        provides.setdefault(component, []).append(api)
    earlier_in_system: dict[str, list[str]] = {}
    docs = []
    for i, name in enumerate(names["Component"]):
        system = system_of[name]
        peers = earlier_in_system.setdefault(system, [])
        local_resources = resources.get(system) or names["Resource"]
        deps: list[str] = []
        for _ in range(rng.randint(2, 4)):
            roll = rng.random()
            if i < len(platform):
                pick = f"component:{rng.choice(platform[:i])}" if i and roll < 0.5 else f"resource:{rng.choice(local_resources)}"
            elif roll < 0.5 and peers:
                pick = f"component:{rng.choice(peers[-50:])}"
            elif roll < 0.8:
                pick = f"resource:{rng.choice(local_resources)}"
            else:
                pick = f"component:{rng.choice(platform)}"
            if pick not in deps:
                deps.append(pick)
        if rng.random() < 0.002:
            deps.append(f"component:retired-{name}")
        peers.append(name)
        annotations = {"github.com/project-slug": f"acme/{name}", "backstage.io/techdocs-ref": "dir:.",
                       "pagerduty.com/service-id": f"P{rng.randrange(36**6):06d}", "backstage.io/kubernetes-id": name,
                       "backstage.io/kubernetes-namespace": system}
        links = [{"url": f"https://runbooks.acme.example/{name}", "title": "Runbook", "type": "runbook"},
                 {"url": f"https://grafana.acme.example/d/{name}", "title": "Dashboard", "type": "dashboard"}]
        spec = {"type": rng.choice(["service", "service", "service", "website", "library"]), "lifecycle": rng.choice(LIFECYCLES),
                "owner": owner_of(), "system": system, "dependsOn": deps}
        if name in provides:
            spec["providesApis"] = provides[name]
        consumes: list[str] = []
        for _ in range(rng.randint(0, 2)):
            api = rng.choice(apis[system] if system in apis and rng.random() < 0.75 else platform_apis)
            if api not in consumes and provider_of[api] != name:
                consumes.append(api)
        if consumes:
            spec["consumesApis"] = consumes
        docs.append(_envelope("Component", name, spec, title=_title(name) if rng.random() < 0.5 else None,
                              description=f"{_title(name)}: part of {system}, owned by the team in spec.owner.",
                              tags=rng.sample(TAGS, rng.randint(1, 3)), annotations=annotations, links=links))
    return docs


def generate(directory: Path | str, n: int = 100_000, seed: int = SEED) -> Path:
    """Write N entities into `directory` (files of ~100 documents and `all.yaml`); returns all.yaml."""
    directory = Path(directory)
    docs = _entities(n, seed)
    random.Random(seed + 1).shuffle(docs)  # files mix kinds, as catalog-info.yaml files from many repos would
    files = []
    for number, start in enumerate(range(0, len(docs), PER_FILE)):
        path = directory / f"part-{number // 100:03d}" / f"entities-{number:05d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.dump_all(docs[start:start + PER_FILE], Dumper=yaml.CSafeDumper, sort_keys=False, width=1000))
        files.append(path.relative_to(directory).as_posix())
    location = _envelope("Location", "synthetic-catalog", {"type": "file", "targets": [f"./{f}" for f in files]},
                         description=f"{n} synthetic entities (seed {seed}).")
    (directory / "all.yaml").write_text(yaml.dump(location, Dumper=yaml.CSafeDumper, sort_keys=False))
    return directory / "all.yaml"


def ensure(n: int = 100_000, seed: int = SEED) -> Path:
    """The cached catalog of N entities under bench/out/ (generated on first use); returns all.yaml."""
    directory = OUT_DIR / f"catalog-{n}-s{seed}-v{VERSION}"
    if (directory / "all.yaml").is_file():
        return directory / "all.yaml"
    staging = directory.with_name(directory.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    started = time.perf_counter()
    generate(staging, n, seed)
    os.replace(staging, directory)
    print(f"generated {n:,} entities into {directory} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return directory / "all.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="write here instead of the bench/out/ cache")
    args = parser.parse_args()
    started = time.perf_counter()
    path = generate(args.out, args.entities) if args.out else ensure(args.entities)
    files = list(path.parent.rglob("*.yaml"))
    size = sum(f.stat().st_size for f in files)
    print(f"catalog: {path}\nentities: {args.entities:,} ({', '.join(f'{k} {v:,}' for k, v in _counts(args.entities).items())})\n"
          f"files: {len(files):,} ({size / 1e6:.1f} MB)\nseconds: {time.perf_counter() - started:.1f}")


if __name__ == "__main__":
    main()
