"""``POST /api/v1/send``: Mailpit's JSON message, stored as if it had arrived over SMTP.

That is what Mailpit's send does (it is a mail catcher: the message lands in
its own mailbox, whatever the addresses). Here the JSON becomes MIME through
our composer (``app.mail.compose``) and goes through the one ingest funnel,
with To + Cc + Bcc as envelope recipients, so it lands in the caller's inbox
for each address (catch-all inboxes are made as for SMTP, unless strict) and
wakes waiters like any received mail. Nothing is relayed onward: releasing a
message (``/api/v1/message/{ID}/release``) goes through the delivery queue.

Answers ``{"ID": <id of the stored message>}`` (the caller's first copy);
errors are 400 ``{"Error": ...}`` like Mailpit's.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.addresses import valid_address
from app.api.deps import RuntimeDep
from app.compat.mailpit.body import Fields, read_body
from app.compat.mailpit.deps import TenantDep
from app.compat.mailpit.errors import MailpitRoute, SendError
from app.errors import NotFound
from app.ingest import Envelope
from app.mail.compose import ComposeError, OutgoingAttachment, compose
from app.services.outbox import MAX_RECIPIENTS
from app.store.types import utcnow

router = APIRouter(route_class=MailpitRoute)

# Mailpit ignores these in ``Headers`` (it sets them from the other fields).
IGNORED_HEADERS = frozenset(
    {
        "to",
        "from",
        "cc",
        "bcc",
        "reply-to",
        "date",
        "subject",
        "content-type",
        "mime-version",
        "content-transfer-encoding",
    }
)


def _mailbox(fields: Fields) -> tuple[str, str]:
    """(email, display form) of ``{Email, Name}``."""
    email = fields.text("Email").strip()
    if not email:
        raise SendError(f"{fields.where}Email: an address is required")
    name = fields.text("Name").strip()
    if not name:
        return email, email
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return email, f'"{escaped}" <{email}>'


def _attachments(body: Fields) -> list[OutgoingAttachment]:
    found = []
    for item in body.objs("Attachments"):
        filename = item.text("Filename").strip()
        if not filename:
            raise SendError(f"{item.where}Filename: a file name is required")
        try:
            data = base64.b64decode(item.text("Content"), validate=True)
        except (binascii.Error, ValueError):
            raise SendError(f"{item.where}Content: not valid base64") from None
        content_type = item.text("ContentType").strip() or (
            mimetypes.guess_type(filename)[0] or "application/octet-stream"
        )
        found.append(OutgoingAttachment(filename=filename, content_type=content_type, data=data))
    return found


@router.post("/api/v1/send")
async def send(request: Request, runtime: RuntimeDep, tenant_id: TenantDep) -> JSONResponse:
    body = await read_body(request)
    if body is None:
        raise SendError("the request body is empty")
    sender = body.obj("From")
    if sender is None:
        raise SendError("From: a sender {Email, Name} is required")
    from_email = sender.text("Email").strip()
    if not from_email:
        raise SendError("From.Email: an address is required")
    to = [_mailbox(f) for f in body.objs("To")]
    cc = [_mailbox(f) for f in body.objs("Cc")]
    reply_to = [_mailbox(f) for f in body.objs("ReplyTo")]
    bcc = [b.strip() for b in body.texts("Bcc") or [] if b.strip()]
    recipients = [email for email, _ in to + cc] + bcc
    if not recipients:
        raise SendError("To, Cc or Bcc: at least one recipient is required")
    for address in bcc:
        if not valid_address(address):
            raise SendError(f"Bcc: {address!r} is not a valid email address")
    if len(set(recipients)) > MAX_RECIPIENTS:
        raise SendError(f"at most {MAX_RECIPIENTS} recipients per message")
    headers: dict[str, str] = {}
    message_id = None
    for name, value in body.mapping("Headers").items():
        if name.lower() == "message-id":
            message_id = value
        elif name.lower() not in IGNORED_HEADERS:
            headers[name] = value
    tags = [t.strip() for t in body.texts("Tags") or [] if t.strip()]
    if tags and not any(name.lower() == "x-tags" for name in headers):
        headers["X-Tags"] = ", ".join(tags)
    html = body.text("HTML")
    text = body.text("Text")
    try:
        composed = compose(
            from_address=from_email,
            from_name=sender.text("Name").strip() or None,
            to=[display for _, display in to],
            cc=[display for _, display in cc],
            subject=body.text("Subject"),
            text=text or (None if html else ""),
            html=html or None,
            reply_to=[display for _, display in reply_to],
            headers=headers,
            attachments=_attachments(body),
            message_id_domain=runtime.settings.domains[0],
            message_id=message_id,
            now=utcnow(),
        )
    except ComposeError as exc:
        raise SendError(str(exc)) from None
    envelope = Envelope(
        mail_from=from_email,
        rcpt_to=recipients,
        client_address=request.client.host if request.client else None,
        tenant_id=tenant_id,
        may_relay=False,
    )
    try:
        result = await runtime.ingest.accept(raw=composed.raw, envelope=envelope)
    except NotFound as exc:  # strict mode: a recipient without an inbox
        raise SendError(exc.detail) from None
    # The caller's own copy (an address may belong to another tenant's inbox, as
    # over SMTP; that copy's id is not the caller's to see).
    own = [m.id for m in result.messages if m.tenant_id == tenant_id]
    return JSONResponse({"ID": own[0] if own else ""})
