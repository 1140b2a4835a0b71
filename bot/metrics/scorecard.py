"""Scorecards: for each Component a team owns, the checks a platform team cares about, and a
per-team score with the worst gaps first. No Slack here.

Checks are data, not code: `DEFAULT_CHECKS` below (YAML), or a file named by the setting
`PAVEDROAD_SCORECARD` holding `checks:` in the same shape. A check passes when ANY of its
criteria holds:

    - id: oncall                       # short id, unique
      title: On-call configured        # what the answer says
      weight: 2                        # optional, default 1
      annotation: [pagerduty.com/service-id, pagerduty.com/integration-key]
      inherit: owner                   # annotations also count when set on the owning Group
      types: [service, website]        # optional: only Components of these spec.type are checked
    - id: runbook
      title: Runbook link
      link: runbook                    # a metadata.links entry whose title or type says "runbook"
      annotation: [pavedroad.dev/runbook]
    - id: lifecycle
      title: Lifecycle set
      spec: lifecycle                  # spec.lifecycle is set (a list means any of them)
    - id: owner
      title: Owner set and in the catalog
      owner: resolvable                # spec.owner names a Group or User the catalog holds
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from bot.catalog.entity import Entity
from bot.catalog.index import CatalogIndex

DEFAULT_CHECKS_YAML = """
checks:
  - id: owner
    title: Owner set and in the catalog
    weight: 2
    owner: resolvable
  - id: oncall
    title: On-call configured (PagerDuty)
    weight: 2
    annotation: [pagerduty.com/service-id, pagerduty.com/integration-key]
    inherit: owner
    types: [service, website]
  - id: runbook
    title: Runbook link
    link: runbook
    annotation: [pavedroad.dev/runbook]
    types: [service, website]
  - id: docs
    title: Docs (TechDocs)
    annotation: [backstage.io/techdocs-ref]
  - id: lifecycle
    title: Lifecycle set
    spec: lifecycle
  - id: system
    title: Part of a system
    spec: system
  - id: repository
    title: Repository annotation
    annotation: [github.com/project-slug]
  - id: kubernetes
    title: Kubernetes annotation
    annotation: [backstage.io/kubernetes-id, backstage.io/kubernetes-label-selector]
    types: [service, website]
"""
CRITERIA = ("annotation", "spec", "link", "owner")


class ScorecardError(ValueError):
    """A scorecard definition that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    weight: float = 1.0
    annotations: tuple[str, ...] = ()
    spec_fields: tuple[str, ...] = ()
    link: str = ""
    owner_resolvable: bool = False
    inherit_owner: bool = False
    types: tuple[str, ...] = ()      # empty: every Component

    def applies_to(self, entity: Entity) -> bool:
        return not self.types or str(entity.spec.get("type") or "") in self.types

    def passes(self, entity: Entity, index: CatalogIndex) -> bool:
        owner = index.entities.get(index.owner_of(entity.key))
        if self.owner_resolvable and owner is not None and owner.kind in ("Group", "User"):
            return True
        sources = [entity.annotations] + ([owner.annotations] if self.inherit_owner and owner is not None else [])
        if any(str(a.get(name) or "").strip() for a in sources for name in self.annotations):
            return True
        spec = entity.spec
        if any(spec.get(name) not in (None, "", [], {}) for name in self.spec_fields):
            return True
        if self.link:
            for link in entity.metadata.get("links") or []:
                if isinstance(link, dict) and link.get("url") and \
                        self.link in f"{link.get('title', '')} {link.get('type', '')}".lower():
                    return True
        return False


