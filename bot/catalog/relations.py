"""Relations between entities, derived from `spec` fields the way Backstage's processors do.

`REFERENCE_FIELDS` says, per kind, which `spec` field refers to which default kind and which
relation it makes; every relation also gets its inverse on the target (ownedBy ↔ ownerOf).
"""
from __future__ import annotations

OWNED_BY, OWNER_OF = "ownedBy", "ownerOf"
DEPENDS_ON, DEPENDENCY_OF = "dependsOn", "dependencyOf"
PART_OF, HAS_PART = "partOf", "hasPart"
PROVIDES_API, API_PROVIDED_BY = "providesApi", "apiProvidedBy"
CONSUMES_API, API_CONSUMED_BY = "consumesApi", "apiConsumedBy"
MEMBER_OF, HAS_MEMBER = "memberOf", "hasMember"
PARENT_OF, CHILD_OF = "parentOf", "childOf"

INVERSE = {
    OWNED_BY: OWNER_OF, DEPENDS_ON: DEPENDENCY_OF, PART_OF: HAS_PART, PROVIDES_API: API_PROVIDED_BY,
    CONSUMES_API: API_CONSUMED_BY, MEMBER_OF: HAS_MEMBER, PARENT_OF: CHILD_OF,
}
INVERSE.update({v: k for k, v in list(INVERSE.items())})

_OWNER = ("owner", "group", OWNED_BY)
# kind → (spec field, default kind of its references (None: the reference must name it), relation)
REFERENCE_FIELDS: dict[str, tuple[tuple[str, str | None, str], ...]] = {
    "Component": (_OWNER, ("subcomponentOf", "component", PART_OF), ("providesApis", "api", PROVIDES_API),
                  ("consumesApis", "api", CONSUMES_API), ("dependsOn", None, DEPENDS_ON),
                  ("dependencyOf", None, DEPENDENCY_OF), ("system", "system", PART_OF)),
    "API": (_OWNER, ("system", "system", PART_OF)),
    "Resource": (_OWNER, ("dependsOn", None, DEPENDS_ON), ("dependencyOf", None, DEPENDENCY_OF),
                 ("system", "system", PART_OF)),
    "System": (_OWNER, ("domain", "domain", PART_OF)),
    "Domain": (_OWNER, ("subdomainOf", "domain", PART_OF)),
    "User": (("memberOf", "group", MEMBER_OF),),
    "Group": (("parent", "group", CHILD_OF), ("children", "group", PARENT_OF), ("members", "user", HAS_MEMBER)),
    "Template": (_OWNER,),
}
