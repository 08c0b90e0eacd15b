"""Unit tests of MessageFilter and Since (app/events/waiters.py), without a database.

Messages are built in memory with the same ``details`` layout as
app.ingest.build_message, either from a parsed fixture or field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.events.waiters import MessageFilter, Since
from app.mail import Address, ParsedMessage, parse_message
from app.store.models import Message

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


def _addr(address: Address) -> dict[str, Any]:
    return {"name": address.name, "address": address.address}


def from_parsed(
    parsed: ParsedMessage,
    rcpt_to: Sequence[str],
    *,
    seq: int = 1,
    seen: bool = False,
    received_at: datetime = T0,
) -> Message:
    """A Message row as app.ingest.build_message makes it (the fields filters read)."""
    header_addrs = {a.address.lower() for a in (*parsed.to, *parsed.cc, *parsed.bcc)}
    bcc = [_addr(a) for a in parsed.bcc] + [
        {"name": None, "address": rcpt}
        for rcpt in dict.fromkeys(rcpt_to)
        if rcpt.lower() not in header_addrs
    ]
    details: dict[str, Any] = {
        "message_id": parsed.message_id,
        "cc": [_addr(a) for a in parsed.cc],
        "bcc": bcc,
        "reply_to": [_addr(a) for a in parsed.reply_to],
        "date": parsed.date.isoformat() if parsed.date else None,
        "headers": [{"name": h.name, "value": h.value} for h in parsed.headers],
        "text": parsed.text,
        "html": parsed.html,
        "attachments": [],
        "envelope": {
            "mail_from": "bounce@sender.example",
            "rcpt_to": list(rcpt_to),
            "client_address": "192.0.2.1",
            "helo": "client.example",
            "tls": False,
            "authenticated": None,
        },
        "links": parsed.links,
        "codes": parsed.codes,
    }
    return Message(
        seq=seq,
        id=f"msg-{seq}",
        tenant_id="tenant",
        inbox_id="inbox",
        submission_id="submission",
        message_id_header=parsed.message_id,
        subject=parsed.subject,
        from_name=parsed.from_.name if parsed.from_ else None,
        from_address=parsed.from_.address if parsed.from_ else None,
        to=[_addr(a) for a in parsed.to],
        received_at=received_at,
        seen=seen,
        size=0,
        has_attachments=False,
        parse_error=parsed.parse_error,
        search_text="",
        details=details,
    )


def fixture(name: str, rcpt_to: Sequence[str] = (), **kwargs: Any) -> Message:
    return from_parsed(parse_message((FIXTURES / name).read_bytes()), rcpt_to, **kwargs)


def raw_message(raw: bytes, rcpt_to: Sequence[str] = (), **kwargs: Any) -> Message:
    return from_parsed(parse_message(raw), rcpt_to, **kwargs)


@pytest.fixture
def reset() -> Message:
    return fixture("password_reset.eml", ["sam@example.com"])


@pytest.fixture
def ticket() -> Message:
    # To: Иван, "Doe, Jane", plain; Cc: group a@, b@; Bcc: audit@;
    # envelope adds hidden@ (in no header), so build_message lists it in bcc.
    return fixture("subject_mixed.eml", ["ivan@example.ru", "hidden@example.org"])


# --------------------------------------------------------------------------
# MessageFilter
# --------------------------------------------------------------------------


def test_empty_filter_matches_everything(reset: Message) -> None:
    assert MessageFilter().matches(reset)
    bare = raw_message(b"X-Nothing: here\r\n\r\n")
    assert bare.subject is None and bare.from_address is None
    assert MessageFilter().matches(bare)


@pytest.mark.parametrize(
    ("needle", "expected"),
    [
        ("Reset your password", True),
        ("reset", True),
        ("RESET YOUR", True),
        ("password", True),
        ("your password!", False),
        ("Welcome", False),
    ],
)
def test_subject(reset: Message, needle: str, expected: bool) -> None:
    assert MessageFilter(subject=needle).matches(reset) is expected


def test_subject_is_casefolded_not_just_lowercased() -> None:
    message = fixture("subject_utf8_b.eml")
    assert message.subject == "Grüße aus Köln 🎉 – Angebot"
    assert MessageFilter(subject="GRÜSSE AUS KÖLN").matches(message)
    assert MessageFilter(subject="🎉 – angebot").matches(message)
    assert not MessageFilter(subject="Grüße aus Berlin").matches(message)


def test_subject_filter_never_matches_a_message_without_subject() -> None:
    message = raw_message(b"From: a@example.com\r\n\r\nbody\r\n")
    assert message.subject is None
    assert not MessageFilter(subject="a").matches(message)


@pytest.mark.parametrize(
    ("needle", "expected"),
    [
        ("Example App", True),
        ("example app", True),
        ("no-reply@app.example.com", True),
        ("NO-REPLY@APP.EXAMPLE.COM", True),
        ("app.example.com", True),
        ("Example App <no-reply@", True),
        ("<no-reply@app.example.com>", True),
        ("sam@example.com", False),  # the recipient, not the sender
        ("Other App", False),
    ],
)
def test_from(reset: Message, needle: str, expected: bool) -> None:
    assert MessageFilter(from_=needle).matches(reset) is expected


def test_from_address_without_name() -> None:
    message = fixture("body_8bit_utf8.eml")
    assert message.from_name is None
    assert MessageFilter(from_="bookings@travel.example").matches(message)
    assert MessageFilter(from_="<bookings@").matches(message)
    assert not MessageFilter(from_="guest@example.com").matches(message)


def test_from_non_ascii_name_and_address() -> None:
    message = fixture("smtputf8.eml")
    assert MessageFilter(from_="jörg müller").matches(message)
    assert MessageFilter(from_="JÖRG@MÜNCHEN.EXAMPLE").matches(message)


@pytest.mark.parametrize(
    ("needle", "expected"),
    [
        ("ivan@example.ru", True),  # To, with an encoded display name
        ("иван", True),  # the decoded name, case-insensitive
        ("Doe, Jane", True),  # a quoted display name containing a comma
        ("JANE.DOE@example.com", True),
        ("plain@example.net", True),
        ("a@team.example", True),  # Cc (group member)
        ("b@team", True),
        ("audit@helpdesk.example", True),  # Bcc header
        ("hidden@example.org", True),  # envelope recipient in no header
        ("helpdesk@helpdesk.example", False),  # the sender
        ("support+4821@helpdesk.example", False),  # Reply-To is not a recipient
        ("nobody@example.com", False),
    ],
)
def test_to_covers_to_cc_bcc_and_envelope(ticket: Message, needle: str, expected: bool) -> None:
    assert MessageFilter(to=needle).matches(ticket) is expected


def test_to_matches_envelope_recipients_not_listed_in_bcc() -> None:
    message = fixture("headers_only.eml", ["pong@example.com"])
    assert message.details["bcc"] == []
    message.details["envelope"]["rcpt_to"].append("Secret@Example.COM")
    assert MessageFilter(to="secret@example.com").matches(message)
    assert not MessageFilter(to="ping@example.com").matches(message)


def test_to_on_a_message_without_recipients() -> None:
    message = fixture("bad_fields.eml")
    assert message.to == [] and message.details["cc"] == [] and message.details["bcc"] == []
    assert not MessageFilter(to="foo").matches(message)
    assert not MessageFilter(to="example.com").matches(message)


@pytest.mark.parametrize(
    ("needle", "expected"),
    [
        ("one-time code is: 482913", True),  # text body
        ("YOUR ONE-TIME CODE", True),
        ("Reset password</a>", True),  # only in the html body
        ('class="code"', True),  # the html body is matched as markup
        ("no such words", False),
    ],
)
def test_body_text_or_html(reset: Message, needle: str, expected: bool) -> None:
    assert MessageFilter(body=needle).matches(reset) is expected


def test_body_html_only_and_no_body() -> None:
    html_only = fixture("qp_html_softbreak.eml")
    assert html_only.details["text"] is None
    assert MessageFilter(body="café opens").matches(html_only)
    headers_only = fixture("headers_only.eml")
    assert not MessageFilter(body="Ping").matches(headers_only)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ((("X-Repeated", "first"),), True),
        ((("X-Repeated", "second"),), True),  # any occurrence of a repeated header
        ((("x-repeated", "SECOND"),), True),  # name and value case-insensitive
        ((("X-Repeated", "sec"),), True),  # value is a substring
        ((("X-Repeated", "third"),), False),
        ((("X-Repeated", None),), True),  # presence
        ((("X-Repeated", ""),), True),  # an empty value matches any value
        ((("X-Missing", None),), False),
        ((("X-Missing", ""),), False),
        ((("X-Repeat", None),), False),  # names match whole, not as prefixes
        ((("Reply-To", "support+4821"),), True),
        ((("Subject", "Привет"),), True),  # decoded values
        ((("X-Repeated", "first"), ("Bcc", "audit@")), True),  # all must match
        ((("X-Repeated", "first"), ("Bcc", "nobody")), False),
        ((("X-Repeated", "first"), ("X-Missing", None)), False),
        ((("Reply-To", "first"),), False),  # the value must be in that header
    ],
)
def test_headers(
    ticket: Message, headers: tuple[tuple[str, str | None], ...], expected: bool
) -> None:
    assert MessageFilter(headers=headers).matches(ticket) is expected


def test_seen(reset: Message) -> None:
    assert reset.seen is False
    assert MessageFilter(seen=False).matches(reset)
    assert not MessageFilter(seen=True).matches(reset)
    read = fixture("password_reset.eml", seen=True)
    assert MessageFilter(seen=True).matches(read)
    assert not MessageFilter(seen=False).matches(read)
    assert MessageFilter(seen=None).matches(read)


def test_all_given_matchers_must_match(reset: Message) -> None:
    everything = MessageFilter(
        subject="reset",
        from_="example app",
        to="sam@",
        body="482913",
        headers=(("Message-ID", "reset-482913"),),
        seen=False,
    )
    assert everything.matches(reset)
    for field, wrong in [
        ("subject", "welcome"),
        ("from_", "tracker"),
        ("to", "bob@"),
        ("body", "551177"),
        ("headers", (("Message-ID", "other"),)),
        ("seen", True),
    ]:
        kwargs: dict[str, Any] = {
            "subject": everything.subject,
            "from_": everything.from_,
            "to": everything.to,
            "body": everything.body,
            "headers": everything.headers,
            "seen": everything.seen,
            field: wrong,
        }
        assert not MessageFilter(**kwargs).matches(reset), field


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("X-Trace: abc", ("X-Trace", "abc")),
        ("X-Trace:abc", ("X-Trace", "abc")),
        ("  X-Trace  :   abc def  ", ("X-Trace", "abc def")),
        ("X-Trace", ("X-Trace", None)),
        ("  X-Trace  ", ("X-Trace", None)),
        ("X-Trace:", ("X-Trace", "")),
        ("X-Trace: a: b: c", ("X-Trace", "a: b: c")),
        ("Received: from mx (1.2.3.4)", ("Received", "from mx (1.2.3.4)")),
    ],
)
def test_parse_header(spec: str, expected: tuple[str, str | None]) -> None:
    assert MessageFilter.parse_header(spec) == expected


def test_parsed_header_specs_filter_messages(ticket: Message) -> None:
    present = MessageFilter(headers=(MessageFilter.parse_header("x-repeated"),))
    valued = MessageFilter(headers=(MessageFilter.parse_header("X-Repeated: SECOND"),))
    absent = MessageFilter(headers=(MessageFilter.parse_header("X-Other"),))
    assert present.matches(ticket)
    assert valued.matches(ticket)
    assert not absent.matches(ticket)


# --------------------------------------------------------------------------
# Since
# --------------------------------------------------------------------------


def test_since_default_admits_everything_with_a_seq() -> None:
    assert Since().admits(fixture("headers_only.eml", seq=1))


@pytest.mark.parametrize(("seq", "expected"), [(9, False), (10, False), (11, True), (500, True)])
def test_since_seq_is_exclusive(seq: int, expected: bool) -> None:
    assert Since(seq=10).admits(fixture("headers_only.eml", seq=seq)) is expected


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        (T0 - timedelta(seconds=1), False),
        (T0, False),
        (T0 + timedelta(microseconds=1), True),
        (T0 + timedelta(days=1), True),
    ],
)
def test_since_time_is_exclusive(received: datetime, expected: bool) -> None:
    message = fixture("headers_only.eml", seq=5, received_at=received)
    assert Since(time=T0).admits(message) is expected


def test_since_seq_and_time_must_both_admit() -> None:
    later = T0 + timedelta(minutes=1)
    since = Since(seq=10, time=T0)
    assert since.admits(fixture("headers_only.eml", seq=11, received_at=later))
    assert not since.admits(fixture("headers_only.eml", seq=10, received_at=later))
    assert not since.admits(fixture("headers_only.eml", seq=11, received_at=T0))
