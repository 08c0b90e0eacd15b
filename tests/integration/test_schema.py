"""The migrated schema equals the models (no drift) on both stores, migrations run
down and up again, and the committed OpenAPI document matches the code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.api.app import openapi_document
from app.config import DEFAULT_TENANT_ID
from app.store.db import create_engine
from app.store.migrate import downgrade, upgrade
from app.store.models import Base, include_name

ROOT = Path(__file__).resolve().parents[2]


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(
        conn, opts={"compare_type": True, "include_name": include_name}
    )
    return list(compare_metadata(ctx, Base.metadata))


async def test_migrated_schema_matches_models(db_url: str) -> None:
    engine = create_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
            tenant = (
                (
                    await conn.execute(
                        text("SELECT name FROM tenant WHERE id = :id"), {"id": DEFAULT_TENANT_ID}
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    assert diff == []
    assert tenant == ["default"]  # seeded by the first migration (other tests add more)


async def test_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.db'}"
    await upgrade(url)
    await downgrade(url, "base")
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            tables = (
                (await conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'")))
                .scalars()
                .all()
            )
        assert set(tables) <= {"alembic_version"}
    finally:
        await engine.dispose()
    await upgrade(url)


def test_committed_openapi_is_current() -> None:
    committed = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    assert committed == openapi_document(), "openapi/openapi.json is stale: run `make openapi`"


def test_openapi_covers_the_contract_paths() -> None:
    paths = openapi_document()["paths"]
    for path, method in [
        ("/api/v1/inboxes", "post"),
        ("/api/v1/inboxes", "get"),
        ("/api/v1/inboxes/{inbox_id}", "get"),
        ("/api/v1/inboxes/{inbox_id}", "delete"),
        ("/api/v1/inboxes/{inbox_id}/messages", "delete"),
        ("/api/v1/inboxes/{inbox_id}/messages", "get"),
        ("/api/v1/messages", "get"),
        ("/api/v1/messages/{message_id}", "get"),
        ("/api/v1/messages/{message_id}", "patch"),
        ("/api/v1/messages/{message_id}", "delete"),
        ("/api/v1/messages/{message_id}/raw", "get"),
        ("/api/v1/messages/{message_id}/attachments/{attachment_id}", "get"),
        ("/api/v1/inboxes/{inbox_id}/wait", "get"),
        ("/api/v1/inboxes/{inbox_id}/quiet", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ]:
        assert method in paths.get(path, {}), (method, path)
