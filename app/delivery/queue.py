"""The delivery queue in the store (no broker): enqueue, atomic claim with a lease, finish.

SUMMARY
    ``enqueue`` writes an outbound message, its raw bytes, one ``delivery`` row
    per recipient and their first events inside the caller's transaction.
    ``claim`` leases due rows atomically: ``UPDATE ... WHERE id IN (SELECT ...
    FOR UPDATE SKIP LOCKED) RETURNING`` on Postgres; on SQLite the single
    writer lock gives the same guarantee. A row whose worker died is claimable
    again once its lease expires. Fresh mail and retries are claimed in equal
    shares, so a backlog of deferred mail never starves new mail (Postfix's
    qmgr fairness). ``finish`` records an attempt's outcome only if the caller
    still holds the lease, and writes the state change and its events in the
    caller's transaction.

STATES
    queued -> deferred -> delivered | bounced | expired;  held (relay off).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.delivery.reply import Reply
from app.delivery.retry import Decision
from app.store.db import Database
from app.store.models import Delivery, DeliveryEvent, Outbound, OutboundRaw

ACTIVE = ("queued", "deferred")
FINAL = ("delivered", "bounced", "expired", "held")


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery: Delivery
    reply: Reply
    decision: Decision


def event(delivery_id: str, type_: str, at: datetime, reply: Reply | None = None) -> DeliveryEvent:
    return DeliveryEvent(
        delivery_id=delivery_id,
        at=at,
        type=type_,
        code=reply.code if reply else None,
        enhanced=reply.enhanced if reply else None,
        text=reply.text if reply else None,
        remote=reply.remote if reply else None,
    )


class Queue:
    def __init__(self, *, db: Database, lease_seconds: float) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)

    @staticmethod
    async def enqueue(
        session: AsyncSession,
        *,
        outbound: Outbound,
        raw: bytes,
        routes: Sequence[tuple[str, str]],
        now: datetime,
    ) -> list[Delivery]:
        """Add the outbound message and a delivery per (recipient, route); flushes."""
        session.add(outbound)
        await session.flush()  # the parent row first: no ORM relationships order the inserts
        session.add(OutboundRaw(outbound_id=outbound.id, data=raw))
        deliveries = []
        for recipient, route in routes:
            held = route == "held"
            delivery = Delivery(
                id=str(uuid.uuid4()),
                tenant_id=outbound.tenant_id,
                outbound_id=outbound.id,
                recipient=recipient,
                route=route,
                state="held" if held else "queued",
                attempts=0,
                next_attempt_at=None if held else now,
                last_response=None,
                dsn_sent=False,
                created_at=now,
                updated_at=now,
            )
            deliveries.append(delivery)
            session.add(delivery)
        await session.flush()
        for d in deliveries:
            session.add(event(d.id, "queued", now))
            if d.state == "held":
                held_reply = Reply(None, None, "outbound relay is off; nothing left this machine")
                session.add(event(d.id, "held", now, held_reply))
        return deliveries

    def _due(self, now: datetime) -> ColumnElement[bool]:
        return and_(
            Delivery.state.in_(ACTIVE),
            Delivery.next_attempt_at <= now,
            or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
        )

    async def _claim_some(
        self, session: AsyncSession, *, owner: str, now: datetime, fresh: bool, limit: int
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        pick = (
            select(Delivery.id)
            .where(self._due(now), (Delivery.attempts == 0) if fresh else (Delivery.attempts > 0))
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(Delivery)
            .where(Delivery.id.in_(pick.scalar_subquery()))
            .values(lease_owner=owner, lease_expires_at=now + self.lease)
            .returning(Delivery)
            .execution_options(synchronize_session=False)
        )
        return list((await session.execute(stmt)).scalars())

    async def claim(self, *, owner: str, limit: int, now: datetime) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries: half fresh, half retries, the rest from either."""
        async with self.db.write() as session:
            fresh = await self._claim_some(
                session, owner=owner, now=now, fresh=True, limit=limit - limit // 2
            )
            retries = await self._claim_some(
                session, owner=owner, now=now, fresh=False, limit=limit - len(fresh)
            )
            more = await self._claim_some(
                session, owner=owner, now=now, fresh=True, limit=limit - len(fresh) - len(retries)
            )
        return [*fresh, *retries, *more]

    async def next_wakeup(self) -> datetime | None:
        """When the earliest active delivery becomes due (or its lease runs out)."""
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(
                        func.min(Delivery.next_attempt_at),
                        func.min(Delivery.lease_expires_at),
                    ).where(Delivery.state.in_(ACTIVE))
                )
            ).one()
        times = [t for t in row if t is not None]
        return min(times) if times else None

    @staticmethod
    async def load(session: AsyncSession, outbound_id: str) -> tuple[Outbound, bytes]:
        outbound = await session.get_one(Outbound, outbound_id)
        raw = await session.get_one(OutboundRaw, outbound_id)
        return outbound, bytes(raw.data)

    @staticmethod
    async def finish(
        session: AsyncSession, *, owner: str, outcomes: Sequence[Outcome], now: datetime
    ) -> list[Delivery]:
        """Record each attempt if ``owner`` still holds the lease; returns the updated rows."""
        updated: list[Delivery] = []
        for outcome in outcomes:
            d, reply, decision = outcome.delivery, outcome.reply, outcome.decision
            stmt = (
                update(Delivery)
                .where(Delivery.id == d.id, Delivery.lease_owner == owner)
                .values(
                    state=decision.state,
                    attempts=Delivery.attempts + 1,
                    next_attempt_at=decision.next_attempt_at,
                    last_response=reply.as_json(),
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
                .returning(Delivery)
                .execution_options(synchronize_session=False)
            )
            row = (await session.execute(stmt)).scalar()
            if row is None:
                continue  # the lease was lost (expired and reclaimed): the other owner records it
            session.add(event(d.id, "attempt", now, reply))
            session.add(event(d.id, decision.state, now, reply))
            updated.append(row)
        return updated
