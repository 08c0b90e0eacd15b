"""EmailController: get (marks read), pages, latest, HTML, raw, delete, attachments,
links, content match, codes, text lines, the read flag, reply and forward."""

from __future__ import annotations

import base64
import re
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status

from app.api.schemas.delivery import AttachmentIn
from app.api.schemas.messages import MessageOut
from app.api.views import message_out
from app.compat.mailslurp import mapping, wire
from app.compat.mailslurp.deps import (
    PageQ,
    SizeQ,
    Slurp,
    SlurpDep,
    SortQ,
    TimeQ,
    part,
    utc,
)
from app.compat.mailslurp.routes.common import read_email, send, sent_dto
from app.compat.mailslurp.store import Slice
from app.errors import InvalidInput, NotFound
from app.mail.extract import html_to_text

router = APIRouter(tags=["email"])

HTML_CSP = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; sandbox"


@router.get("/emails")
async def get_emails_paginated(
    slurp: SlurpDep,
    inbox_id: Annotated[list[str] | None, Query(alias="inboxId")] = None,
    page: PageQ = 0,
    size: SizeQ = 20,
    sort: SortQ = "ASC",
    unread_only: Annotated[bool, Query(alias="unreadOnly")] = False,
    search_filter: Annotated[str | None, Query(alias="searchFilter", max_length=1000)] = None,
    since: TimeQ = None,
    before: TimeQ = None,
) -> wire.Page[wire.EmailProjection]:
    """A Spring page of the caller's emails (optionally of some inboxes; ``searchFilter``:
    words in subject, addresses and body)."""
    inbox_ids = [await slurp.mailbox.require_inbox(i) for i in inbox_id or []]
    rows, total = await slurp.store.messages(
        part(page, size, sort),
        inbox_ids=inbox_ids,
        unread_only=unread_only,
        since=utc(since),
        before=utc(before),
        words=search_filter.split() if search_filter else (),
    )
    items = [mapping.email_projection(message_out(m)) for m in rows]
    return wire.page_of(items, page=page, size=size, total=total)


@router.delete("/emails", status_code=status.HTTP_204_NO_CONTENT)
async def delete_all_emails(slurp: SlurpDep) -> Response:
    """Delete every email of every inbox of the caller."""
    page = 0
    while True:
        rows, _ = await slurp.store.inboxes(Slice(page=page, size=100, descending=False))
        for row in rows:
            try:
                await slurp.mailbox.empty_inbox(row.id)
            except NotFound:
                pass  # deleted concurrently
        if len(rows) < 100:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        page += 1


@router.get("/emails/latest")
async def get_latest_email(
    slurp: SlurpDep, inbox_ids: Annotated[list[str] | None, Query(alias="inboxIds")] = None
) -> wire.Email:
    """The newest email (of the given inboxes); 404 when there is none. Does not wait."""
    ids = [await slurp.mailbox.require_inbox(i) for i in inbox_ids or []]
    rows, _ = await slurp.store.messages(Slice(page=0, size=1, descending=True), inbox_ids=ids)
    if not rows:
        raise NotFound("no emails")
    return await read_email(slurp, rows[0].id)


@router.get("/emails/unreadCount")
async def get_unread_email_count(
    slurp: SlurpDep, inbox_id: Annotated[str | None, Query(alias="inboxId")] = None
) -> wire.UnreadCount:
    ids = [await slurp.mailbox.require_inbox(inbox_id)] if inbox_id else []
    _, total = await slurp.store.messages(
        Slice(page=0, size=1, descending=False), inbox_ids=ids, unread_only=True
    )
    return wire.UnreadCount(count=total)


@router.get("/emails/{email_id}")
async def get_email(email_id: str, slurp: SlurpDep) -> wire.Email:
    """The full email; marks it read."""
    return await read_email(slurp, email_id)


def _prefixed(prefix: str, subject: str | None) -> str:
    subject = subject or ""
    return subject if subject.lower().startswith(prefix.lower()) else f"{prefix} {subject}"


