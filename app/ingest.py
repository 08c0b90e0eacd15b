"""The one ingest funnel (Postfix's cleanup): every received message enters here.

SUMMARY
    ``Ingest.accept(raw=..., envelope=...)`` parses the bytes once, resolves
    each recipient to an inbox (creating one for an unknown address unless
    strict), writes one summary row + raw bytes per inbox, commits, and only
    then publishes ``MessageReceived`` on the bus. The SMTP edge answers 250
    after ``accept`` returns; a store error raises ``StoreUnavailable`` so the
    edge can answer 451, and nothing of that submission is stored.

GROUP COMMIT
    Concurrent ``accept`` calls (several SMTP connections) share one
    transaction. ``accept`` parses, queues a job and awaits its future; one
    committer task per ``Ingest`` takes every queued job (up to
    ``BATCH_MAX_JOBS`` / ``BATCH_MAX_BYTES``), writes them in one transaction,
    commits, publishes, and then settles each future. There is no timer: a
    batch is whatever queued while the previous one was being written, so a
    lone connection pays no extra latency. The committer starts on the first
    job and ends by itself when the queue is empty (nothing to stop or leak);
    ``close()`` waits for it.

    The batch is first written with shared statements (one SELECT of every
    recipient, one multi-row INSERT of the summary rows, one of the raw
    bytes). A job that cannot be stored (strict mode and the inbox is gone)
    fails alone before anything is written. If a shared statement fails, the
    transaction is rolled back and the batch is written again with a SAVEPOINT
    per job, so a bad job fails only its own future (``StoreUnavailable`` for
    a store error). A failed commit fails every job of the batch with
    ``StoreUnavailable``.

INPUTS
    raw bytes exactly as received (never modified), an ``Envelope``.
OUTPUTS
    ``IngestResult(submission_id, messages)``.

    Recipients that match a relay rule are also queued for delivery onward
    (an ``outbound`` row plus one ``delivery`` per recipient) in the same
    transaction, so "accepted" always means "stored and queued".

LIMITS
    Per-inbox quotas (``app.quota``) are judged per SMTP transaction inside
    the storing transaction: ``MailboxFull`` fails that job alone (the edge
    answers ``452 4.2.2``, or ``552 5.2.2`` for a message larger than the
    whole quota), or the oldest messages are evicted in the same transaction.
    A catch-all inbox beyond ``max_inboxes`` for its tenant fails the job with
    ``InboxLimit`` (``452 4.3.1``).

CONFIGURATION PARAMETERS
    smtp_strict (no catch-all creation), relay_match, max_inboxes_per_key,
    inbox_max_messages, inbox_max_bytes, inbox_full.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.addresses import normalize_address
from app.config import DEFAULT_TENANT_ID
from app.delivery.queue import Queue
from app.delivery.routing import RelayMatch, Router
from app.errors import Conflict, InboxLimit, NotFound, StoreUnavailable
from app.events.bus import DeliveryUpdated, EventBus, MessageReceived
from app.mail import Address, ParsedMessage, parse_message
from app.metrics import Metrics
from app.quota import InboxQuota
from app.search.text import index_fields
from app.store.db import Database
from app.store.models import Delivery, Inbox, Message, Outbound
from app.store.repositories.inboxes import InboxRepository
from app.store.repositories.messages import MessageRepository
from app.store.types import utcnow

log = logging.getLogger(__name__)

# Parsing a large message off the event loop keeps other sessions responsive.
PARSE_IN_THREAD_ABOVE = 256 * 1024
ATTACHMENT_NAMESPACE = uuid.UUID("6f1d6c2e-4a8b-4f43-9a57-2f0f4a4a7b11")
# Group commit: at most this many SMTP transactions, and (past the first) this
# many raw bytes, go into one store transaction.
BATCH_MAX_JOBS = 64
BATCH_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Envelope:
    mail_from: str
    rcpt_to: Sequence[str]
    client_address: str | None = None
    helo: str | None = None
    tls: bool = False
    authenticated: str | None = None
    # The tenant of an SMTP AUTH with an API key: catch-all inboxes and relayed mail
    # belong to it. ``may_relay``: the submission may be relayed onward (authenticated,
    # or open mode on loopback) -- never an open relay.
    tenant_id: str | None = None
    may_relay: bool = True

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


class _WriteFailed(Exception):
    """A batch's writes failed before the commit (the transaction was rolled back)."""


