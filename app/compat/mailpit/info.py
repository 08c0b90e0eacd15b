"""``info`` and ``webui``: what Mailpit clients read about the server.

Counters we do not keep are reported as 0 (``MessagesDeleted``,
``SMTPRejected``, ``SMTPIgnored``, ``SMTPAcceptedSize``, ``DatabaseSize``);
``SMTPAccepted`` is the messages this process's ingest funnel stored. No
secret ever appears: the database is named by kind, the relay by host:port.
"""

from __future__ import annotations

import resource
import sys
import time
from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app import __version__
from app.api.deps import RuntimeDep
from app.compat.mailpit.deps import MailboxDep
from app.compat.mailpit.errors import MailpitRoute
from app.runtime import Runtime


def _relay_server(runtime: Runtime) -> str:
    mode = runtime.settings.effective_relay_mode
    if mode == "mx":
        return "MX of each recipient domain"
    if mode == "smarthost" and runtime.settings.relay_url:
        parts = urlsplit(runtime.settings.relay_url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return ""


def _peak_memory() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def build_info_router() -> APIRouter:
    router = APIRouter(route_class=MailpitRoute)
    started = time.monotonic()

    @router.get("/api/v1/info")
    async def info(runtime: RuntimeDep, mailbox: MailboxDep) -> JSONResponse:
        window = await mailbox.window(q=None, offset=0, limit=0)
        return JSONResponse(
            {
                "Version": f"mailharness {__version__}",
                "LatestVersion": "",
                "Database": "sqlite" if runtime.settings.is_sqlite else "postgresql",
                "DatabaseSize": 0,
                "Messages": window.total,
                "Unread": window.unread,
                "Tags": {},
                "RuntimeStats": {
                    "Uptime": int(time.monotonic() - started),
                    "Memory": _peak_memory(),
                    "MessagesDeleted": 0,
                    "SMTPAccepted": runtime.ingest.stats.jobs,
                    "SMTPAcceptedSize": 0,
                    "SMTPRejected": 0,
                    "SMTPIgnored": 0,
                },
            }
        )

    @router.get("/api/v1/webui")
    async def webui(runtime: RuntimeDep) -> JSONResponse:
        relay = _relay_server(runtime)
        return JSONResponse(
            {
                "Label": "Mailharness",
                "SpamAssassin": False,
                "ChaosEnabled": True,
                "DuplicatesIgnored": False,
                "HideDeleteAllButton": False,
                "MessageRelay": {
                    "Enabled": bool(relay),
                    "SMTPServer": relay,
                    "AllowedRecipients": "",
                    "BlockedRecipients": "",
                    "ReturnPath": "",
                    "OverrideFrom": "",
                    "PreserveMessageIDs": True,
                },
            }
        )

    return router
