"""The webhook dispatcher: fans stored events out to webhooks, then POSTs them with retries.

SUMMARY
    Fan-out reads what the store appended after a persisted cursor (the
    ``webhook_cursor`` row: the last message seq and delivery-event seq it
    handled) and, in the same transaction that moves the cursor, inserts one
    ``webhook_call`` per matching webhook with the exact body to send. So an
    event is turned into calls exactly once, even across a crash, and never
    on the ingest path (ingest only publishes its usual bus event, which wakes
    the dispatcher). On Postgres one process at a time fans out (a
    transaction-level advisory lock), and rows younger than ``settle`` seconds
    wait for the next round: a transaction holding an earlier seq that
    commits a moment later is not skipped.

    Sending claims due calls like the delivery queue claims deliveries
    (``FOR UPDATE SKIP LOCKED`` on Postgres, a lease), POSTs each with its
    signature headers, and records every attempt. A 2xx delivers the call;
    anything else (status, timeout, refused connection) defers it with the
    delivery queue's backoff policy until ``max_attempts``, then it fails.

INPUTS / OUTPUTS
    ``run()`` until ``stop()``; ``fan_out()`` and ``send_due()`` do one round
    each (tests call them directly). ``wake()`` asks for a round now.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, or_, select, text, update

from app import __version__
from app.api import views
from app.delivery.retry import RetryPolicy, backoff
from app.events.bus import ALL_TOPIC, EventBus
from app.metrics import Metrics
from app.services.outbox import delivery_out
from app.store.db import Database
from app.store.models import (
    Delivery,
    DeliveryEvent,
    Message,
    Outbound,
    Webhook,
    WebhookAttempt,
    WebhookCall,
    WebhookCursor,
)
from app.store.repositories.deliveries import DeliveryRepository
from app.store.types import utcnow
from app.webhooks import formats
from app.webhooks.signing import sign_headers

log = logging.getLogger(__name__)

FAN_OUT_KEY = 0x6D68_7765_6268_6F6B  # pg advisory lock key of the fan-out
ACTIVE = ("queued", "deferred")
PAGE = 500
MAX_IDLE = 30.0  # seconds between rounds with nothing due (other processes' changes)
EXCERPT = 500
NO_HOOKS_RECHECK = 1.0


@dataclass(frozen=True, slots=True)
class _Result:
    call_id: str
    status_code: int | None
    error: str | None
    duration_ms: int
    excerpt: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDispatcher:
    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        timeout: float,
        max_attempts: int,
        policy: RetryPolicy,
        settle: float,
        lease: float = 120.0,
        batch: int = 50,
        concurrency: int = 10,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.db = db
        self.bus = bus
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.policy = policy
        self.settle = settle
        self.lease = timedelta(seconds=max(lease, timeout * 2))
        self.batch = batch
        self.concurrency = concurrency
        self.rng = rng or random.Random()
        self.transport = transport
        self.owner = f"webhooks-{uuid.uuid4().hex[:12]}"
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        # While no webhook exists, ingest's wake-ups skip even the read that checks,
        # for NO_HOOKS_RECHECK seconds (webhooks made by other processes are found then).
        self._none_until = 0.0
        self.recorded = 0  # attempts recorded by this process
        self._recorded_changed = asyncio.Condition()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """A round now (a webhook was created here, or a call redelivered)."""
        self._none_until = 0.0
        self._wake.set()

    async def until_recorded(self, count: int) -> None:
        """Return once this process has recorded ``count`` attempts (tests, benchmarks)."""
        async with self._recorded_changed:
            await self._recorded_changed.wait_for(lambda: self.recorded >= count)

    async def run(self) -> None:
        async with httpx.AsyncClient(
            timeout=self.timeout,
            follow_redirects=False,
            transport=self.transport,
            headers={"User-Agent": f"Mailharness-Webhook/{__version__}"},
        ) as client:
            with self.bus.subscribe(ALL_TOPIC) as sub:
                while not self._stop.is_set():
                    try:
                        pending = await self.fan_out()
                        await self.send_due(client)
                        delay = await self._next_round(pending)
                    except Exception:  # the store is down, or a bug: log, back off, go on
                        log.exception("webhook round failed")
                        delay = 5.0
                    self._wake.clear()
                    waker = asyncio.create_task(self._wake.wait())
                    event = asyncio.create_task(sub.wait(delay))
                    await asyncio.wait({waker, event}, return_when=asyncio.FIRST_COMPLETED)
                    for task in (waker, event):
                        task.cancel()
                    sub.drain()

    async def _next_round(self, pending: bool) -> float:
        """Seconds until something is due: a retry, or rows waiting to settle."""
        async with self.db.read() as session:
            due = await session.scalar(
                select(func.min(WebhookCall.next_attempt_at)).where(WebhookCall.state.in_(ACTIVE))
            )
        delay = MAX_IDLE
        if due is not None:
            delay = min(delay, max(0.0, (due - utcnow()).total_seconds()))
        if pending:
            delay = min(delay, max(self.settle, 0.05))
        return delay

    # -- fan-out ---------------------------------------------------------------
    async def fan_out(self) -> bool:
        """Turn newly stored events into calls; True when rows are left to settle."""
        if time.monotonic() < self._none_until:
            return False
        async with self.db.read() as session:  # the common case, no webhooks: no write
            if await session.scalar(select(Webhook.id).limit(1)) is None:
                self._none_until = time.monotonic() + NO_HOOKS_RECHECK
                return False
        async with self.db.write() as session:
            if not self.db.is_sqlite:
                got = await session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": FAN_OUT_KEY}
                )
                if not got:
                    return False  # another process fans out
            hooks = list((await session.execute(select(Webhook))).scalars())
            if not hooks:
                return False
            cursor = await session.get(WebhookCursor, 1)
            if cursor is None:
                cursor = WebhookCursor(id=1, message_seq=0, delivery_seq=0)
                session.add(cursor)
            # Nothing before the oldest webhook's creation concerns anyone.
            cursor.message_seq = max(cursor.message_seq, min(h.from_message_seq for h in hooks))
            cursor.delivery_seq = max(cursor.delivery_seq, min(h.from_delivery_seq for h in hooks))
            horizon = utcnow() - timedelta(seconds=self.settle)
            now = utcnow()
            pending = False

            rows = (
                await session.execute(
                    select(Message)
                    .where(Message.seq > cursor.message_seq)
                    .order_by(Message.seq)
                    .limit(PAGE)
                )
            ).scalars()
            for m in rows:
                if m.received_at > horizon:
                    pending = True
                    break
                cursor.message_seq = m.seq
                data: dict[str, Any] | None = None
                for hook in hooks:
                    if _wants(hook, "message.received", m.tenant_id, m.inbox_id, m.seq, 0):
                        if data is None:
                            data = views.summary_out(m).model_dump(mode="json", by_alias=True)
                        session.add(_call(hook, "message.received", m.id, data, now))

            events = (
                await session.execute(
                    select(DeliveryEvent.seq, DeliveryEvent.delivery_id, DeliveryEvent.at)
                    .where(DeliveryEvent.seq > cursor.delivery_seq)
                    .order_by(DeliveryEvent.seq)
                    .limit(PAGE)
                )
            ).all()
            changed: dict[str, int] = {}
            for seq, delivery_id, at in events:
                if at > horizon:
                    pending = True
                    break
                cursor.delivery_seq = seq
                changed[delivery_id] = seq
            if changed:
                await self._delivery_calls(session, hooks, changed, now)
            return pending

    async def _delivery_calls(
        self, session: Any, hooks: list[Webhook], changed: dict[str, int], now: datetime
    ) -> None:
        tenants = {h.tenant_id for h in hooks if "delivery.updated" in h.events}
        if not tenants:
            return
        rows = await session.execute(
            select(Delivery, Outbound.inbox_id)
            .join(Outbound, Outbound.id == Delivery.outbound_id)
            .where(Delivery.id.in_(list(changed)), Delivery.tenant_id.in_(tenants))
        )
        found = [(d, inbox_id) for d, inbox_id in rows.all()]
        timelines = await DeliveryRepository(session, None).events([d.id for d, _ in found])
        for d, inbox_id in sorted(found, key=lambda pair: changed[pair[0].id]):
            data: dict[str, Any] | None = None
            for hook in hooks:
                if _wants(hook, "delivery.updated", d.tenant_id, inbox_id, 0, changed[d.id]):
                    if data is None:
                        data = delivery_out(d, timelines[d.id]).model_dump(mode="json")
                    session.add(_call(hook, "delivery.updated", d.id, data, now))

    # -- sending -----------------------------------------------------------------
    async def send_due(self, client: httpx.AsyncClient) -> int:
        """POST every due call (a batch at a time); returns how many were attempted."""
        total = 0
        while not self._stop.is_set():
            calls = await self._claim()
            if not calls:
                return total
            targets = await self._secrets({c.webhook_id for c in calls})
            gate = asyncio.Semaphore(self.concurrency)
            results = await asyncio.gather(
                *(self._gated(gate, client, c, targets.get(c.webhook_id)) for c in calls)
            )
            await self._record(calls, results)
            total += len(calls)
        return total

    async def _gated(
        self,
        gate: asyncio.Semaphore,
        client: httpx.AsyncClient,
        call: WebhookCall,
        target: tuple[str, str] | None,
    ) -> _Result:
        async with gate:
            return await self._post(client, call, target)

    async def _claim(self) -> list[WebhookCall]:
        now = utcnow()
        async with self.db.write() as session:
            pick = (
                select(WebhookCall.id)
                .where(
                    WebhookCall.state.in_(ACTIVE),
                    WebhookCall.next_attempt_at <= now,
                    or_(
                        WebhookCall.lease_expires_at.is_(None),
                        WebhookCall.lease_expires_at < now,
                    ),
                )
                .order_by(WebhookCall.next_attempt_at, WebhookCall.id)
                .limit(self.batch)
            )
            if not self.db.is_sqlite:
                pick = pick.with_for_update(skip_locked=True)
            ids = list((await session.execute(pick)).scalars())
            if not ids:
                return []
            stmt = (
                update(WebhookCall)
                .where(WebhookCall.id.in_(ids))
                .values(lease_owner=self.owner, lease_expires_at=now + self.lease)
                .returning(WebhookCall)
                .execution_options(synchronize_session=False)
            )
            return list((await session.execute(stmt)).scalars())

    async def _secrets(self, webhook_ids: set[str]) -> dict[str, tuple[str, str]]:
        async with self.db.read() as session:
            rows = await session.execute(
                select(Webhook.id, Webhook.url, Webhook.secret).where(Webhook.id.in_(webhook_ids))
            )
            return {row[0]: (row[1], row[2]) for row in rows.all()}

    async def _post(
        self, client: httpx.AsyncClient, call: WebhookCall, target: tuple[str, str] | None
    ) -> _Result:
        if target is None:  # deleted meanwhile (its calls cascade away)
            return _Result(call.id, None, "the webhook was deleted", 0, None)
        url, secret = target
        body = bytes(call.body)
        headers = {
            "Content-Type": "application/json",
            "X-Mailharness-Event": call.event,
            "X-Mailharness-Webhook-Id": call.webhook_id,
            "X-Mailharness-Call-Id": call.id,
            **sign_headers(secret, body, int(time.time())),
        }
        started = time.monotonic()
        try:
            resp = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            elapsed = int((time.monotonic() - started) * 1000)
            return _Result(call.id, None, f"{type(exc).__name__}: {exc}"[:EXCERPT], elapsed, None)
        elapsed = int((time.monotonic() - started) * 1000)
        return _Result(call.id, resp.status_code, None, elapsed, resp.text[:EXCERPT] or None)

    async def _record(self, calls: list[WebhookCall], results: list[_Result]) -> None:
        now = utcnow()
        recorded = 0
        async with self.db.write() as session:
            for call, result in zip(calls, results, strict=True):
                attempts = call.attempts + 1
                if result.ok:
                    state, next_at = "delivered", None
                elif attempts >= self.max_attempts or result.error == "the webhook was deleted":
                    state, next_at = "failed", None
                else:
                    state = "deferred"
                    next_at = now + timedelta(seconds=backoff(self.policy, attempts, self.rng))
                done = await session.execute(
                    update(WebhookCall)
                    .where(WebhookCall.id == call.id, WebhookCall.lease_owner == self.owner)
                    .values(
                        state=state,
                        attempts=attempts,
                        next_attempt_at=next_at,
                        lease_owner=None,
                        lease_expires_at=None,
                        updated_at=now,
                    )
                    .returning(WebhookCall.id)
                    .execution_options(synchronize_session=False)
                )
                if done.scalar() is None:
                    continue  # the lease was lost, or the call was deleted
                session.add(
                    WebhookAttempt(
                        call_id=call.id,
                        at=now,
                        status_code=result.status_code,
                        error=result.error,
                        duration_ms=result.duration_ms,
                        response_excerpt=result.excerpt,
                    )
                )
                recorded += 1
                self.metrics.webhook_attempts.labels("success" if result.ok else "failure").inc()
                if not result.ok:
                    log.info(
                        "webhook call %s attempt %d: %s",
                        call.id,
                        attempts,
                        result.status_code or result.error,
                    )
        async with self._recorded_changed:  # after the commit
            self.recorded += recorded
            self._recorded_changed.notify_all()


def _wants(
    hook: Webhook, event: str, tenant_id: str, inbox_id: str | None, m_seq: int, d_seq: int
) -> bool:
    return (
        hook.tenant_id == tenant_id
        and event in hook.events
        and (hook.inbox_id is None or hook.inbox_id == inbox_id)
        and (m_seq == 0 or m_seq > hook.from_message_seq)
        and (d_seq == 0 or d_seq > hook.from_delivery_seq)
    )


def _call(
    hook: Webhook, event: str, subject_id: str, data: dict[str, Any], now: datetime
) -> WebhookCall:
    info = {"id": hook.id, "inbox_id": hook.inbox_id, "tenant_id": hook.tenant_id}
    body = formats.render(hook.payload_format, event, data, info)
    return WebhookCall(
        id=str(uuid.uuid4()),
        webhook_id=hook.id,
        event=event,
        subject_id=subject_id,
        body=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
        state="queued",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
