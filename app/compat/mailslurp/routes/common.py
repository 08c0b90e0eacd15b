"""Helpers the MailSlurp route modules share: full emails (marked read), inbox views,
sent-message views and the message filter of the wait and list endpoints."""

from __future__ import annotations

from app.api.schemas.delivery import OutboundOut
from app.api.schemas.inboxes import InboxOut
from app.compat.mailslurp import mapping, wire
from app.compat.mailslurp.deps import Slurp
from app.delivery.queue import Queue
from app.ingest import attachment_id
from app.mail import parse_message


async def read_email(slurp: Slurp, message_id: str) -> wire.Email:
    """The full email; like MailSlurp, returning it marks it read."""
    return mapping.email(await slurp.mailbox.mark_seen(message_id, True), slurp.user_id)


async def inbox_dtos(slurp: Slurp, inboxes: list[InboxOut]) -> list[wire.InboxDto]:
    extras = await slurp.store.extras([i.id for i in inboxes])
    return [mapping.inbox_dto(i, extras[i.id], slurp.user_id) for i in inboxes]


async def sent_dto(
    slurp: Slurp, outbound: OutboundOut, attachments: list[str] | None = None
) -> wire.SentEmailDto:
    """A sent message as MailSlurp shows it, its fields read back from the queued MIME."""
    async with slurp.runtime.db.read() as session:
        _, raw = await Queue.load(session, outbound.id)
    parsed = parse_message(raw)
    if attachments is None:
        attachments = [attachment_id(outbound.id, a.index) for a in parsed.attachments]
    return mapping.sent_email(
        outbound,
        parsed,
        user_id=slurp.user_id,
        local_domains=slurp.runtime.settings.domains,
        attachments=attachments,
    )
