"""Events out for one tenant: the stream behind ``GET /api/v1/events``.

SUMMARY
    A ``Feed`` turns the store's two append-only sequences into a resumable
    stream of typed items: ``message.received`` (a MessageSummary, from
    ``message.seq``) and ``delivery.updated`` (a Delivery with its timeline,
    from ``delivery_event.seq``), plus ``rule.hit`` (the rule with its hit
    count; live only, as hits are counters, not a log).

    The position in the stream is a ``FeedCursor`` (the last message seq and
    the last delivery-event seq sent), written ``"<m>-<d>"`` as the SSE event
    id; a client that reconnects with ``Last-Event-ID`` gets everything after
    it from the store (``replay``), then live items. Live items come from bus
    events, which name the rows to read; when the bus says events were lost
    (a slow reader's buffer overflowed, the Postgres bridge reconnected), the
    feed re-reads the store after its cursor instead.

    The bus is only a wake-up; rows are always read from the store, so an
    item is never sent for a transaction that was rolled back. Delivery is
    at least once: an item may repeat after a resume, never go missing
    (within one process; see the note on ``replay``).

INPUTS / OUTPUTS
    ``Feed(db=, tenant_id=, inbox_id=, types=)``; ``head()``, ``replay(cursor)``
    and ``for_events(events, cursor)`` return items with the cursor after each.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api import views
from app.events.bus import DeliveryUpdated, Event, MessageReceived, RuleHit
from app.services.outbox import delivery_out
from app.services.rules import rule_out
from app.store.db import Database
from app.store.models import Delivery, DeliveryEvent, FaultRule, Message, Outbound
from app.store.repositories.deliveries import DeliveryRepository
from app.store.repositories.messages import MessageRepository

EVENT_TYPES = ("message.received", "delivery.updated", "rule.hit")
REPLAY_PAGE = 200
_CURSOR = re.compile(r"^(\d{1,19})-(\d{1,19})$")


@dataclass(frozen=True, slots=True, order=True)
class FeedCursor:
    message_seq: int = 0
    delivery_seq: int = 0

    def encode(self) -> str:
        return f"{self.message_seq}-{self.delivery_seq}"

    @classmethod
    def parse(cls, value: str | None) -> FeedCursor | None:
        """The cursor of an event id, or None when absent or not one of ours."""
        match = _CURSOR.match(value.strip()) if value else None
        return cls(int(match[1]), int(match[2])) if match else None

    def advance(self, *, message_seq: int = 0, delivery_seq: int = 0) -> FeedCursor:
        return FeedCursor(max(self.message_seq, message_seq), max(self.delivery_seq, delivery_seq))


@dataclass(frozen=True, slots=True)
class FeedItem:
    type: str
    data: dict[str, Any]
    cursor: FeedCursor


class Feed:
    def __init__(
        self,
        *,
        db: Database,
        tenant_id: str,
        inbox_id: str | None = None,
        types: Iterable[str] = EVENT_TYPES,
    ) -> None:
        self.db = db
        self.tenant_id = tenant_id
        self.inbox_id = inbox_id
        self.types = frozenset(types)

    async def head(self) -> FeedCursor:
        """The cursor of "now": the tenant's newest message and delivery event."""
        async with self.db.read() as session:
            m = await session.scalar(
                select(func.max(Message.seq)).where(Message.tenant_id == self.tenant_id)
            )
            d = await session.scalar(
                select(func.max(DeliveryEvent.seq))
                .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
                .where(Delivery.tenant_id == self.tenant_id)
            )
        return FeedCursor(int(m or 0), int(d or 0))

    async def replay(self, cursor: FeedCursor) -> list[FeedItem]:
        """What is stored after ``cursor`` (up to a page of each kind), oldest first.

        Call again from the last item's cursor until it returns nothing. Seqs
        are read in commit order on SQLite (one writer). With several
        processes on one Postgres, a transaction can commit after a later seq
        was already sent; the live path still sends it (its bus event names
        the row), but a client that disconnects in that window of a few
        milliseconds resumes past it.
        """
        found: list[_Found] = []
        async with self.db.read() as session:
            if "message.received" in self.types:
                stmt = (
                    select(Message)
                    .where(Message.tenant_id == self.tenant_id, Message.seq > cursor.message_seq)
                    .order_by(Message.seq)
                    .limit(REPLAY_PAGE)
                )
                if self.inbox_id is not None:
                    stmt = stmt.where(Message.inbox_id == self.inbox_id)
                found.extend(self._message(m) for m in (await session.execute(stmt)).scalars())
            if "delivery.updated" in self.types:
                last_seq = func.max(DeliveryEvent.seq).label("last_seq")
                stmt2 = (
                    select(DeliveryEvent.delivery_id, last_seq)
                    .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
                    .where(
                        Delivery.tenant_id == self.tenant_id,
                        DeliveryEvent.seq > cursor.delivery_seq,
                    )
                    .group_by(DeliveryEvent.delivery_id)
                    .order_by(last_seq)
                    .limit(REPLAY_PAGE)
                )
                if self.inbox_id is not None:
                    stmt2 = stmt2.join(Outbound, Outbound.id == Delivery.outbound_id).where(
                        Outbound.inbox_id == self.inbox_id
                    )
                ids = [r[0] for r in (await session.execute(stmt2)).all()]
                found.extend(await self._deliveries(session, ids, after=cursor.delivery_seq))
        return _merge(found, cursor)

    async def for_events(self, events: Iterable[Event], cursor: FeedCursor) -> list[FeedItem]:
        """Items for live bus events (their rows are committed), skipping what was sent."""
        seqs: list[int] = []
        delivery_ids: list[str] = []
        hits: list[RuleHit] = []
        for e in events:
            if e.tenant_id != self.tenant_id:
                continue
            if isinstance(e, MessageReceived):
                if "message.received" in self.types and e.seq > cursor.message_seq:
                    if self.inbox_id is None or e.inbox_id == self.inbox_id:
                        seqs.append(e.seq)
            elif isinstance(e, DeliveryUpdated):
                if "delivery.updated" in self.types and e.delivery_id not in delivery_ids:
                    if self.inbox_id is None or e.inbox_id == self.inbox_id:
                        delivery_ids.append(e.delivery_id)
            elif "rule.hit" in self.types:
                if self.inbox_id is None or e.inbox_id in (None, self.inbox_id):
                    hits.append(e)
        if not (seqs or delivery_ids or hits):
            return []
        found: list[_Found] = []
        async with self.db.read() as session:
            messages = await MessageRepository(session, self.tenant_id).by_seqs(seqs)
            found.extend(self._message(m) for m in messages)
            found.extend(await self._deliveries(session, delivery_ids, after=cursor.delivery_seq))
            if hits:
                rows = await session.execute(
                    select(FaultRule).where(
                        FaultRule.tenant_id == self.tenant_id,
                        FaultRule.id.in_({h.rule_id for h in hits}),
                    )
                )
                rules = {r.id: r for r in rows.scalars()}
                for h in hits:
                    rule = rules.get(h.rule_id)
                    if rule is not None:
                        data = rule_out(rule).model_dump(mode="json")
                        data["hits"] = h.hits  # the count of this hit, not a later one
                        found.append(_Found("rule.hit", data, 0, 0, rule.created_at))
        return _merge(found, cursor, by_time=False)

    def _message(self, m: Message) -> _Found:
        data = views.summary_out(m).model_dump(mode="json", by_alias=True)
        return _Found("message.received", data, m.seq, 0, m.received_at)

    async def _deliveries(
        self, session: AsyncSession, delivery_ids: list[str], *, after: int
    ) -> list[_Found]:
        """Deliveries with a timeline event after seq ``after``, in the given order."""
        if not delivery_ids:
            return []
        repo = DeliveryRepository(session, self.tenant_id)
        rows = await session.execute(
            select(Delivery).where(
                Delivery.tenant_id == self.tenant_id, Delivery.id.in_(delivery_ids)
            )
        )
        deliveries = {d.id: d for d in rows.scalars()}
        timelines = await repo.events(list(deliveries))
        found: list[_Found] = []
        for delivery_id in delivery_ids:
            d = deliveries.get(delivery_id)
            events = timelines.get(delivery_id) or []
            if d is None or not events or events[-1].seq <= after:
                continue  # gone, or nothing new since it was sent
            data = delivery_out(d, events).model_dump(mode="json")
            found.append(_Found("delivery.updated", data, 0, events[-1].seq, events[-1].at))

        return found


@dataclass(frozen=True, slots=True)
class _Found:
    type: str
    data: dict[str, Any]
    message_seq: int
    delivery_seq: int
    at: datetime


def _merge(found: list[_Found], cursor: FeedCursor, *, by_time: bool = True) -> list[FeedItem]:
    """Items in time order (each kind is already in seq order), each with the cursor
    that covers it and everything before it."""
    if by_time:
        messages = [f for f in found if f.message_seq]
        others = [f for f in found if not f.message_seq]
        found = list(heapq.merge(messages, others, key=lambda f: f.at))
    out: list[FeedItem] = []
    for f in found:
        cursor = cursor.advance(message_seq=f.message_seq, delivery_seq=f.delivery_seq)
        out.append(FeedItem(f.type, f.data, cursor))
    return out
