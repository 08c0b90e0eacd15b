"""Composition root: builds every long-lived part from ``Settings`` and wires them.

SUMMARY
    ``Runtime.build(settings)`` creates the database, the event bus, the
    ingest funnel, the wait service, the delivery queue and worker, the
    janitor, the SMTP server object and the session transcript recorder
    (fed by the SMTP listener and the relay transports); nothing is created
    at import time. ``mailbox(tenant_id)``, ``outbox(tenant_id)``, ... give
    the per-tenant use cases the API calls. ``close()`` stores the pending
    transcripts and releases the engine.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from app.config import Settings
from app.delivery.queue import Queue
from app.delivery.retry import RetryPolicy
from app.delivery.routing import RelayMatch, Router
from app.delivery.transport import (
    DnsResolver,
    MxTransport,
    SmtpTransport,
    Transport,
    parse_relay_url,
)
from app.delivery.worker import DeliveryWorker
from app.events.bus import EventBus
from app.events.pg_bridge import PgBridge
from app.events.waiters import WaitService
from app.faults import FaultEngine
from app.ingest import Ingest
from app.janitor import Janitor
from app.metrics import Metrics
from app.quota import InboxQuota
from app.services.keys import Keys
from app.services.mailbox import Mailbox
from app.services.outbox import Outbox
from app.services.rules import Rules
from app.services.sessions import SessionRecorder, Sessions
from app.services.webhooks import Webhooks
from app.smtp.handler import Authenticator, IntakeHandler
from app.smtp.server import SmtpServer
from app.smtp.tls import server_context
from app.smtp.transcript import Transcript
from app.store.db import Database
from app.webhooks.dispatcher import WebhookDispatcher


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def build_transports(
    settings: Settings, *, recorder: Callable[[Transcript], None] | None = None
) -> dict[str, Callable[[str], Transport]]:
    helo = settings.relay_helo or settings.smtp_hostname
    transports: dict[str, Callable[[str], Transport]] = {}
    if settings.relay_url:
        smarthost = SmtpTransport(
            target=parse_relay_url(settings.relay_url),
            helo_name=helo,
            timeout=settings.relay_timeout,
            recorder=recorder,
        )
        transports["relay"] = lambda _recipient: smarthost
    mx = MxTransport(
        resolver=DnsResolver(),
        helo_name=helo,
        timeout=settings.relay_timeout,
        recorder=recorder,
    )
    transports["mx"] = lambda _recipient: mx
    return transports


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: EventBus
    router: Router
    ingest: Ingest
    waits: WaitService
    queue: Queue
    worker: DeliveryWorker
    smtp: SmtpServer
    janitor: Janitor
    faults: FaultEngine
    bridge: PgBridge | None
    webhook_dispatcher: WebhookDispatcher
    metrics: Metrics
    # None when session_retention is 0 (no transcripts are recorded).
    session_recorder: SessionRecorder | None = None
    # Set when the server begins to stop: long-lived streams end so shutdown is prompt.
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(cls, settings: Settings, *, rng: random.Random | None = None) -> Runtime:
        db = Database.from_settings(settings)
        metrics = Metrics()
        recorder = SessionRecorder(db=db) if settings.session_retention > 0 else None
        bus = EventBus()
        faults = FaultEngine(db=db, bus=bus)
        router = Router(domains=settings.domains, mode=settings.effective_relay_mode)
        ingest = Ingest(
            db=db,
            bus=bus,
            strict=settings.smtp_strict,
            router=router,
            relay_match=RelayMatch(settings.relay_match),
            metrics=metrics,
            quota=InboxQuota(
                max_messages=settings.inbox_max_messages,
                max_bytes=settings.inbox_max_bytes,
                policy=settings.inbox_full,
            ),
            max_inboxes=settings.max_inboxes_per_key,
        )
        queue = Queue(
            db=db,
            lease_seconds=settings.delivery_lease,
            per_destination=settings.destination_concurrency,
        )
        worker = DeliveryWorker(
            queue=queue,
            ingest=ingest,
            bus=bus,
            transports=build_transports(
                settings, recorder=recorder.record if recorder is not None else None
            ),
            policy=RetryPolicy(
                min_backoff=settings.retry_min_backoff,
                max_backoff=settings.retry_max_backoff,
                lifetime=settings.queue_lifetime,
            ),
            hostname=settings.smtp_hostname,
            domain=settings.domains[0],
            batch=settings.worker_batch,
            concurrency=settings.worker_concurrency,
            poll_interval=settings.worker_poll_interval,
            rng=rng,
            faults=faults,
        )
        smtp = SmtpServer(
            handler=IntakeHandler(
                ingest=ingest,
                strict=settings.smtp_strict,
                faults=faults,
                max_recipients=settings.smtp_max_recipients,
                keys=Keys(db=db, admin_key=settings.admin_key),
                loopback=is_loopback(settings.host),
                catchall_key=settings.catchall_key,
                max_header_fields=settings.smtp_max_header_fields,
                max_header_size=settings.smtp_max_header_size,
            ),
            host=settings.host,
            port=settings.smtp_port,
            hostname=settings.smtp_hostname,
            max_message_size=settings.smtp_max_message_size,
            max_line_length=settings.smtp_max_line_length,
            timeout=settings.smtp_timeout,
            # Made (and the certificate maybe generated) when the listener starts.
            tls=functools.partial(server_context, settings),
            starttls=settings.effective_smtp_starttls,
            smtps_port=settings.smtps_port,
            require_tls=settings.smtp_require_tls,
            auth_allow_plaintext=settings.smtp_auth_allow_plaintext,
            # The seam for real credentials: Authenticator(verify=...); default accepts all.
            authenticator=Authenticator(),
            max_connections=settings.smtp_max_connections,
            max_connections_per_minute=settings.smtp_max_connections_per_minute,
            recorder=recorder,
            metrics=metrics,
        )
        return cls(
            settings=settings,
            db=db,
            bus=bus,
            router=router,
            ingest=ingest,
            waits=WaitService(
                db=db, bus=bus, max_timeout=settings.wait_max_timeout, metrics=metrics
            ),
            queue=queue,
            worker=worker,
            smtp=smtp,
            janitor=Janitor(
                db=db,
                interval=settings.janitor_interval,
                session_retention=settings.session_retention,
                max_age=settings.retention_max_age,
                max_per_inbox=settings.retention_max_per_inbox,
            ),
            faults=faults,
            bridge=None
            if settings.is_sqlite
            else PgBridge(url=settings.effective_database_url, bus=bus),
            webhook_dispatcher=WebhookDispatcher(
                db=db,
                bus=bus,
                timeout=settings.webhook_timeout,
                max_attempts=settings.webhook_max_attempts,
                policy=RetryPolicy(
                    min_backoff=settings.webhook_min_backoff,
                    max_backoff=max(settings.webhook_max_backoff, settings.webhook_min_backoff),
                    lifetime=0,
                ),
                settle=settings.webhook_settle
                if settings.webhook_settle is not None
                else (0.0 if settings.is_sqlite else 1.0),
                rng=rng,
                metrics=metrics,
            ),
            metrics=metrics,
            session_recorder=recorder,
        )

    def mailbox(self, tenant_id: str) -> Mailbox:
        return Mailbox(
            db=self.db,
            tenant_id=tenant_id,
            domains=self.settings.domains,
            max_inboxes=self.settings.max_inboxes_per_key,
        )

    def outbox(self, tenant_id: str) -> Outbox:
        return Outbox(
            db=self.db,
            bus=self.bus,
            tenant_id=tenant_id,
            router=self.router,
            domain=self.settings.domains[0],
            metrics=self.metrics,
        )

    def keys(self) -> Keys:
        return Keys(db=self.db, admin_key=self.settings.admin_key)

    def rules(self, tenant_id: str) -> Rules:
        return Rules(db=self.db, engine=self.faults, tenant_id=tenant_id)

    def webhooks(self, tenant_id: str) -> Webhooks:
        return Webhooks(db=self.db, tenant_id=tenant_id, wake=self.webhook_dispatcher.wake)

    def sessions(self, tenant_id: str) -> Sessions:
        return Sessions(db=self.db, tenant_id=tenant_id)

    async def start_bridge(self) -> None:
        """Join the other processes on this Postgres (no-op on SQLite)."""
        if self.bridge is not None:
            await self.bridge.start()

    async def close(self) -> None:
        if self.bridge is not None:
            await self.bridge.stop()
        if self.session_recorder is not None:
            await self.session_recorder.flush()
        await self.ingest.close()
        await self.db.close()
