"""The delivery queue in the store (no broker): enqueue, atomic claim with a lease, finish.

SUMMARY
    ``enqueue`` writes an outbound message, its raw bytes, one ``delivery`` row
    per recipient and their first events inside the caller's transaction.
    ``claim`` leases due rows atomically: ``UPDATE ... WHERE id IN (SELECT ...
    FOR UPDATE SKIP LOCKED) RETURNING`` on Postgres; on SQLite the single
    writer lock gives the same guarantee. A row whose worker died is claimable
    again once its lease expires. Fresh mail and retries are claimed
    alternately, so a backlog of deferred mail never starves new mail (Postfix's
    qmgr fairness), and no more than ``per_destination`` deliveries to one
    remote destination (the smarthost, or one MX domain) are in flight across
    all workers (Postfix's default_destination_concurrency_limit). ``finish`` records an attempt's outcome only if the caller
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
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.delivery.reply import Reply
from app.delivery.retry import Decision
from app.store.db import Database
from app.store.models import Delivery, DeliveryEvent, Outbound, OutboundRaw

ACTIVE = ("queued", "deferred")
# pg advisory lock key serialising claims across workers ("MHCLAI").
CLAIM_KEY = 0x4D48_434C_4149
FINAL = ("delivered", "bounced", "expired", "held")


@dataclass(frozen=True, slots=True)
class Enqueued:
    deliveries: list[Delivery]
    events: dict[str, list[DeliveryEvent]]


def _columns(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Column values of a (transient) ORM object, for a Core INSERT."""
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns if c.key not in skip}


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery: Delivery
    reply: Reply
    decision: Decision


def destination_of(recipient: str, route: str) -> str | None:
    """The remote a delivery connects to, for the per-destination limit (None: no limit)."""
    if route == "relay":
        return "relay"
    if route == "mx":
        return "mx:" + recipient.rpartition("@")[2].lower()
    return None


def _alternate(
    first: list[tuple[str, str | None]], second: list[tuple[str, str | None]]
) -> list[tuple[str, str | None]]:
    """first[0], second[0], first[1], second[1], ... then the rest of the longer one."""
    out: list[tuple[str, str | None]] = []
    for i in range(max(len(first), len(second))):
        if i < len(first):
            out.append(first[i])
        if i < len(second):
            out.append(second[i])
    return out


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
    def __init__(self, *, db: Database, lease_seconds: float, per_destination: int = 20) -> None:
        self.db = db
        self.lease = timedelta(seconds=lease_seconds)
        self.per_destination = per_destination

    @staticmethod
    async def enqueue(
        session: AsyncSession,
        *,
        outbound: Outbound,
        raw: bytes,
        routes: Sequence[tuple[str, str]],
        now: datetime,
    ) -> Enqueued:
        """Insert the outbound message, its bytes, a delivery per (recipient, route) and
        their first events: four plain INSERTs in the caller's transaction."""
        deliveries = [
            Delivery(
                id=str(uuid.uuid4()),
                destination=destination_of(recipient, route),
                tenant_id=outbound.tenant_id,
                outbound_id=outbound.id,
                recipient=recipient,
                route=route,
                state="held" if route == "held" else "queued",
                attempts=0,
                next_attempt_at=None if route == "held" else now,
                last_response=None,
                lease_owner=None,
                lease_expires_at=None,
                dsn_sent=False,
                created_at=now,
                updated_at=now,
            )
            for recipient, route in routes
        ]
        events: dict[str, list[DeliveryEvent]] = {}
        for d in deliveries:
            events[d.id] = [event(d.id, "queued", now)]
            if d.state == "held":
                held_reply = Reply(None, None, "outbound relay is off; nothing left this machine")
                events[d.id].append(event(d.id, "held", now, held_reply))
        await session.execute(insert(Outbound).values(_columns(outbound)))
        await session.execute(insert(OutboundRaw).values(outbound_id=outbound.id, data=raw))
        if deliveries:
            await session.execute(insert(Delivery), [_columns(d) for d in deliveries])
            await session.execute(
                insert(DeliveryEvent),
                [_columns(e, skip=("seq",)) for es in events.values() for e in es],
            )
        return Enqueued(deliveries=deliveries, events=events)

    def _due(self, now: datetime) -> ColumnElement[bool]:
        return and_(
            Delivery.state.in_(ACTIVE),
            Delivery.next_attempt_at <= now,
            or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
        )

    async def _candidates(
        self, session: AsyncSession, *, now: datetime, fresh: bool, limit: int
    ) -> list[tuple[str, str | None]]:
        """(id, destination) of due rows, oldest due first; locked (skipping locked) on PG."""
        pick = (
            select(Delivery.id, Delivery.destination)
            .where(self._due(now), (Delivery.attempts == 0) if fresh else (Delivery.attempts > 0))
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        return [(row[0], row[1]) for row in await session.execute(pick)]

    async def _in_flight(self, session: AsyncSession, now: datetime) -> dict[str, int]:
        rows = await session.execute(
            select(Delivery.destination, func.count())
            .where(
                Delivery.state.in_(ACTIVE),
                Delivery.destination.is_not(None),
                Delivery.lease_expires_at > now,
            )
            .group_by(Delivery.destination)
        )
        return {str(dest): int(count) for dest, count in rows.all()}

    async def claim(self, *, owner: str, limit: int, now: datetime) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries, fresh and retried mail alternating, and no
        more per remote destination than ``per_destination`` in flight across all workers.

        On Postgres, claims are serialised by a transaction-level advisory lock, so the
        in-flight count each claimer reads is exact; the claim itself is one short
        transaction."""
        async with self.db.write() as session:
            if not self.db.is_sqlite:
                await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLAIM_KEY})
            fresh = await self._candidates(session, now=now, fresh=True, limit=limit * 2)
            retries = await self._candidates(session, now=now, fresh=False, limit=limit * 2)
            in_flight = await self._in_flight(session, now)
            chosen: list[str] = []
            for delivery_id, destination in _alternate(fresh, retries):
                if len(chosen) >= limit:
                    break
                if destination is not None:
                    if in_flight.get(destination, 0) >= self.per_destination:
                        continue
                    in_flight[destination] = in_flight.get(destination, 0) + 1
                chosen.append(delivery_id)
            if not chosen:
                return []
            stmt = (
                update(Delivery)
                .where(Delivery.id.in_(chosen))
                .values(lease_owner=owner, lease_expires_at=now + self.lease)
                .returning(Delivery)
                .execution_options(synchronize_session=False)
            )
            return list((await session.execute(stmt)).scalars())

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
