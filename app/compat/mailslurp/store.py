"""What MailSlurp pages need and the native repositories do not offer, tenant-scoped:
offset pages with totals (Spring's ``page``/``size``), per-inbox description and
favourite, and uploaded attachments. Every query filters on the caller's tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.store.db import Database
from app.store.models import CompatInbox, CompatUpload, Delivery, Inbox, Message, Outbound
from app.store.types import utcnow

# Deliveries MailSlurp would report a status for: the ones with an outcome.
REPORTED = ("delivered", "bounced", "expired")


@dataclass(frozen=True, slots=True)
class Slice:
    page: int
    size: int
    descending: bool

    @property
    def offset(self) -> int:
        return self.page * self.size


@dataclass(frozen=True, slots=True)
class InboxExtra:
    description: str | None = None
    favourite: bool = False


async def _paged(
    session: AsyncSession, stmt: Select[Any], order: Sequence[Any], part: Slice
) -> tuple[list[Any], int]:
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar()
    ordered = stmt.order_by(*[o.desc() if part.descending else o.asc() for o in order])
    rows = (await session.execute(ordered.offset(part.offset).limit(part.size))).scalars()
    return list(rows), int(total or 0)


class SlurpStore:
    def __init__(self, *, db: Database, tenant_id: str) -> None:
        self.db = db
        self.tenant_id = tenant_id

    # -- pages -----------------------------------------------------------------------
    async def messages(
        self,
        part: Slice,
        *,
        inbox_ids: Sequence[str] = (),
        unread_only: bool = False,
        since: datetime | None = None,
        before: datetime | None = None,
        words: Sequence[str] = (),
    ) -> tuple[list[Message], int]:
        stmt = select(Message).where(Message.tenant_id == self.tenant_id)
        if inbox_ids:
            stmt = stmt.where(Message.inbox_id.in_(inbox_ids))
        if unread_only:
            stmt = stmt.where(Message.seen.is_(False))
        if since is not None:
            stmt = stmt.where(Message.received_at >= since)
        if before is not None:
            stmt = stmt.where(Message.received_at < before)
        for word in words:
            escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(Message.search_text.like(f"%{escaped}%", escape="\\"))
        async with self.db.read() as session:
            return await _paged(session, stmt, [Message.seq], part)

    async def inboxes(
        self,
        part: Slice,
        *,
        since: datetime | None = None,
        before: datetime | None = None,
        favourite: bool | None = None,
        search: str | None = None,
    ) -> tuple[list[Inbox], int]:
        stmt = select(Inbox).where(Inbox.tenant_id == self.tenant_id)
        if since is not None:
            stmt = stmt.where(Inbox.created_at >= since)
        if before is not None:
            stmt = stmt.where(Inbox.created_at < before)
        if favourite is not None:
            favourites = select(CompatInbox.inbox_id).where(CompatInbox.favourite.is_(True))
            stmt = stmt.where(
                Inbox.id.in_(favourites) if favourite else Inbox.id.not_in(favourites)
            )
        if search:
            escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(
                func.lower(Inbox.address).like(f"%{escaped}%", escape="\\")
                | func.lower(func.coalesce(Inbox.name, "")).like(f"%{escaped}%", escape="\\")
            )
        async with self.db.read() as session:
            return await _paged(session, stmt, [Inbox.created_at, Inbox.id], part)

    async def sent(
        self, part: Slice, *, inbox_id: str | None = None, search: str | None = None
    ) -> tuple[list[Outbound], int]:
        stmt = select(Outbound).where(Outbound.tenant_id == self.tenant_id)
        if inbox_id is not None:
            stmt = stmt.where(Outbound.inbox_id == inbox_id)
        if search:
            escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(
                func.lower(func.coalesce(Outbound.subject, "")).like(f"%{escaped}%", escape="\\")
            )
        async with self.db.read() as session:
            return await _paged(session, stmt, [Outbound.created_at, Outbound.id], part)

    async def statuses(
        self,
        part: Slice,
        *,
        outbound_id: str | None = None,
        inbox_id: str | None = None,
        since: datetime | None = None,
        before: datetime | None = None,
    ) -> tuple[list[Delivery], int]:
        """Deliveries with an outcome (MailSlurp's delivery statuses), by sent id or inbox."""
        stmt = select(Delivery).where(
            Delivery.tenant_id == self.tenant_id, Delivery.state.in_(REPORTED)
        )
        if outbound_id is not None:
            stmt = stmt.where(Delivery.outbound_id == outbound_id)
        if inbox_id is not None:
            stmt = stmt.where(
                Delivery.outbound_id.in_(select(Outbound.id).where(Outbound.inbox_id == inbox_id))
            )
        if since is not None:
            stmt = stmt.where(Delivery.updated_at >= since)
        if before is not None:
            stmt = stmt.where(Delivery.updated_at < before)
        async with self.db.read() as session:
            return await _paged(session, stmt, [Delivery.created_at, Delivery.id], part)

    async def outbounds(self, ids: Sequence[str]) -> dict[str, Outbound]:
        if not ids:
            return {}
        async with self.db.read() as session:
            rows = await session.execute(
                select(Outbound).where(Outbound.tenant_id == self.tenant_id, Outbound.id.in_(ids))
            )
            return {o.id: o for o in rows.scalars()}

    # -- inbox fields ----------------------------------------------------------------
    async def extras(self, inbox_ids: Sequence[str]) -> dict[str, InboxExtra]:
        out = {i: InboxExtra() for i in inbox_ids}
        if inbox_ids:
            async with self.db.read() as session:
                rows = await session.execute(
                    select(CompatInbox)
                    .join(Inbox, Inbox.id == CompatInbox.inbox_id)
                    .where(Inbox.tenant_id == self.tenant_id, CompatInbox.inbox_id.in_(inbox_ids))
                )
                for row in rows.scalars():
                    out[row.inbox_id] = InboxExtra(row.description, row.favourite)
        return out

    async def set_extra(self, inbox_id: str, extra: InboxExtra) -> None:
        """Called right after the inbox was created by the caller's tenant."""
        async with self.db.write() as session:
            await session.execute(delete(CompatInbox).where(CompatInbox.inbox_id == inbox_id))
            session.add(
                CompatInbox(
                    inbox_id=inbox_id, description=extra.description, favourite=extra.favourite
                )
            )

    # -- uploads ---------------------------------------------------------------------
    async def upload(
        self, *, data: bytes, filename: str | None, content_type: str, content_id: str | None
    ) -> str:
        upload_id = str(uuid.uuid4())
        async with self.db.write() as session:
            session.add(
                CompatUpload(
                    id=upload_id,
                    tenant_id=self.tenant_id,
                    filename=filename,
                    content_type=content_type,
                    content_id=content_id,
                    data=data,
                    created_at=utcnow(),
                )
            )
        return upload_id

    async def uploads(self, ids: Sequence[str]) -> list[CompatUpload]:
        """The caller's uploads in the given order; ``NotFound`` for any other id."""
        if not ids:
            return []
        async with self.db.read() as session:
            rows = await session.execute(
                select(CompatUpload).where(
                    CompatUpload.tenant_id == self.tenant_id, CompatUpload.id.in_(ids)
                )
            )
            found = {u.id: u for u in rows.scalars()}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"no attachment {missing[0]}")
        return [found[i] for i in ids]
