"""Message repository: summary rows and raw bytes; tenant-scoped queries.

Inputs: an ``AsyncSession`` inside the caller's transaction and a tenant id.
Outputs: ``Message`` rows (the summary plus parsed ``details``) and raw bytes.
Order: ``seq`` is the arrival order; lists are newest first, waits oldest first.

Writes on the ingest path are SQLAlchemy Core statements (no unit of work):
``add_many`` inserts every summary row with one multi-row ``INSERT ...
RETURNING id, seq``, the raw bytes and the search addresses
(``message_address``) with one executemany each, then sets ``seq`` on the
(transient) ``Message`` objects it was given. The full-text index follows the
row in the same statement (SQLite triggers, Postgres generated column).

Search: ``newest(query=...)`` and ``delete_matching`` take a parsed search
``Query`` (app.search.query), compiled by ``app.store.repositories.search``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Select, Table, and_, delete, func, insert, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.search.query import Query
from app.search.text import address_entries
from app.store.models import Message, MessageAddress, MessageRaw
from app.store.repositories.search import conditions

_MESSAGE: Table = Message.__table__  # type: ignore[assignment]
_RAW: Table = MessageRaw.__table__  # type: ignore[assignment]
# (attribute name, column) of every summary column the insert writes (all but seq).
_INSERTED: list[tuple[str, Column[Any]]] = [
    (attr.key, attr.columns[0])  # type: ignore[misc]
    for attr in inspect(Message).column_attrs
    if attr.key != "seq"
]
_INSERT_MESSAGES = insert(_MESSAGE).returning(_MESSAGE.c.id, _MESSAGE.c.seq)
_INSERT_RAW = insert(_RAW)
_INSERT_ADDRESSES = insert(MessageAddress)


class MessageRepository:
    def __init__(self, session: AsyncSession, tenant_id: str | None) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _base(self) -> Select[Message]:
        stmt = select(Message)
        if self.tenant_id is not None:
            stmt = stmt.where(Message.tenant_id == self.tenant_id)
        return stmt

    async def add(self, message: Message, raw: bytes) -> Message:
        """Insert the summary row and its raw bytes; sets ``message.seq``."""
        await self.add_many([(message, raw)])
        return message

    async def add_many(self, rows: Sequence[tuple[Message, bytes]]) -> None:
        """Insert summary rows and their raw bytes (two statements; SQLAlchemy pages a
        very large batch); sets each ``message.seq``. The messages stay transient:
        they are not in the session."""
        if not rows:
            return
        values = [_row_values(message) for message, _ in rows]
        result = await self.session.execute(_INSERT_MESSAGES, values)
        seqs: dict[str, int] = {row.id: row.seq for row in result}
        for message, _ in rows:
            message.seq = seqs[message.id]
        await self.session.execute(
            _INSERT_RAW, [{"message_seq": message.seq, "data": raw} for message, raw in rows]
        )
        addresses = [
            {
                "message_seq": message.seq,
                "kind": e.kind,
                "address": e.address,
                "domain": e.domain,
                "name": e.name,
            }
            for message, _ in rows
            for e in address_entries(
                from_name=message.from_name,
                from_address=message.from_address,
                to=message.to,
                details=message.details,
            )
        ]
        if addresses:
            await self.session.execute(_INSERT_ADDRESSES, addresses)

    async def get(self, message_id: str) -> Message:
        row = (await self.session.execute(self._base().where(Message.id == message_id))).scalar()
        if row is None:
            raise NotFound(f"no message {message_id}")
        return row

    async def raw(self, message: Message) -> bytes:
        data = (
            await self.session.execute(
                select(MessageRaw.data).where(MessageRaw.message_seq == message.seq)
            )
        ).scalar()
        if data is None:
            raise NotFound(f"no raw bytes for message {message.id}")
        return bytes(data)

    async def newest(
        self,
        *,
        inbox_id: str | None = None,
        submission_id: str | None = None,
        query: Query | None = None,
        seen: bool | None = None,
        after_seq: int | None = None,
        after_time: datetime | None = None,
        before_seq: int | None = None,
        limit: int,
    ) -> list[Message]:
        """Newest first. ``before_seq`` pages; ``after_*`` implement ``since``."""
        stmt = self._filtered(
            inbox_id=inbox_id,
            submission_id=submission_id,
            query=query,
            seen=seen,
            after_seq=after_seq,
            after_time=after_time,
        )
        if before_seq is not None:
            stmt = stmt.where(Message.seq < before_seq)
        stmt = stmt.order_by(Message.seq.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def oldest_after(
        self,
        *,
        inbox_id: str,
        after_seq: int,
        after_time: datetime | None,
        seen: bool | None,
        limit: int,
    ) -> list[Message]:
        """Oldest first, strictly after ``after_seq``: what a wait examines next."""
        stmt = self._filtered(
            inbox_id=inbox_id, seen=seen, after_seq=after_seq, after_time=after_time
        )
        stmt = stmt.order_by(Message.seq.asc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    def _filtered(
        self,
        *,
        inbox_id: str | None = None,
        submission_id: str | None = None,
        query: Query | None = None,
        seen: bool | None = None,
        after_seq: int | None = None,
        after_time: datetime | None = None,
    ) -> Select[Message]:
        stmt = self._base()
        if inbox_id is not None:
            stmt = stmt.where(Message.inbox_id == inbox_id)
        if submission_id is not None:
            stmt = stmt.where(Message.submission_id == submission_id)
        if query is not None:
            stmt = stmt.where(*conditions(query, dialect=self.dialect))
        if seen is not None:
            stmt = stmt.where(Message.seen == seen)
        if after_seq is not None:
            stmt = stmt.where(Message.seq > after_seq)
        if after_time is not None:
            stmt = stmt.where(Message.received_at > after_time)
        return stmt

    async def count(
        self,
        *,
        inbox_id: str | None = None,
        submission_id: str | None = None,
        query: Query | None = None,
        seen: bool | None = None,
    ) -> int:
        """How many of the tenant's messages match (what ``newest`` pages through)."""
        stmt = self._filtered(
            inbox_id=inbox_id, submission_id=submission_id, query=query, seen=seen
        ).with_only_columns(func.count(), maintain_column_froms=True)
        return int((await self.session.execute(stmt)).scalar() or 0)

    @property
    def dialect(self) -> str:
        bind = self.session.bind
        assert bind is not None, "sessions are bound to the engine"
        return bind.dialect.name

    async def delete_matching(
        self, *, query: Query, inbox_id: str | None = None, submission_id: str | None = None
    ) -> int:
        """Delete the tenant's messages ``query`` matches (their raw bytes, addresses
        and full-text rows go with them); returns how many."""
        stmt = delete(Message).where(*conditions(query, dialect=self.dialect))
        if self.tenant_id is not None:
            stmt = stmt.where(Message.tenant_id == self.tenant_id)
        if inbox_id is not None:
            stmt = stmt.where(Message.inbox_id == inbox_id)
        if submission_id is not None:
            stmt = stmt.where(Message.submission_id == submission_id)
        result = await self.session.execute(stmt.execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def max_seq(self, inbox_id: str) -> int:
        value = (
            await self.session.execute(
                select(func.max(Message.seq)).where(Message.inbox_id == inbox_id)
            )
        ).scalar()
        return int(value or 0)

    async def set_seen(self, message: Message, seen: bool) -> Message:
        await self.session.execute(
            update(Message).where(Message.seq == message.seq).values(seen=seen)
        )
        message.seen = seen
        return message

    async def delete(self, message: Message) -> None:
        await self.session.execute(delete(Message).where(Message.seq == message.seq))

    async def delete_for_inbox(self, inbox_id: str) -> None:
        stmt = delete(Message).where(Message.inbox_id == inbox_id)
        if self.tenant_id is not None:
            stmt = stmt.where(Message.tenant_id == self.tenant_id)
        await self.session.execute(stmt)

    async def by_seqs(self, seqs: Sequence[int]) -> list[Message]:
        """Rows for the given arrival sequence numbers (tenant-scoped), oldest first."""
        if not seqs:
            return []
        stmt = self._base().where(Message.seq.in_(seqs)).order_by(Message.seq.asc())
        return list((await self.session.execute(stmt)).scalars())

    # -- the whole mailbox, one entry per submission ----------------------------
    # A message received once for several inboxes is stored once per inbox; these
    # treat its copies as one: the first copy stands for it, and changes reach
    # every copy (of this tenant).
    def _firsts(self, query: Query | None) -> Select[Any]:
        """The ``seq`` of the first matching copy of each matching submission."""
        return (
            self._filtered(query=query)
            .with_only_columns(func.min(Message.seq))
            .group_by(Message.submission_id)
        )

    async def count_submissions(
        self, *, query: Query | None = None, seen: bool | None = None
    ) -> int:
        """How many submissions match (their first copy ``seen`` or not, when given)."""
        stmt = self._base().where(Message.seq.in_(self._firsts(query)))
        if seen is not None:
            stmt = stmt.where(Message.seen == seen)
        counted = stmt.with_only_columns(func.count())
        return int((await self.session.execute(counted)).scalar_one())

    async def first_copies(
        self, *, query: Query | None = None, offset: int, limit: int
    ) -> list[Message]:
        """The first copy of each matching submission, newest first, from ``offset``."""
        stmt = (
            self._base()
            .where(Message.seq.in_(self._firsts(query)))
            .order_by(Message.seq.desc())
            .offset(offset)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    def _copies(self, ids: Sequence[str] | None, query: Query | None) -> Any:
        """Condition: the row is a copy (of this tenant) of a submission that has a
        matching copy with one of ``ids`` (any id when None)."""
        submissions = self._filtered(query=query).with_only_columns(Message.submission_id)
        if ids is not None:
            submissions = submissions.where(Message.id.in_(list(ids)))
        if self.tenant_id is None:
            return Message.submission_id.in_(submissions)
        return and_(Message.submission_id.in_(submissions), Message.tenant_id == self.tenant_id)

    async def set_seen_submissions(
        self, *, ids: Sequence[str] | None, query: Query | None = None, seen: bool
    ) -> int:
        """Mark every copy of the selected submissions; returns how many rows changed."""
        result = await self.session.execute(
            update(Message)
            .where(self._copies(ids, query), Message.seen != seen)
            .values(seen=seen)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def delete_submissions(
        self, *, ids: Sequence[str] | None, query: Query | None = None
    ) -> int:
        """Delete every copy of the selected submissions; returns how many rows."""
        result = await self.session.execute(
            delete(Message)
            .where(self._copies(ids, query))
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _row_values(message: Message) -> dict[str, Any]:
    """The insert parameters of a transient ``Message`` (a scalar column default fills,
    on the object too, any attribute left unset)."""
    state = message.__dict__
    values: dict[str, Any] = {}
    for key, column in _INSERTED:
        if key in state:
            values[column.key] = state[key]
            continue
        default = column.default
        value = default.arg if default is not None and default.is_scalar else None  # type: ignore[attr-defined]
        setattr(message, key, value)
        values[column.key] = value
    return values
