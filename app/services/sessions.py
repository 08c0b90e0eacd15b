"""SMTP session transcripts: storing them in the background, reading them, trimming them.

SUMMARY
    ``SessionRecorder`` is the ``TranscriptSink`` of the SMTP listener and of
    the relay transports. ``record()`` never blocks and never raises: finished
    transcripts are queued and one background task writes them, many per
    transaction; a failed write is logged and dropped (retried once row by
    row), and past ``max_pending`` queued transcripts new ones are dropped.
    ``flush()`` waits until everything recorded so far is written (shutdown,
    tests). An inbound session belongs to the tenant whose inboxes its mail
    went to (the default tenant when none, or several); an outbound one is
    matched to its outbound message (sender, recipients, Message-ID), whose
    tenant, sending inbox and deliveries it takes.

    ``Sessions`` is the per-tenant read side for the API (newest first,
    ``?inbox_id=``, ``?direction=``, cursor pages; one session with its lines).

    ``trim_sessions(db, keep)`` deletes every session but the ``keep`` newest,
    in batches; the janitor calls it with ``session_retention``.

CONFIGURATION PARAMETERS
    session_retention.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime

from app.api import pagination
from app.api.schemas.common import Page
from app.api.schemas.sessions import SessionLine, SessionOut, SessionSummaryOut
from app.config import DEFAULT_TENANT_ID
from app.errors import InvalidInput
from app.services.mailbox import check_id
from app.smtp.transcript import Transcript
from app.store.db import Database
from app.store.models import SmtpSession
from app.store.repositories.inboxes import InboxRepository
from app.store.repositories.sessions import SessionRepository

log = logging.getLogger(__name__)


class SessionRecorder:
    """Stores finished transcripts in the background, in batches."""

    def __init__(self, *, db: Database, batch: int = 100, max_pending: int = 10_000) -> None:
        self.db = db
        self.batch = batch
        self.max_pending = max_pending
        self.stored = 0
        self.dropped = 0
        self._pending: list[Transcript] = []
        self._writer: asyncio.Task[None] | None = None

    def record(self, transcript: Transcript) -> None:
        transcript.finish()
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("smtp session transcripts dropped (store too slow): %d", self.dropped)
            return
        self._pending.append(transcript)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._drain(), name="smtp-session-recorder"
            )

    async def flush(self) -> None:
        """Return once every transcript recorded before (or during) the call is stored."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self.batch]
            del self._pending[: self.batch]
            try:
                await self._write(batch)
            except Exception:
                if len(batch) == 1:
                    log.exception("smtp session transcript %s not stored", batch[0].id)
                    continue
                log.warning("storing %d smtp session transcripts failed; one by one", len(batch))
                for transcript in batch:
                    try:
                        await self._write([transcript])
                    except Exception:
                        log.exception("smtp session transcript %s not stored", transcript.id)

    async def _write(self, batch: Sequence[Transcript]) -> None:
        async with self.db.write() as session:
            repo = SessionRepository(session, None)
            owners = await repo.inbox_tenants(
                {i for t in batch if t.direction == "inbound" for i in t.inbox_ids}
            )
            rows: list[tuple[SmtpSession, list[str]]] = []
            for t in batch:
                row = SmtpSession(
                    id=t.id,
                    tenant_id=DEFAULT_TENANT_ID,
                    direction=t.direction,
                    client_address=t.client_address,
                    server_address=t.server_address,
                    helo=t.helo,
                    tls_version=t.tls_version,
                    tls_cipher=t.tls_cipher,
                    auth_user=t.auth_user,
                    started_at=t.started_at,
                    ended_at=t.ended_at or t.started_at,
                    lines=t.lines,
                    submission_ids=list(t.submission_ids),
                    outbound_id=None,
                    delivery_ids=[],
                )
                inbox_ids = list(t.inbox_ids)
                tenants = {owners[i] for i in inbox_ids if i in owners}
                if t.direction == "inbound" and len(tenants) == 1:
                    row.tenant_id = tenants.pop()  # the tenant whose inboxes got the mail
                if t.direction == "outbound" and t.mail_from is not None:
                    found = await repo.find_outbound(
                        mail_from=t.mail_from, recipients=t.recipients, message_id=t.message_id
                    )
                    if found is not None:
                        outbound, delivery_ids = found
                        row.tenant_id = outbound.tenant_id
                        row.outbound_id = outbound.id
                        row.delivery_ids = delivery_ids
                        if outbound.inbox_id is not None:
                            inbox_ids = [outbound.inbox_id]
                rows.append((row, inbox_ids))
            await repo.add_many(rows)
        self.stored += len(batch)


