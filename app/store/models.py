"""Table models (SQLAlchemy 2 typed declarative). Only tables, never API schemas.

TABLES
    tenant        one per API key later; open mode uses the default tenant.
    inbox         a throwaway address owned by a tenant.
    inbox_tag     tags of an inbox (one row each, so ``?tag=`` is an index lookup).
    message       the summary row of a received message; ``seq`` is the store's
                  arrival order, ``details`` the parsed fields computed at ingest.
    message_raw   the raw bytes exactly as received, apart from the summary row,
                  written in the same transaction.
    message_address one row per (kind, address) of a message (From, To, Cc, Bcc,
                  Reply-To) for exact address search; written with the message.
    (not modelled) the full-text index over ``search_subject``/``search_text``,
                  built by dialect-specific DDL (migration 0009): SQLite, the FTS5
                  table ``message_fts`` (external content ``message``, kept by
                  triggers on ``message``); Postgres, the generated column
                  ``message.search_tsv`` with the GIN index ``ix_message_search_tsv``.
                  ``include_name`` hides them from schema comparison. A SQLite
                  batch migration that recreates ``message`` must recreate the
                  triggers too.
    outbound      a message handed to the delivery queue (sent, relayed, released);
    outbound_raw  its bytes, apart.
    delivery      one recipient of an outbound message: state, attempts, next
                  attempt, last remote reply, and the worker lease.
    delivery_event the append-only timeline of a delivery.
    fault_rule    deterministic faults injected at SMTP intake and local delivery.
    smtp_session  the transcript of one SMTP session, intake or outbound relay
                  (commands and replies with timings; never data or secrets).
    smtp_session_inbox the inboxes a session concerns (so ``?inbox_id=`` is an
                  index lookup).
    api_key       an API key (hashed), one tenant each.
    webhook       an HTTP endpoint that receives a tenant's (or an inbox's) events.
    webhook_call  one event to POST to one webhook: a queue row (state, attempts,
                  next attempt, lease) holding the exact body to send.
    webhook_attempt the append-only record of each POST of a call.
    webhook_cursor the fan-out position in the store's sequences (one row).
    compat_inbox  MailSlurp-compatible API: description and favourite of an inbox.
    compat_upload MailSlurp-compatible API: attachments uploaded for sending.
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
    type_annotation_map = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON(none_as_null=True),
        list[Any]: JSON(none_as_null=True),
    }


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
    # Search tokens (app.search.text): the subject's, and everything searchable.
    search_subject: Mapped[str] = mapped_column(Text, default="", server_default="")
    search_text: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]


class MessageAddress(Base):
    """A (kind, address) of a message, for exact ``from:``/``to:``/... search."""

    __tablename__ = "message_address"
    __table_args__ = (
        Index("ix_message_address_address", "address", "kind"),
        Index("ix_message_address_domain", "domain", "kind"),
    )

    message_seq: Mapped[int] = mapped_column(
        SeqType, ForeignKey("message.seq", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # from|to|cc|bcc|reply_to
    address: Mapped[str] = mapped_column(Text, primary_key=True)  # normalised, lowercase
    domain: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)  # the display name's search tokens


class MessageRaw(Base):
    __tablename__ = "message_raw"

    message_seq: Mapped[int] = mapped_column(
        SeqType, ForeignKey("message.seq", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Outbound(Base):
    """A message handed to the delivery queue: sent through the API, relayed from
    SMTP intake by a relay rule, or released from a stored message."""

    __tablename__ = "outbound"
    __table_args__ = (Index("ix_outbound_inbox_created", "inbox_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    inbox_id: Mapped[str | None] = mapped_column(ForeignKey("inbox.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(16))  # api | relay | release | dsn
    source_message_id: Mapped[str | None] = mapped_column(String(36))
    message_id_header: Mapped[str | None] = mapped_column(Text)
    mail_from: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    recipients: Mapped[list[Any]]
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class OutboundRaw(Base):
    __tablename__ = "outbound_raw"

    outbound_id: Mapped[str] = mapped_column(
        ForeignKey("outbound.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Delivery(Base):
    """One recipient of one outbound message: the unit the queue schedules."""

    __tablename__ = "delivery"
    __table_args__ = (
        Index("ix_delivery_due", "state", "next_attempt_at"),
        Index("ix_delivery_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    outbound_id: Mapped[str] = mapped_column(
        ForeignKey("outbound.id", ondelete="CASCADE"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(320), index=True)
    route: Mapped[str] = mapped_column(String(16))  # local | relay | mx | held
    destination: Mapped[str | None] = mapped_column(String(330), index=True)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_response: Mapped[dict[str, Any] | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    dsn_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DeliveryEvent(Base):
    """Append-only timeline of a delivery: queued, attempt, deferred, delivered, ..."""

    __tablename__ = "delivery_event"
    __table_args__ = (Index("ix_delivery_event_delivery_seq", "delivery_id", "seq"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("delivery.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(16))
    code: Mapped[int | None] = mapped_column(Integer)
    enhanced: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    remote: Mapped[str | None] = mapped_column(String(300))


class FaultRule(Base):
    """A deterministic fault: at a stage, for matching mail, answer this (or hang up)."""

    __tablename__ = "fault_rule"
    __table_args__ = (Index("ix_fault_rule_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    inbox_id: Mapped[str | None] = mapped_column(
        ForeignKey("inbox.id", ondelete="CASCADE"), index=True
    )
    match_recipient: Mapped[str | None] = mapped_column(String(320))
    match_sender: Mapped[str | None] = mapped_column(String(320))
    stage: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))  # reply | disconnect
    reply_code: Mapped[int | None] = mapped_column(Integer)
    reply_enhanced: Mapped[str | None] = mapped_column(String(16))
    reply_text: Mapped[str | None] = mapped_column(Text)
    delay_ms: Mapped[int] = mapped_column(Integer, default=0)
    times: Mapped[int | None] = mapped_column(Integer)
    probability: Mapped[float | None]
    seed: Mapped[int | None] = mapped_column(BigInteger)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    evaluations: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]


class SmtpSession(Base):
    """One SMTP session: inbound (intake) or outbound (a relay attempt), with its lines."""

    __tablename__ = "smtp_session"
    __table_args__ = (
        Index("ix_smtp_session_tenant_started", "tenant_id", "started_at", "id"),
        Index("ix_smtp_session_started", "started_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(8))  # inbound | outbound
    client_address: Mapped[str | None] = mapped_column(String(300))
    server_address: Mapped[str | None] = mapped_column(String(300))
    helo: Mapped[str | None] = mapped_column(Text)
    tls_version: Mapped[str | None] = mapped_column(String(32))
    tls_cipher: Mapped[str | None] = mapped_column(String(100))
    auth_user: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    lines: Mapped[list[Any]]  # [{"ms": float, "dir": "C" | "S", "text": str}]
    submission_ids: Mapped[list[Any]]
    # Outbound: the outbound message and deliveries the attempt was for, when found.
    outbound_id: Mapped[str | None] = mapped_column(String(36))
    delivery_ids: Mapped[list[Any]]


class SmtpSessionInbox(Base):
    """An inbox a session concerns: inbound, the inboxes that received its mail;
    outbound, the sending inbox."""

    __tablename__ = "smtp_session_inbox"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("smtp_session.id", ondelete="CASCADE"), primary_key=True
    )
    inbox_id: Mapped[str] = mapped_column(
        ForeignKey("inbox.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ApiKey(Base):
    """An API key: one tenant each. Only the SHA-256 of the key is stored."""

    __tablename__ = "api_key"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Webhook(Base):
    """An endpoint for a tenant's events (or one inbox's), signed with its secret."""

    __tablename__ = "webhook"
    __table_args__ = (Index("ix_webhook_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    inbox_id: Mapped[str | None] = mapped_column(
        ForeignKey("inbox.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[Any]]
    # Needed in clear to compute each signature; never returned after creation.
    secret: Mapped[str] = mapped_column(String(200))
    payload_format: Mapped[str] = mapped_column(String(32), default="native")
    # Only events stored after the webhook was created are sent to it.
    from_message_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    from_delivery_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]


class WebhookCall(Base):
    """One event for one webhook: queued until its POST succeeds or it fails for good."""

    __tablename__ = "webhook_call"
    __table_args__ = (
        Index("ix_webhook_call_due", "state", "next_attempt_at"),
        Index("ix_webhook_call_webhook_created", "webhook_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(36))  # the message or delivery
    body: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16))  # queued | deferred | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookAttempt(Base):
    """One POST of a webhook call: the status (or the error) and how long it took."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_call_seq", "call_id", "seq"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("webhook_call.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(Text)


class WebhookCursor(Base):
    """Where the fan-out stands in the message and delivery-event sequences."""

    __tablename__ = "webhook_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    delivery_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class CompatInbox(Base):
    """MailSlurp-compatible API: the per-inbox fields MailSlurp has and we lack."""

    __tablename__ = "compat_inbox"

    inbox_id: Mapped[str] = mapped_column(
        ForeignKey("inbox.id", ondelete="CASCADE"), primary_key=True
    )
    description: Mapped[str | None] = mapped_column(Text)
    favourite: Mapped[bool] = mapped_column(Boolean, default=False)


class CompatUpload(Base):
    """MailSlurp-compatible API: an uploaded attachment, referenced by id when sending."""

    __tablename__ = "compat_upload"
    __table_args__ = (Index("ix_compat_upload_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    content_id: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


# Search-index objects made by dialect-specific DDL, not by these models.
UNMODELLED_NAMES = frozenset({"search_tsv", "ix_message_search_tsv"})
UNMODELLED_PREFIX = "message_fts"


def include_name(name: str | None, _type: str, _parent_names: Any) -> bool:
    """Alembic ``include_name`` hook: leave the full-text index objects alone."""
    if name is None:
        return True
    return name not in UNMODELLED_NAMES and not name.startswith(UNMODELLED_PREFIX)
