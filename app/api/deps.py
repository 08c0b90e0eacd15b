"""FastAPI dependencies as ``Annotated`` aliases: the runtime, the caller's tenant, paging."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from app.config import DEFAULT_TENANT_ID
from app.runtime import Runtime
from app.services.mailbox import Mailbox
from app.services.outbox import Outbox
from app.services.rules import Rules
from app.services.sessions import Sessions


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_tenant_id() -> str:
    """Open mode: every caller is the default tenant (API keys map to tenants later)."""
    return DEFAULT_TENANT_ID


TenantDep = Annotated[str, Depends(get_tenant_id)]


def get_mailbox(runtime: RuntimeDep, tenant_id: TenantDep) -> Mailbox:
    return runtime.mailbox(tenant_id)


MailboxDep = Annotated[Mailbox, Depends(get_mailbox)]
LimitQ = Annotated[int, Query(ge=1, le=500, description="Page size (1..500).")]
CursorQ = Annotated[str | None, Query(description="Opaque cursor from next_cursor.")]


def get_outbox(runtime: RuntimeDep, tenant_id: TenantDep) -> Outbox:
    return runtime.outbox(tenant_id)


OutboxDep = Annotated[Outbox, Depends(get_outbox)]


def get_rules(runtime: RuntimeDep, tenant_id: TenantDep) -> Rules:
    return runtime.rules(tenant_id)


RulesDep = Annotated[Rules, Depends(get_rules)]


def get_sessions(runtime: RuntimeDep, tenant_id: TenantDep) -> Sessions:
    return runtime.sessions(tenant_id)


SessionsDep = Annotated[Sessions, Depends(get_sessions)]
