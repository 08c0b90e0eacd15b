"""Webhooks: create, list, read, delete; their calls and attempts; manual redelivery."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from app.api.deps import RuntimeDep, TenantDep
from app.api.schemas.common import ErrorOut, Page
from app.api.schemas.webhooks import WebhookAttemptOut, WebhookCallOut, WebhookCreate, WebhookOut
from app.services.webhooks import Webhooks

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}
Limit = Annotated[int, Query(ge=1, le=500)]


def get_webhooks(runtime: RuntimeDep, tenant_id: TenantDep) -> Webhooks:
    return runtime.webhooks(tenant_id)


WebhooksDep = Annotated[Webhooks, Depends(get_webhooks)]


@router.post("", status_code=status.HTTP_201_CREATED, responses={422: {"model": ErrorOut}})
async def create_webhook(data: WebhookCreate, webhooks: WebhooksDep) -> WebhookOut:
    """Add a webhook; the answer holds its secret (the only time it is shown)."""
    return await webhooks.create(data)


@router.get("")
async def list_webhooks(webhooks: WebhooksDep) -> Page[WebhookOut]:
    """The caller's webhooks, oldest first."""
    return await webhooks.list()


@router.get("/{webhook_id}", responses=NOT_FOUND)
async def get_webhook(webhook_id: str, webhooks: WebhooksDep) -> WebhookOut:
    """One webhook (without its secret)."""
    return await webhooks.get(webhook_id)


@router.delete("/{webhook_id}", status_code=204, responses=NOT_FOUND)
async def delete_webhook(webhook_id: str, webhooks: WebhooksDep) -> Response:
    """Remove a webhook and its pending calls."""
    await webhooks.delete(webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/calls", responses=NOT_FOUND)
async def list_webhook_calls(
    webhook_id: str, webhooks: WebhooksDep, limit: Limit = 100
) -> Page[WebhookCallOut]:
    """The webhook's calls (one per event), newest first, with their state."""
    return await webhooks.calls(webhook_id, limit=limit)


@router.get("/{webhook_id}/attempts", responses=NOT_FOUND)
async def list_webhook_attempts(
    webhook_id: str, webhooks: WebhooksDep, limit: Limit = 500
) -> Page[WebhookAttemptOut]:
    """Every POST made for this webhook (the last ``limit``), oldest first."""
    return await webhooks.attempts(webhook_id, limit=limit)


@router.post("/{webhook_id}/calls/{call_id}/redeliver", status_code=202, responses=NOT_FOUND)
async def redeliver_webhook_call(
    webhook_id: str, call_id: str, webhooks: WebhooksDep
) -> WebhookCallOut:
    """Send a call's event again, as a new call with a fresh retry budget."""
    return await webhooks.redeliver(webhook_id, call_id)
