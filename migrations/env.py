"""Alembic environment: runs on the connection the application hands over
(``app.store.migrate``); with ``alembic`` on the command line it builds one
from ``MAILHARNESS_DATABASE_URL`` / the default SQLite file."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from app.config import Settings
from app.store.db import create_engine
from app.store.models import Base, include_name
from app.store.types import UTCDateTime

target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, _autogen_context: Any) -> str | bool:
    """Render our column types as plain SQLAlchemy ones in generated migrations."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    engine = create_engine(Settings().effective_database_url, pool_size=1)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_standalone())
