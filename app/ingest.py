"""The one ingest funnel (Postfix's cleanup): every received message enters here.

SUMMARY
    ``Ingest.accept(raw=..., envelope=...)`` parses the bytes once, resolves
    each recipient to an inbox (creating one for an unknown address unless
    strict), writes one summary row + raw bytes per inbox in a single
    transaction, commits, and only then publishes ``MessageReceived`` on the
    bus. The SMTP edge answers 250 after ``accept`` returns; any store error
    propagates as ``StoreUnavailable`` so the edge can answer 451.

INPUTS
    raw bytes exactly as received (never modified), an ``Envelope``.
OUTPUTS
    ``IngestResult(submission_id, messages)``.

    Recipients that match a relay rule are also queued for delivery onward
    (an ``outbound`` row plus one ``delivery`` per recipient) in the same
    transaction, so "accepted" always means "stored and queued".

CONFIGURATION PARAMETERS
    smtp_strict (no catch-all creation), relay_match.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.addresses import normalize_address
from app.config import DEFAULT_TENANT_ID
from app.delivery.queue import Queue
from app.delivery.routing import RelayMatch, Router
from app.errors import Conflict, NotFound, StoreUnavailable
from app.events.bus import DeliveryUpdated, EventBus, MessageReceived
from app.mail import Address, ParsedMessage, parse_message
from app.store.db import Database
from app.store.models import Delivery, Inbox, Message, Outbound
from app.store.repositories.inboxes import InboxRepository
from app.store.repositories.messages import MessageRepository
from app.store.types import utcnow

log = logging.getLogger(__name__)

# Parsing a large message off the event loop keeps other sessions responsive.
PARSE_IN_THREAD_ABOVE = 256 * 1024
# How much body text goes into the search column.
SEARCH_TEXT_LIMIT = 32 * 1024
ATTACHMENT_NAMESPACE = uuid.UUID("6f1d6c2e-4a8b-4f43-9a57-2f0f4a4a7b11")


@dataclass(frozen=True, slots=True)
class Envelope:
    mail_from: str
    rcpt_to: Sequence[str]
    client_address: str | None = None
    helo: str | None = None
    tls: bool = False
    authenticated: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "mail_from": self.mail_from,
            "rcpt_to": list(self.rcpt_to),
            "client_address": self.client_address,
            "helo": self.helo,
            "tls": self.tls,
            "authenticated": self.authenticated,
        }


@dataclass(frozen=True, slots=True)
class IngestResult:
    submission_id: str
    messages: list[Message] = field(default_factory=list)


def attachment_id(message_id: str, index: int) -> str:
    """Stable id of the index-th attachment of a message."""
    return str(uuid.uuid5(ATTACHMENT_NAMESPACE, f"{message_id}:{index}"))


def random_local_part() -> str:
    """An unguessable local part: 16 base32 characters (80 bits)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "".join(secrets.choice(alphabet) for _ in range(16))


class Ingest:
    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        strict: bool,
        router: Router,
        relay_match: RelayMatch | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.strict = strict
        self.router = router
        self.relay_match = relay_match or RelayMatch(None)

    async def known_recipient(self, address: str) -> bool:
        """True when ``address`` has an inbox (the strict RCPT check)."""
        async with self.db.read() as session:
            found = await InboxRepository(session, None).find_by_addresses(
                [normalize_address(address)]
            )
        return bool(found)

    async def parse(self, raw: bytes) -> ParsedMessage:
        """Parse once; large messages off the event loop."""
        if len(raw) > PARSE_IN_THREAD_ABOVE:
            return await asyncio.to_thread(parse_message, raw)
        return parse_message(raw)

    async def accept(self, *, raw: bytes, envelope: Envelope) -> IngestResult:
        """Store one SMTP transaction (and queue relayed recipients), commit, publish."""
        parsed = await self.parse(raw)
        submission_id = str(uuid.uuid4())
        try:
            async with self.db.write() as session:
                messages = await self.store(
                    session,
                    raw=raw,
                    parsed=parsed,
                    envelope=envelope,
                    submission_id=submission_id,
                )
                deliveries = await self._relay(session, raw=raw, parsed=parsed, envelope=envelope)
        except (SQLAlchemyError, OSError) as exc:
            log.error("ingest failed for submission %s: %s", submission_id, type(exc).__name__)
            raise StoreUnavailable("the store could not commit the message") from exc
        self.publish(messages)
        publish_deliveries(self.bus, deliveries, inbox_id=None)
        return IngestResult(submission_id=submission_id, messages=messages)

    async def store(
        self,
        session: AsyncSession,
        *,
        raw: bytes,
        parsed: ParsedMessage,
        envelope: Envelope,
        submission_id: str,
    ) -> list[Message]:
        """Write one message per recipient inbox inside the caller's transaction.

        Raises ``NotFound`` for an unknown recipient in strict mode."""
        recipients = list(dict.fromkeys(normalize_address(r) for r in envelope.rcpt_to))
        inboxes = await self._resolve(
            session_repo=InboxRepository(session, None), recipients=recipients
        )
        repo = MessageRepository(session, None)
        return [
            await repo.add(build_message(parsed, raw, envelope, inbox, submission_id), raw)
            for inbox in inboxes
        ]

    def publish(self, messages: Sequence[Message]) -> None:
        """Tell waiters; call only after the transaction that stored ``messages`` committed."""
        for message in messages:
            self.bus.publish(
                MessageReceived(
                    tenant_id=message.tenant_id,
                    inbox_id=message.inbox_id,
                    message_id=message.id,
                    seq=message.seq,
                )
            )

    async def _relay(
        self, session: AsyncSession, *, raw: bytes, parsed: ParsedMessage, envelope: Envelope
    ) -> list[Delivery]:
        """Queue the recipients a relay rule sends onward (never harness-domain ones:
        those were just stored in their inbox)."""
        if not self.relay_match:
            return []
        onward = [
            r
            for r in dict.fromkeys(envelope.rcpt_to)
            if self.relay_match.matches(r) and not self.router.is_local(r)
        ]
        if not onward:
            return []
        now = utcnow()
        outbound = Outbound(
            id=str(uuid.uuid4()),
            tenant_id=DEFAULT_TENANT_ID,
            inbox_id=None,
            source="relay",
            source_message_id=None,
            message_id_header=parsed.message_id,
            mail_from=envelope.mail_from,
            subject=parsed.subject,
            recipients=onward,
            size=len(raw),
            created_at=now,
        )
        return await Queue.enqueue(
            session,
            outbound=outbound,
            raw=raw,
            routes=[(r, self.router.route(r)) for r in onward],
            now=now,
        )

    async def _resolve(
        self, *, session_repo: InboxRepository, recipients: list[str]
    ) -> list[Inbox]:
        found = await session_repo.find_by_addresses(recipients)
        inboxes: list[Inbox] = []
        for address in recipients:
            inbox = found.get(address)
            if inbox is None:
                if self.strict:
                    raise NotFound(f"no inbox for {address}")
                inbox = await self._create_catch_all(session_repo, address)
            inboxes.append(inbox)
        return inboxes

    async def _create_catch_all(self, repo: InboxRepository, address: str) -> Inbox:
        try:
            return await repo.create(
                inbox_id=str(uuid.uuid4()), address=address, tenant_id=DEFAULT_TENANT_ID
            )
        except Conflict:
            # Another transaction created it a moment ago: use that one.
            found = await repo.find_by_addresses([address])
            if address not in found:
                raise
            return found[address]


