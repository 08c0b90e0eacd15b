"""Hostile messages through real SMTP into a running harness (both stores): every
accepted message (250) has its raw bytes back byte-exact from ``/raw``, ``GET
/messages/{id}`` never answers 5xx, nothing crashes, each example within a bound.

The examples are drawn once, deterministically (``derandomize=True``), by a
hypothesis run that only collects them; the async test then sends each over its
own SMTP connection, so one harness (one store) serves them all."""

from __future__ import annotations

import asyncio
import re
import socket
import time

from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz.strategies import hostile
from tests.support import Harness

EXAMPLES = 30
PER_EXAMPLE_SECONDS = 15.0


def draw_examples(count: int) -> list[bytes]:
    drawn: list[bytes] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile())
    def collect(raw: bytes) -> None:
        drawn.append(raw)

    collect()
    return drawn


def on_the_wire(raw: bytes) -> bytes:
    """What an SMTP client transmits and the server stores: CRLF line endings, ending in
    CRLF (the dot-stuffing is undone by the server)."""
    text = re.sub(rb"\r?\n|\r", b"\r\n", raw)
    return text if text.endswith(b"\r\n") else text + b"\r\n"


def smtp_send(host: str, port: int, rcpt: str, message: bytes) -> str:
    with socket.create_connection((host, port), timeout=60) as sock:
        f = sock.makefile("rwb")

        def cmd(line: bytes | None) -> str:
            if line is not None:
                f.write(line + b"\r\n")
                f.flush()
            reply = b""
            while True:
                got = f.readline()
                if not got:
                    return reply.decode("utf-8", "replace") or "(closed)"
                reply += got
                if got[3:4] != b"-":
                    return reply.decode("utf-8", "replace").strip()

        cmd(None)
        cmd(b"EHLO fuzz.test")
        cmd(b"MAIL FROM:<fuzz@example.com>")
        assert cmd(b"RCPT TO:<" + rcpt.encode() + b">").startswith("250")
        if not cmd(b"DATA").startswith("354"):
            return "DATA refused"
        stuffed = re.sub(rb"(?m)^\.", b"..", message)
        return cmd(stuffed + b".")


async def test_hostile_mail_over_smtp_is_stored_exactly(harness: Harness) -> None:
    inbox = await harness.create_inbox()
    accepted = 0
    for raw in draw_examples(EXAMPLES):
        wire = on_the_wire(raw)
        started = time.perf_counter()
        reply = await asyncio.to_thread(
            smtp_send, harness.smtp_host, harness.smtp_port, inbox["address"], wire
        )
        assert reply[:1] in ("2", "5"), f"{reply} for {raw[:300]!r}"  # no 4xx: nothing crashed
        if reply.startswith("250"):
            accepted += 1
            submission = reply.rsplit(" ", 1)[1]
            found = await harness.http.get("/api/v1/messages", params={"submission_id": submission})
            assert found.status_code == 200
            [item] = found.json()["items"]
            raw_resp = await harness.http.get(f"/api/v1/messages/{item['id']}/raw")
            assert raw_resp.status_code == 200
            assert raw_resp.content == wire, f"raw bytes differ for {raw[:300]!r}"
            message = await harness.http.get(f"/api/v1/messages/{item['id']}")
            assert message.status_code == 200, message.text
            for attachment in message.json()["attachments"]:
                got = await harness.http.get(
                    f"/api/v1/messages/{item['id']}/attachments/{attachment['id']}"
                )
                assert got.status_code < 500
            html = await harness.http.get(f"/api/v1/messages/{item['id']}/html")
            assert html.status_code in (200, 404)
        elapsed = time.perf_counter() - started
        assert elapsed < PER_EXAMPLE_SECONDS, f"{elapsed:.1f} s for {raw[:300]!r}"
    # Not vacuous: most hostile mail is still accepted and checked byte for byte.
    assert accepted >= EXAMPLES // 2, accepted
    assert (await harness.http.get("/readyz")).status_code == 200