def _names(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise ScorecardError(f"{where} must be a name or a list of names")
    return tuple(i.strip() for i in items)


def parse_checks(data: Any, source: str = "scorecard") -> tuple[Check, ...]:
    """`{"checks": [...]}` (or the list itself) → checks, validated; ScorecardError says what is wrong."""
    items = data.get("checks") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ScorecardError(f"{source}: expected `checks:` with a list of checks")
    checks: list[Check] = []
    for position, item in enumerate(items, 1):
        where = f"{source}: check {position}"
        if not isinstance(item, dict):
            raise ScorecardError(f"{where} must be a mapping")
        check_id, title = str(item.get("id") or "").strip(), str(item.get("title") or "").strip()
        if not check_id:
            raise ScorecardError(f"{where} needs an id")
        where = f"{source}: check {check_id!r}"
        if unknown := set(item) - {"id", "title", "weight", "inherit", "types", *CRITERIA}:
            raise ScorecardError(f"{where} has unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        if not any(item.get(c) for c in CRITERIA):
            raise ScorecardError(f"{where} needs at least one of {', '.join(CRITERIA)}")
        weight = item.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 100:
            raise ScorecardError(f"{where}: weight must be a number above 0 (at most 100)")
        if item.get("owner") not in (None, "resolvable"):
            raise ScorecardError(f"{where}: owner can only be `resolvable`")
        if item.get("inherit") not in (None, "owner"):
            raise ScorecardError(f"{where}: inherit can only be `owner`")
        link = item.get("link") or ""
        if not isinstance(link, str):
            raise ScorecardError(f"{where}: link must be a word such as runbook")
        checks.append(Check(
            id=check_id, title=title or check_id, weight=float(weight),
            annotations=_names(item["annotation"], f"{where}: annotation") if item.get("annotation") else (),
            spec_fields=_names(item["spec"], f"{where}: spec") if item.get("spec") else (),
            link=link.strip().lower(), owner_resolvable=item.get("owner") == "resolvable",
            inherit_owner=item.get("inherit") == "owner",
            types=_names(item["types"], f"{where}: types") if item.get("types") else ()))
    if len({c.id for c in checks}) != len(checks):
        raise ScorecardError(f"{source}: check ids must be unique")
    return tuple(checks)


DEFAULT_CHECKS = parse_checks(yaml.safe_load(DEFAULT_CHECKS_YAML), "default scorecard")


def load_checks(path: str) -> tuple[Check, ...]:
    """The checks of a YAML file; the defaults when `path` is empty."""
    if not path:
        return DEFAULT_CHECKS
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScorecardError(f"cannot read {path}: {exc.__class__.__name__}") from None
    return parse_checks(data, path)


@dataclass(frozen=True)
class ComponentScore:
    key: str
    name: str
    passed: tuple[str, ...]
    failed: tuple[str, ...]
    score: float                     # 0..1, weighted over the checks that apply to it


@dataclass(frozen=True)
class Gap:
    check: Check
    failing: tuple[str, ...]         # component names


@dataclass(frozen=True)
class TeamScorecard:
    team: str                        # the group's reference
    components: tuple[ComponentScore, ...]   # worst first
    gaps: tuple[Gap, ...]                     # most components failing (times weight) first

    @property
    def score(self) -> float | None:
        """The mean of the components' scores; None when the team owns no Component."""
        return sum(c.score for c in self.components) / len(self.components) if self.components else None


def score_component(entity: Entity, index: CatalogIndex, checks: Sequence[Check]) -> ComponentScore:
    results = [(check, check.passes(entity, index)) for check in checks if check.applies_to(entity)]
    total = sum(c.weight for c, _ in results)
    earned = sum(c.weight for c, ok in results if ok)
    return ComponentScore(entity.key, entity.name, tuple(c.id for c, ok in results if ok),
                          tuple(c.id for c, ok in results if not ok), earned / total if total else 1.0)


def team_scorecard(team_key: str, index: CatalogIndex, checks: Sequence[Check] = DEFAULT_CHECKS) -> TeamScorecard:
    owned = [index.entities[k] for k in index.keys_of_kind("Component") if index.owner_of(k) == team_key]
    scores = sorted((score_component(e, index, checks) for e in owned), key=lambda s: (s.score, s.name))
    gaps = [Gap(check, tuple(s.name for s in scores if check.id in s.failed)) for check in checks]
    gaps = sorted((g for g in gaps if g.failing), key=lambda g: (-len(g.failing) * g.check.weight, g.check.id))
    return TeamScorecard(team_key, tuple(scores), tuple(gaps))


def owning_teams(index: CatalogIndex) -> list[str]:
    """Every owner reference that some Component names (in the catalog or not)."""
    return sorted({owner for k in index.keys_of_kind("Component") if (owner := index.owner_of(k))})


def all_scorecards(index: CatalogIndex, checks: Sequence[Check] = DEFAULT_CHECKS) -> list[TeamScorecard]:
    """Every owning team's scorecard, worst score first."""
    cards = [team_scorecard(team, index, checks) for team in owning_teams(index)]
    return sorted(cards, key=lambda c: (c.score if c.score is not None else 2.0, c.team))


def find_team(text: str, index: CatalogIndex) -> str | None:
    """A group's key from `payments-team`, `group:payments-team` or `group:default/payments-team`."""
    query = text.strip()
    if not query:
        return None
    candidates: Iterable[str] = (query if ":" in query else f"group:{query}",)
    for candidate in candidates:
        entity = index.find(candidate).entity
        if entity is not None and entity.kind == "Group":
            return entity.key
    lowered = query.lower().removeprefix("group:")
    for team in owning_teams(index):
        if team.lower().endswith(f"/{lowered}") or team.lower() == lowered:
            return team
    return None
