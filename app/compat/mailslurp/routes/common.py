"""Helpers the MailSlurp route modules share: full emails (marked read), inbox views,
sending through the native outbox, and sent-message views."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from app.api.schemas.delivery import AttachmentIn, OutboundOut, SendRequest
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


def _send_request(opts: wire.SendEmailOptions, uploads: list[AttachmentIn]) -> SendRequest:
    is_html = bool(opts.is_html or opts.html)
    return SendRequest(
        to=opts.to,
        cc=opts.cc,
        bcc=opts.bcc,
        subject=opts.subject or "",
        text=None if is_html else (opts.body or ""),
        html=(opts.body or "") if is_html else None,
        reply_to=opts.reply_to,
        headers=opts.custom_headers,
        attachments=uploads,
    )


async def send(
    slurp: Slurp,
    inbox_id: str,
    opts: wire.SendEmailOptions,
    extra: Sequence[AttachmentIn] = (),
) -> str:
    """Send through the native outbox (its composer and queue); the outbound id."""
    uploads = await slurp.store.uploads(opts.attachments)
    attachments = [
        AttachmentIn(
            filename=u.filename or "attachment",
            content_type=u.content_type,
            content_base64=base64.b64encode(u.data).decode(),
        )
        for u in uploads
    ]
    sent = await slurp.outbox.send(inbox_id, _send_request(opts, [*attachments, *extra]))
    return sent.id
