"""Composition root: builds every long-lived part from ``Settings`` and wires them.

SUMMARY
    ``Runtime.build(settings)`` creates the database, the event bus, the
    ingest funnel, the wait service, the janitor and the SMTP server object; nothing is
    created at import time. ``Runtime.mailbox(tenant_id)`` gives the per-tenant
    use cases the API calls. ``close()`` releases the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.events.bus import EventBus
from app.events.waiters import WaitService
from app.ingest import Ingest
from app.janitor import Janitor
from app.services.mailbox import Mailbox
from app.smtp.handler import IntakeHandler
from app.smtp.server import SmtpServer
from app.store.db import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: EventBus
    ingest: Ingest
    waits: WaitService
    smtp: SmtpServer
    janitor: Janitor

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        db = Database.from_settings(settings)
        bus = EventBus()
        ingest = Ingest(db=db, bus=bus, strict=settings.smtp_strict)
        smtp = SmtpServer(
            handler=IntakeHandler(ingest=ingest, strict=settings.smtp_strict),
            host=settings.host,
            port=settings.smtp_port,
            hostname=settings.smtp_hostname,
            max_message_size=settings.smtp_max_message_size,
            max_line_length=settings.smtp_max_line_length,
            timeout=settings.smtp_timeout,
        )
        waits = WaitService(db=db, bus=bus, max_timeout=settings.wait_max_timeout)
        janitor = Janitor(db=db, interval=settings.janitor_interval)
        return cls(
            settings=settings,
            db=db,
            bus=bus,
            ingest=ingest,
            waits=waits,
            smtp=smtp,
            janitor=janitor,
        )

    def mailbox(self, tenant_id: str) -> Mailbox:
        return Mailbox(db=self.db, tenant_id=tenant_id, domains=self.settings.domains)

    async def close(self) -> None:
        await self.db.close()
