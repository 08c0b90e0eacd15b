"""Test helpers: the running-harness handle and real SMTP clients."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from typing import Any

import aiosmtplib
import httpx

from app.runtime import Runtime
from app.server import Services


@dataclass
class Harness:
    runtime: Runtime
    services: Services
    http: httpx.AsyncClient
    base_url: str
    smtp_host: str
    smtp_port: int

    async def create_inbox(self, **body: Any) -> dict[str, Any]:
        resp = await self.http.post("/api/v1/inboxes", json=body)
        assert resp.status_code == 201, resp.text
        data: dict[str, Any] = resp.json()
        return data

    async def send(self, mail_from: str, rcpts: list[str], data: bytes) -> aiosmtplib.SMTPResponse:
        """Send one transaction with aiosmtplib; returns the reply to the end of DATA."""
        async with aiosmtplib.SMTP(
            hostname=self.smtp_host, port=self.smtp_port, start_tls=False
        ) as client:
            await client.ehlo()
            if mail_from:
                await client.mail(mail_from)
            else:  # the null reverse-path, which aiosmtplib's mail() refuses to write
                resp = await client.execute_command(b"MAIL FROM:<>")
                assert resp.code == 250, resp
            for rcpt in rcpts:
                await client.rcpt(rcpt)
            return await client.data(data)

    def send_sync(self, mail_from: str, rcpts: list[str], data: bytes) -> dict[str, Any]:
        """Send with the stdlib smtplib (run it in a thread from async tests)."""
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=30) as client:
            return client.sendmail(mail_from, rcpts, data)

    async def send_stdlib(self, mail_from: str, rcpts: list[str], data: bytes) -> dict[str, Any]:
        return await asyncio.to_thread(self.send_sync, mail_from, rcpts, data)


def simple_mail(
    *, to: str, subject: str = "Hello", body: str = "Hi there", sender: str = "app@example.com"
) -> bytes:
    return (
        f"From: App <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{abs(hash((to, subject, body)))}@example.com>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()
