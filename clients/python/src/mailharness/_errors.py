"""The client's exception tree: catch at the level you care about.

    MailharnessError                  base of everything this package raises
    ├── ConnectionFailed              the server could not be reached (no HTTP answer)
    ├── NoMatch                       message.link()/code() found nothing (also a LookupError)
    └── ApiError                      the server answered an error: status, error, detail
        ├── AuthError                 401: missing, unknown or revoked key
        ├── NotFound                  404: unknown id, or another tenant's
        ├── WaitTimeout               408: the wait's timeout passed first; carries the
        │                                  inbox, the filters, the count and the timeout
        └── Conflict                  409
            ├── QuietViolation        mail arrived during quiet(); carries the messages
            └── DeliveryStateConflict a delivery ended in another final state; carries it

Every ``ApiError`` keeps the answer's ``status``, its machine code ``error`` and its
human ``detail`` (the contract's ``{"error", "detail"}`` body).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailharness._models import Delivery, Message


class MailharnessError(Exception):
    """Base class of every error this package raises."""


class ConnectionFailed(MailharnessError):
    """The server did not answer (refused, DNS, read timeout...)."""

    def __init__(self, base_url: str, cause: BaseException) -> None:
        self.base_url = base_url
        super().__init__(
            f"cannot reach Mailharness at {base_url}: {type(cause).__name__}: {cause}. "
            "Start it with `mailharness serve` (or pytest --mailharness-start), or point "
            "--mailharness-url / MAILHARNESS_URL at it."
        )


class NoMatch(MailharnessError, LookupError):
    """A helper such as ``message.link(contains=...)`` found nothing."""


class ApiError(MailharnessError):
    """The server answered with an error status."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        self.status = status
        self.error = error
        self.detail = detail
        super().__init__(f"{status} {error}: {detail}")


class AuthError(ApiError):
    """401: a valid API key is needed (``--mailharness-key`` / ``MAILHARNESS_KEY``)."""


class NotFound(ApiError):
    """404: no such object for this key."""


class Conflict(ApiError):
    """409: the request conflicts with the current state (an address taken, ...)."""


class WaitTimeout(ApiError):
    """408: the awaited mail did not arrive in time."""

    def __init__(
        self,
        detail: str,
        *,
        inbox_id: str,
        address: str | None,
        filters: Mapping[str, Any],
        count: int,
        timeout: float,
    ) -> None:
        self.inbox_id = inbox_id
        self.address = address
        self.filters = dict(filters)
        self.count = count
        self.timeout = timeout
        ApiError.__init__(self, 408, "timeout", detail)
        where = address or inbox_id
        wanted = describe_filters(self.filters) or "any message"
        self.args = (
            f"no {count} message(s) matching {wanted} arrived in {where} "
            f"within {timeout:g} s ({detail})",
        )


class QuietViolation(Conflict):
    """409 from ``quiet()``: matching mail arrived during the quiet window."""

    def __init__(self, detail: str, *, inbox_id: str, messages: Sequence[Message]) -> None:
        self.inbox_id = inbox_id
        self.messages = list(messages)
        super().__init__(409, "mail_arrived", detail)
        subjects = ", ".join(repr(m.subject) for m in self.messages)
        self.args = (f"{detail}: {subjects}",)


class DeliveryStateConflict(Conflict):
    """409 from ``wait_for_delivery()``: the delivery ended in a different final state."""

    def __init__(
        self, detail: str, *, delivery_id: str, wanted: str, delivery: Delivery | None
    ) -> None:
        self.delivery_id = delivery_id
        self.wanted = wanted
        self.delivery = delivery
        super().__init__(409, "state_conflict", detail)
        if delivery is not None and delivery.last_response is not None:
            self.args = (f"{detail}; last response: {delivery.last_response}",)


def describe_filters(filters: Mapping[str, Any]) -> str:
    """``subject='Reset', from='app@x'`` for messages and reports (None values skipped)."""
    return ", ".join(f"{k.rstrip('_')}={v!r}" for k, v in filters.items() if v is not None)
