"""Who may do what, decided in one place: platform admins from settings (Slack user ids and/or
catalog group references), everyone else from catalog ownership."""
from __future__ import annotations

from typing import Iterable

from bot.catalog.refs import RefError, parse_ref
from bot.people import Person


class Policy:
    def __init__(self, admins: Iterable[str]) -> None:
        self.admin_users: set[str] = set()
        self.admin_groups: set[str] = set()
        for admin in admins:
            if ":" in admin or "/" in admin:
                try:
                    self.admin_groups.add(str(parse_ref(admin, default_kind="group")))
                except RefError:
                    continue
            else:
                self.admin_users.add(admin)

    def is_admin(self, person: Person) -> bool:
        return person.slack_id in self.admin_users or any(g in self.admin_groups for g in person.groups)

    def may_manage(self, person: Person, requester: str, owner_ref: str) -> bool:
        """The requester, members of the owning group (or its parents) and platform admins."""
        return person.slack_id == requester or owner_ref in person.groups or self.is_admin(person)
