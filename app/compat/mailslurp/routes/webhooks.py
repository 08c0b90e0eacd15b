"""WebhookController: per-inbox webhooks, as native webhooks with MailSlurp's payload.

``eventName`` ``EMAIL_RECEIVED`` (the default) or ``NEW_EMAIL`` becomes a native
webhook on ``message.received`` for the inbox, with the matching MailSlurp
payload format (``webhook_payloads``); it is signed, queued and retried like any
native webhook. ``basicAuth`` travels as the URL's user information (httpx sends
it as ``Authorization: Basic``); the URL is shown without it. Other event names
and ``includeHeaders`` are refused (400).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

from fastapi import APIRouter, Response, status

from app.api.schemas.webhooks import WebhookCreate, WebhookOut
from app.compat.mailslurp import wire
from app.compat.mailslurp.deps import PageQ, SizeQ, Slurp, SlurpDep, SortQ
from app.compat.mailslurp.webhook_payloads import EVENT_NAMES, FORMATS, PAYLOAD_SCHEMA
from app.errors import InvalidInput, NotFound

router = APIRouter(tags=["webhook"])


def _with_credentials(url: str, auth: wire.BasicAuthOptions | None) -> str:
    if auth is None:
        return url
    parts = urlsplit(url)
    if not parts.hostname:
        raise InvalidInput("url must be an absolute http:// or https:// URL")
    userinfo = f"{quote(auth.username, safe='')}:{quote(auth.password, safe='')}"
    netloc = f"{userinfo}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def _shown(url: str) -> tuple[str, bool]:
    """The URL without user information, and whether it had some (basic auth)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, False
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])), True


def _dto(w: WebhookOut, slurp: Slurp) -> wire.WebhookDto:
    url, basic = _shown(w.url)
    return wire.WebhookDto(
        id=w.id,
        user_id=slurp.user_id,
        inbox_id=w.inbox_id,
        name=None,
        url=url,
        basic_auth=basic,
        event_name=EVENT_NAMES.get(w.payload_format),
        payload_json_schema=PAYLOAD_SCHEMA,
        request_headers=None,
        created_at=w.created_at,
        updated_at=w.created_at,
    )


def _projection(w: WebhookOut, slurp: Slurp) -> wire.WebhookProjection:
    url, _ = _shown(w.url)
    return wire.WebhookProjection(
        id=w.id,
        user_id=slurp.user_id,
        inbox_id=w.inbox_id,
        name=None,
        url=url,
        event_name=EVENT_NAMES.get(w.payload_format),
        created_at=w.created_at,
        updated_at=w.created_at,
    )


async def _of_inbox(slurp: Slurp, inbox_id: str) -> list[WebhookOut]:
    inbox_id = await slurp.mailbox.require_inbox(inbox_id)
    every = await slurp.runtime.webhooks(slurp.tenant_id).list()
    return [w for w in every.items if w.inbox_id == inbox_id]


@router.post("/inboxes/{inbox_id}/webhooks", status_code=status.HTTP_201_CREATED)
async def create_webhook(
    inbox_id: str, options: wire.CreateWebhookOptions, slurp: SlurpDep
) -> wire.WebhookDto:
    """A webhook POSTing MailSlurp's new-email payload for each email the inbox gets."""
    event_name = options.event_name or "EMAIL_RECEIVED"
    if event_name not in FORMATS:
        raise InvalidInput(f"eventName: {event_name} is not supported (only {', '.join(FORMATS)})")
    if options.include_headers is not None and options.include_headers.headers:
        raise InvalidInput("includeHeaders: custom webhook headers are not supported")
    inbox_id = await slurp.mailbox.require_inbox(inbox_id)
    created = await slurp.runtime.webhooks(slurp.tenant_id).create(
        WebhookCreate(
            url=_with_credentials(options.url, options.basic_auth),
            events=["message.received"],
            inbox_id=inbox_id,
            payload_format=FORMATS[event_name],
        )
    )
    return _dto(created, slurp)


@router.get("/inboxes/{inbox_id}/webhooks/paginated")
async def get_inbox_webhooks_paginated(
    inbox_id: str, slurp: SlurpDep, page: PageQ = 0, size: SizeQ = 20, sort: SortQ = "ASC"
) -> wire.Page[wire.WebhookProjection]:
    hooks = await _of_inbox(slurp, inbox_id)
    if sort == "DESC":
        hooks.reverse()
    items = [_projection(w, slurp) for w in hooks[page * size : (page + 1) * size]]
    return wire.page_of(items, page=page, size=size, total=len(hooks))


@router.get("/inboxes/{inbox_id}/webhooks")
async def get_webhooks(inbox_id: str, slurp: SlurpDep) -> list[wire.WebhookProjection]:
    return [_projection(w, slurp) for w in await _of_inbox(slurp, inbox_id)]


@router.delete("/inboxes/{inbox_id}/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(inbox_id: str, webhook_id: str, slurp: SlurpDep) -> Response:
    inbox_id = await slurp.mailbox.require_inbox(inbox_id)
    hooks = slurp.runtime.webhooks(slurp.tenant_id)
    if (await hooks.get(webhook_id)).inbox_id != inbox_id:
        raise NotFound(f"no webhook {webhook_id} on inbox {inbox_id}")
    await hooks.delete(webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/webhooks/{webhook_id}")
async def get_webhook(webhook_id: str, slurp: SlurpDep) -> wire.WebhookDto:
    return _dto(await slurp.runtime.webhooks(slurp.tenant_id).get(webhook_id), slurp)


@router.delete("/webhooks/{webhook_id}", status_code=204)
async def delete_webhook_by_id(webhook_id: str, slurp: SlurpDep) -> Response:
    await slurp.runtime.webhooks(slurp.tenant_id).delete(webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
