"""Search indexes: search tokens, the address table and the full-text index.

Adds ``message.search_subject``, rewrites ``message.search_text`` as search tokens
(``app.search.text``), creates ``message_address`` and the full-text index
(SQLite: the FTS5 table ``message_fts`` kept by triggers; Postgres: the generated
``tsvector`` column ``search_tsv`` with a GIN index), and fills all of them for the
messages already stored, from their stored fields (nothing is re-parsed).
Downgrade removes them and restores the previous lowercase ``search_text``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 21:30:00
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

from app.search.text import address_entries, index_fields

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 500

_MESSAGE = sa.table(
    "message",
    sa.column("seq", sa.BigInteger),
    sa.column("subject", sa.Text),
    sa.column("from_name", sa.Text),
    sa.column("from_address", sa.Text),
    sa.column("to", sa.JSON),
    sa.column("details", sa.JSON),
    sa.column("search_subject", sa.Text),
    sa.column("search_text", sa.Text),
)
_ADDRESS = sa.table(
    "message_address",
    sa.column("message_seq", sa.BigInteger),
    sa.column("kind", sa.String),
    sa.column("address", sa.Text),
    sa.column("domain", sa.Text),
    sa.column("name", sa.Text),
)

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE message_fts USING fts5(search_subject, search_text, "
    "content='message', content_rowid='seq', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN "
    "INSERT INTO message_fts(rowid, search_subject, search_text) "
    "VALUES (new.seq, new.search_subject, new.search_text); END",
    "CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, search_subject, search_text) "
    "VALUES ('delete', old.seq, old.search_subject, old.search_text); END",
    "CREATE TRIGGER message_fts_update AFTER UPDATE OF search_subject, search_text ON message "
    "BEGIN "
    "INSERT INTO message_fts(message_fts, rowid, search_subject, search_text) "
    "VALUES ('delete', old.seq, old.search_subject, old.search_text); "
    "INSERT INTO message_fts(rowid, search_subject, search_text) "
    "VALUES (new.seq, new.search_subject, new.search_text); END",
    "INSERT INTO message_fts(message_fts) VALUES ('rebuild')",
]
SQLITE_FTS_DROP = [
    "DROP TRIGGER IF EXISTS message_fts_update",
    "DROP TRIGGER IF EXISTS message_fts_delete",
    "DROP TRIGGER IF EXISTS message_fts_insert",
    "DROP TABLE IF EXISTS message_fts",
]
POSTGRES_FTS = [
    "ALTER TABLE message ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('simple'::regconfig, search_subject), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, search_text), 'D')) STORED",
    "CREATE INDEX ix_message_search_tsv ON message USING gin (search_tsv)",
]
POSTGRES_FTS_DROP = [
    "DROP INDEX IF EXISTS ix_message_search_tsv",
    "ALTER TABLE message DROP COLUMN IF EXISTS search_tsv",
]


def _batches(conn: sa.Connection) -> Iterator[list[Any]]:
    last = -1
    while True:
        rows = conn.execute(
            sa.select(
                _MESSAGE.c.seq,
                _MESSAGE.c.subject,
                _MESSAGE.c.from_name,
                _MESSAGE.c.from_address,
                _MESSAGE.c.to,
                _MESSAGE.c.details,
            )
            .where(_MESSAGE.c.seq > last)
            .order_by(_MESSAGE.c.seq)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        yield rows
        last = rows[-1].seq


def _rewrite(
    conn: sa.Connection, columns: list[str], compute: Callable[[Any], dict[str, str]]
) -> None:
    """Set ``columns`` of every message to ``compute(row)``, a batch at a time."""
    update = (
        sa.update(_MESSAGE)
        .where(_MESSAGE.c.seq == sa.bindparam("b_seq"))
        .values({c: sa.bindparam(f"b_{c}") for c in columns})
    )
    for rows in _batches(conn):
        conn.execute(
            update,
            [{"b_seq": r.seq, **{f"b_{k}": v for k, v in compute(r).items()}} for r in rows],
        )


def _new_text(row: Any) -> dict[str, str]:
    subject, text = index_fields(
        subject=row.subject,
        from_name=row.from_name,
        from_address=row.from_address,
        to=row.to or [],
        details=row.details or {},
    )
    return {"search_subject": subject, "search_text": text}


def _legacy_text(row: Any) -> dict[str, str]:
    """The search column as ingest wrote it before this revision (lowercase text)."""
    details = row.details or {}
    parts: list[str] = [row.subject or ""]
    if row.from_address is not None:
        parts.append(f"{row.from_name or ''} {row.from_address}")
    for addr in [*(row.to or []), *(details.get("cc") or [])]:
        parts.append(f"{addr.get('name') or ''} {addr.get('address') or ''}")
    envelope = details.get("envelope") or {}
    parts.append(envelope.get("mail_from") or "")
    parts.extend(envelope.get("rcpt_to") or [])
    parts.append((details.get("text") or details.get("html") or "")[: 32 * 1024])
    return {"search_text": "\n".join(parts).lower()}


def _address_rows(row: Any) -> list[dict[str, Any]]:
    return [
        {
            "message_seq": row.seq,
            "kind": e.kind,
            "address": e.address,
            "domain": e.domain,
            "name": e.name,
        }
        for e in address_entries(
            from_name=row.from_name,
            from_address=row.from_address,
            to=row.to or [],
            details=row.details or {},
        )
    ]


def upgrade() -> None:
    conn = op.get_bind()
    op.add_column(
        "message", sa.Column("search_subject", sa.Text(), server_default="", nullable=False)
    )
    seq_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "message_address",
        sa.Column("message_seq", seq_type, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_seq"],
            ["message.seq"],
            name=op.f("fk_message_address_message_seq_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_seq", "kind", "address", name=op.f("pk_message_address")),
    )
    op.create_index("ix_message_address_address", "message_address", ["address", "kind"])
    op.create_index("ix_message_address_domain", "message_address", ["domain", "kind"])

    _rewrite(conn, ["search_subject", "search_text"], _new_text)
    for rows in _batches(conn):
        values = [v for r in rows for v in _address_rows(r)]
        if values:
            conn.execute(sa.insert(_ADDRESS), values)

    for statement in SQLITE_FTS if conn.dialect.name == "sqlite" else POSTGRES_FTS:
        op.execute(statement)


def downgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    for statement in SQLITE_FTS_DROP if sqlite else POSTGRES_FTS_DROP:
        op.execute(statement)
    op.drop_index("ix_message_address_domain", table_name="message_address")
    op.drop_index("ix_message_address_address", table_name="message_address")
    op.drop_table("message_address")
    _rewrite(conn, ["search_text"], _legacy_text)
    if sqlite:
        op.execute("ALTER TABLE message DROP COLUMN search_subject")
    else:
        op.drop_column("message", "search_subject")
