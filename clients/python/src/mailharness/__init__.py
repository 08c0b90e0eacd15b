"""Mailharness client: sync and async API clients, typed results, a pytest plugin.

    from mailharness import Mailharness

    mh = Mailharness("http://127.0.0.1:8025", key="...")
    inbox = mh.bind(mh.create_inbox())
    msg = inbox.wait_for(subject="Reset your password", timeout=10)
    assert msg.link(contains="/reset/")

The pytest plugin (``mailharness.pytest_plugin``, loaded automatically when this
distribution is installed) provides the ``mailharness``, ``inbox``,
``inbox_factory``, ``mailharness_rules`` and ``mailharness_smtp`` fixtures.
"""

from __future__ import annotations

from mailharness._async import AsyncMailharness
from mailharness._bound import BoundInbox, WaitRecord
from mailharness._errors import (
    ApiError,
    AuthError,
    Conflict,
    ConnectionFailed,
    DeliveryStateConflict,
    MailharnessError,
    NoMatch,
    NotFound,
    QuietViolation,
    WaitTimeout,
)
from mailharness._models import (
    Address,
    ApiKey,
    Attachment,
    Delivery,
    DeliveryEvent,
    Envelope,
    Header,
    Inbox,
    Message,
    MessageSummary,
    Outbound,
    Page,
    Rule,
    Session,
    SessionLine,
    SmtpReply,
)
from mailharness._ops import Filters, RuleSpec
from mailharness._sync import Mailharness

__version__ = "0.1.0"
__all__ = [
    "Address",
    "ApiError",
    "ApiKey",
    "AsyncMailharness",
    "Attachment",
    "AuthError",
    "BoundInbox",
    "Conflict",
    "ConnectionFailed",
    "Delivery",
    "DeliveryEvent",
    "DeliveryStateConflict",
    "Envelope",
    "Filters",
    "Header",
    "Inbox",
    "Mailharness",
    "MailharnessError",
    "Message",
    "MessageSummary",
    "NoMatch",
    "NotFound",
    "Outbound",
    "Page",
    "QuietViolation",
    "Rule",
    "RuleSpec",
    "Session",
    "SessionLine",
    "SmtpReply",
    "WaitRecord",
    "WaitTimeout",
]
