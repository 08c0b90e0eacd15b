"""MailSlurp-compatible API: the official MailSlurp SDKs work against Mailharness with
``Configuration(host="http://HOST:8025/compat/mailslurp")``.

A thin adapter: every operation calls the native services (``Mailbox``,
``Outbox``, ``WaitService``); this package only translates MailSlurp's wire names,
units (milliseconds), pages and statuses. ``wire`` holds the wire models,
``mapping`` the conversions, ``matching`` MailSlurp's match options as a native
message filter, ``store`` the offset pages and the few fields MailSlurp has and
we lack, ``routes`` one module per area, ``http`` the sub-application.
"""

from __future__ import annotations

from app.compat.mailslurp.http import MOUNT, CollapseSlashes, create_app

__all__ = ["MOUNT", "CollapseSlashes", "create_app"]
