"""Engine and session factory for SQLite (embedded) and Postgres.

SUMMARY
    ``create_engine(settings)`` builds the async engine; for SQLite it turns on
    WAL, a busy timeout, foreign keys and NORMAL sync on every connection.
    The ``sqlite3`` module begins a transaction only before the first
    INSERT/UPDATE/DELETE (so reads stay cheap); a SAVEPOINT issued before that
    would be the outermost transaction and its RELEASE would commit what the
    outer rollback must undo, so a ``BEGIN`` is emitted first in that case.
    ``Database`` bundles the engine, the session factory and a write lock that
    serialises writers on SQLite (one writer per file) and is a no-op on Postgres.

CONFIGURATION PARAMETERS
    database_url, data_dir, db_pool_size, db_statement_timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from app.config import Settings


def create_engine(
    url: str, *, pool_size: int = 10, statement_timeout: float | None = None
) -> AsyncEngine:
    """An async engine for ``url`` with the per-dialect settings Mailharness needs.

    ``statement_timeout`` (seconds, Postgres) bounds every statement server-side."""
    if url.startswith("sqlite"):
        engine = _create_async_engine(url, connect_args={"timeout": 30})
        _sqlite_pragmas(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if statement_timeout:
        connect_args["server_settings"] = {"statement_timeout": str(int(statement_timeout * 1000))}
    return _create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine.sync_engine, "savepoint")
    def _on_savepoint(conn: Any, _name: str) -> None:
        # The sqlite3 module opens a transaction only before INSERT/UPDATE/DELETE.
        # A SAVEPOINT issued before any of those would itself be the outermost
        # transaction, and its RELEASE would commit: open the real one first.
        if not conn.connection.driver_connection.in_transaction:
            conn.exec_driver_sql("BEGIN")


class Database:
    """Engine + sessions + the writer discipline of the dialect."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(
            create_engine(
                settings.effective_database_url,
                pool_size=settings.db_pool_size,
                statement_timeout=settings.db_statement_timeout,
            )
        )

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries only."""
        async with self.sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session inside a transaction that commits on clean exit.

        On SQLite writers are serialised in-process, so concurrent transactions
        never fight over the file lock (SQLite allows one writer at a time).
        """
        lock: contextlib.AbstractAsyncContextManager[Any] = (
            self._write_lock if self.is_sqlite else contextlib.nullcontext()
        )
        async with lock, self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
