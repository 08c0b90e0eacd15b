"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from app.api.deps import RuntimeDep
from app.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text exposition: this process's counters and the store's gauges."""
    return Response(await runtime.metrics.render(runtime.db), media_type=CONTENT_TYPE)


@router.get("/readyz", responses={503: {"description": "store or SMTP not ready"}})
async def readyz(runtime: RuntimeDep) -> Any:
    """The store answers and the SMTP listener is accepting."""
    checks: dict[str, str] = {}
    try:
        await runtime.db.ping()
        checks["store"] = "ok"
    except Exception as exc:  # any driver error means not ready
        checks["store"] = f"error: {type(exc).__name__}"
    checks["smtp"] = "ok" if runtime.smtp.listening else "not listening"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )
