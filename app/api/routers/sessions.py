"""SMTP session transcripts: list (by inbox, direction) and read one with its lines."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from app.api.deps import CursorQ, LimitQ, SessionsDep
from app.api.schemas.common import ErrorOut, Page
from app.api.schemas.sessions import SessionOut, SessionSummaryOut

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}


@router.get("", responses=NOT_FOUND)
async def list_sessions(
    sessions: SessionsDep,
    inbox_id: Annotated[
        str | None,
        Query(description="Sessions that delivered mail to this inbox, or relayed mail from it."),
    ] = None,
    direction: Literal["inbound", "outbound"] | None = None,
    limit: LimitQ = 50,
    cursor: CursorQ = None,
) -> Page[SessionSummaryOut]:
    """SMTP sessions (intake and relay attempts), newest first, without their lines."""
    return await sessions.list(inbox_id=inbox_id, direction=direction, limit=limit, cursor=cursor)


@router.get("/{session_id}", responses=NOT_FOUND)
async def get_session(session_id: str, sessions: SessionsDep) -> SessionOut:
    """One SMTP session with every command and reply and its timing."""
    return await sessions.get(session_id)
