"""Unit tests for app.mail.compose: structure, encoding, validation, round-trips."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from app.mail import attachment_payload, parse_message
from app.mail.compose import (
    FORBIDDEN_HEADERS,
    MAX_ATTACHMENT_BYTES,
    MAX_BODY_BYTES,
    MAX_SUBJECT_CHARS,
    Composed,
    ComposeError,
    OutgoingAttachment,
    compose,
    validate_header,
)

NOW = datetime(2024, 5, 1, 12, 30, 15, tzinfo=UTC)
PDF = OutgoingAttachment("résumé ü.pdf", "application/pdf", bytes(range(256)) * 3)
CSV = OutgoingAttachment("data.csv", "text/csv", b"a,b\r\n1,2\n3,4\r\n\x00\xff")
JPG = OutgoingAttachment("фото 日本.jpg", "image/jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 100)


def make(**overrides: Any) -> Composed:
    kwargs: dict[str, Any] = {
        "from_address": "sender@example.com",
        "from_name": "Sender",
        "to": ["rcpt@example.org"],
        "subject": "Hello",
        "text": "Hello there",
        "message_id_domain": "mail.example.com",
        "now": NOW,
    }
    kwargs.update(overrides)
    return compose(**kwargs)


def stdlib_parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def assert_crlf_only(raw: bytes) -> None:
    assert re.search(rb"(?<!\r)\n", raw) is None, "bare LF in output"
    assert re.search(rb"\r(?!\n)", raw) is None, "bare CR in output"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def compose_error(field: str, **overrides: Any) -> ComposeError:
    with pytest.raises(ComposeError) as info:
        make(**overrides)
    assert info.value.field == field, str(info.value)
    assert str(info.value).startswith(f"{field}: ")
    return info.value


# --------------------------------------------------------------------------
# Body structure and round-trips
# --------------------------------------------------------------------------

TEXT = "Héllo wörld\nsecond line\n\nhttps://example.com/reset?token=abc"
HTML = '<p>Héllo <a href="https://example.com/x">wörld</a></p>'


@pytest.mark.parametrize("with_text", [True, False])
@pytest.mark.parametrize("with_html", [True, False])
@pytest.mark.parametrize("with_attachments", [True, False])
def test_every_body_combination_round_trips(
    with_text: bool, with_html: bool, with_attachments: bool
) -> None:
    attachments = [PDF, CSV, JPG] if with_attachments else []
    composed = make(
        text=TEXT if with_text else None,
        html=HTML if with_html else None,
        attachments=attachments,
    )
    assert_crlf_only(composed.raw)
    parsed = parse_message(composed.raw)
    assert parsed.parse_error is None
    assert parsed.subject == "Hello"
    assert parsed.text == (TEXT + "\n" if with_text else None)
    assert parsed.html == (HTML + "\n" if with_html else None)
    assert [a.filename for a in parsed.attachments] == [a.filename for a in attachments]
    assert [a.content_type for a in parsed.attachments] == [a.content_type for a in attachments]
    for index, expected in enumerate(attachments):
        found = attachment_payload(composed.raw, index)
        assert found is not None
        meta, data = found
        assert data == expected.data
        assert meta.filename == expected.filename
        assert meta.disposition == "attachment"
        assert meta.size == len(expected.data)

    msg = stdlib_parse(composed.raw)
    body_type = (
        "multipart/alternative"
        if with_text and with_html
        else "text/html"
        if with_html
        else "text/plain"
    )
    if with_attachments:
        assert msg.get_content_type() == "multipart/mixed"
        children = list(msg.iter_parts())
        assert children[0].get_content_type() == body_type
        assert len(children) == 1 + len(attachments)
        body = children[0]
    else:
        assert msg.get_content_type() == body_type
        body = msg
    if body_type == "multipart/alternative":
        assert [p.get_content_type() for p in body.iter_parts()] == ["text/plain", "text/html"]


def test_no_body_gives_empty_text_plain() -> None:
    composed = make(text=None, html=None)
    msg = stdlib_parse(composed.raw)
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content().strip() == ""
    parsed = parse_message(composed.raw)
    assert parsed.parse_error is None
    assert parsed.text is None and parsed.html is None and parsed.attachments == []


def test_non_ascii_text_is_7bit_safe() -> None:
    composed = make(text="Grüße 日本語 " * 50, html="<b>Grüße</b>")
    # all addresses are ASCII, so the whole message is 7-bit
    assert composed.raw.isascii()
    assert composed.smtputf8 is False
    assert parse_message(composed.raw).text == "Grüße 日本語 " * 50 + "\n"


def test_line_endings_of_input_are_normalised() -> None:
    composed = make(text="a\r\nb\nc\rd", html="<p>\r\n</p>\n")
    assert_crlf_only(composed.raw)
    parsed = parse_message(composed.raw)
    assert parsed.text == "a\nb\nc\nd\n"


def test_very_long_line_is_encoded() -> None:
    line = "x" * 5000
    composed = make(text=line)
    assert_crlf_only(composed.raw)
    assert parse_message(composed.raw).text == line + "\n"


def test_attachment_without_body() -> None:
    composed = make(text=None, attachments=[CSV])
    parsed = parse_message(composed.raw)
    assert parsed.parse_error is None
    assert parsed.text is None
    found = attachment_payload(composed.raw, 0)
    assert found is not None and found[1] == CSV.data


def test_non_ascii_filename_uses_rfc2231() -> None:
    composed = make(attachments=[PDF])
    assert b"filename*=utf-8''r%C3%A9sum%C3%A9%20%C3%BC.pdf" in composed.raw
    assert composed.raw.isascii()


def test_attachment_content_type_is_lowercased_and_kept() -> None:
    attachment = OutgoingAttachment("a.svg", "Image/SVG+xml", b"<svg/>")
    composed = make(attachments=[attachment])
    assert parse_message(composed.raw).attachments[0].content_type == "image/svg+xml"


# --------------------------------------------------------------------------
# Standard headers
# --------------------------------------------------------------------------


def test_message_id_generated() -> None:
    composed = make()
    assert re.fullmatch(r"<[0-9a-f]{32}@mail\.example\.com>", composed.message_id)
    parsed = parse_message(composed.raw)
    assert parsed.message_id == composed.message_id
    assert make().message_id != composed.message_id


def test_message_id_given() -> None:
    assert make(message_id="<abc.123@host.example>").message_id == "<abc.123@host.example>"
    composed = make(message_id="abc.123@host.example")
    assert composed.message_id == "<abc.123@host.example>"
    assert parse_message(composed.raw).message_id == "<abc.123@host.example>"


@pytest.mark.parametrize(
    "bad", ["<no-at-sign>", "<a b@c>", "<a@b>\r\nBcc: x@y", "<@b>", "<a@>", "<a@b\x00>"]
)
def test_message_id_invalid(bad: str) -> None:
    compose_error("message_id", message_id=bad)


@pytest.mark.parametrize("bad", ["", "a b", "a\r\nb", "<x>", "a@b"])
def test_message_id_domain_invalid(bad: str) -> None:
    compose_error("message_id_domain", message_id_domain=bad)


def test_message_id_domain_idn_is_punycoded() -> None:
    composed = make(message_id_domain="例子.广告")
    assert composed.message_id.endswith("@xn--fsqu00a.xn--4rr70v>")


def test_date_and_mime_version() -> None:
    composed = make()
    msg = stdlib_parse(composed.raw)
    assert msg["MIME-Version"] == "1.0"
    assert parsedate_to_datetime(str(msg["Date"])) == NOW
    assert parse_message(composed.raw).date == NOW


def test_date_keeps_offset() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    composed = make(now=local)
    assert b"Date: Wed, 01 May 2024 14:30:15 +0200\r\n" in composed.raw
    assert parse_message(composed.raw).date == NOW


def test_naive_now_is_utc() -> None:
    composed = make(now=NOW.replace(tzinfo=None))
    assert b"Date: Wed, 01 May 2024 12:30:15 +0000\r\n" in composed.raw


def test_header_order() -> None:
    composed = make(cc=["c@example.org"], reply_to=["r@example.org"], headers={"X-Tag": "t"})
    names = [h.name for h in parse_message(composed.raw).headers]
    assert names[:9] == [
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "X-Tag",
    ]
    assert names[9] == "Content-Type"


# --------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------


def test_addresses_round_trip() -> None:
    composed = make(
        from_name='Jörg "the" Müller, Jr.',
        to=["Ünï Cödé <u@example.org>", "plain@example.org", '"Doe, John" <john@example.org>'],
        cc=["Ccé <cc@example.org>"],
        reply_to=["Support Team <support@example.com>", "other@example.com"],
    )
    assert composed.raw.isascii()  # RFC 2047 encoded display names
    assert composed.smtputf8 is False
    parsed = parse_message(composed.raw)
    assert parsed.parse_error is None
    assert parsed.from_ is not None
    assert parsed.from_.name == 'Jörg "the" Müller, Jr.'
    assert parsed.from_.address == "sender@example.com"
    assert [(a.name, a.address) for a in parsed.to] == [
        ("Ünï Cödé", "u@example.org"),
        (None, "plain@example.org"),
        ("Doe, John", "john@example.org"),
    ]
    assert [(a.name, a.address) for a in parsed.cc] == [("Ccé", "cc@example.org")]
    assert [(a.name, a.address) for a in parsed.reply_to] == [
        ("Support Team", "support@example.com"),
        (None, "other@example.com"),
    ]
    assert parsed.bcc == []


def test_from_name_none_uses_name_in_address() -> None:
    parsed = parse_message(make(from_name=None, from_address="Bob <bob@example.com>").raw)
    assert parsed.from_ is not None
    assert (parsed.from_.name, parsed.from_.address) == ("Bob", "bob@example.com")
    parsed = parse_message(make(from_name=None).raw)
    assert parsed.from_ is not None
    assert (parsed.from_.name, parsed.from_.address) == (None, "sender@example.com")


def test_from_name_overrides_name_in_address() -> None:
    parsed = parse_message(make(from_name="Alice", from_address="Bob <bob@example.com>").raw)
    assert parsed.from_ is not None
    assert (parsed.from_.name, parsed.from_.address) == ("Alice", "bob@example.com")


def test_smtputf8_addresses() -> None:
    composed = make(
        from_address="jörg@exämple.com",
        from_name="Jörg",
        to=["用户@例子.广告", "Ünï <ascii@example.org>"],
        cc=["müller@example.de"],
        subject="Grüße",
    )
    assert composed.smtputf8 is True
    assert "jörg@exämple.com".encode() in composed.raw
    assert "用户@例子.广告".encode() in composed.raw
    assert_crlf_only(composed.raw)
    parsed = parse_message(composed.raw)
    assert parsed.parse_error is None
    assert parsed.from_ is not None
    assert (parsed.from_.name, parsed.from_.address) == ("Jörg", "jörg@exämple.com")
    assert [(a.name, a.address) for a in parsed.to] == [
        (None, "用户@例子.广告"),
        ("Ünï", "ascii@example.org"),
    ]
    assert [a.address for a in parsed.cc] == ["müller@example.de"]
    assert parsed.subject == "Grüße"
    assert parsed.text == "Hello there\n"


def test_smtputf8_message_with_attachment() -> None:
    composed = make(from_address="jörg@example.com", html=HTML, attachments=[PDF, JPG])
    assert composed.smtputf8 is True
    assert_crlf_only(composed.raw)
    parsed = parse_message(composed.raw)
    assert parsed.parse_error is None
    assert [a.filename for a in parsed.attachments] == [PDF.filename, JPG.filename]
    found = attachment_payload(composed.raw, 1)
    assert found is not None and found[1] == JPG.data


def test_idn_domain_with_ascii_local_part_needs_smtputf8() -> None:
    composed = make(to=["user@bücher.example"])
    assert composed.smtputf8 is True
    assert [a.address for a in parse_message(composed.raw).to] == ["user@bücher.example"]


def test_bcc_is_not_a_parameter() -> None:
    assert "bcc" not in inspect.signature(compose).parameters
    raw = make(cc=["c@example.org"]).raw
    assert b"bcc" not in raw.lower()


def test_empty_to_is_allowed() -> None:
    composed = make(to=[])
    assert b"\r\nTo:" not in composed.raw
    assert parse_message(composed.raw).to == []


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("to[0]", {"to": ["not-an-address"]}),
        ("to[0]", {"to": ["a@"]}),
        ("to[0]", {"to": ["@example.com"]}),
        ("to[0]", {"to": ["a b@example.com"]}),
        ("to[0]", {"to": [""]}),
        ("to[1]", {"to": ["ok@example.com", "x@example.com>"]}),
        ("to[0]", {"to": ["x@example.com\r\nBcc: victim@example.com"]}),
        ("to[0]", {"to": ["Name\r\n <x@example.com>"]}),
        ("cc[0]", {"cc": ["a@@b"]}),
        ("reply_to[0]", {"reply_to": ["a\x00@b.com"]}),
        ("from_address", {"from_address": "nobody"}),
        ("from_name", {"from_name": "Evil\r\nBcc: victim@example.com"}),
        ("from_name", {"from_name": "Evil\nX"}),
        ("to", {"to": "rcpt@example.org"}),
        ("cc", {"cc": "rcpt@example.org"}),
        ("to[0]", {"to": ["jö rg@exämple.com"]}),
        ("to[0]", {"to": ["jö..rg@exämple.com"]}),
    ],
)
def test_invalid_addresses(field: str, overrides: dict[str, Any]) -> None:
    compose_error(field, **overrides)


# --------------------------------------------------------------------------
# Subject and header injection
# --------------------------------------------------------------------------


def test_non_ascii_subject_round_trip() -> None:
    composed = make(subject="Grüße — 日本語 ✓")
    assert composed.raw.isascii()
    assert parse_message(composed.raw).subject == "Grüße — 日本語 ✓"


@pytest.mark.parametrize(
    "subject", ["Hi\r\nBcc: victim@example.com", "Hi\nBcc: x@y", "Hi\rX", "Hi\x00"]
)
def test_subject_injection(subject: str) -> None:
    compose_error("subject", subject=subject)


def test_subject_limit() -> None:
    long_subject = "s" * MAX_SUBJECT_CHARS
    composed = make(subject=long_subject)
    assert_crlf_only(composed.raw)
    assert parse_message(composed.raw).subject == long_subject
    compose_error("subject", subject="s" * (MAX_SUBJECT_CHARS + 1))


@pytest.mark.parametrize(
    "value",
    [
        "a\r\nBcc: victim@example.com",
        "a\nBcc: victim@example.com",
        "a\rb",
        "a\x00b",
        "a\r\n\r\n<html>body</html>",
    ],
)
def test_header_value_injection(value: str) -> None:
    compose_error("headers.X-Evil", headers={"X-Evil": value})
    with pytest.raises(ComposeError):
        validate_header("X-Evil", value)


@pytest.mark.parametrize(
    "name",
    ["X-A\r\nBcc", "X-A\nB", "X A", "X-A:", "X:A", "", "X-Ä", "X-A\x00", "X-\x7f", "\tX"],
)
def test_header_name_invalid(name: str) -> None:
    compose_error(f"headers.{name}", headers={name: "v"})
    with pytest.raises(ComposeError) as info:
        validate_header(name, "v")
    assert info.value.field == f"headers.{name}"


@pytest.mark.parametrize(
    "name",
    sorted(FORBIDDEN_HEADERS)
    + ["FROM", "Message-Id", "content-type", "Content-Transfer-Encoding", "BCC", "reply-to"],
)
def test_forbidden_overrides(name: str) -> None:
    error = compose_error(f"headers.{name}", headers={name: "x@example.com"})
    assert "cannot be overridden" in str(error)


def test_forbidden_list_is_complete() -> None:
    assert FORBIDDEN_HEADERS == {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "message-id",
        "date",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "reply-to",
    }


def test_custom_headers_in_order() -> None:
    headers = {
        "X-Zeta": "1",
        "List-Unsubscribe": "<mailto:unsub@example.com>, <https://example.com/u?id=1>",
        "X-Alpha": "Grüße",
        "In-Reply-To": "<parent@example.com>",
        "X-Empty": "",
    }
    composed = make(headers=headers)
    assert_crlf_only(composed.raw)
    parsed = parse_message(composed.raw)
    assert parsed.parse_error is None
    custom = [(h.name, h.value) for h in parsed.headers if h.name in headers]
    assert custom == list(headers.items())


def test_custom_headers_kept_verbatim() -> None:
    # Names the stdlib would parse as dates/addresses stay plain text.
    headers = {"Resent-Date": "not a date", "Sender": "odd ,,, value"}
    parsed = parse_message(make(headers=headers).raw)
    assert [(h.name, h.value) for h in parsed.headers if h.name in headers] == list(headers.items())


def test_duplicate_single_instance_header_rejected() -> None:
    compose_error("headers.sender", headers={"Sender": "a@example.com", "sender": "b@example.com"})


def test_long_custom_header_is_folded() -> None:
    composed = make(headers={"X-Long": "word " * 400 + "x" * 3000})
    assert_crlf_only(composed.raw)
    value = next(h.value for h in parse_message(composed.raw).headers if h.name == "X-Long")
    assert value == "word " * 400 + "x" * 3000


def test_validate_header_accepts_valid() -> None:
    validate_header("X-Custom", "value with spaces and ümlauts")
    validate_header("List-Id", "<list.example.com>")
    validate_header("X-!#$%&'*+-.^_`|~", "")


def test_lone_surrogates_rejected() -> None:
    compose_error("text", text="bad \udcff")
    compose_error("subject", subject="bad \udcff")
    compose_error("headers.X-A", headers={"X-A": "bad \udcff"})


# --------------------------------------------------------------------------
# Attachments and limits
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["pdf", "application/", "/pdf", "text/plain; charset=utf-8", "a/b/c", "text /plain", ""],
)
def test_attachment_content_type_invalid(content_type: str) -> None:
    bad = OutgoingAttachment("a.bin", content_type, b"x")
    compose_error("attachments[1].content_type", attachments=[CSV, bad])


@pytest.mark.parametrize("content_type", ["multipart/mixed", "message/rfc822"])
def test_attachment_container_types_rejected(content_type: str) -> None:
    bad = OutgoingAttachment("a.eml", content_type, b"Subject: x\r\n\r\nbody")
    compose_error("attachments[0].content_type", attachments=[bad])


@pytest.mark.parametrize(
    "content_type",
    [
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "image/svg+xml",
        "application/octet-stream",
        "text/calendar",
    ],
)
def test_attachment_content_type_valid(content_type: str) -> None:
    composed = make(attachments=[OutgoingAttachment("f", content_type, b"data")])
    assert parse_message(composed.raw).attachments[0].content_type == content_type


@pytest.mark.parametrize("filename", ["", "   ", "a\r\nb.txt", "a\x00.txt"])
def test_attachment_filename_invalid(filename: str) -> None:
    compose_error(
        "attachments[0].filename", attachments=[OutgoingAttachment(filename, "text/plain", b"x")]
    )


def test_body_limit() -> None:
    half = MAX_BODY_BYTES // 2
    make(text="t" * half, html="h" * half)  # exactly at the limit
    compose_error("body", text="t" * half, html="h" * (half + 1))
    compose_error("body", text="ü" * (half + 1))  # counted as UTF-8 bytes


def test_attachment_limit() -> None:
    at_limit = OutgoingAttachment(
        "big.bin", "application/octet-stream", bytes(MAX_ATTACHMENT_BYTES)
    )
    too_big = OutgoingAttachment(
        "big.bin", "application/octet-stream", bytes(MAX_ATTACHMENT_BYTES + 1)
    )
    error = compose_error("attachments[1].data", attachments=[at_limit, too_big])
    assert str(MAX_ATTACHMENT_BYTES) in str(error)


def test_compose_error_is_value_error() -> None:
    error = ComposeError("subject", "too long")
    assert isinstance(error, ValueError)
    assert error.field == "subject"
    assert str(error) == "subject: too long"
