"""Fault rule use cases for one tenant: create, list, read, delete (hits included).

Rules scoped to an inbox must name one of the tenant's inboxes and are
deleted with it (foreign key cascade). Every change drops the engine's cache.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select

from app.api.schemas.common import Page
from app.api.schemas.rules import RuleCreate, RuleMatch, RuleOut, RuleReply
from app.errors import InvalidInput, NotFound
from app.faults import FaultEngine
from app.services.mailbox import check_id
from app.store.db import Database
from app.store.models import FaultRule
from app.store.repositories.inboxes import InboxRepository
from app.store.types import utcnow


def rule_out(r: FaultRule) -> RuleOut:
    reply = (
        RuleReply(code=r.reply_code, enhanced=r.reply_enhanced, text=r.reply_text)
        if r.reply_code is not None
        else None
    )
    return RuleOut(
        id=r.id,
        match=RuleMatch(recipient=r.match_recipient, sender=r.match_sender, inbox_id=r.inbox_id),
        stage=r.stage,
        reply=reply,
        action=r.action,
        delay_ms=r.delay_ms,
        times=r.times,
        probability=r.probability,
        seed=r.seed,
        hits=r.hits,
        created_at=r.created_at,
    )


class Rules:
    def __init__(self, *, db: Database, engine: FaultEngine, tenant_id: str) -> None:
        self.db = db
        self.engine = engine
        self.tenant_id = tenant_id

    async def create(self, data: RuleCreate) -> RuleOut:
        inbox_id = None
        async with self.db.write() as session:
            if data.match.inbox_id is not None:
                try:
                    inbox_id = check_id(data.match.inbox_id, "inbox")
                    await InboxRepository(session, self.tenant_id).get(inbox_id)
                except NotFound:
                    raise InvalidInput(f"match.inbox_id: no inbox {data.match.inbox_id}") from None
            rule = FaultRule(
                id=str(uuid.uuid4()),
                tenant_id=self.tenant_id,
                inbox_id=inbox_id,
                match_recipient=data.match.recipient,
                match_sender=data.match.sender,
                stage=data.stage,
                action=data.action,
                reply_code=data.reply.code if data.reply else None,
                reply_enhanced=data.reply.enhanced if data.reply else None,
                reply_text=data.reply.text if data.reply else None,
                delay_ms=data.delay_ms,
                times=data.times,
                probability=data.probability,
                seed=data.seed,
                hits=0,
                evaluations=0,
                created_at=utcnow(),
            )
            session.add(rule)
        self.engine.invalidate()
        return rule_out(rule)

    async def list(self) -> Page[RuleOut]:
        async with self.db.read() as session:
            rows = await session.execute(
                select(FaultRule)
                .where(FaultRule.tenant_id == self.tenant_id)
                .order_by(FaultRule.created_at, FaultRule.id)
            )
            return Page[RuleOut](items=[rule_out(r) for r in rows.scalars()], next_cursor=None)

    async def get(self, rule_id: str) -> RuleOut:
        rule_id = check_id(rule_id, "rule")
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(FaultRule).where(
                        FaultRule.id == rule_id, FaultRule.tenant_id == self.tenant_id
                    )
                )
            ).scalar()
        if row is None:
            raise NotFound(f"no rule {rule_id}")
        return rule_out(row)

    async def delete(self, rule_id: str) -> None:
        rule_id = check_id(rule_id, "rule")
        async with self.db.write() as session:
            result = await session.execute(
                delete(FaultRule).where(
                    FaultRule.id == rule_id, FaultRule.tenant_id == self.tenant_id
                )
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"no rule {rule_id}")
        self.engine.invalidate()
