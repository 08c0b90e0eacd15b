"""Webhook use cases for one tenant: create, list, read, delete, attempts, redeliver.

A webhook listens to the tenant's events, or to one of its inboxes'. It gets
only events stored after it was created (its ``from_*_seq`` marks "now"). The
secret is generated when not given and returned once; it is kept in clear
because every signature needs it, and never shown again or logged.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select

from app.api.schemas.common import Page
from app.api.schemas.webhooks import (
    WebhookAttemptOut,
    WebhookCallOut,
    WebhookCreate,
    WebhookOut,
)
from app.errors import InvalidInput, NotFound
from app.services.mailbox import check_id
from app.store.db import Database
from app.store.models import DeliveryEvent, Message, Webhook, WebhookAttempt, WebhookCall
from app.store.repositories.inboxes import InboxRepository
from app.store.types import utcnow
from app.webhooks import formats


def webhook_out(w: Webhook, *, secret: str | None = None) -> WebhookOut:
    return WebhookOut(
        id=w.id,
        url=w.url,
        events=list(w.events),
        inbox_id=w.inbox_id,
        payload_format=w.payload_format,
        created_at=w.created_at,
        secret=secret,
    )


def call_out(c: WebhookCall) -> WebhookCallOut:
    return WebhookCallOut(
        id=c.id,
        webhook_id=c.webhook_id,
        event=c.event,
        subject_id=c.subject_id,
        state=c.state,
        attempts=c.attempts,
        next_attempt_at=c.next_attempt_at,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


class Webhooks:
    def __init__(self, *, db: Database, tenant_id: str, wake: Callable[[], None]) -> None:
        self.db = db
        self.tenant_id = tenant_id
        self.wake = wake

    async def create(self, data: WebhookCreate) -> WebhookOut:
        parts = urlsplit(data.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("url must be an absolute http:// or https:// URL")
        if not formats.known(data.payload_format):
            raise InvalidInput(f"unknown payload_format {data.payload_format!r}")
        secret = data.secret or "whsec_" + secrets.token_urlsafe(32)
        async with self.db.write() as session:
            inbox_id = None
            if data.inbox_id is not None:
                try:
                    inbox_id = check_id(data.inbox_id, "inbox")
                    await InboxRepository(session, self.tenant_id).get(inbox_id)
                except NotFound:
                    raise InvalidInput(f"inbox_id: no inbox {data.inbox_id}") from None
            m = await session.scalar(select(func.max(Message.seq)))
            d = await session.scalar(select(func.max(DeliveryEvent.seq)))
            hook = Webhook(
                id=str(uuid.uuid4()),
                tenant_id=self.tenant_id,
                inbox_id=inbox_id,
                url=data.url,
                events=list(dict.fromkeys(data.events)),
                secret=secret,
                payload_format=data.payload_format,
                from_message_seq=m or 0,
                from_delivery_seq=d or 0,
                created_at=utcnow(),
            )
            session.add(hook)
        self.wake()
        return webhook_out(hook, secret=secret)

    async def _get(self, session: object, webhook_id: str) -> Webhook:
        webhook_id = check_id(webhook_id, "webhook")
        row = (
            await session.execute(  # type: ignore[attr-defined]
                select(Webhook).where(Webhook.id == webhook_id, Webhook.tenant_id == self.tenant_id)
            )
        ).scalar()
        if row is None:
            raise NotFound(f"no webhook {webhook_id}")
        assert isinstance(row, Webhook)
        return row

    async def list(self) -> Page[WebhookOut]:
        async with self.db.read() as session:
            rows = await session.execute(
                select(Webhook)
                .where(Webhook.tenant_id == self.tenant_id)
                .order_by(Webhook.created_at, Webhook.id)
            )
            return Page[WebhookOut](items=[webhook_out(w) for w in rows.scalars()])

    async def get(self, webhook_id: str) -> WebhookOut:
        async with self.db.read() as session:
            return webhook_out(await self._get(session, webhook_id))

    async def delete(self, webhook_id: str) -> None:
        async with self.db.write() as session:
            hook = await self._get(session, webhook_id)
            await session.execute(delete(Webhook).where(Webhook.id == hook.id))

    async def calls(self, webhook_id: str, *, limit: int) -> Page[WebhookCallOut]:
        async with self.db.read() as session:
            hook = await self._get(session, webhook_id)
            rows = await session.execute(
                select(WebhookCall)
                .where(WebhookCall.webhook_id == hook.id)
                .order_by(WebhookCall.created_at.desc(), WebhookCall.id.desc())
                .limit(limit)
            )
            return Page[WebhookCallOut](items=[call_out(c) for c in rows.scalars()])

    async def attempts(self, webhook_id: str, *, limit: int) -> Page[WebhookAttemptOut]:
        """Every POST of this webhook's calls, oldest first (the last ``limit``)."""
        async with self.db.read() as session:
            hook = await self._get(session, webhook_id)
            rows = (
                await session.execute(
                    select(WebhookAttempt, WebhookCall)
                    .join(WebhookCall, WebhookCall.id == WebhookAttempt.call_id)
                    .where(WebhookCall.webhook_id == hook.id)
                    .order_by(WebhookAttempt.seq.desc())
                    .limit(limit)
                )
            ).all()
            numbers: dict[str, int] = {}
            counted = await session.execute(
                select(WebhookAttempt.call_id, WebhookAttempt.seq)
                .where(WebhookAttempt.call_id.in_({c.id for _, c in rows}))
                .order_by(WebhookAttempt.seq)
            )
            ordinal: dict[int, int] = {}
            for call_id, seq in counted.all():
                numbers[call_id] = numbers.get(call_id, 0) + 1
                ordinal[seq] = numbers[call_id]
        items = [
            WebhookAttemptOut(
                call_id=c.id,
                event=c.event,
                subject_id=c.subject_id,
                attempt=ordinal.get(a.seq, 0),
                at=a.at,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
                response_excerpt=a.response_excerpt,
                call_state=c.state,
            )
            for a, c in reversed(rows)
        ]
        return Page[WebhookAttemptOut](items=items)

    async def redeliver(self, webhook_id: str, call_id: str) -> WebhookCallOut:
        """Send a call's body again as a new call (with a fresh retry budget)."""
        call_id = check_id(call_id, "webhook call")
        now = utcnow()
        async with self.db.write() as session:
            hook = await self._get(session, webhook_id)
            old = (
                await session.execute(
                    select(WebhookCall).where(
                        WebhookCall.id == call_id, WebhookCall.webhook_id == hook.id
                    )
                )
            ).scalar()
            if old is None:
                raise NotFound(f"no call {call_id} of webhook {webhook_id}")
            new = WebhookCall(
                id=str(uuid.uuid4()),
                webhook_id=hook.id,
                event=old.event,
                subject_id=old.subject_id,
                body=old.body,
                state="queued",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            session.add(new)
        self.wake()
        return call_out(new)
