"""Request plumbing of the MailSlurp API: the caller's services, MailSlurp's paging and
millisecond timeouts.

Authentication is the native one (MailSlurp's ``x-api-key`` header is one of the
headers ``app.api.deps`` accepts), except that in open mode (no keys configured)
any key is accepted as the default tenant: MailSlurp suites always send one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, Query, Request

from app.api.deps import RuntimeDep, get_tenant_id
from app.compat.mailslurp.store import Slice, SlurpStore
from app.config import DEFAULT_TENANT_ID
from app.runtime import Runtime
from app.services.mailbox import Mailbox
from app.services.outbox import Outbox

MAX_PAGE = 100


@dataclass
class Slurp:
    """Everything a MailSlurp route needs for one caller."""

    runtime: Runtime
    tenant_id: str
    mailbox: Mailbox
    outbox: Outbox
    store: SlurpStore

    @property
    def user_id(self) -> str:
        return self.tenant_id

    def seconds(self, timeout_ms: int | None) -> float:
        """A MailSlurp ``timeout`` (ms) in seconds: the server default when absent,
        capped at the server's maximum wait."""
        if timeout_ms is None:
            return self.runtime.waits.clamp(self.runtime.settings.wait_default_timeout)
        return self.runtime.waits.clamp(timeout_ms / 1000)


async def get_slurp(request: Request, runtime: RuntimeDep) -> Slurp:
    if await runtime.keys().keyed_mode():
        tenant_id = await get_tenant_id(request, runtime)
    else:
        tenant_id = DEFAULT_TENANT_ID
    return Slurp(
        runtime=runtime,
        tenant_id=tenant_id,
        mailbox=runtime.mailbox(tenant_id),
        outbox=runtime.outbox(tenant_id),
        store=SlurpStore(db=runtime.db, tenant_id=tenant_id),
    )


SlurpDep = Annotated[Slurp, Depends(get_slurp)]

PageQ = Annotated[int, Query(ge=0, description="0-based page number.")]
SizeQ = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size (at most 100).")]
SortQ = Annotated[Literal["ASC", "DESC"], Query()]
TimeQ = Annotated[datetime | None, Query()]
TimeoutQ = Annotated[
    int | None, Query(ge=0, description="Milliseconds (server default when absent, capped).")
]


def utc(value: datetime | None) -> datetime | None:
    """Naive times from the SDK (``isoformat()`` of a naive datetime) are UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def part(page: int, size: int, sort: str) -> Slice:
    return Slice(page=page, size=size, descending=sort == "DESC")
