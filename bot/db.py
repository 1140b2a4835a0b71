"""The async database: one engine, sessions, migrations. SQLite by default, PostgreSQL in production."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def async_url(url: str) -> str:
    """`sqlite:///x.db` → `sqlite+aiosqlite:///x.db`; `postgresql://` → `postgresql+asyncpg://`."""
    parsed = make_url(url)
    driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}
    return parsed.set(drivername=driver.get(parsed.drivername, parsed.drivername)).render_as_string(hide_password=False)


def _upgrade(connection, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


class Database:
    """Owns the engine; `session()` opens a unit of work."""

    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            database = make_url(self.url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(self.url, pool_pre_ping=not self.is_sqlite)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.session = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    async def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema; on PostgreSQL under an advisory lock, so replicas starting together
        migrate one after the other."""
        async with self.engine.begin() as connection:
            if not self.is_sqlite:
                await connection.execute(text("SELECT pg_advisory_xact_lock(726572001)"))
            await connection.run_sync(_upgrade, revision)

    async def upsert(self, model: Any, rows: Sequence[dict[str, Any]], keys: Iterable[str],
                     update: Iterable[str] = (), batch: int = 500, add: Iterable[str] = ()) -> None:
        """Insert rows; a row whose `keys` exist already sets its `update` columns to the new
        values and adds the new values to its `add` columns (or, with neither, is skipped)."""
        if not rows:
            return
        statement = (sqlite.insert if self.is_sqlite else postgresql.insert)(model)
        changes = {name: statement.excluded[name] for name in update}
        changes.update({name: getattr(model, name) + statement.excluded[name] for name in add})
        statement = (statement.on_conflict_do_update(index_elements=list(keys), set_=changes) if changes
                     else statement.on_conflict_do_nothing(index_elements=list(keys)))
        async with self.session() as session:
            for start in range(0, len(rows), batch):
                await session.exec(statement, params=rows[start:start + batch])
            await session.commit()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers work while the catalog is written; wait for locks instead of failing."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
