"""Outbound messages and their deliveries, read per tenant (the worker uses the queue).

Inputs: an ``AsyncSession`` and a tenant id. Outputs: ``Outbound`` and
``Delivery`` rows with their event timelines (oldest event first).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.store.models import Delivery, DeliveryEvent, Outbound


class DeliveryRepository:
    def __init__(self, session: AsyncSession, tenant_id: str | None) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _outbounds(self) -> Select[Outbound]:
        stmt = select(Outbound)
        if self.tenant_id is not None:
            stmt = stmt.where(Outbound.tenant_id == self.tenant_id)
        return stmt

    def _deliveries(self) -> Select[Delivery]:
        stmt = select(Delivery)
        if self.tenant_id is not None:
            stmt = stmt.where(Delivery.tenant_id == self.tenant_id)
        return stmt

    async def get_outbound(self, outbound_id: str) -> Outbound:
        row = (
            await self.session.execute(self._outbounds().where(Outbound.id == outbound_id))
        ).scalar()
        if row is None:
            raise NotFound(f"no outbound message {outbound_id}")
        return row

    async def sent_by_inbox(
        self, inbox_id: str, *, limit: int, before: tuple[datetime, str] | None
    ) -> list[Outbound]:
        stmt = self._outbounds().where(Outbound.inbox_id == inbox_id)
        if before is not None:
            stmt = stmt.where(tuple_(Outbound.created_at, Outbound.id) < tuple_(*before))
        stmt = stmt.order_by(Outbound.created_at.desc(), Outbound.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def for_outbounds(self, outbound_ids: Sequence[str]) -> dict[str, list[Delivery]]:
        out: dict[str, list[Delivery]] = {i: [] for i in outbound_ids}
        if outbound_ids:
            rows = await self.session.execute(
                self._deliveries()
                .where(Delivery.outbound_id.in_(outbound_ids))
                .order_by(Delivery.created_at, Delivery.id)
            )
            for d in rows.scalars():
                out[d.outbound_id].append(d)
        return out

    async def get(self, delivery_id: str) -> Delivery:
        row = (
            await self.session.execute(self._deliveries().where(Delivery.id == delivery_id))
        ).scalar()
        if row is None:
            raise NotFound(f"no delivery {delivery_id}")
        return row

    async def newest(
        self,
        *,
        inbox_id: str | None,
        state: str | None,
        recipient: str | None,
        limit: int,
        before: tuple[datetime, str] | None,
    ) -> list[Delivery]:
        stmt = self._deliveries()
        if inbox_id is not None:
            stmt = stmt.where(
                Delivery.outbound_id.in_(select(Outbound.id).where(Outbound.inbox_id == inbox_id))
            )
        if state is not None:
            stmt = stmt.where(Delivery.state == state)
        if recipient is not None:
            stmt = stmt.where(Delivery.recipient == recipient)
        if before is not None:
            stmt = stmt.where(tuple_(Delivery.created_at, Delivery.id) < tuple_(*before))
        stmt = stmt.order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def events(self, delivery_ids: Sequence[str]) -> dict[str, list[DeliveryEvent]]:
        out: dict[str, list[DeliveryEvent]] = {i: [] for i in delivery_ids}
        if delivery_ids:
            rows = await self.session.execute(
                select(DeliveryEvent)
                .where(DeliveryEvent.delivery_id.in_(delivery_ids))
                .order_by(DeliveryEvent.seq)
            )
            for e in rows.scalars():
                out[e.delivery_id].append(e)
        return out

    async def count_by_state(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        stmt = select(Delivery.state, func.count()).group_by(Delivery.state)
        if self.tenant_id is not None:
            stmt = stmt.where(Delivery.tenant_id == self.tenant_id)
        return {str(state): int(n) for state, n in (await self.session.execute(stmt)).all()}
