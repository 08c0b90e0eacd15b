"""The status page: version, store, queue depth, listeners, auth mode."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.engine import make_url

from app import __version__
from app.api.deps import OutboxDep, RuntimeDep, TenantDep
from app.delivery.queue import ACTIVE
from app.web.routes.common import render

router = APIRouter(include_in_schema=False)

STATES = ["queued", "deferred", "delivered", "bounced", "expired", "held"]


@router.get("/status")
async def status_page(
    request: Request, runtime: RuntimeDep, outbox: OutboxDep, _tenant: TenantDep
) -> Response:
    """How this harness is set up and how busy its queue is (the caller's deliveries)."""
    settings = runtime.settings
    url = make_url(settings.effective_database_url)
    if settings.is_sqlite:
        store = f"SQLite ({url.database})"
    else:
        store = f"PostgreSQL ({url.host or 'localhost'}:{url.port or 5432}/{url.database})"
    try:
        await runtime.db.ping()
        store_ok = True
    except Exception:  # any driver error: the page says the store is unreachable
        store_ok = False
    counts = await outbox.delivery_counts()
    server = request.scope.get("server") or (settings.host, settings.http_port)
    return render(
        request,
        "status.html",
        {
            "nav": "status",
            "version": __version__,
            "store": store,
            "store_ok": store_ok,
            "counts": [(s, counts.get(s, 0)) for s in STATES],
            "queue_depth": sum(n for s, n in counts.items() if s in ACTIVE),
            "http": f"{settings.host}:{server[1]}",
            "smtp": f"{settings.host}:{runtime.smtp.port}",
            "smtp_listening": runtime.smtp.listening,
            "smtps": f"{settings.host}:{runtime.smtp.smtps_port}"
            if runtime.smtp.smtps_port
            else None,
            "domains": settings.domains,
            "relay_mode": settings.effective_relay_mode,
            "keyed": await runtime.keys().keyed_mode(),
        },
    )
