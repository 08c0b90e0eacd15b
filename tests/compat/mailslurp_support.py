"""The official MailSlurp Python SDK pointed at a running harness (shared by the
tests/compat/test_mailslurp*.py files). The SDK is synchronous: tests call it
through ``asyncio.to_thread``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import mailslurp_client as ms

from tests.support import Harness

T = TypeVar("T")

RESET_MAIL = (
    b"From: Acme Accounts <no-reply@acme.example>\r\n"
    b"To: {to}\r\n"
    b"Subject: Reset your Acme password\r\n"
    b"Message-ID: <reset-1@acme.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Your code is 481516. Or open https://acme.example/reset?token=abc&u=42\r\n"
    b"--b1\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b'<p>Your code is <b>481516</b>.</p><a href="https://acme.example/reset?token=abc&amp;u=42">Reset</a>\r\n'
    b"--b1--\r\n"
)


@dataclass
class Slurp:
    client: ms.ApiClient
    inboxes: ms.InboxControllerApi
    waits: ms.WaitForControllerApi
    emails: ms.EmailControllerApi
    sent: ms.SentEmailsControllerApi
    attachments: ms.AttachmentControllerApi
    webhooks: ms.WebhookControllerApi

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one SDK call in a thread (the SDK blocks)."""
        return await asyncio.to_thread(fn, *args, **kwargs)


def sdk(base_url: str, key: str | None = None, *, suffix: str = "") -> Slurp:
    cfg = ms.Configuration(host=f"{base_url}/compat/mailslurp{suffix}")
    if key is not None:
        cfg.api_key["x-api-key"] = key
    client = ms.ApiClient(cfg)
    return Slurp(
        client=client,
        inboxes=ms.InboxControllerApi(client),
        waits=ms.WaitForControllerApi(client),
        emails=ms.EmailControllerApi(client),
        sent=ms.SentEmailsControllerApi(client),
        attachments=ms.AttachmentControllerApi(client),
        webhooks=ms.WebhookControllerApi(client),
    )


async def send_mail(
    harness: Harness,
    to: str,
    *,
    subject: str = "Hello",
    body: str = "Hi there",
    sender: str = "app@example.com",
    extra_headers: str = "",
) -> None:
    raw = (
        f"From: App <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n{extra_headers}"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()
    reply = await harness.send(sender, [to], raw)
    assert reply.code == 250, reply
