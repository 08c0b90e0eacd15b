"""Retention queries: which of an inbox's messages fall outside a count or byte budget.

Shared by the janitor (periodic trimming) and the ingest funnel (per-inbox
quotas enforced in the storing transaction). "Outside" is always the oldest
messages (lowest ``seq``): every function returns the highest ``seq`` that
must go (everything at or below it goes), or None when the inbox fits.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import Message


async def count_threshold(session: AsyncSession, inbox_id: str, keep: int) -> int | None:
    """The newest ``seq`` beyond the newest ``keep`` messages of the inbox."""
    value = (
        await session.execute(
            select(Message.seq)
            .where(Message.inbox_id == inbox_id)
            .order_by(Message.seq.desc())
            .offset(keep)
            .limit(1)
        )
    ).scalar()
    return None if value is None else int(value)


async def bytes_threshold(session: AsyncSession, inbox_id: str, max_bytes: int) -> int | None:
    """The newest ``seq`` whose message no longer fits when the newest messages are kept
    while their sizes add up to at most ``max_bytes``."""
    running = (
        select(
            Message.seq.label("seq"),
            func.sum(Message.size).over(order_by=Message.seq.desc()).label("total"),
        )
        .where(Message.inbox_id == inbox_id)
        .subquery()
    )
    value = (
        await session.execute(select(func.max(running.c.seq)).where(running.c.total > max_bytes))
    ).scalar()
    return None if value is None else int(value)


async def usage(session: AsyncSession, inbox_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(message count, raw bytes) of each inbox."""
    out = dict.fromkeys(inbox_ids, (0, 0))
    if inbox_ids:
        rows = await session.execute(
            select(Message.inbox_id, func.count(), func.coalesce(func.sum(Message.size), 0))
            .where(Message.inbox_id.in_(inbox_ids))
            .group_by(Message.inbox_id)
        )
        for inbox_id, count, size in rows:
            out[inbox_id] = (int(count), int(size))
    return out


async def delete_through(session: AsyncSession, inbox_id: str, seq: int) -> int:
    """Delete the inbox's messages up to and including ``seq``; returns how many."""
    result = await session.execute(
        delete(Message).where(Message.inbox_id == inbox_id, Message.seq <= seq)
    )
    return int(getattr(result, "rowcount", 0) or 0)
