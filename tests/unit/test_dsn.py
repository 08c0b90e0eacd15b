"""Unit tests for app.mail.dsn: RFC 3464 delivery status notifications."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message, MIMEPart
from email.parser import BytesParser
from typing import Any

import pytest

from app.mail import attachment_payload, parse_message
from app.mail.dsn import DsnRecipient, build_dsn

ARRIVAL = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
ATTEMPT = datetime(2024, 5, 1, 12, 5, 0, tzinfo=UTC)
NOW = datetime(2024, 5, 1, 12, 10, 0, tzinfo=UTC)

ORIGINAL_HEADERS = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@remote.example, carol@remote.example\r\n"
    b"Subject: Quarterly report\r\n"
    b"Message-ID: <orig-123@example.com>\r\n"
    b"X-Folded: first\r\n"
    b"  continued\r\n"
)
ORIGINAL = ORIGINAL_HEADERS + b"\r\nSECRET-BODY-MARKER line one\r\nline two\r\n"

BOB = DsnRecipient(
    address="bob@remote.example",
    action="failed",
    status="5.1.1",
    diagnostic="smtp; 550 5.1.1 <bob@remote.example>: No such user",
    remote_mta="mx.remote.example",
    last_attempt=ATTEMPT,
)
CAROL = DsnRecipient(
    address="carol@remote.example",
    action="delayed",
    status="4.4.1",
    diagnostic=None,
    remote_mta=None,
    last_attempt=None,
)


def make(**overrides: Any) -> bytes:
    kwargs: dict[str, Any] = {
        "original": ORIGINAL,
        "envelope_from": "alice@example.com",
        "to": "alice@example.com",
        "reporting_mta": "mta.example.com",
        "recipients": [BOB],
        "arrival": ARRIVAL,
        "now": NOW,
        "postmaster": "postmaster@mta.example.com",
        "message_id_domain": "mta.example.com",
    }
    kwargs.update(overrides)
    return build_dsn(**kwargs)


def stdlib_parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def parts(raw: bytes) -> list[MIMEPart]:
    return list(stdlib_parse(raw).iter_parts())


def status_blocks(raw: bytes) -> list[Message]:
    """The header blocks of the message/delivery-status part."""
    status = parts(raw)[1]
    payload = status.get_payload()
    assert isinstance(payload, list)
    return [block for block in payload if isinstance(block, Message)]


def status_bytes(raw: bytes) -> bytes:
    """The raw body of the message/delivery-status part as serialised."""
    match = re.search(rb"Content-Type: message/delivery-status\r\n\r\n(.*?)\r\n--", raw, re.DOTALL)
    assert match is not None
    return match.group(1)


def assert_crlf_only(raw: bytes) -> None:
    assert re.search(rb"(?<!\r)\n", raw) is None, "bare LF in output"
    assert re.search(rb"\r(?!\n)", raw) is None, "bare CR in output"


# --------------------------------------------------------------------------
# Structure
# --------------------------------------------------------------------------


def test_structure_and_top_level_headers() -> None:
    raw = make()
    assert_crlf_only(raw)
    msg = stdlib_parse(raw)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert [p.get_content_type() for p in msg.iter_parts()] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["MIME-Version"] == "1.0"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"


def test_parse_message_round_trip() -> None:
    raw = make(recipients=[BOB, CAROL])
    parsed = parse_message(raw)
    assert parsed.parse_error is None
    assert parsed.from_ is not None
    assert parsed.from_.name == "Mail Delivery System"
    assert parsed.from_.address == "postmaster@mta.example.com"
    assert [a.address for a in parsed.to] == ["alice@example.com"]
    assert parsed.date == NOW
    assert parsed.message_id is not None
    assert re.fullmatch(r"<[0-9a-f]{32}@mta\.example\.com>", parsed.message_id)
    assert [a.content_type for a in parsed.attachments] == [
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    assert make() != raw  # fresh Message-ID / boundary each time


def test_subject_failed_delayed_mixed() -> None:
    def subject(recipients: list[DsnRecipient]) -> str | None:
        return parse_message(make(recipients=recipients)).subject

    assert subject([BOB]) == "Undelivered Mail Returned to Sender"
    assert subject([CAROL]) == "Delayed Mail (still being retried)"
    assert subject([BOB, CAROL]) == "Undelivered Mail Returned to Sender"


# --------------------------------------------------------------------------
# message/delivery-status
# --------------------------------------------------------------------------


def test_delivery_status_fields() -> None:
    raw = make(recipients=[BOB, CAROL])
    blocks = status_blocks(raw)
    assert len(blocks) == 3
    per_message, bob, carol = blocks
    assert per_message["Reporting-MTA"] == "dns; mta.example.com"
    assert per_message["Arrival-Date"] == "Wed, 01 May 2024 12:00:00 +0000"
    assert bob["Final-Recipient"] == "rfc822; bob@remote.example"
    assert bob["Action"] == "failed"
    assert bob["Status"] == "5.1.1"
    assert bob["Remote-MTA"] == "dns; mx.remote.example"
    assert bob["Diagnostic-Code"] == "smtp; 550 5.1.1 <bob@remote.example>: No such user"
    assert bob["Last-Attempt-Date"] == "Wed, 01 May 2024 12:05:00 +0000"
    assert carol["Final-Recipient"] == "rfc822; carol@remote.example"
    assert carol["Action"] == "delayed"
    assert carol["Status"] == "4.4.1"
    for absent in ("Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date"):
        assert carol[absent] is None


def test_delivery_status_serialised_exactly() -> None:
    body = status_bytes(make(recipients=[BOB, CAROL]))
    assert body == (
        b"Reporting-MTA: dns; mta.example.com\r\n"
        b"Arrival-Date: Wed, 01 May 2024 12:00:00 +0000\r\n"
        b"\r\n"
        b"Final-Recipient: rfc822; bob@remote.example\r\n"
        b"Action: failed\r\n"
        b"Status: 5.1.1\r\n"
        b"Remote-MTA: dns; mx.remote.example\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.example>: No such user\r\n"
        b"Last-Attempt-Date: Wed, 01 May 2024 12:05:00 +0000\r\n"
        b"\r\n"
        b"Final-Recipient: rfc822; carol@remote.example\r\n"
        b"Action: delayed\r\n"
        b"Status: 4.4.1\r\n"
    )


def test_delivery_status_part_via_attachment_payload() -> None:
    raw = make()
    found = attachment_payload(raw, 0)
    assert found is not None
    meta, data = found
    assert meta.content_type == "message/delivery-status"
    assert b"Reporting-MTA: dns; mta.example.com\r\n" in data
    assert b"Final-Recipient: rfc822; bob@remote.example\r\n" in data
    assert b"Status: 5.1.1\r\n" in data


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "expected"),
    [
        ("failed", "", None, "5.0.0"),
        ("delayed", "", None, "4.0.0"),
        ("failed", "garbage", "Connection refused", "5.0.0"),
        ("failed", "2.0.0", None, "5.0.0"),
        ("failed", "", "smtp; 550 5.7.1 Relaying denied", "5.7.1"),
        ("delayed", "", "451 4.7.1 Greylisted, try later", "4.7.1"),
        ("failed", " 5.2.2 ", None, "5.2.2"),
    ],
)
def test_status_derivation(action: str, status: str, diagnostic: str | None, expected: str) -> None:
    recipient = DsnRecipient(
        address="x@remote.example",
        action=action,  # type: ignore[arg-type]
        status=status,
        diagnostic=diagnostic,
        remote_mta=None,
        last_attempt=None,
    )
    assert status_blocks(make(recipients=[recipient]))[1]["Status"] == expected


@pytest.mark.parametrize(
    ("diagnostic", "expected"),
    [
        ("smtp; 550 5.1.1 No such user", "smtp; 550 5.1.1 No such user"),
        ("550 5.1.1 No such user", "smtp; 550 5.1.1 No such user"),
        ("X-Postfix; connect failed", "X-Postfix; connect failed"),
        ("Connection refused", "X-Mailharness; Connection refused"),
    ],
)
def test_diagnostic_type(diagnostic: str, expected: str) -> None:
    recipient = DsnRecipient("x@remote.example", "failed", "5.0.0", diagnostic, None, None)
    assert status_blocks(make(recipients=[recipient]))[1]["Diagnostic-Code"] == expected


def test_multiline_diagnostic_cannot_inject_fields() -> None:
    recipient = DsnRecipient(
        address="x@remote.example",
        action="failed",
        status="5.0.0",
        diagnostic="smtp; 550-5.1.1 first line\r\n550 5.1.1 Action: delivered\r\n\r\nStatus: 2.0.0",
        remote_mta="mx.remote.example\r\nAction: delivered",
        last_attempt=None,
    )
    raw = make(recipients=[recipient])
    assert_crlf_only(raw)
    blocks = status_blocks(raw)
    assert len(blocks) == 2
    assert blocks[1]["Action"] == "failed"
    assert blocks[1]["Status"] == "5.0.0"
    assert blocks[1].get_all("Action") == ["failed"]
    body = status_bytes(raw)
    assert not re.search(rb"^(Action: delivered|Status: 2)", body, re.MULTILINE)
    assert parse_message(raw).parse_error is None


def test_long_diagnostic_is_folded() -> None:
    text = "550 5.7.1 " + "policy rejection " * 60
    recipient = DsnRecipient("x@remote.example", "failed", "5.7.1", text, None, None)
    raw = make(recipients=[recipient])
    body = status_bytes(raw)
    assert all(len(line) <= 78 for line in body.split(b"\r\n"))
    unfolded = status_blocks(raw)[1]["Diagnostic-Code"]
    assert " ".join(str(unfolded).split()) == "smtp; " + " ".join(text.split())


def test_non_ascii_recipient_and_diagnostic() -> None:
    recipient = DsnRecipient(
        address="jörg+tag@exämple.com",
        action="failed",
        status="5.1.1",
        diagnostic="smtp; 550 5.1.1 Benutzer unbekannt: jörg",
        remote_mta="mx.exämple.com",
        last_attempt=None,
    )
    raw = make(recipients=[recipient])
    body = status_bytes(raw)
    assert body.isascii()
    block = status_blocks(raw)[1]
    assert block["Final-Recipient"] == "utf-8; j\\x{F6}rg\\x{2B}tag@ex\\x{E4}mple.com"
    assert block["Remote-MTA"] == "dns; mx.xn--exmple-cua.com"
    assert block["Diagnostic-Code"] == "smtp; 550 5.1.1 Benutzer unbekannt: j?rg"
    parsed = parse_message(raw)
    assert parsed.parse_error is None
    assert parsed.text is not None
    assert "jörg+tag@exämple.com" in parsed.text
    assert "Benutzer unbekannt: jörg" in parsed.text


def test_undecodable_server_reply() -> None:
    reply = b"550 5.1.1 caf\xe9 unknown".decode("utf-8", "surrogateescape")
    recipient = DsnRecipient("x@remote.example", "failed", "", reply, "mx\udcff.example", None)
    raw = make(recipients=[recipient])
    parsed = parse_message(raw)
    assert parsed.parse_error is None
    assert parsed.text is not None
    assert "550 5.1.1 café unknown" in parsed.text
    assert "mxÿ.example" in parsed.text
    block = status_blocks(raw)[1]
    assert block["Diagnostic-Code"] == "smtp; 550 5.1.1 caf? unknown"
    assert block["Status"] == "5.1.1"
    assert block["Remote-MTA"] == "dns; mx?.example"


def test_naive_datetimes_are_utc() -> None:
    recipient = DsnRecipient(
        "x@remote.example", "failed", "5.0.0", None, None, ATTEMPT.replace(tzinfo=None)
    )
    raw = make(
        recipients=[recipient], arrival=ARRIVAL.replace(tzinfo=None), now=NOW.replace(tzinfo=None)
    )
    blocks = status_blocks(raw)
    assert blocks[0]["Arrival-Date"] == "Wed, 01 May 2024 12:00:00 +0000"
    assert blocks[1]["Last-Attempt-Date"] == "Wed, 01 May 2024 12:05:00 +0000"
    assert parse_message(raw).date == NOW


# --------------------------------------------------------------------------
# Human-readable part
# --------------------------------------------------------------------------


def test_human_text_mentions_recipients_and_diagnostic() -> None:
    parsed = parse_message(make(recipients=[BOB, CAROL]))
    assert parsed.text is not None
    text = parsed.text
    assert "bob@remote.example" in text
    assert "carol@remote.example" in text
    assert "550 5.1.1 <bob@remote.example>: No such user" in text
    assert "mx.remote.example" in text
    assert "mta.example.com" in text
    assert "alice@example.com" in text
    assert "still being retried" in text


def test_human_text_delayed_only() -> None:
    parsed = parse_message(make(recipients=[CAROL]))
    assert parsed.text is not None
    assert "has not yet been delivered" in parsed.text
    assert "could not be delivered" not in parsed.text


# --------------------------------------------------------------------------
# text/rfc822-headers
# --------------------------------------------------------------------------


def test_original_headers_included_body_not() -> None:
    raw = make()
    assert b"SECRET-BODY-MARKER" not in raw
    assert b"line two" not in raw
    assert ORIGINAL_HEADERS in raw
    found = attachment_payload(raw, 1)
    assert found is not None
    meta, data = found
    assert meta.content_type == "text/rfc822-headers"
    assert data == ORIGINAL_HEADERS
    headers_part = parts(raw)[2]
    assert headers_part["Content-Transfer-Encoding"] == "7bit"


def test_original_with_bare_lf() -> None:
    original = ORIGINAL.replace(b"\r\n", b"\n")
    raw = make(original=original)
    assert_crlf_only(raw)
    assert b"SECRET-BODY-MARKER" not in raw
    found = attachment_payload(raw, 1)
    assert found is not None and found[1] == ORIGINAL_HEADERS


def test_original_with_8bit_headers() -> None:
    latin1 = b"Subject: caf\xe9 cr\xe8me\r\nFrom: J\xc3\xb6rg <j@example.com>\r\n"
    raw = make(original=latin1 + b"\r\nbody\xff\r\n")
    assert_crlf_only(raw)
    assert latin1 in raw
    assert b"body\xff" not in raw
    assert parts(raw)[2]["Content-Transfer-Encoding"] == "8bit"
    parsed = parse_message(raw)
    assert parsed.parse_error is None
    found = attachment_payload(raw, 1)
    assert found is not None and found[1] == latin1


def test_original_without_blank_line_or_empty() -> None:
    raw = make(original=b"Subject: only headers\r\nFrom: a@example.com")
    found = attachment_payload(raw, 1)
    assert found is not None
    assert found[1] == b"Subject: only headers\r\nFrom: a@example.com\r\n"
    raw = make(original=b"")
    assert parse_message(raw).parse_error is None
    raw = make(original=b"\r\nbody only\r\n")
    assert b"body only" not in raw


def test_original_header_looking_like_boundary() -> None:
    original = b"Subject: x\r\nX-Trap: y\r\n--===============0000000000000000000==\r\n\r\nbody"
    raw = make(original=original)
    msg = stdlib_parse(raw)
    assert len(list(msg.iter_parts())) == 3
    assert parse_message(raw).parse_error is None


# --------------------------------------------------------------------------
# Addresses and errors
# --------------------------------------------------------------------------


def test_smtputf8_sender() -> None:
    raw = make(to="jörg@exämple.com", envelope_from="jörg@exämple.com")
    assert_crlf_only(raw)
    parsed = parse_message(raw)
    assert parsed.parse_error is None
    assert [a.address for a in parsed.to] == ["jörg@exämple.com"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"recipients": []},
        {"recipients": [DsnRecipient("", "failed", "5.0.0", None, None, None)]},
        {"recipients": [DsnRecipient("x@y.com", "delivered", "2.0.0", None, None, None)]},  # type: ignore[arg-type]
        {"to": "not an address"},
        {"to": "a@b.com\r\nBcc: victim@example.com"},
        {"to": ""},
        {"postmaster": "postmaster"},
        {"reporting_mta": "mta example com"},
        {"reporting_mta": "mta.example.com\r\nX: y"},
        {"message_id_domain": "a b"},
    ],
)
def test_invalid_input(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make(**overrides)
