"""WebhookController: per-inbox webhooks (not built yet: needs native webhooks)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["webhook"])