@dataclass(slots=True, eq=False)
class _Job:
    """One SMTP transaction waiting for the committer."""

    raw: bytes
    parsed: ParsedMessage
    envelope: Envelope
    submission_id: str
    future: asyncio.Future[IngestResult]
    recipients: list[str]
    messages: list[Message] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    error: BaseException | None = None

    def reset(self) -> None:
        self.messages = []
        self.deliveries = []
        self.error = None

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


@dataclass(slots=True)
class BatchStats:
    """What the committer did (for logs, tests and the curious)."""

    batches: int = 0
    jobs: int = 0
    largest: int = 0
    retried: int = 0


class Ingest:
    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        strict: bool,
        router: Router,
        relay_match: RelayMatch | None = None,
        metrics: Metrics | None = None,
        quota: InboxQuota | None = None,
        max_inboxes: int = 0,
    ) -> None:
        self.db = db
        self.quota = quota or InboxQuota()
        self.max_inboxes = max_inboxes
        self.bus = bus
        self.metrics = metrics or Metrics()
        self.strict = strict
        self.router = router
        self.relay_match = relay_match or RelayMatch(None)
        self.stats = BatchStats()
        self._jobs: collections.deque[_Job] = collections.deque()
        self._committer: asyncio.Task[None] | None = None
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """``accept`` calls past parsing that are waiting for their commit."""
        return self._in_flight

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
        """Store one SMTP transaction (and queue relayed recipients), commit, publish.

        The write shares a transaction with whatever other transactions are
        waiting (group commit); this returns only after that commit."""
        parsed = await self.parse(raw)
        loop = asyncio.get_running_loop()
        job = _Job(
            raw=raw,
            parsed=parsed,
            envelope=envelope,
            submission_id=str(uuid.uuid4()),
            future=loop.create_future(),
            recipients=_recipients(envelope),
        )
        self._jobs.append(job)
        committer = self._committer
        if committer is None or committer.done() or committer.get_loop() is not loop:
            self._committer = loop.create_task(self._commit_queued(), name="ingest-committer")
        # Cancelling this await cancels the future: the committer then skips the job
        # if it has not taken it yet (and stores it anyway if it has).
        self._in_flight += 1
        try:
            return await job.future
        finally:
            self._in_flight -= 1

    async def close(self) -> None:
        """Wait until every queued job is committed (or failed). The committer ends by
        itself when idle, so this is only needed to drain before closing the store."""
        committer = self._committer
        if committer is not None and not committer.done():
            await asyncio.shield(committer)

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
        repo = InboxRepository(session, None)
        recipients = _recipients(envelope)
        found = await repo.find_by_addresses(recipients)
        inboxes = await self._inboxes(repo, found, recipients, envelope.tenant_id)
        messages = [build_message(parsed, raw, envelope, inbox, submission_id) for inbox in inboxes]
        quota = self.quota.session(session)
        await quota.admit(messages)
        await MessageRepository(session, None).add_many([(m, raw) for m in messages])
        await quota.evict()
        return messages

    def publish(self, messages: Sequence[Message]) -> None:
        """Tell waiters; call only after the transaction that stored ``messages`` committed."""
        self.metrics.messages_stored.inc(len(messages))
        for message in messages:
            self.bus.publish(
                MessageReceived(
                    tenant_id=message.tenant_id,
                    inbox_id=message.inbox_id,
                    message_id=message.id,
                    seq=message.seq,
                )
            )

    # -- the committer -----------------------------------------------------------
    async def _commit_queued(self) -> None:
        """Write batches until the queue is empty, then end."""
        batch: list[_Job] = []
        try:
            while self._jobs:
                batch = self._take_batch()
                if batch:
                    await self._write_batch(batch)
                batch = []
        except BaseException:
            # Cancelled (loop shutdown) or a bug: nobody may wait forever.
            error = StoreUnavailable("the store could not commit the message")
            for job in [*batch, *self._jobs]:
                job.fail(error)
            self._jobs.clear()
            raise

    def _take_batch(self) -> list[_Job]:
        batch: list[_Job] = []
        size = 0
        while self._jobs and len(batch) < BATCH_MAX_JOBS:
            job = self._jobs[0]
            if batch and size + len(job.raw) > BATCH_MAX_BYTES:
                break
            self._jobs.popleft()
            if job.future.done():  # the caller went away before the write
                continue
            batch.append(job)
            size += len(job.raw)
        return batch

    async def _write_batch(self, jobs: list[_Job]) -> None:
        """Write ``jobs`` in one transaction, commit, publish, settle every future."""
        stats = self.stats
        stats.batches += 1
        stats.jobs += len(jobs)
        stats.largest = max(stats.largest, len(jobs))
        try:
            try:
                await self._transaction(jobs, self._write_together)
            except _WriteFailed as exc:
                log.warning(
                    "ingest batch of %d failed (%s); retrying each in its own savepoint",
                    len(jobs),
                    type(exc.__cause__).__name__,
                    exc_info=_unexpected(exc.__cause__),
                )
                stats.retried += 1
                for job in jobs:
                    job.reset()
                await self._transaction(jobs, self._write_each)
        except (SQLAlchemyError, OSError, _WriteFailed) as exc:
            cause = exc.__cause__ if isinstance(exc, _WriteFailed) else exc
            if _unexpected(cause):
                log.error("ingest batch of %d failed", len(jobs), exc_info=cause)
            for job in jobs:
                log.error(
                    "ingest failed for submission %s: %s", job.submission_id, type(cause).__name__
                )
                unavailable = StoreUnavailable("the store could not commit the message")
                unavailable.__cause__ = cause
                job.fail(unavailable)
            return
        for job in jobs:  # committed: tell waiters and the worker, then the SMTP sessions
            if job.error is not None:
                job.fail(job.error)
                continue
            self.publish(job.messages)
            publish_deliveries(self.bus, job.deliveries, inbox_id=None)
            if not job.future.done():
                job.future.set_result(
                    IngestResult(submission_id=job.submission_id, messages=job.messages)
                )

    async def _transaction(
        self, jobs: list[_Job], write: Callable[[AsyncSession, list[_Job]], Awaitable[None]]
    ) -> None:
        """``write`` inside one write transaction; commits on success. A failure of the
        writes (not of the commit) is raised as ``_WriteFailed`` after the rollback."""
        async with self.db.write() as session:
            try:
                await write(session, jobs)
            except Exception as exc:
                raise _WriteFailed from exc

    async def _write_together(self, session: AsyncSession, jobs: list[_Job]) -> None:
        """The fast path: shared statements for the whole batch."""
        repo = InboxRepository(session, None)
        found = await repo.find_by_addresses(
            list(dict.fromkeys(a for job in jobs for a in job.recipients))
        )
        rows: list[tuple[Message, bytes]] = []
        quota = self.quota.session(session)
        for job in jobs:
            try:
                inboxes = await self._inboxes(repo, found, job.recipients, job.envelope.tenant_id)
                messages = [
                    build_message(job.parsed, job.raw, job.envelope, inbox, job.submission_id)
                    for inbox in inboxes
                ]
                await quota.admit(messages)
            except (NotFound, Conflict) as exc:  # this job only; none of its messages was written
                job.error = exc
                continue
            job.messages = messages
            rows.extend((m, job.raw) for m in job.messages)
        await MessageRepository(session, None).add_many(rows)
        await quota.evict()
        for job in jobs:
            if job.error is None:
                job.deliveries = await self._relay(
                    session, raw=job.raw, parsed=job.parsed, envelope=job.envelope
                )

    async def _write_each(self, session: AsyncSession, jobs: list[_Job]) -> None:
        """The careful path: a SAVEPOINT per job, so a failing job fails alone."""
        for job in jobs:
            try:
                async with session.begin_nested():
                    job.messages = await self.store(
                        session,
                        raw=job.raw,
                        parsed=job.parsed,
                        envelope=job.envelope,
                        submission_id=job.submission_id,
                    )
                    job.deliveries = await self._relay(
                        session, raw=job.raw, parsed=job.parsed, envelope=job.envelope
                    )
            except (NotFound, Conflict) as exc:
                job.reset()
                job.error = exc
            except (SQLAlchemyError, OSError) as exc:
                log.error(
                    "ingest failed for submission %s: %s", job.submission_id, type(exc).__name__
                )
                job.reset()
                job.error = StoreUnavailable("the store could not store the message")
                job.error.__cause__ = exc
            except Exception as exc:  # a bug: this job's caller reports it (451)
                job.reset()
                job.error = exc

    # -- recipients --------------------------------------------------------------
    async def _relay(
        self, session: AsyncSession, *, raw: bytes, parsed: ParsedMessage, envelope: Envelope
    ) -> list[Delivery]:
        """Queue the recipients a relay rule sends onward (never harness-domain ones:
        those were just stored in their inbox)."""
        if not self.relay_match or not envelope.may_relay:
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
            tenant_id=envelope.tenant_id or DEFAULT_TENANT_ID,
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
        enqueued = await Queue.enqueue(
            session,
            outbound=outbound,
            raw=raw,
            routes=[(r, self.router.route(r)) for r in onward],
            now=now,
        )
        return enqueued.deliveries

    async def _inboxes(
        self,
        repo: InboxRepository,
        found: dict[str, Inbox],
        recipients: list[str],
        tenant_id: str | None,
    ) -> list[Inbox]:
        """The inbox of each recipient, from ``found`` (which gains any catch-all made)."""
        inboxes: list[Inbox] = []
        for address in recipients:
            inbox = found.get(address)
            if inbox is None:
                if self.strict:
                    raise NotFound(f"no inbox for {address}")
                inbox = found[address] = await self._create_catch_all(
                    repo, address, tenant_id or DEFAULT_TENANT_ID
                )
            inboxes.append(inbox)
        return inboxes

    async def _create_catch_all(self, repo: InboxRepository, address: str, tenant_id: str) -> Inbox:
        if self.max_inboxes and await repo.count(tenant_id) >= self.max_inboxes:
            raise InboxLimit(
                f"no inbox for {address}: the inbox limit ({self.max_inboxes}) is reached"
            )
        try:
            return await repo.create(
                inbox_id=str(uuid.uuid4()), address=address, tenant_id=tenant_id
            )
        except Conflict:
            # Another transaction created it a moment ago: use that one.
            found = await repo.find_by_addresses([address])
            if address not in found:
                raise
            return found[address]


def _unexpected(error: BaseException | None) -> bool:
    """Not a store error: worth a traceback in the log."""
    return error is not None and not isinstance(error, SQLAlchemyError | OSError)


def _recipients(envelope: Envelope) -> list[str]:
    """The distinct normalised recipient addresses, in envelope order."""
    return list(dict.fromkeys(normalize_address(r) for r in envelope.rcpt_to))


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
    message = Message(
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
        details=db_safe(details),
    )
    message.search_subject, message.search_text = index_fields(
        subject=message.subject,
        from_name=message.from_name,
        from_address=message.from_address,
        to=message.to,
        details=message.details,
    )
    return message


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
