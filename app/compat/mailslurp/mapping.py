"""Native objects (``app.api`` views and store rows) -> MailSlurp wire models.

``userId`` is the caller's tenant id. A message's ``body`` is its HTML part when
it has one (``isHTML``), else its text part; ``headers`` keeps the first value of
each header name and ``headersMap`` all of them; ``messageId``/``inReplyTo`` lose
their angle brackets. A sent message's ``transport`` is ``SANDBOX_LOCAL`` when
every recipient is a harness inbox, else ``PUBLIC_EMAIL``.
"""

from __future__ import annotations

import hashlib
from email.utils import formataddr

from app.api.schemas.delivery import DeliveryOut, OutboundOut
from app.api.schemas.inboxes import InboxOut
from app.api.schemas.messages import AddressOut, MessageOut
from app.compat.mailslurp import wire
from app.compat.mailslurp.store import InboxExtra
from app.mail import ParsedMessage
from app.mail.extract import html_to_text
from app.store.models import Outbound

EXCERPT = 255


def _strip_brackets(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[1:-1] if value.startswith("<") and value.endswith(">") else value


def _sender(a: AddressOut) -> wire.Sender:
    raw = formataddr((a.name, a.address)) if a.name else a.address
    return wire.Sender(raw_value=raw, email_address=a.address, name=a.name)


def inbox_dto(inbox: InboxOut, extra: InboxExtra, user_id: str) -> wire.InboxDto:
    local, _, domain = inbox.address.rpartition("@")
    return wire.InboxDto(
        id=inbox.id,
        user_id=user_id,
        created_at=inbox.created_at,
        name=inbox.name,
        description=extra.description,
        email_address=inbox.address,
        expires_at=inbox.expires_at,
        favourite=extra.favourite,
        tags=inbox.tags,
        inbox_type="HTTP_INBOX",
        local_part=local,
        domain=domain,
    )


def inbox_preview(inbox: InboxOut, extra: InboxExtra, user_id: str) -> wire.InboxPreview:
    return wire.InboxPreview(
        id=inbox.id,
        user_id=user_id,
        email_address=inbox.address,
        created_at=inbox.created_at,
        favourite=extra.favourite,
        name=inbox.name,
        description=extra.description,
        tags=inbox.tags,
        inbox_type="HTTP_INBOX",
        expires_at=inbox.expires_at,
    )


def body_of(m: MessageOut) -> str | None:
    return m.html if m.html is not None else m.text


def plain_text(m: MessageOut) -> str:
    if m.text is not None:
        return m.text
    return html_to_text(m.html) if m.html is not None else ""


def _preview_fields(m: MessageOut) -> dict[str, object]:
    return {
        "id": m.id,
        "inbox_id": m.inbox_id,
        "subject": m.subject,
        "to": [a.address for a in m.to],
        "from_": m.from_.address if m.from_ else None,
        "cc": [a.address for a in m.cc],
        "bcc": [a.address for a in m.bcc],
        "created_at": m.received_at,
        "read": m.seen,
        "attachments": [a.id for a in m.attachments],
        "message_id": _strip_brackets(m.message_id),
        "sender": _sender(m.from_) if m.from_ else None,
        "recipients": wire.EmailRecipients(
            to=[_sender(a) for a in m.to],
            cc=[_sender(a) for a in m.cc],
            bcc=[_sender(a) for a in m.bcc],
        ),
        "size_bytes": m.size,
    }


def _excerpts(m: MessageOut) -> dict[str, object]:
    body = body_of(m)
    return {
        "body_excerpt": body[:EXCERPT] if body is not None else None,
        "text_excerpt": plain_text(m)[:EXCERPT],
    }


def email_preview(m: MessageOut) -> wire.EmailPreview:
    return wire.EmailPreview.model_validate(_preview_fields(m))


def email_projection(m: MessageOut) -> wire.EmailProjection:
    return wire.EmailProjection.model_validate({**_preview_fields(m), **_excerpts(m)})


def _header(m: MessageOut, name: str) -> str | None:
    lname = name.lower()
    return next((h.value for h in m.headers if h.name.lower() == lname), None)


def _charset(m: MessageOut) -> str | None:
    content_type = _header(m, "Content-Type") or ""
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').upper() or None
    return None


def email(m: MessageOut, user_id: str) -> wire.Email:
    headers: dict[str, str] = {}
    headers_map: dict[str, list[str]] = {}
    for h in m.headers:
        headers.setdefault(h.name, h.value)
        headers_map.setdefault(h.name, []).append(h.value)
    body = body_of(m)
    parts = [t for t, v in (("text/plain", m.text), ("text/html", m.html)) if v is not None]
    return wire.Email.model_validate(
        {
            **_preview_fields(m),
            **_excerpts(m),
            "user_id": user_id,
            "updated_at": m.received_at,
            "reply_to": m.reply_to[0].address if m.reply_to else None,
            "headers": headers,
            "headers_map": headers_map,
            "body": body,
            "is_html": m.html is not None,
            "html": m.html is not None,
            "charset": _charset(m),
            "in_reply_to": _strip_brackets(_header(m, "In-Reply-To")),
            "thread_id": None,
            "body_md5_hash": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
            if body is not None
            else None,
            "body_part_content_types": parts,
        }
    )


def transport(local_domains: list[str], recipients: list[str]) -> str:
    domains = {d.lower() for d in local_domains}
    local = all(r.rpartition("@")[2].lower() in domains for r in recipients)
    return "SANDBOX_LOCAL" if local else "PUBLIC_EMAIL"


def sent_email(
    o: OutboundOut,
    parsed: ParsedMessage | None,
    *,
    user_id: str,
    local_domains: list[str],
    attachments: list[str],
) -> wire.SentEmailDto:
    to = [a.address for a in parsed.to] if parsed else list(o.recipients)
    cc = [a.address for a in parsed.cc] if parsed else []
    header_people = {a.lower() for a in (*to, *cc)}
    bcc = [r for r in o.recipients if r.lower() not in header_people]
    html = parsed.html if parsed else None
    message_id = _strip_brackets(o.message_id)
    return wire.SentEmailDto(
        id=o.id,
        user_id=user_id,
        inbox_id=o.inbox_id or "",
        to=to,
        from_=o.mail_from,
        cc=cc,
        bcc=bcc,
        reply_to=parsed.reply_to[0].address if parsed and parsed.reply_to else None,
        subject=o.subject,
        body=html if html is not None else (parsed.text if parsed else None),
        is_html=html is not None,
        attachments=attachments,
        sent_at=o.created_at,
        created_at=o.created_at,
        message_id=message_id,
        message_ids=[message_id] if message_id else [],
        transport=transport(local_domains, list(o.recipients)),
        size_bytes=o.size,
    )


def sent_projection(o: Outbound, *, user_id: str) -> wire.SentEmailProjection:
    return wire.SentEmailProjection(
        id=o.id,
        user_id=user_id,
        inbox_id=o.inbox_id or "",
        subject=o.subject,
        from_=o.mail_from,
        to=list(o.recipients),
        cc=[],
        bcc=[],
        attachments=[],
        created_at=o.created_at,
        message_id=_strip_brackets(o.message_id_header),
    )


def delivery_status(
    d: DeliveryOut,
    *,
    user_id: str,
    inbox_id: str | None,
    subject: str | None,
    reporting_mta: str,
) -> wire.DeliveryStatusDto:
    last = d.last_response
    response = None
    remote_ip = None
    if last is not None:
        response = " ".join(str(p) for p in (last.code, last.enhanced, last.text) if p)
        if last.remote and last.remote != "local":
            host, sep, _port = last.remote.rpartition(":")
            remote_ip = (host if sep else last.remote).strip("[]")
    return wire.DeliveryStatusDto(
        id=d.id,
        user_id=user_id,
        sent_id=d.outbound_id,
        inbox_id=inbox_id,
        recipients=[d.recipient],
        subject=subject,
        smtp_status_code=last.code if last is not None else None,
        smtp_response=response,
        remote_mta_ip=remote_ip,
        reporting_mta=reporting_mta,
        processing_time_millis=int((d.updated_at - d.created_at).total_seconds() * 1000),
        received=d.updated_at if d.state == "delivered" else None,
        created_at=d.created_at,
        updated_at=d.updated_at,
    )


def attachment_meta(
    attachment_id: str, filename: str | None, content_type: str, size: int, content_id: str | None
) -> wire.AttachmentMetaData:
    return wire.AttachmentMetaData(
        id=attachment_id,
        name=filename or "",
        content_type=content_type,
        content_length=size,
        content_id=content_id,
    )
