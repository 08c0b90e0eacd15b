"""Migration 0009 on both stores: messages stored before it become searchable (tokens,
addresses and the full-text index are backfilled), and the downgrade restores the
previous search column exactly."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.config import DEFAULT_TENANT_ID
from app.search.query import parse
from app.store.db import Database, create_engine
from app.store.migrate import downgrade, upgrade
from app.store.repositories.messages import MessageRepository
from tests.conftest import PG_SERVER, run_in_thread

INBOX_ID = "11111111-1111-4111-8111-111111111111"
OLD_MESSAGE = sa.table(
    "message",
    sa.column("id", sa.String),
    sa.column("tenant_id", sa.String),
    sa.column("inbox_id", sa.String),
    sa.column("submission_id", sa.String),
    sa.column("message_id_header", sa.Text),
    sa.column("subject", sa.Text),
    sa.column("from_name", sa.Text),
    sa.column("from_address", sa.Text),
    sa.column("to", sa.JSON),
    sa.column("received_at", sa.DateTime(timezone=True)),
    sa.column("seen", sa.Boolean),
    sa.column("size", sa.BigInteger),
    sa.column("has_attachments", sa.Boolean),
    sa.column("parse_error", sa.Text),
    sa.column("search_text", sa.Text),
    sa.column("details", sa.JSON),
)


def _details(text: str, cc: list[dict[str, Any]], rcpt: str) -> dict[str, Any]:
    return {
        "message_id": None,
        "cc": cc,
        "bcc": [],
        "reply_to": [{"name": None, "address": "help@shop.test"}],
        "date": None,
        "headers": [],
        "text": text,
        "html": None,
        "attachments": [],
        "envelope": {"mail_from": "bounce@shop.test", "rcpt_to": [rcpt]},
        "links": [],
        "codes": [],
    }


# Two messages as revision 0008 (and earlier) stored them (search_text as its ingest wrote it).
OLD_ROWS = [
    {
        "id": "22222222-2222-4222-8222-222222222222",
        "subject": "Reset your password",
        "from_name": "Shop",
        "from_address": "orders@shop.test",
        "to": [{"name": None, "address": "old@mailharness.test"}],
        "details": _details("Use code 123456 now.", [], "old@mailharness.test"),
        "search_text": "reset your password\nshop orders@shop.test\n old@mailharness.test\n"
        "bounce@shop.test\nold@mailharness.test\nuse code 123456 now.",
    },
    {
        "id": "33333333-3333-4333-8333-333333333333",
        "subject": "Invoice",
        "from_name": None,
        "from_address": "billing@corp.test",
        "to": [{"name": "Old Box", "address": "old@mailharness.test"}],
        "details": _details(
            "Pay please.", [{"name": "Boss", "address": "boss@corp.test"}], "old@mailharness.test"
        ),
        "search_text": "invoice\n billing@corp.test\nold box old@mailharness.test\n"
        "boss boss@corp.test\nbounce@shop.test\nold@mailharness.test\npay please.",
    },
]


@pytest.fixture(params=["sqlite", "postgres"])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty store of its own (never the shared test database: it goes down)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}"
        return
    name = f"mh_mig_{secrets.token_hex(4)}"
    admin = make_url(PG_SERVER).set(drivername="postgresql").render_as_string(False)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_in_thread(run(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    finally:
        run_in_thread(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _insert_old_rows(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO inbox (id, tenant_id, address, name, created_at) "
                    "VALUES (:id, :tenant, 'old@mailharness.test', NULL, :now)"
                ).bindparams(
                    sa.bindparam("now", type_=sa.DateTime(timezone=True)),
                ),
                {"id": INBOX_ID, "tenant": DEFAULT_TENANT_ID, "now": datetime.now(UTC)},
            )
            for row in OLD_ROWS:
                await conn.execute(
                    sa.insert(OLD_MESSAGE).values(
                        tenant_id=DEFAULT_TENANT_ID,
                        inbox_id=INBOX_ID,
                        submission_id=row["id"],
                        message_id_header=None,
                        received_at=datetime.now(UTC),
                        seen=False,
                        size=100,
                        has_attachments=False,
                        parse_error=None,
                        **row,
                    )
                )
    finally:
        await engine.dispose()


async def _search(url: str, q: str) -> list[str]:
    db = Database(create_engine(url, pool_size=1))
    try:
        async with db.read() as session:
            rows = await MessageRepository(session, DEFAULT_TENANT_ID).newest(
                query=parse(q), limit=10
            )
            return sorted(r.subject or "" for r in rows)
    finally:
        await db.close()


async def _scalars(url: str, sql: str) -> list[Any]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(sa.text(sql))).scalars())
    finally:
        await engine.dispose()


async def test_backfill_and_downgrade(fresh_url: str) -> None:
    url = fresh_url
    await upgrade(url, "0008")
    await _insert_old_rows(url)
    await upgrade(url)

    assert await _search(url, "password") == ["Reset your password"]
    assert await _search(url, '"use code 123456"') == ["Reset your password"]
    assert await _search(url, "subject:invoice") == ["Invoice"]
    assert await _search(url, "from:orders@shop.test") == ["Reset your password"]
    assert await _search(url, "cc:boss@corp.test") == ["Invoice"]
    assert await _search(url, "reply-to:help@shop.test") == ["Invoice", "Reset your password"]
    assert await _search(url, 'to:"old box"') == ["Invoice"]
    assert await _search(url, "to:old@mailharness.test -pay") == ["Reset your password"]
    assert await _scalars(url, "SELECT search_subject FROM message ORDER BY seq") == [
        "reset your password",
        "invoice",
    ]
    assert len(await _scalars(url, "SELECT kind FROM message_address")) == 7

    await downgrade(url, "0008")
    restored = await _scalars(url, "SELECT search_text FROM message ORDER BY seq")
    assert restored == [row["search_text"] for row in OLD_ROWS]
    tables = await _scalars(
        url,
        "SELECT name FROM sqlite_master WHERE name LIKE 'message_%'"
        if url.startswith("sqlite")
        else "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'message_%'",
    )
    assert sorted(tables) == ["message_raw"]

    await upgrade(url)
    assert await _search(url, "pay") == ["Invoice"]
