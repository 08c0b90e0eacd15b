"""Inboxes: create, list, read, delete, empty."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status

from app.api.deps import CursorQ, LimitQ, MailboxDep
from app.api.schemas.common import ErrorOut, Page
from app.api.schemas.inboxes import InboxCreate, InboxOut

router = APIRouter(prefix="/api/v1/inboxes", tags=["inboxes"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
async def create_inbox(
    mailbox: MailboxDep, data: Annotated[InboxCreate | None, Body()] = None
) -> InboxOut:
    """Create a throwaway inbox (random address unless one is given)."""
    return await mailbox.create_inbox(data or InboxCreate())


@router.get("")
async def list_inboxes(
    mailbox: MailboxDep,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    limit: LimitQ = 50,
    cursor: CursorQ = None,
) -> Page[InboxOut]:
    """List inboxes, newest first, optionally by tag."""
    return await mailbox.list_inboxes(tag=tag, limit=limit, cursor=cursor)


@router.get("/{inbox_id}", responses=NOT_FOUND)
async def get_inbox(inbox_id: str, mailbox: MailboxDep) -> InboxOut:
    """One inbox with its message count."""
    return await mailbox.get_inbox(inbox_id)


@router.delete("/{inbox_id}", status_code=204, responses=NOT_FOUND)
async def delete_inbox(inbox_id: str, mailbox: MailboxDep) -> Response:
    """Delete an inbox and its messages."""
    await mailbox.delete_inbox(inbox_id)
    return Response(status_code=204)


@router.delete("/{inbox_id}/messages", status_code=204, responses=NOT_FOUND)
async def empty_inbox(inbox_id: str, mailbox: MailboxDep) -> Response:
    """Delete every message of an inbox."""
    await mailbox.empty_inbox(inbox_id)
    return Response(status_code=204)
