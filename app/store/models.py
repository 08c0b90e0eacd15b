"""Table models (SQLAlchemy 2 typed declarative). Only tables, never API schemas.

TABLES
    tenant        one per API key later; open mode uses the default tenant.
    inbox         a throwaway address owned by a tenant.
    inbox_tag     tags of an inbox (one row each, so ``?tag=`` is an index lookup).
    message       the summary row of a received message; ``seq`` is the store's
                  arrival order, ``details`` the parsed fields computed at ingest.
    message_raw   the raw bytes exactly as received, apart from the summary row,
                  written in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.store.types import UTCDateTime

# Sequences: BIGINT on Postgres, INTEGER PRIMARY KEY (the rowid) on SQLite.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Tenant(Base):
    __tablename__ = "tenant"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class Inbox(Base):
    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)


class InboxTag(Base):
    __tablename__ = "inbox_tag"

    inbox_id: Mapped[str] = mapped_column(
        ForeignKey("inbox.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Message(Base):
    __tablename__ = "message"
    __table_args__ = (
        Index("ix_message_inbox_seq", "inbox_id", "seq"),
        Index("ix_message_tenant_seq", "tenant_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    inbox_id: Mapped[str] = mapped_column(ForeignKey("inbox.id", ondelete="CASCADE"))
    submission_id: Mapped[str] = mapped_column(String(36), index=True)
    message_id_header: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    from_name: Mapped[str | None] = mapped_column(Text)
    from_address: Mapped[str | None] = mapped_column(Text)
    to: Mapped[list[Any]]
    received_at: Mapped[datetime]
    seen: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(BigInteger)
    has_attachments: Mapped[bool] = mapped_column(Boolean)
    parse_error: Mapped[str | None] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]


class MessageRaw(Base):
    __tablename__ = "message_raw"

    message_seq: Mapped[int] = mapped_column(
        SeqType, ForeignKey("message.seq", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)
