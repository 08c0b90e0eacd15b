"""Helpers of the Mailpit compatibility tests: the base URL clients get, mail to send."""

from __future__ import annotations

from email.message import EmailMessage

from tests.support import Harness

PREFIX = "/compat/mailpit"
PDF = b"%PDF-1.4 fake but binary \x00\x01\x02\xff end"


def base_url(harness: Harness) -> str:
    """What a Mailpit client is configured with (its ``/api/v1/...`` goes after it)."""
    return f"{harness.base_url}{PREFIX}"


def mail_with_attachment(*, to: str, subject: str, body: str = "See the attached file") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Billing <billing@example.com>"
    msg["To"] = f"Customer <{to}>"
    msg["Cc"] = "audit@example.com"
    msg["Subject"] = subject
    msg["Date"] = "Sat, 28 Nov 2026 21:00:00 +0000"
    msg["Message-ID"] = f"<{subject.replace(' ', '.')}@example.com>"
    msg["X-Tags"] = "invoice, billing"
    msg.set_content(body)
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    return msg.as_bytes()


async def deliver(harness: Harness, to: str, data: bytes, sender: str = "app@example.com") -> None:
    """Send over real SMTP; returns once the harness has stored the message (250)."""
    reply = await harness.send(sender, [to], data)
    assert reply.code == 250, reply
