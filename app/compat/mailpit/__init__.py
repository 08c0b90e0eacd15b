"""A Mailpit-compatible REST API (Mailpit v1) over the caller's inboxes as one mailbox.

Mounted at ``/compat/mailpit``: Mailpit clients take that as their base URL and
call ``/compat/mailpit/api/v1/...`` and ``/compat/mailpit/view/...``. Every route
is a thin adapter over the services the native API uses (``Mailbox``,
``Outbox``, ``Rules``, the ingest funnel); only shapes and names are translated.
The routes are left out of our OpenAPI document: their contract is Mailpit's.
"""

from __future__ import annotations

from app.compat.mailpit.router import build_router

__all__ = ["build_router"]
