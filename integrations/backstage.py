"""A Backstage instance's catalog API: every entity, read page by page with the cursor."""
from __future__ import annotations

from typing import Any

import aiohttp

from integrations.errors import IntegrationError, observed

PAGE_SIZE = 500


class BackstageClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str = "", timeout: float = 30.0) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def entities(self) -> list[dict[str, Any]]:
        """All entities, following `pageInfo.nextCursor` until the last page."""
        items: list[dict[str, Any]] = []
        params: dict[str, str] = {"limit": str(PAGE_SIZE)}
        while True:
            try:
                with observed("backstage", "entities"):
                    async with self.session.get(f"{self.base_url}/api/catalog/entities/by-query", params=params,
                                                headers=self.headers, timeout=self.timeout) as response:
                        if response.status != 200:
                            raise IntegrationError("Backstage", f"catalog API answered HTTP {response.status}")
                        page = await response.json()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise IntegrationError("Backstage", f"catalog API unreachable ({exc.__class__.__name__})") from exc
            except ValueError as exc:
                raise IntegrationError("Backstage", "catalog API answered something that is not JSON") from exc
            if not isinstance(page, dict):
                raise IntegrationError("Backstage", "catalog API answered something that is not a page of entities")
            items.extend(item for item in page.get("items") or [] if isinstance(item, dict))
            cursor = (page.get("pageInfo") or {}).get("nextCursor")
            if not cursor:
                return items
            params = {"limit": str(PAGE_SIZE), "cursor": cursor}