@router.put("/emails/{email_id}")
async def reply_to_email(
    email_id: str, options: wire.ReplyToEmailOptions, slurp: SlurpDep
) -> wire.SentEmailDto:
    """Reply from the receiving inbox to the sender (``Reply-To`` first), threaded with
    ``In-Reply-To``/``References``."""
    m = await slurp.mailbox.get_message(email_id)
    target = m.reply_to[0] if m.reply_to else m.from_
    if target is None or not target.address:
        raise InvalidInput(f"email {email_id} has no sender to reply to")
    headers = dict(options.custom_headers)
    if m.message_id:
        headers.setdefault("In-Reply-To", m.message_id)
        headers.setdefault("References", m.message_id)
    outbound_id = await send(
        slurp,
        m.inbox_id,
        wire.SendEmailOptions(
            to=[target.address],
            subject=_prefixed("Re:", m.subject),
            body=options.body,
            is_html=options.is_html or bool(options.html),
            reply_to=options.reply_to,
            custom_headers=headers,
            attachments=options.attachments,
        ),
    )
    return await sent_dto(slurp, await slurp.outbox.get_outbound(outbound_id))


@router.post("/emails/{email_id}/forward", status_code=status.HTTP_201_CREATED)
async def forward_email(
    email_id: str, options: wire.ForwardEmailOptions, slurp: SlurpDep
) -> wire.SentEmailDto:
    """Forward from the receiving inbox: the same body and attachments, ``Fwd:`` subject."""
    m = await slurp.mailbox.get_message(email_id)
    files = [await slurp.mailbox.attachment(m.id, a.id) for a in m.attachments]
    outbound_id = await send(
        slurp,
        m.inbox_id,
        wire.SendEmailOptions(
            to=options.to,
            cc=options.cc,
            bcc=options.bcc,
            subject=options.subject or _prefixed("Fwd:", m.subject),
            body=mapping.body_of(m) or "",
            is_html=m.html is not None,
        ),
        extra=[
            AttachmentIn(
                filename=f.meta.filename or f"attachment-{f.meta.index}",
                content_type=f.meta.content_type,
                content_base64=base64.b64encode(f.data).decode(),
            )
            for f in files
        ],
    )
    return await sent_dto(slurp, await slurp.outbox.get_outbound(outbound_id))


