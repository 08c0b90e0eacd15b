"""Inbox repository: create, find, list (by tag, cursor), delete; tenant-scoped.

Inputs: an ``AsyncSession`` inside the caller's transaction and a tenant id.
Outputs: ``Inbox`` rows plus their tags and message counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, delete, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound
from app.store.models import Inbox, InboxTag, Message
from app.store.types import utcnow


class InboxRepository:
    def __init__(self, session: AsyncSession, tenant_id: str | None) -> None:
        """``tenant_id=None`` is the SMTP edge's view: inboxes of every tenant."""
        self.session = session
        self.tenant_id = tenant_id

    def _base(self) -> Select[Inbox]:
        stmt = select(Inbox)
        if self.tenant_id is not None:
            stmt = stmt.where(Inbox.tenant_id == self.tenant_id)
        return stmt

    async def create(
        self,
        *,
        inbox_id: str,
        address: str,
        tenant_id: str,
        name: str | None = None,
        tags: Sequence[str] = (),
        expires_at: datetime | None = None,
    ) -> Inbox:
        inbox = Inbox(
            id=inbox_id,
            tenant_id=tenant_id,
            address=address,
            name=name,
            created_at=utcnow(),
            expires_at=expires_at,
        )
        try:
            async with self.session.begin_nested():
                self.session.add(inbox)
                for tag in dict.fromkeys(tags):
                    self.session.add(InboxTag(inbox_id=inbox_id, tag=tag))
                await self.session.flush()
        except IntegrityError as exc:
            raise Conflict(f"the address {address} is taken") from exc
        return inbox

    async def get(self, inbox_id: str) -> Inbox:
        inbox = (await self.session.execute(self._base().where(Inbox.id == inbox_id))).scalar()
        if inbox is None:
            raise NotFound(f"no inbox {inbox_id}")
        return inbox

    async def find_by_addresses(self, addresses: Sequence[str]) -> dict[str, Inbox]:
        """Inboxes by lower-cased address (the SMTP edge resolves recipients with this)."""
        if not addresses:
            return {}
        rows = await self.session.execute(self._base().where(Inbox.address.in_(addresses)))
        return {inbox.address: inbox for inbox in rows.scalars()}

    async def newest(
        self, *, tag: str | None, limit: int, before: tuple[datetime, str] | None
    ) -> list[Inbox]:
        """Newest first; ``before`` is the (created_at, id) of the last row of the previous page."""
        stmt = self._base()
        if tag is not None:
            stmt = stmt.where(Inbox.id.in_(select(InboxTag.inbox_id).where(InboxTag.tag == tag)))
        if before is not None:
            stmt = stmt.where(tuple_(Inbox.created_at, Inbox.id) < tuple_(*before))
        stmt = stmt.order_by(Inbox.created_at.desc(), Inbox.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def tags(self, inbox_ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {i: [] for i in inbox_ids}
        if inbox_ids:
            rows = await self.session.execute(
                select(InboxTag.inbox_id, InboxTag.tag)
                .where(InboxTag.inbox_id.in_(inbox_ids))
                .order_by(InboxTag.tag)
            )
            for inbox_id, tag in rows:
                out[inbox_id].append(tag)
        return out

    async def message_counts(self, inbox_ids: Sequence[str]) -> dict[str, int]:
        out = dict.fromkeys(inbox_ids, 0)
        if inbox_ids:
            rows = await self.session.execute(
                select(Message.inbox_id, func.count())
                .where(Message.inbox_id.in_(inbox_ids))
                .group_by(Message.inbox_id)
            )
            for inbox_id, count in rows:
                out[inbox_id] = count
        return out

    async def count(self, tenant_id: str) -> int:
        """How many inboxes the tenant has (the per-key inbox limit)."""
        value = await self.session.scalar(
            select(func.count()).select_from(Inbox).where(Inbox.tenant_id == tenant_id)
        )
        return int(value or 0)

    async def delete(self, inbox_id: str) -> None:
        inbox = await self.get(inbox_id)
        await self.session.execute(delete(Inbox).where(Inbox.id == inbox.id))
