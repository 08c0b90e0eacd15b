"""Shared fixtures: a real store (SQLite file and Postgres), a running harness, clients.

Every test that takes ``harness`` (or ``db_url``) runs twice: on a fresh
SQLite file and on this run's own Postgres database, which is created at
session start (``mh_test_<random>``), migrated once, emptied after every test
and dropped at the end. ``MAILHARNESS_TEST_PG`` overrides the server URL
(default ``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.config import DEFAULT_TENANT_ID, Settings
from app.runtime import Runtime
from app.server import Services
from app.store.db import create_engine
from app.store.migrate import upgrade
from tests.support import Harness

PG_SERVER = os.environ.get(
    "MAILHARNESS_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
T = TypeVar("T")
TABLES_TO_EMPTY = [
    "compat_upload",
    "compat_inbox",
    "webhook_attempt",
    "webhook_call",
    "webhook",
    "webhook_cursor",
    "api_key",
    "smtp_session_inbox",
    "smtp_session",
    "fault_rule",
    "delivery_event",
    "delivery",
    "outbound_raw",
    "outbound",
    "message_raw",
    "message_address",
    "message",
    "inbox_tag",
    "inbox",
]


def run_in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh loop in another thread (usable from
    session fixtures even while a test's event loop is running)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """This run's own Postgres database, migrated; dropped at the end."""
    name = f"mh_test_{secrets.token_hex(4)}"
    admin = _asyncpg_dsn(PG_SERVER)

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_in_thread(create())
    url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    run_in_thread(upgrade(url))
    yield url
    run_in_thread(drop())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "mailharness.db"
    run_in_thread(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        target = tmp_path / "mailharness.db"
        shutil.copy(sqlite_template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    url: str = request.getfixturevalue("pg_url")
    yield url
    engine = create_engine(url, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(TABLES_TO_EMPTY)} RESTART IDENTITY CASCADE"))
        # Keys made tenants of their own; only the migration's default one stays.
        await conn.execute(
            text("DELETE FROM tenant WHERE id <> :default"), {"default": DEFAULT_TENANT_ID}
        )
    await engine.dispose()


def make_settings(db_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "database_url": db_url,
        "host": "127.0.0.1",
        "http_port": 0,
        "smtp_port": 0,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Tests override settings with ``@pytest.mark.parametrize`` or by redefining this."""
    return {}


@pytest.fixture
async def harness(
    db_url: str, tmp_path: Path, settings_overrides: dict[str, Any]
) -> AsyncIterator[Harness]:
    """A running Mailharness (SMTP + HTTP on ephemeral ports) on the test's store."""
    settings = make_settings(db_url, tmp_path, **settings_overrides)
    runtime = Runtime.build(settings)
    services = Services(runtime)
    await services.start()
    base = f"http://127.0.0.1:{services.http_port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        yield Harness(
            runtime=runtime,
            services=services,
            http=client,
            base_url=base,
            smtp_host="127.0.0.1",
            smtp_port=services.smtp_port,
        )
    await services.stop()


FIXTURES = Path(__file__).parent / "fixtures"
