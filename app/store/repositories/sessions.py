"""SMTP session repository: store transcripts, list (by inbox, direction, cursor), read, trim.

Inputs: an ``AsyncSession`` inside the caller's transaction and a tenant id
(``None`` for the writers, which see every tenant).
Outputs: ``SmtpSession`` rows and the inbox ids linked to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app.errors import NotFound
from app.store.models import Delivery, Inbox, Outbound, SmtpSession, SmtpSessionInbox


class SessionRepository:
    def __init__(self, session: AsyncSession, tenant_id: str | None) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _base(self) -> Select[SmtpSession]:
        stmt = select(SmtpSession)
        if self.tenant_id is not None:
            stmt = stmt.where(SmtpSession.tenant_id == self.tenant_id)
        return stmt

    # -- writing ---------------------------------------------------------------
    async def add_many(self, rows: Sequence[tuple[SmtpSession, Sequence[str]]]) -> None:
        """Insert sessions with their inbox links; links to inboxes that no longer
        exist are dropped (an inbox may be deleted while its session was open)."""
        wanted = {inbox_id for _, inbox_ids in rows for inbox_id in inbox_ids}
        existing: set[str] = set()
        if wanted:
            found = await self.session.execute(select(Inbox.id).where(Inbox.id.in_(wanted)))
            existing = set(found.scalars())
        self.session.add_all([row for row, _ in rows])
        await self.session.flush()
        links = [
            SmtpSessionInbox(session_id=row.id, inbox_id=inbox_id)
            for row, inbox_ids in rows
            for inbox_id in dict.fromkeys(inbox_ids)
            if inbox_id in existing
        ]
        if links:
            self.session.add_all(links)
            await self.session.flush()

    async def inbox_tenants(self, inbox_ids: set[str]) -> dict[str, str]:
        """The tenant of each of these inboxes (missing: deleted meanwhile)."""
        if not inbox_ids:
            return {}
        rows = await self.session.execute(
            select(Inbox.id, Inbox.tenant_id).where(Inbox.id.in_(inbox_ids))
        )
        return {str(i): str(t) for i, t in rows.all()}

    async def find_outbound(
        self, *, mail_from: str, recipients: Sequence[str], message_id: str | None
    ) -> tuple[Outbound, list[str]] | None:
        """The outbound message a relay attempt was for, and its deliveries to
        ``recipients``: the newest from ``mail_from`` with deliveries to them,
        preferring one whose Message-ID matches."""
        if not recipients:
            return None
        rows = (
            await self.session.execute(
                select(Outbound, Delivery.id, Delivery.recipient)
                .join(Delivery, Delivery.outbound_id == Outbound.id)
                .where(Delivery.recipient.in_(list(recipients)), Outbound.mail_from == mail_from)
                .order_by(Outbound.created_at.desc(), Outbound.id.desc())
                .limit(200)
            )
        ).all()
        if not rows:
            return None
        chosen = next(
            (o for o, _, _ in rows if message_id and o.message_id_header == message_id),
            rows[0][0],
        )
        delivery_ids = [d for o, d, _ in rows if o.id == chosen.id]
        return chosen, delivery_ids

    # -- reading ---------------------------------------------------------------
    async def newest(
        self,
        *,
        inbox_id: str | None,
        direction: str | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> list[SmtpSession]:
        """Newest first, without their lines; ``before`` is the (started_at, id) of the
        last row of the previous page."""
        stmt = self._base().options(defer(SmtpSession.lines))
        if inbox_id is not None:
            stmt = stmt.join(SmtpSessionInbox, SmtpSessionInbox.session_id == SmtpSession.id).where(
                SmtpSessionInbox.inbox_id == inbox_id
            )
        if direction is not None:
            stmt = stmt.where(SmtpSession.direction == direction)
        if before is not None:
            stmt = stmt.where(tuple_(SmtpSession.started_at, SmtpSession.id) < tuple_(*before))
        stmt = stmt.order_by(SmtpSession.started_at.desc(), SmtpSession.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def get(self, session_id: str) -> SmtpSession:
        row = (
            await self.session.execute(self._base().where(SmtpSession.id == session_id))
        ).scalar()
        if row is None:
            raise NotFound(f"no session {session_id}")
        return row

    async def inbox_ids(self, session_ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {i: [] for i in session_ids}
        if session_ids:
            rows = await self.session.execute(
                select(SmtpSessionInbox.session_id, SmtpSessionInbox.inbox_id)
                .where(SmtpSessionInbox.session_id.in_(session_ids))
                .order_by(SmtpSessionInbox.inbox_id)
            )
            for session_id, inbox_id in rows:
                out[session_id].append(inbox_id)
        return out

    # -- retention -------------------------------------------------------------
    async def beyond_newest(self, keep: int, limit: int) -> list[str]:
        """Ids of up to ``limit`` sessions older than the ``keep`` newest (all tenants)."""
        rows = await self.session.execute(
            select(SmtpSession.id)
            .order_by(SmtpSession.started_at.desc(), SmtpSession.id.desc())
            .offset(keep)
            .limit(limit)
        )
        return list(rows.scalars())

    async def delete_ids(self, session_ids: Sequence[str]) -> None:
        if session_ids:
            await self.session.execute(
                delete(SmtpSession).where(SmtpSession.id.in_(list(session_ids)))
            )
