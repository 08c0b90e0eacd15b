"""Housekeeping: deletes expired inboxes (and with them their messages), messages
past the retention age or beyond the per-inbox count, in batches, and trims SMTP
session transcripts to the newest ``session_retention``.

SUMMARY
    ``Janitor.run()`` wakes every ``interval`` seconds (a timer is right for
    housekeeping; nothing waits on it) and deletes at most ``batch`` expired
    inboxes per transaction, so a large clean-up never holds the write lock
    for long. ``sweep()`` does one pass and returns how many inboxes went.

    With several processes on one Postgres only one janitor works at a time:
    a sweep first takes a session-level advisory lock and is skipped (returns
    0) when another process holds it. SQLite is single-process.

CONFIGURATION PARAMETERS
    janitor_interval, session_retention, retention_max_age, retention_max_per_inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, func, select, text

from app.services.sessions import trim_sessions
from app.store.db import Database
from app.store.models import Inbox, Message
from app.store.repositories.retention import count_threshold
from app.store.types import utcnow

log = logging.getLogger(__name__)

# pg advisory lock key of the janitor: any 64-bit number unique to this purpose.
ADVISORY_KEY = 0x4D48_4A41_4E49  # "MHJANI"


class Janitor:
    def __init__(
        self,
        *,
        db: Database,
        interval: float,
        batch: int = 200,
        session_retention: int = 0,
        max_age: float = 0,
        max_per_inbox: int = 0,
    ) -> None:
        self.db = db
        self.interval = interval
        self.batch = batch
        self.session_retention = session_retention
        self.max_age = max_age
        self.max_per_inbox = max_per_inbox
        self._stop = asyncio.Event()

    async def sweep(self) -> int:
        if self.db.is_sqlite:
            return await self._sweep()
        async with self.db.engine.connect() as conn:
            got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY})
            await conn.commit()
            if not got:
                return 0  # another process is sweeping
            try:
                return await self._sweep()
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                await conn.commit()

    async def _sweep(self) -> int:
        removed = await self._expire_inboxes()
        aged = await self._delete_old_messages() if self.max_age > 0 else 0
        capped = await self._cap_inboxes() if self.max_per_inbox > 0 else 0
        if aged or capped:
            log.info("janitor deleted %d old and %d over-quota messages", aged, capped)
        if self.session_retention > 0:
            trimmed = await trim_sessions(self.db, self.session_retention)
            if trimmed:
                log.info("janitor trimmed %d old SMTP session transcripts", trimmed)
        return removed

    async def _expire_inboxes(self) -> int:
        removed = 0
        while True:
            async with self.db.write() as session:
                ids = list(
                    (
                        await session.execute(
                            select(Inbox.id)
                            .where(Inbox.expires_at.is_not(None), Inbox.expires_at <= utcnow())
                            .limit(self.batch)
                        )
                    ).scalars()
                )
                if ids:
                    await session.execute(delete(Inbox).where(Inbox.id.in_(ids)))
            removed += len(ids)
            if len(ids) < self.batch:
                break
        if removed:
            log.info("janitor removed %d expired inboxes", removed)
        return removed

    async def _delete_seqs(self, where: ColumnElement[bool]) -> int:
        """Delete the messages matching ``where``, ``batch`` rows per transaction."""
        removed = 0
        while True:
            async with self.db.write() as session:
                seqs = list(
                    (
                        await session.execute(
                            select(Message.seq).where(where).order_by(Message.seq).limit(self.batch)
                        )
                    ).scalars()
                )
                if seqs:
                    await session.execute(delete(Message).where(Message.seq.in_(seqs)))
            removed += len(seqs)
            if len(seqs) < self.batch:
                return removed

    async def _delete_old_messages(self) -> int:
        cutoff = utcnow() - timedelta(seconds=self.max_age)
        return await self._delete_seqs(Message.received_at < cutoff)

    async def _cap_inboxes(self) -> int:
        async with self.db.read() as session:
            over = list(
                (
                    await session.execute(
                        select(Message.inbox_id)
                        .group_by(Message.inbox_id)
                        .having(func.count() > self.max_per_inbox)
                    )
                ).scalars()
            )
        removed = 0
        for inbox_id in over:
            async with self.db.read() as session:
                threshold = await count_threshold(session, inbox_id, self.max_per_inbox)
            if threshold is not None:
                removed += await self._delete_seqs(
                    (Message.inbox_id == inbox_id) & (Message.seq <= threshold)
                )
        return removed

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("janitor sweep failed; trying again next round")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def stop(self) -> None:
        self._stop.set()
