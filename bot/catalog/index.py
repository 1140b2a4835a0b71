"""In-memory indexes over the catalog: lookup by reference, name or title, "did you mean",
relations in both directions and the transitive blast radius.

An index is immutable once built; a refresh builds a new one and swaps it in whole, so a
lookup never sees a half-loaded catalog.
"""
from __future__ import annotations

import gc
import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Iterable

from bot.catalog.entity import KIND_BY_LOWER, Entity, Problem
from bot.catalog.refs import RefError, parse_ref
from bot.catalog.suggest import Suggester
from bot.catalog.relations import (API_CONSUMED_BY, CONSUMES_API, DEPENDENCY_OF, DEPENDS_ON, INVERSE, OWNED_BY,
                                   PROVIDES_API)

# When a bare name matches several kinds, the first kind here wins.
KIND_PREFERENCE = ("Component", "Resource", "API", "System", "Domain", "Group", "User", "Template", "Location")
SLACK_USER_ID = "slack.com/user-id"


def _normalise(text: str) -> str:
    """`Payment Service`, `payment_service` and `PAYMENT-SERVICE` all become `payment-service`."""
    return re.sub(r"[\s_]+", "-", text.strip().lower())


@dataclass(frozen=True)
class Lookup:
    """What a search found: the entity, or else up to three close names."""

    entity: Entity | None
    suggestions: tuple[str, ...] = ()


@dataclass
class CatalogIndex:
    entities: dict[str, Entity] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    by_name: dict[str, tuple[str, ...]] = field(default_factory=dict)
    relations: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    suggester: Suggester = field(default_factory=lambda: Suggester(()))
    users_by_email: dict[str, str] = field(default_factory=dict)
    users_by_slack_id: dict[str, str] = field(default_factory=dict)
    slack_id_of_user: dict[str, str] = field(default_factory=dict)
    _blast_radius: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, entities: Iterable[Entity], problems: Iterable[Problem] = ()) -> "CatalogIndex":
        # Millions of small objects and no cycles among them: the cyclic collector would only
        # re-scan them over and over (40% of the build at 100k entities).
        paused = gc.isenabled()
        gc.disable()
        try:
            return cls._build(entities, problems)
        finally:
            if paused:
                gc.enable()

    @classmethod
    def _build(cls, entities: Iterable[Entity], problems: Iterable[Problem]) -> "CatalogIndex":
        index = cls(problems=list(problems))
        by_name: dict[str, list[str]] = defaultdict(list)
        for entity in entities:
            if entity.key in index.entities:
                first = index.entities[entity.key]
                index.problems.append(Problem(entity.source, entity.line,
                                              f"also defined in {first.source}:{first.line}; this one is ignored", entity.key))
                continue
            index.entities[entity.key] = entity
            by_name[_normalise(entity.name)].append(entity.key)
            if entity.title:
                by_name[_normalise(entity.title)].append(entity.key)
        rank = {kind: i for i, kind in enumerate(KIND_PREFERENCE)}
        index.by_name = {n: tuple(sorted(set(keys), key=lambda k: rank[index.entities[k].kind])) for n, keys in by_name.items()}
        index.suggester = Suggester(sorted(index.by_name))
        index._derive_relations()
        index._map_people()
        return index

    def _map_people(self) -> None:
        """Catalog Users by profile e-mail and by `slack.com/user-id`, to tell who is asking."""
        for key in self.keys_of_kind("User"):
            data = self.entities[key].data
            email = ((data.get("spec") or {}).get("profile") or {}).get("email")
            slack_id = ((data.get("metadata") or {}).get("annotations") or {}).get(SLACK_USER_ID)
            if isinstance(email, str) and email:
                self.users_by_email.setdefault(email.lower(), key)
            if isinstance(slack_id, str) and slack_id:
                self.users_by_slack_id.setdefault(slack_id, key)
                self.slack_id_of_user[key] = slack_id

    def keys_of_kind(self, kind: str) -> list[str]:
        return [key for key, entity in self.entities.items() if entity.kind == kind]

    def _derive_relations(self) -> None:
        relations: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))

        def add(source: str, relation: str, target: str) -> None:
            targets = relations[relation][source]
            if target not in targets:
                targets.append(target)

        for entity in self.entities.values():
            for ref in entity.refs:
                add(entity.key, ref.relation, ref.target)
                add(ref.target, INVERSE[ref.relation], entity.key)
                if ref.target not in self.entities:
                    self.problems.append(Problem(entity.source, ref.line,
                                                 f"spec.{ref.field} refers to {ref.target}, which is not in the catalog", entity.key))
        # Tuples: at 100k entities the lists' spare capacity alone is tens of MB.
        self.relations = {relation: {source: tuple(targets) for source, targets in by_source.items()}
                          for relation, by_source in relations.items()}

    def related(self, key: str, relation: str) -> tuple[str, ...]:
        return self.relations.get(relation, {}).get(key, ())

    def owner_of(self, key: str) -> str:
        """The owner's reference, whether or not the owner is in the catalog; "" when none is set."""
        return next(iter(self.related(key, OWNED_BY)), "")

    def find(self, text: str) -> Lookup:
        """Find by `[kind:][namespace/]name`, name or title, any case; else suggest close names."""
        query = text.strip()
        if not query:
            return Lookup(None)
        if ":" in query or "/" in query:
            try:
                ref = parse_ref(query, default_kind="component")
            except RefError:
                ref = None
            if ref is not None and ref.kind in KIND_BY_LOWER:
                entity = self.entities.get(str(ref))
                # An explicit reference that is not there gets suggestions, never another namespace's entity.
                return Lookup(entity) if entity else Lookup(None, self.suggest(ref.name))
        keys = self.by_name.get(_normalise(query))
        if keys:
            return Lookup(self.entities[keys[0]])
        return Lookup(None, self.suggest(query))

    def suggest(self, text: str, limit: int = 3) -> tuple[str, ...]:
        """Up to `limit` catalog names close to `text`, best first."""
        return self.suggester.suggest(_normalise(text)[:100], limit)

    def dependencies(self, key: str) -> list[str]:
        """What this entity needs: its dependsOn targets and the APIs it consumes."""
        return list(self.related(key, DEPENDS_ON) + self.related(key, CONSUMES_API))

    def dependents(self, key: str) -> list[str]:
        """Who needs this entity directly: dependencyOf, and consumers of the APIs it provides
        (or of itself, when it is an API)."""
        found = list(self.related(key, DEPENDENCY_OF)) + list(self.related(key, API_CONSUMED_BY))
        for api in self.related(key, PROVIDES_API):
            found.extend(self.related(api, API_CONSUMED_BY))
        return list(dict.fromkeys(k for k in found if k != key))

    def blast_radius(self, key: str) -> int:
        """How many entities depend on this one, directly or through others. Remembered for the
        index's lifetime: a platform entity can have most of a large catalog behind it."""
        if key in self._blast_radius:
            return self._blast_radius[key]
        seen, queue = {key}, deque([key])
        while queue:
            for dependent in self.dependents(queue.popleft()):
                if dependent not in seen:
                    seen.add(dependent)
                    queue.append(dependent)
        self._blast_radius[key] = len(seen) - 1
        return len(seen) - 1
