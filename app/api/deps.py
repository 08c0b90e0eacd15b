"""FastAPI dependencies as ``Annotated`` aliases: the runtime, the caller's tenant, paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request

from app.api.limits import ApiLimits
from app.config import DEFAULT_TENANT_ID
from app.errors import Unauthorized
from app.runtime import Runtime
from app.services.keys import Keys
from app.services.mailbox import Mailbox
from app.services.outbox import Outbox
from app.services.rules import Rules
from app.services.sessions import Sessions


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def presented_key(request: Request) -> str | None:
    """The key of ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


# The web UI's login stores the key in this cookie (HttpOnly, SameSite=Strict), so
# pages and the browser's EventSource authenticate without script access to the key.
KEY_COOKIE = "mailharness_key"


def tenant_key(request: Request) -> str | None:
    """The key a tenant request presents: a header (which takes precedence), else the
    web UI's cookie."""
    return presented_key(request) or request.cookies.get(KEY_COOKIE, "").strip() or None


def _limits(request: Request) -> ApiLimits | None:
    limits: ApiLimits | None = getattr(request.app.state, "limits", None)
    return limits


async def get_tenant_id(request: Request, runtime: RuntimeDep) -> str:
    """The caller's tenant: the key's own, the default one for the admin key, or the
    default one in open mode (no keys configured). 401 otherwise. The key comes from
    ``Authorization``/``X-API-Key`` or, without those, the web UI's cookie. Counts the
    request against the caller's rate (the tenant, or the client IP in open mode): 429."""
    keys = runtime.keys()
    presented = tenant_key(request)
    if presented is None:
        if await keys.keyed_mode():
            raise Unauthorized()
        tenant, caller = DEFAULT_TENANT_ID, f"ip:{request.client.host if request.client else ''}"
    elif keys.is_admin(presented):
        tenant, caller = DEFAULT_TENANT_ID, "admin"
    else:
        found = await keys.tenant_for(presented)
        if found is None:
            raise Unauthorized("the API key is unknown or revoked")
        tenant, caller = found, f"tenant:{found}"
    request.state.caller = caller
    limits = _limits(request)
    if limits is not None and caller != "admin":
        limits.check_rate(caller)
    return tenant


def require_admin(request: Request, runtime: RuntimeDep) -> Keys:
    keys = runtime.keys()
    presented = presented_key(request)
    if presented is None or not keys.is_admin(presented):
        raise Unauthorized("managing keys needs the admin key (MAILHARNESS_ADMIN_KEY)")
    return keys


AdminDep = Annotated[Keys, Depends(require_admin)]


TenantDep = Annotated[str, Depends(get_tenant_id)]


async def wait_slot(request: Request, _tenant: TenantDep) -> AsyncIterator[None]:
    """Holds one of the caller's long-poll slots for the length of the request (429
    when all are taken)."""
    limits = _limits(request)
    if limits is None:
        yield
        return
    with limits.waits.slot(str(getattr(request.state, "caller", ""))):
        yield


WaitSlot = Depends(wait_slot)


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
