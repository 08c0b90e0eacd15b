"""Sending and delivery state for one tenant: send, release, sent list, deliveries, waits.

SUMMARY
    ``send`` validates the request, composes MIME (``app.mail.compose``), and
    in one transaction stores the outbound message and one queued delivery
    per recipient; after the commit it announces them on the bus (which
    wakes the worker) and answers with the deliveries as they stand.
    ``wait_delivery`` is push-based like message waits: subscribe to the
    delivery's topic, read its state, await the next change.

Errors: ``InvalidInput`` (422) for bad addresses, headers (injection), bodies
or attachments; ``NotFound`` for unknown or foreign ids; ``WaitTimeout`` and
``Conflict`` for delivery waits.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from datetime import datetime

from app.addresses import valid_address
from app.api import pagination
from app.api.schemas.common import Page
from app.api.schemas.delivery import (
    DeliveryEventOut,
    DeliveryOut,
    OutboundOut,
    ResponseOut,
    SendOut,
    SendRequest,
    WaitState,
)
from app.delivery.queue import ACTIVE, FINAL, Queue
from app.delivery.routing import Router
from app.errors import DeliveryStateConflict, InvalidInput, WaitTimeout
from app.events.bus import EventBus
from app.ingest import publish_deliveries
from app.mail.compose import ComposeError, OutgoingAttachment, compose
from app.metrics import Metrics
from app.services.mailbox import check_id
from app.store.db import Database
from app.store.models import Delivery, DeliveryEvent, Outbound
from app.store.repositories.deliveries import DeliveryRepository
from app.store.repositories.inboxes import InboxRepository
from app.store.repositories.messages import MessageRepository
from app.store.types import utcnow

MAX_RECIPIENTS = 100


class Outbox:
    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        tenant_id: str,
        router: Router,
        domain: str,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.metrics = metrics or Metrics()
        self.tenant_id = tenant_id
        self.router = router
        self.domain = domain

    # -- submit ----------------------------------------------------------------
    async def send(self, inbox_id: str, req: SendRequest) -> SendOut:
        inbox_id = check_id(inbox_id, "inbox")
        recipients = _check_recipients(req.to, req.cc, req.bcc)
        reply_to = [req.reply_to] if isinstance(req.reply_to, str) else list(req.reply_to or [])
        for i, addr in enumerate(reply_to):
            if not valid_address(addr):
                raise InvalidInput(f"reply_to[{i}]: {addr!r} is not a valid email address")
        attachments = [
            OutgoingAttachment(
                filename=a.filename, content_type=a.content_type, data=_b64(a.content_base64, i)
            )
            for i, a in enumerate(req.attachments)
        ]
        async with self.db.read() as session:
            inbox = await InboxRepository(session, self.tenant_id).get(inbox_id)
        try:
            composed = compose(
                from_address=inbox.address,
                from_name=inbox.name,
                to=req.to,
                cc=req.cc,
                subject=req.subject,
                text=req.text,
                html=req.html,
                reply_to=reply_to,
                headers=req.headers,
                attachments=attachments,
                message_id_domain=self.domain,
                now=utcnow(),
            )
        except ComposeError as exc:
            raise InvalidInput(str(exc)) from exc
        outbound = await self._enqueue(
            inbox_id=inbox.id,
            source="api",
            source_message_id=None,
            mail_from=inbox.address,
            message_id=composed.message_id,
            subject=req.subject,
            recipients=recipients,
            raw=composed.raw,
        )
        return SendOut(
            id=outbound.id, message_id=outbound.message_id, deliveries=outbound.deliveries
        )

    async def release(self, message_id: str, to: list[str]) -> OutboundOut:
        """Queue a stored message again, unchanged, to the given addresses."""
        message_id = check_id(message_id, "message")
        recipients = _check_recipients(to, [], [])
        async with self.db.read() as session:
            repo = MessageRepository(session, self.tenant_id)
            message = await repo.get(message_id)
            raw = await repo.raw(message)
        return await self._enqueue(
            inbox_id=message.inbox_id,
            source="release",
            source_message_id=message.id,
            mail_from=message.details.get("envelope", {}).get("mail_from", ""),
            message_id=message.message_id_header,
            subject=message.subject,
            recipients=recipients,
            raw=raw,
        )

    async def _enqueue(
        self,
        *,
        inbox_id: str,
        source: str,
        source_message_id: str | None,
        mail_from: str,
        message_id: str | None,
        subject: str | None,
        recipients: list[str],
        raw: bytes,
    ) -> OutboundOut:
        now = utcnow()
        outbound = Outbound(
            id=str(uuid.uuid4()),
            tenant_id=self.tenant_id,
            inbox_id=inbox_id,
            source=source,
            source_message_id=source_message_id,
            message_id_header=message_id,
            mail_from=mail_from,
            subject=subject,
            recipients=recipients,
            size=len(raw),
            created_at=now,
        )
        async with self.db.write() as session:
            enqueued = await Queue.enqueue(
                session,
                outbound=outbound,
                raw=raw,
                routes=[(r, self.router.route(r)) for r in recipients],
                now=now,
            )
        publish_deliveries(self.bus, enqueued.deliveries, inbox_id=inbox_id)
        return outbound_out(outbound, enqueued.deliveries, enqueued.events)

    # -- read ------------------------------------------------------------------
    async def get_outbound(self, outbound_id: str) -> OutboundOut:
        outbound_id = check_id(outbound_id, "outbound message")
        async with self.db.read() as session:
            repo = DeliveryRepository(session, self.tenant_id)
            outbound = await repo.get_outbound(outbound_id)
            deliveries = (await repo.for_outbounds([outbound.id]))[outbound.id]
            events = await repo.events([d.id for d in deliveries])
        return outbound_out(outbound, deliveries, events)

    async def list_sent(
        self, inbox_id: str, *, limit: int, cursor: str | None
    ) -> Page[OutboundOut]:
        inbox_id = check_id(inbox_id, "inbox")
        fp = pagination.fingerprint("sent", inbox_id=inbox_id)
        before = _time_key(pagination.decode(cursor, fp))
        async with self.db.read() as session:
            await InboxRepository(session, self.tenant_id).get(inbox_id)
            repo = DeliveryRepository(session, self.tenant_id)
            rows = await repo.sent_by_inbox(inbox_id, limit=limit + 1, before=before)
            page = rows[:limit]
            deliveries = await repo.for_outbounds([o.id for o in page])
            events = await repo.events([d.id for ds in deliveries.values() for d in ds])
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = pagination.encode([last.created_at.isoformat(), last.id], fp)
        return Page[OutboundOut](
            items=[outbound_out(o, deliveries[o.id], events) for o in page], next_cursor=next_cursor
        )

    async def list_deliveries(
        self,
        *,
        inbox_id: str | None,
        state: str | None,
        recipient: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page[DeliveryOut]:
        if inbox_id is not None:
            inbox_id = check_id(inbox_id, "inbox")
        fp = pagination.fingerprint(
            "deliveries", inbox_id=inbox_id, state=state, recipient=recipient
        )
        before = _time_key(pagination.decode(cursor, fp))
        async with self.db.read() as session:
            if inbox_id is not None:
                await InboxRepository(session, self.tenant_id).get(inbox_id)
            repo = DeliveryRepository(session, self.tenant_id)
            rows = await repo.newest(
                inbox_id=inbox_id, state=state, recipient=recipient, limit=limit + 1, before=before
            )
            events = await repo.events([d.id for d in rows[:limit]])
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = pagination.encode([last.created_at.isoformat(), last.id], fp)
        return Page[DeliveryOut](
            items=[delivery_out(d, events[d.id]) for d in rows[:limit]], next_cursor=next_cursor
        )

    async def get_delivery(self, delivery_id: str) -> DeliveryOut:
        delivery_id = check_id(delivery_id, "delivery")
        async with self.db.read() as session:
            repo = DeliveryRepository(session, self.tenant_id)
            delivery = await repo.get(delivery_id)
            events = await repo.events([delivery.id])
        return delivery_out(delivery, events[delivery.id])

    async def delivery_counts(self) -> dict[str, int]:
        """The tenant's deliveries per state (the queue depth is queued + deferred)."""
        async with self.db.read() as session:
            return await DeliveryRepository(session, self.tenant_id).count_by_state()

    async def wait_delivery(
        self, delivery_id: str, *, state: WaitState, timeout: float
    ) -> DeliveryOut:
        """The delivery once it is in ``state`` (``final``: any final state)."""
        with self.metrics.timed_wait("delivery"):
            return await self._wait_delivery(delivery_id, state=state, timeout=timeout)

    async def _wait_delivery(
        self, delivery_id: str, *, state: WaitState, timeout: float
    ) -> DeliveryOut:
        delivery_id = check_id(delivery_id, "delivery")
        deadline = asyncio.get_running_loop().time() + timeout
        with self.bus.subscribe(f"delivery:{delivery_id}") as sub:
            while True:
                current = await self.get_delivery(delivery_id)
                if current.state == state or (state == "final" and current.state in FINAL):
                    return current
                if current.state in FINAL:
                    raise DeliveryStateConflict(
                        f"delivery {delivery_id} ended {current.state}, not {state}"
                    )
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0 or not await sub.wait(remaining):
                    raise WaitTimeout(
                        f"delivery {delivery_id} is {current.state}, not {state}, after {timeout:g} s"
                    )
                sub.drain()


