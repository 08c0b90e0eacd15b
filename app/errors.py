"""The one exception tree of Mailharness, and how each maps to HTTP and SMTP.

    MailharnessError                 base; ``code`` is the machine code in API errors
    ├── Unauthorized                 missing, unknown or revoked key  401
    ├── NotFound                     unknown or foreign id            404 / 550 5.1.1
    ├── Conflict                     address taken, state mismatch    409
    │   ├── MailArrived              a quiet window was broken        409 (+ items)
    │   ├── DeliveryStateConflict    a delivery ended in another state 409
    │   ├── InboxLimit               the tenant has its maximum of inboxes  409 / 452 4.3.1
    │   └── MailboxFull              the inbox is at its quota        409 / 452 4.2.2 (552 5.2.2)
    ├── InvalidInput                 bad field, cursor, address       400 or 422
    │   ├── InvalidCursor            cursor from another query        400
    │   └── InvalidQuery             a search query that cannot be read 400
    ├── WaitTimeout                  a wait's timeout passed first    408
    ├── PayloadTooLarge              request body over the limit      413
    ├── TooManyRequests              rate or concurrent-wait limit    429 (+ Retry-After)
    └── StoreUnavailable             the database failed              503 / 451 4.3.0

Each class docstring is its default detail sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class MailharnessError(Exception):
    """Mailharness failed."""

    code = "error"
    http_status = 500

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or (self.__doc__ or self.code).strip()
        super().__init__(self.detail)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class Unauthorized(MailharnessError):
    """A valid API key is required (Authorization: Bearer <key> or X-API-Key)."""

    code = "unauthorized"
    http_status = 401


class NotFound(MailharnessError):
    """No such object."""

    code = "not_found"
    http_status = 404


class Conflict(MailharnessError):
    """The request conflicts with the current state."""

    code = "conflict"
    http_status = 409


class InvalidInput(MailharnessError):
    """The request is not valid."""

    code = "invalid_request"
    http_status = 422


class InvalidCursor(InvalidInput):
    """The cursor does not belong to this query."""

    code = "invalid_cursor"
    http_status = 400


class InvalidQuery(InvalidInput):
    """The search query cannot be read."""

    code = "invalid_query"
    http_status = 400


class WaitTimeout(MailharnessError):
    """The timeout passed before the awaited mail arrived."""

    code = "timeout"
    http_status = 408


class StoreUnavailable(MailharnessError):
    """The store is not reachable."""

    code = "store_unavailable"
    http_status = 503


class MailArrived(Conflict):
    """Matching mail arrived during the quiet window."""

    code = "mail_arrived"

    def __init__(self, items: Sequence[Any]) -> None:
        super().__init__(f"{len(items)} matching message(s) arrived during the quiet window")
        self.items = list(items)


class DeliveryStateConflict(Conflict):
    """The delivery reached a different final state."""

    code = "state_conflict"


class InboxLimit(Conflict):
    """The tenant already has its maximum number of inboxes."""

    code = "inbox_limit"


class MailboxFull(Conflict):
    """The inbox is full."""

    code = "mailbox_full"

    def __init__(self, detail: str | None = None, *, permanent: bool = False) -> None:
        super().__init__(detail)
        # True when the message alone exceeds the inbox's byte quota: it never fits.
        self.permanent = permanent

    def smtp_reply(self) -> str:
        if self.permanent:
            return f"552 5.2.2 {self.detail}"
        return f"452 4.2.2 {self.detail}"


class PayloadTooLarge(MailharnessError):
    """The request body is too large."""

    code = "payload_too_large"
    http_status = 413


class TooManyRequests(MailharnessError):
    """Too many requests; slow down."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, detail: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = max(1, retry_after)
