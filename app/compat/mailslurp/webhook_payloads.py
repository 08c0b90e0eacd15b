"""MailSlurp's new-email webhook payload as native webhook payload formats.

A MailSlurp webhook is a native webhook (``app.webhooks``: signed, queued,
retried, with calls and attempts) whose payload format is one of ``FORMATS``.
The format name carries MailSlurp's ``eventName``, so it lives in the native
row. Its formatter turns the native ``message.received`` data (a message
summary) into ``WebhookNewEmailPayload``: ``messageId`` (the idempotency key:
webhook and email), ``webhookId``, ``eventName``, ``inboxId``, ``emailId``,
``createdAt``, ``to``, ``from``, ``cc``, ``bcc``, ``subject`` and
``attachmentMetaDatas``. The summary has no cc, bcc or attachment details, so
those lists are empty: read them with ``getEmail(emailId)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.compat.mailslurp.wire import format_ms
from app.webhooks import formats

FORMATS = {
    "EMAIL_RECEIVED": "mailslurp-email-received",
    "NEW_EMAIL": "mailslurp-new-email",
}
EVENT_NAMES = {fmt: event for event, fmt in FORMATS.items()}

# What the payload looks like (MailSlurp's WebhookDto.payloadJsonSchema is a string).
PAYLOAD_SCHEMA = (
    '{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"WebhookNewEmailPayload",'
    '"type":"object","required":["messageId","webhookId","eventName","inboxId","emailId",'
    '"createdAt","to","from","cc","bcc","attachmentMetaDatas"],"properties":{'
    '"messageId":{"type":"string"},"webhookId":{"type":"string"},'
    '"eventName":{"type":"string","enum":["EMAIL_RECEIVED","NEW_EMAIL"]},'
    '"webhookName":{"type":["string","null"]},"inboxId":{"type":"string"},'
    '"emailId":{"type":"string"},"createdAt":{"type":"string","format":"date-time"},'
    '"to":{"type":"array","items":{"type":"string"}},"from":{"type":"string"},'
    '"cc":{"type":"array","items":{"type":"string"}},'
    '"bcc":{"type":"array","items":{"type":"string"}},"subject":{"type":["string","null"]},'
    '"attachmentMetaDatas":{"type":"array"}}}'
)


def new_email_payload(
    event_name: str, data: dict[str, Any], webhook: dict[str, Any]
) -> dict[str, Any]:
    """``WebhookNewEmailPayload`` from a native message summary."""
    sender = data.get("from") or {}
    received = datetime.fromisoformat(str(data["received_at"]).replace("Z", "+00:00"))
    return {
        "messageId": f"{webhook['id']}:{data['id']}",
        "webhookId": webhook["id"],
        "eventName": event_name,
        "webhookName": None,
        "inboxId": data["inbox_id"],
        "domainId": None,
        "emailId": data["id"],
        "createdAt": format_ms(received),
        "to": [a["address"] for a in data.get("to", [])],
        "from": sender.get("address") or "",
        "cc": [],
        "bcc": [],
        "subject": data.get("subject"),
        "attachmentMetaDatas": [],
    }


def _formatter(event_name: str) -> formats.Formatter:
    def render(event: str, data: dict[str, Any], webhook: dict[str, Any]) -> dict[str, Any]:
        if event != "message.received":  # only subscribed to message.received
            return data
        return new_email_payload(event_name, data, webhook)

    return render


def register() -> None:
    """Make the formats known to the native webhooks (idempotent)."""
    for event_name, name in FORMATS.items():
        formats.register(name, _formatter(event_name))