def publish_deliveries(
    bus: EventBus, deliveries: Sequence[Delivery], *, inbox_id: str | None
) -> None:
    """Announce delivery rows after their transaction committed (wakes the worker)."""
    for d in deliveries:
        bus.publish(
            DeliveryUpdated(
                tenant_id=d.tenant_id,
                delivery_id=d.id,
                outbound_id=d.outbound_id,
                inbox_id=inbox_id,
                state=d.state,
            )
        )


def _addr_json(addr: Address) -> dict[str, Any]:
    return {"name": addr.name, "address": addr.address}


def build_message(
    parsed: ParsedMessage, raw: bytes, envelope: Envelope, inbox: Inbox, submission_id: str
) -> Message:
    """The summary row for one inbox's copy of a parsed message."""
    message_id = str(uuid.uuid4())
    header_addrs = {a.address.lower() for a in (*parsed.to, *parsed.cc, *parsed.bcc)}
    bcc = [_addr_json(a) for a in parsed.bcc] + [
        {"name": None, "address": rcpt}
        for rcpt in dict.fromkeys(envelope.rcpt_to)
        if rcpt.lower() not in header_addrs
    ]
    attachments = [
        {
            "id": attachment_id(message_id, a.index),
            "index": a.index,
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
            "content_id": a.content_id,
            "disposition": a.disposition,
        }
        for a in parsed.attachments
    ]
    details: dict[str, Any] = {
        "message_id": parsed.message_id,
        "cc": [_addr_json(a) for a in parsed.cc],
        "bcc": bcc,
        "reply_to": [_addr_json(a) for a in parsed.reply_to],
        "date": parsed.date.isoformat() if parsed.date else None,
        "headers": [{"name": h.name, "value": h.value} for h in parsed.headers],
        "text": parsed.text,
        "html": parsed.html,
        "attachments": attachments,
        "envelope": envelope.as_json(),
        "links": parsed.links,
        "codes": parsed.codes,
    }
    return Message(
        id=message_id,
        tenant_id=inbox.tenant_id,
        inbox_id=inbox.id,
        submission_id=submission_id,
        message_id_header=db_safe(parsed.message_id),
        subject=db_safe(parsed.subject),
        from_name=db_safe(parsed.from_.name if parsed.from_ else None),
        from_address=db_safe(parsed.from_.address if parsed.from_ else None),
        to=db_safe([_addr_json(a) for a in parsed.to]),
        received_at=utcnow(),
        seen=False,
        size=len(raw),
        has_attachments=any(a.disposition == "attachment" for a in parsed.attachments),
        parse_error=db_safe(parsed.parse_error),
        search_text=db_safe(search_text(parsed, envelope)),
        details=db_safe(details),
    )


T = TypeVar("T")


def db_safe(value: T) -> T:
    """Text the store can hold: NUL (which Postgres text refuses) becomes U+FFFD.

    Only the parsed copy is touched; the raw bytes are stored exactly."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value  # type: ignore[return-value]
    if isinstance(value, list):
        return [db_safe(v) for v in value]  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: db_safe(v) for k, v in value.items()}  # type: ignore[return-value]
    return value


def search_text(parsed: ParsedMessage, envelope: Envelope) -> str:
    parts: list[str] = [parsed.subject or ""]
    for addr in (parsed.from_, *parsed.to, *parsed.cc):
        if addr is not None:
            parts.append(f"{addr.name or ''} {addr.address}")
    parts.append(envelope.mail_from)
    parts.extend(envelope.rcpt_to)
    parts.append((parsed.text or parsed.html or "")[:SEARCH_TEXT_LIMIT])
    return "\n".join(parts).lower()
