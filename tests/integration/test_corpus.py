"""Every awkward message of the corpus, sent over real SMTP, comes back through the API
as the parser reads it, with its raw bytes byte-exact and its attachments intact."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.mail import attachment_payload, parse_message
from tests.conftest import FIXTURES
from tests.support import Harness

CORPUS = sorted(FIXTURES.glob("*.eml"))


def _wire_bytes(raw: bytes) -> bytes:
    """What a server stores for ``raw`` sent with smtplib: the DATA content, which
    always ends with CRLF (the client adds one before the final dot if missing)."""
    return raw if raw.endswith(b"\r\n") else raw + b"\r\n"


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
async def test_corpus_message_round_trip(harness: Harness, path: Path) -> None:
    inbox = await harness.create_inbox()
    raw = path.read_bytes()
    await harness.send_stdlib("corpus@example.com", [inbox["address"]], raw)
    resp = await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait", params={"timeout": 10})
    assert resp.status_code == 200, resp.text
    msg = resp.json()["items"][0]

    stored = (await harness.http.get(f"/api/v1/messages/{msg['id']}/raw")).content
    assert stored == _wire_bytes(raw)

    expected = parse_message(stored)
    assert msg["subject"] == expected.subject
    if expected.from_ is None:
        assert msg["from"] is None
    else:
        assert msg["from"] == {"name": expected.from_.name, "address": expected.from_.address}
    assert [a["address"] for a in msg["to"]] == [a.address for a in expected.to]
    assert msg["text"] == expected.text
    assert msg["html"] == expected.html
    assert msg["links"] == expected.links
    assert msg["codes"] == expected.codes
    assert msg["parse_error"] == expected.parse_error
    assert [(h["name"], h["value"]) for h in msg["headers"]] == [
        (h.name, h.value) for h in expected.headers
    ]
    assert [(a["filename"], a["content_type"], a["size"]) for a in msg["attachments"]] == [
        (a.filename, a.content_type, a.size) for a in expected.attachments
    ]
    for att in msg["attachments"]:
        got = await harness.http.get(f"/api/v1/messages/{msg['id']}/attachments/{att['id']}")
        assert got.status_code == 200
        found = attachment_payload(
            stored, expected.attachments[msg["attachments"].index(att)].index
        )
        assert found is not None
        assert got.content == found[1]
        assert got.headers["content-type"].startswith(att["content_type"])
        assert got.headers["content-disposition"].startswith("attachment;")
        if att["filename"]:
            assert "filename*=UTF-8''" in got.headers["content-disposition"]
    assert msg["size"] == len(stored)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", msg["received_at"])


async def test_corpus_specifics(harness: Harness) -> None:
    """A few fields checked by value, so the round trip test is not only self-consistent."""
    inbox = await harness.create_inbox()
    for name in ("subject_utf8_b", "attachments_nonascii", "broken_boundary", "password_reset"):
        raw = (FIXTURES / f"{name}.eml").read_bytes()
        await harness.send_stdlib("corpus@example.com", [inbox["address"]], raw)
    resp = await harness.http.get(
        f"/api/v1/inboxes/{inbox['id']}/wait", params={"timeout": 10, "count": 4}
    )
    utf8, attachments, broken, reset = resp.json()["items"]
    assert utf8["subject"] == "Grüße aus Köln 🎉 – Angebot"
    assert [a["filename"] for a in attachments["attachments"]][:2] == [
        "Rechnung März 2026.pdf",
        "данные.csv",
    ]
    assert attachments["has_attachments"] is True
    assert broken["parse_error"] and broken["subject"] == "Broken boundary"
    assert reset["codes"] == ["482913"]
    assert reset["links"][0] == "https://app.example.com/reset?token=Zx9k2&uid=1042&ts=20261128"