@router.delete("/emails/{email_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_email(email_id: str, slurp: SlurpDep) -> Response:
    await slurp.mailbox.delete_message(email_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/emails/{email_id}/html",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
)
async def get_email_html(
    email_id: str,
    slurp: SlurpDep,
) -> Response:
    """The HTML body (the text body when there is none), sandboxed like the native one."""
    m = await slurp.mailbox.get_message(email_id)
    return Response(
        content=mapping.body_of(m) or "",
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": HTML_CSP, "X-Frame-Options": "SAMEORIGIN"},
    )


@router.get("/emails/{email_id}/html/json")
async def get_email_html_json(email_id: str, slurp: SlurpDep) -> wire.EmailHtmlDto:
    m = await slurp.mailbox.get_message(email_id)
    return wire.EmailHtmlDto(subject=m.subject, body=mapping.body_of(m))


@router.get(
    "/emails/{email_id}/raw",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def get_raw_email_contents(email_id: str, slurp: SlurpDep) -> Response:
    """The bytes exactly as received."""
    return Response(content=await slurp.mailbox.raw(email_id), media_type="text/plain")


@router.get("/emails/{email_id}/raw/json")
async def get_raw_email_json(email_id: str, slurp: SlurpDep) -> wire.RawEmailJson:
    raw = await slurp.mailbox.raw(email_id)
    return wire.RawEmailJson(content=raw.decode("utf-8", "replace"))


def _attachment(m: MessageOut, attachment_id: str) -> wire.AttachmentMetaData:
    for a in m.attachments:
        if a.id == attachment_id:
            return mapping.attachment_meta(a.id, a.filename, a.content_type, a.size, a.content_id)
    raise NotFound(f"no attachment {attachment_id} in email {m.id}")


@router.get("/emails/{email_id}/attachments")
async def get_email_attachments(email_id: str, slurp: SlurpDep) -> list[wire.AttachmentMetaData]:
    m = await slurp.mailbox.get_message(email_id)
    return [_attachment(m, a.id) for a in m.attachments]


@router.get("/emails/{email_id}/attachments/{attachment_id}/metadata")
async def get_attachment_meta_data(
    email_id: str, attachment_id: str, slurp: SlurpDep
) -> wire.AttachmentMetaData:
    return _attachment(await slurp.mailbox.get_message(email_id), attachment_id)


@router.get(
    "/emails/{email_id}/attachments/{attachment_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_attachment(email_id: str, attachment_id: str, slurp: SlurpDep) -> Response:
    """The decoded bytes with the attachment's content type."""
    found = await slurp.mailbox.attachment(email_id, attachment_id)
    return Response(content=found.data, media_type=found.meta.content_type)


@router.get("/emails/{email_id}/attachments/{attachment_id}/base64")
async def download_attachment_base64(
    email_id: str, attachment_id: str, slurp: SlurpDep
) -> wire.DownloadAttachmentDto:
    found = await slurp.mailbox.attachment(email_id, attachment_id)
    return wire.DownloadAttachmentDto(
        base64_file_contents=base64.b64encode(found.data).decode(),
        content_type=found.meta.content_type,
        size_bytes=len(found.data),
    )


@router.get("/emails/{email_id}/links")
async def get_email_links(
    email_id: str,
    slurp: SlurpDep,
) -> wire.EmailLinksResult:
    """The links found at ingest (HTML hrefs first, then URLs in the text)."""
    m = await slurp.mailbox.get_message(email_id)
    return wire.EmailLinksResult(links=m.links, body=mapping.body_of(m) or "")


@router.post("/emails/{email_id}/contentMatch")
async def get_email_content_match(
    email_id: str, options: wire.ContentMatchOptions, slurp: SlurpDep
) -> wire.EmailContentMatchResult:
    """The first match of ``pattern`` in the body: the whole match, then its groups."""
    try:
        pattern = re.compile(options.pattern)
    except re.error as exc:
        raise InvalidInput(f"pattern: {exc}") from exc
    m = await slurp.mailbox.get_message(email_id)
    found = pattern.search(mapping.body_of(m) or "")
    matches = [] if found is None else [found.group(0), *[g or "" for g in found.groups()]]
    return wire.EmailContentMatchResult(pattern=options.pattern, matches=matches)


def _context(text: str, code: str) -> str | None:
    at = text.find(code)
    if at < 0:
        return None
    return " ".join(text[max(0, at - 40) : at + len(code) + 40].split())


async def _codes(
    slurp: Slurp, email_id: str, opts: wire.ExtractCodesOptions
) -> wire.ExtractCodesResult:
    m = await slurp.mailbox.get_message(email_id)
    text = mapping.plain_text(m)
    codes = list(m.codes)
    for custom in opts.custom_patterns:
        try:
            found = re.search(custom, text)
        except re.error as exc:
            raise InvalidInput(f"customPatterns: {exc}") from exc
        if found is not None:
            code = found.group(1) if found.groups() else found.group(0)
            codes.insert(0, code)
    codes = [
        c
        for c in dict.fromkeys(codes)
        if (opts.min_length is None or len(c) >= opts.min_length)
        and (opts.max_length is None or len(c) <= opts.max_length)
    ][: opts.max_candidates or None]
    candidates = [
        wire.CodeCandidate(
            code=c,
            confidence=round(max(0.5, 0.9 - 0.1 * i), 2),
            source="text" if m.text is not None else "html",
            context=_context(text, c),
        )
        for i, c in enumerate(codes)
    ]
    return wire.ExtractCodesResult(
        found=bool(candidates),
        code=candidates[0].code if candidates else None,
        method_used="PATTERN",
        candidates=candidates,
        warnings=[] if candidates else ["no one-time code found"],
    )


@router.post("/emails/{email_id}/codes")
async def get_email_codes(
    email_id: str,
    slurp: SlurpDep,
    options: Annotated[wire.ExtractCodesOptions | None, Body()] = None,
) -> wire.ExtractCodesResult:
    """One-time codes found at ingest (plus ``customPatterns`` matches), best first."""
    return await _codes(slurp, email_id, options or wire.ExtractCodesOptions())


@router.get("/emails/{email_id}/textLines")
async def get_email_text_lines(
    email_id: str,
    slurp: SlurpDep,
    line_separator: Annotated[str | None, Query(alias="lineSeparator", max_length=10)] = None,
) -> wire.EmailTextLinesResult:
    """The body as text lines (HTML turned into its visible text)."""
    m = await slurp.mailbox.get_message(email_id)
    text = m.text if m.html is None else html_to_text(m.html)
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return wire.EmailTextLinesResult(lines=lines, body=(line_separator or "\n").join(lines))


@router.patch("/emails/{email_id}/read")
async def mark_as_read(email_id: str, slurp: SlurpDep, read: bool = True) -> wire.EmailPreview:
    return mapping.email_preview(await slurp.mailbox.mark_seen(email_id, read))