def _check_recipients(to: list[str], cc: list[str], bcc: list[str]) -> list[str]:
    for field, values in (("to", to), ("cc", cc), ("bcc", bcc)):
        for i, addr in enumerate(values):
            if not valid_address(addr):
                raise InvalidInput(f"{field}[{i}]: {addr!r} is not a valid email address")
    recipients = list(dict.fromkeys(a.strip() for a in [*to, *cc, *bcc]))
    if not recipients:
        raise InvalidInput("to: at least one recipient is needed (to, cc or bcc)")
    if len(recipients) > MAX_RECIPIENTS:
        raise InvalidInput(f"to: at most {MAX_RECIPIENTS} recipients per message")
    return recipients


def _b64(value: str, index: int) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"attachments[{index}].content_base64: not valid base64") from exc


def _time_key(pos: object) -> tuple[datetime, str] | None:
    if pos is None:
        return None
    try:
        assert isinstance(pos, list)
        return datetime.fromisoformat(str(pos[0])), str(pos[1])
    except (AssertionError, ValueError, IndexError) as exc:
        raise InvalidInput("the cursor is malformed") from exc


def delivery_out(d: Delivery, events: list[DeliveryEvent]) -> DeliveryOut:
    last = d.last_response
    return DeliveryOut(
        id=d.id,
        outbound_id=d.outbound_id,
        recipient=d.recipient,
        route=d.route,
        state=d.state,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at if d.state in ACTIVE else None,
        last_response=ResponseOut(**last) if last else None,
        created_at=d.created_at,
        updated_at=d.updated_at,
        events=[
            DeliveryEventOut(
                at=e.at, type=e.type, code=e.code, enhanced=e.enhanced, text=e.text, remote=e.remote
            )
            for e in events
        ],
    )


def outbound_out(
    o: Outbound, deliveries: list[Delivery], events: dict[str, list[DeliveryEvent]]
) -> OutboundOut:
    return OutboundOut(
        id=o.id,
        message_id=o.message_id_header,
        inbox_id=o.inbox_id,
        source=o.source,
        mail_from=o.mail_from,
        subject=o.subject,
        recipients=list(o.recipients),
        size=o.size,
        created_at=o.created_at,
        deliveries=[delivery_out(d, events.get(d.id, [])) for d in deliveries],
    )