async def trim_sessions(db: Database, keep: int, *, batch: int = 500) -> int:
    """Delete every SMTP session but the ``keep`` newest (all tenants), ``batch`` per
    transaction; returns how many went."""
    removed = 0
    while True:
        async with db.write() as session:
            repo = SessionRepository(session, None)
            ids = await repo.beyond_newest(max(keep, 0), batch)
            await repo.delete_ids(ids)
        removed += len(ids)
        if len(ids) < batch:
            break
    if removed:
        log.info("removed %d old smtp session transcripts", removed)
    return removed


def _summary_fields(row: SmtpSession, inbox_ids: list[str]) -> dict[str, object]:
    return {
        "id": row.id,
        "direction": row.direction,
        "client_address": row.client_address,
        "server_address": row.server_address,
        "helo": row.helo,
        "tls_version": row.tls_version,
        "tls_cipher": row.tls_cipher,
        "auth_user": row.auth_user,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "duration_ms": round((row.ended_at - row.started_at).total_seconds() * 1000, 3),
        "submission_ids": list(row.submission_ids),
        "inbox_ids": inbox_ids,
        "outbound_id": row.outbound_id,
        "delivery_ids": list(row.delivery_ids),
    }


def session_summary_out(row: SmtpSession, inbox_ids: list[str]) -> SessionSummaryOut:
    return SessionSummaryOut.model_validate(_summary_fields(row, inbox_ids))


def session_out(row: SmtpSession, inbox_ids: list[str]) -> SessionOut:
    return SessionOut.model_validate(
        {
            **_summary_fields(row, inbox_ids),
            "lines": [SessionLine.model_validate(line) for line in row.lines],
        }
    )


class Sessions:
    """Reading one tenant's session transcripts."""

    def __init__(self, *, db: Database, tenant_id: str) -> None:
        self.db = db
        self.tenant_id = tenant_id

    async def list(
        self,
        *,
        inbox_id: str | None,
        direction: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page[SessionSummaryOut]:
        if inbox_id is not None:
            inbox_id = check_id(inbox_id, "inbox")
        fp = pagination.fingerprint("sessions", inbox_id=inbox_id, direction=direction)
        pos = pagination.decode(cursor, fp)
        before: tuple[datetime, str] | None = None
        if pos is not None:
            try:
                before = (datetime.fromisoformat(pos[0]), str(pos[1]))
            except (TypeError, ValueError, IndexError, KeyError) as exc:
                raise InvalidInput("the cursor is malformed") from exc
        async with self.db.read() as session:
            if inbox_id is not None:
                await InboxRepository(session, self.tenant_id).get(inbox_id)
            repo = SessionRepository(session, self.tenant_id)
            rows = await repo.newest(
                inbox_id=inbox_id, direction=direction, limit=limit + 1, before=before
            )
            links = await repo.inbox_ids([r.id for r in rows[:limit]])
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = pagination.encode([last.started_at.isoformat(), last.id], fp)
        return Page[SessionSummaryOut](
            items=[session_summary_out(r, links[r.id]) for r in rows[:limit]],
            next_cursor=next_cursor,
        )

    async def get(self, session_id: str) -> SessionOut:
        session_id = check_id(session_id, "session")
        async with self.db.read() as session:
            repo = SessionRepository(session, self.tenant_id)
            row = await repo.get(session_id)
            links = await repo.inbox_ids([row.id])
        return session_out(row, links[row.id])
