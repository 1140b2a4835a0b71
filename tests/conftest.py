"""Shared fixtures: a real PostgreSQL server for the session, and a database URL per test that
runs database tests on both SQLite and PostgreSQL."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKSTAGE_EXAMPLE = Path(__file__).resolve().parent / "data" / "backstage-catalog"
DEMO_CATALOG = ROOT / "examples" / "catalog" / "all.yaml"


def _postgres_bin() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster (or PAVEDROAD_TEST_POSTGRES_URL when given)."""
    if os.environ.get("PAVEDROAD_TEST_POSTGRES_URL"):
        yield os.environ["PAVEDROAD_TEST_POSTGRES_URL"]
        return
    binaries = _postgres_bin()
    if binaries is None:
        if os.environ.get("PAVEDROAD_REQUIRE_POSTGRES"):
            pytest.fail("PostgreSQL is required (PAVEDROAD_REQUIRE_POSTGRES) but initdb was not found")
        pytest.skip("PostgreSQL is not installed here; `make test` installs it")
    home = Path(tempfile.mkdtemp(prefix="pavedroad-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(home, "postgres")
    data, port = home / "data", _free_port()
    subprocess.run(as_postgres + [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True)
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200"
    subprocess.run(as_postgres + [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(home / "log"), "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_postgres + [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request, tmp_path):
    """A fresh, empty database: SQLite in a temp dir, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pavedroad.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield server.rsplit("/", 1)[0] + f"/{name}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()
