"""Fault rules: make the harness misbehave on purpose, deterministically, per test.

SUMMARY
    A rule says: at this stage (connect, mail, rcpt, data), for mail matching
    a recipient glob, a sender glob and/or an inbox, answer this reply (or
    hang up), optionally after a delay, for the first ``times`` matches, with
    an optional ``probability`` that a ``seed`` makes repeatable.

    ``FaultEngine.check(...)`` is called by the SMTP edge at each stage and by
    the delivery worker before a local delivery. Each hit publishes ``RuleHit``
    after its commit (the ``rule.hit`` event of the stream). Counting is atomic in the
    store (``UPDATE ... SET hits = hits + 1 WHERE hits < times RETURNING``),
    so ``times`` holds with concurrent connections and several processes.
    A seeded rule draws its n-th decision from ``Random(f"{seed}:{n}")``,
    where n comes from an atomic evaluation counter: the same sequence of
    matches gives the same sequence of faults, run after run.

    The rule list is cached in-process per stage, dropped at once on local
    changes and after ``CACHE_SECONDS`` otherwise (other processes' changes).

INPUTS / OUTPUTS
    ``check(stage=, sender=, recipients=, inbox_ids=)`` -> ``Fault | None``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select, update

from app.events.bus import EventBus, RuleHit
from app.store.db import Database
from app.store.models import FaultRule

Stage = Literal["connect", "mail", "rcpt", "data"]
CACHE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Fault:
    rule_id: str
    disconnect: bool
    code: int | None
    enhanced: str | None
    text: str
    delay: float

    @property
    def proceeds(self) -> bool:
        """A delay-only or 2xx rule: wait, then carry on normally."""
        return not self.disconnect and (self.code is None or 200 <= self.code < 300)

    def smtp_reply(self) -> str:
        enhanced = f" {self.enhanced}" if self.enhanced else ""
        return f"{self.code}{enhanced} {self.text}".rstrip()


@dataclass(frozen=True, slots=True)
class _Rule:
    id: str
    tenant_id: str
    inbox_id: str | None
    recipient: str | None
    sender: str | None
    disconnect: bool
    code: int | None
    enhanced: str | None
    text: str
    delay: float
    probability: float | None
    seed: int | None

    def matches(
        self, sender: str | None, recipients: Sequence[str], inbox_ids: Sequence[str]
    ) -> bool:
        if self.sender is not None and (
            sender is None or not fnmatch.fnmatchcase(sender.lower(), self.sender)
        ):
            return False
        if self.recipient is not None and not any(
            fnmatch.fnmatchcase(r.lower(), self.recipient) for r in recipients
        ):
            return False
        return self.inbox_id is None or self.inbox_id in inbox_ids


def _snapshot(row: FaultRule) -> _Rule:
    return _Rule(
        id=row.id,
        tenant_id=row.tenant_id,
        inbox_id=row.inbox_id,
        recipient=row.match_recipient.lower() if row.match_recipient else None,
        sender=row.match_sender.lower() if row.match_sender else None,
        disconnect=row.action == "disconnect",
        code=row.reply_code,
        enhanced=row.reply_enhanced,
        text=row.reply_text or _default_text(row.reply_code),
        delay=row.delay_ms / 1000.0,
        probability=row.probability,
        seed=row.seed,
    )


def _default_text(code: int | None) -> str:
    if code is None:
        return ""
    if code < 400:
        return "Ok"
    return "Temporary failure (fault rule)" if code < 500 else "Rejected (fault rule)"


class FaultEngine:
    def __init__(self, *, db: Database, bus: EventBus | None = None) -> None:
        self.db = db
        self.bus = bus
        self._cache: dict[str, list[_Rule]] | None = None
        self._cached_at = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._cache = None

    async def _rules(self) -> dict[str, list[_Rule]]:
        if self._cache is not None and time.monotonic() - self._cached_at < CACHE_SECONDS:
            return self._cache
        async with self._lock:
            if self._cache is None or time.monotonic() - self._cached_at >= CACHE_SECONDS:
                async with self.db.read() as session:
                    rows = await session.execute(
                        select(FaultRule).order_by(FaultRule.created_at, FaultRule.id)
                    )
                    by_stage: dict[str, list[_Rule]] = {}
                    for row in rows.scalars():
                        by_stage.setdefault(row.stage, []).append(_snapshot(row))
                self._cache = by_stage
                self._cached_at = time.monotonic()
            return self._cache

    async def wants_inbox_ids(self, stage: Stage) -> bool:
        """Whether any rule of this stage matches by inbox (callers then look ids up)."""
        return any(r.inbox_id is not None for r in (await self._rules()).get(stage, []))

    async def has_rules(self, stage: Stage) -> bool:
        return bool((await self._rules()).get(stage))

    async def check(
        self,
        *,
        stage: Stage,
        sender: str | None = None,
        recipients: Sequence[str] = (),
        inbox_ids: Sequence[str] = (),
    ) -> Fault | None:
        """The first rule of ``stage`` that matches and fires, counted atomically."""
        for rule in (await self._rules()).get(stage, []):
            if stage in ("connect", "mail") and (rule.recipient or rule.inbox_id):
                continue  # no recipients are known yet at these stages
            if not rule.matches(sender, recipients, inbox_ids):
                continue
            if await self._fire(rule):
                return Fault(
                    rule_id=rule.id,
                    disconnect=rule.disconnect,
                    code=rule.code,
                    enhanced=rule.enhanced,
                    text=rule.text,
                    delay=rule.delay,
                )
        return None

    async def _fire(self, rule: _Rule) -> bool:
        async with self.db.write() as session:
            if rule.probability is not None:
                n = (
                    await session.execute(
                        update(FaultRule)
                        .where(FaultRule.id == rule.id)
                        .values(evaluations=FaultRule.evaluations + 1)
                        .returning(FaultRule.evaluations)
                    )
                ).scalar()
                if n is None:
                    return False  # deleted meanwhile
                rng = (
                    random.Random(f"{rule.seed}:{n}") if rule.seed is not None else random.Random()
                )
                if rng.random() >= rule.probability:
                    return False
            hit = (
                await session.execute(
                    update(FaultRule)
                    .where(
                        FaultRule.id == rule.id,
                        (FaultRule.times.is_(None)) | (FaultRule.hits < FaultRule.times),
                    )
                    .values(hits=FaultRule.hits + 1)
                    .returning(FaultRule.hits)
                )
            ).scalar()
        if hit is not None and self.bus is not None:  # after the commit
            self.bus.publish(
                RuleHit(tenant_id=rule.tenant_id, rule_id=rule.id, inbox_id=rule.inbox_id, hits=hit)
            )
        return hit is not None


async def inbox_ids_for(db: Database, addresses: Sequence[str]) -> list[str]:
    """Inbox ids of the given addresses (for rules that match by inbox)."""
    from app.addresses import normalize_address
    from app.store.repositories.inboxes import InboxRepository

    async with db.read() as session:
        found = await InboxRepository(session, None).find_by_addresses(
            [normalize_address(a) for a in addresses]
        )
    return [inbox.id for inbox in found.values()]
