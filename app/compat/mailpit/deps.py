"""Dependencies of the compat routes: the caller's tenant and its services.

Mailpit clients authenticate with HTTP Basic auth only, so besides our
``Authorization: Bearer`` / ``X-API-Key`` the API key may be given as the
Basic password (any user name), like SMTP AUTH. Without keys (open mode) the
caller is the default tenant, as on the native API, and Basic credentials are
ignored.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request

from app.api.deps import RuntimeDep, presented_key
from app.config import DEFAULT_TENANT_ID
from app.errors import Unauthorized
from app.services.mailbox import Mailbox
from app.services.outbox import Outbox
from app.services.rules import Rules


def basic_password(request: Request) -> str | None:
    """The password of ``Authorization: Basic <base64(user:password)>``."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthorized("the Basic credentials are malformed") from None
    password = decoded.partition(":")[2]
    return password or None


async def get_tenant_id(request: Request, runtime: RuntimeDep) -> str:
    """The key's tenant; the default one for the admin key and in open mode, where
    Basic credentials are ignored (like Mailpit without auth). 401 otherwise."""
    keys = runtime.keys()
    presented = presented_key(request)
    if presented is None:
        if not await keys.keyed_mode():
            return DEFAULT_TENANT_ID
        presented = basic_password(request)
        if presented is None:
            raise Unauthorized("an API key is required (Basic auth password, or X-API-Key)")
    if keys.is_admin(presented):
        return DEFAULT_TENANT_ID
    tenant = await keys.tenant_for(presented)
    if tenant is None:
        raise Unauthorized("the API key is unknown or revoked")
    return tenant


TenantDep = Annotated[str, Depends(get_tenant_id)]


def get_mailbox(runtime: RuntimeDep, tenant_id: TenantDep) -> Mailbox:
    return runtime.mailbox(tenant_id)


def get_outbox(runtime: RuntimeDep, tenant_id: TenantDep) -> Outbox:
    return runtime.outbox(tenant_id)


def get_rules(runtime: RuntimeDep, tenant_id: TenantDep) -> Rules:
    return runtime.rules(tenant_id)


MailboxDep = Annotated[Mailbox, Depends(get_mailbox)]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]
RulesDep = Annotated[Rules, Depends(get_rules)]
