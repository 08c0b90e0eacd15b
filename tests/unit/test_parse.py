"""Unit tests of app.mail.parse against the fixture corpus and hostile input.

Every fixture in tests/fixtures (built by make_fixtures.py) has its decoded
fields asserted exactly; attachment bytes are compared with what
make_fixtures.py encodes; deterministic mutations of every fixture check that
parse_message never raises and never hangs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.mail import Address, Attachment, Header, ParsedMessage, attachment_payload, parse_message
from app.mail.parse import MAX_DEPTH, MAX_HEADERS
from tests.fixtures import make_fixtures as mf

FIXTURE_DIR = Path(mf.__file__).resolve().parent
FIXTURE_NAMES = sorted(mf.FIXTURES)
# A hang guard, not a performance test: the inputs below parse in well under a
# second; a regression to quadratic behaviour takes minutes.
TIME_LIMIT = 5.0


def load(name: str) -> bytes:
    return (FIXTURE_DIR / name).read_bytes()


def parse(name: str) -> ParsedMessage:
    return parse_message(load(name))


def timed_parse(raw: bytes) -> tuple[ParsedMessage, float]:
    start = time.perf_counter()
    parsed = parse_message(raw)
    return parsed, time.perf_counter() - start


def header_values(parsed: ParsedMessage, name: str) -> list[str]:
    return [h.value for h in parsed.headers if h.name.lower() == name.lower()]


def has_surrogates(value: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in value)


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --------------------------------------------------------------------------
# The corpus itself
# --------------------------------------------------------------------------


def test_fixture_files_match_the_generator() -> None:
    on_disk = sorted(p.name for p in FIXTURE_DIR.glob("*.eml"))
    assert on_disk == FIXTURE_NAMES
    for name, build in mf.FIXTURES.items():
        assert load(name) == build(), f"{name} is stale: run make_fixtures.py"


# One line per fixture: subject, from, to, whether text/html exist, the number
# of attachments, and parse_error (None, or a phrase it must contain).
SUMMARY: dict[str, tuple[str, Address, list[Address], bool, bool, int, str | None]] = {
    "subject_utf8_b.eml": (
        "Grüße aus Köln 🎉 – Angebot",
        Address("Šop Über", "news@shop.example"),
        [Address("Ana", "ana@example.org")],
        True,
        False,
        0,
        None,
    ),
    "subject_latin1_q.eml": (
        "Café crème à la créme",
        Address("Renée Dupré", "renee@hotel.example"),
        [Address("André", "andre@example.fr")],
        True,
        False,
        0,
        None,
    ),
    "subject_iso2022jp.eml": (
        "会議のお知らせ",
        Address("田中太郎", "tanaka@example.jp"),
        [Address(None, "suzuki@example.jp")],
        True,
        False,
        0,
        None,
    ),
    "subject_mixed.eml": (
        "Re: [ticket #4821] Привет мир✓ done",
        Address("Helpdesk", "helpdesk@helpdesk.example"),
        [
            Address("Иван", "ivan@example.ru"),
            Address("Doe, Jane", "jane.doe@example.com"),
            Address(None, "plain@example.net"),
        ],
        True,
        False,
        0,
        None,
    ),
    "body_8bit_utf8.eml": (
        "Booking confirmed",
        Address(None, "bookings@travel.example"),
        [Address(None, "guest@example.com")],
        True,
        False,
        0,
        None,
    ),
    "smtputf8.eml": (
        "Grüße, 你好",
        Address("Jörg Müller", "jörg@münchen.example"),
        [Address("用户", "用户@例子.广告"), Address(None, "ascii@example.com")],
        True,
        False,
        0,
        None,
    ),
    "attachments_nonascii.eml": (
        "Ihre Rechnung",
        Address(None, "billing@example.de"),
        [Address(None, "kunde@example.de")],
        True,
        False,
        4,
        None,
    ),
    "inline_cid.eml": (
        "Inline logo",
        Address(None, "design@example.com"),
        [Address(None, "you@example.com")],
        False,
        True,
        2,
        None,
    ),
    "nested.eml": (
        "Monthly report",
        Address("Reports", "reports@example.com"),
        [Address(None, "boss@example.com")],
        True,
        True,
        2,
        None,
    ),
    "forwarded.eml": (
        "Fwd: Your order",
        Address("Alice", "alice@example.com"),
        [Address("Bob", "bob@example.com")],
        True,
        False,
        1,
        None,
    ),
    "headers_only.eml": (
        "Ping",
        Address(None, "ping@example.com"),
        [Address(None, "pong@example.com")],
        False,
        False,
        0,
        None,
    ),
    "long_header.eml": (
        mf.long_subject(),
        Address(None, "long@example.com"),
        [Address(None, "you@example.com")],
        True,
        False,
        0,
        None,
    ),
    "broken_boundary.eml": (
        "Broken boundary",
        Address(None, "broken@example.com"),
        [Address(None, "you@example.com")],
        False,
        False,
        0,
        "multipart boundary never appears in the body",
    ),
    "bare_lf.eml": (
        "Bare LF line endings",
        Address(None, "unix@example.com"),
        [Address("Dev", "dev@example.com")],
        True,
        True,
        1,
        None,
    ),
    "password_reset.eml": (
        "Reset your password",
        Address("Example App", "no-reply@app.example.com"),
        [Address(None, "sam@example.com")],
        True,
        True,
        0,
        None,
    ),
    "qp_html_softbreak.eml": (
        "Welcome",
        Address("Tracker", "news@track.example.com"),
        [Address(None, "reader@example.com")],
        False,
        True,
        0,
        None,
    ),
    "bad_fields.eml": (
        "Bad fields",
        Address("Sender", "sender@example.com"),
        [],
        True,
        False,
        0,
        "unknown charset 'x-unknown-charset'",
    ),
}


def test_every_fixture_has_a_summary() -> None:
    assert sorted(SUMMARY) == FIXTURE_NAMES


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_summary(name: str) -> None:
    subject, from_, to, has_text, has_html, n_attachments, error = SUMMARY[name]
    parsed = parse(name)
    assert parsed.subject == subject
    assert parsed.from_ == from_
    assert parsed.to == to
    assert (parsed.text is not None) is has_text
    assert (parsed.html is not None) is has_html
    assert len(parsed.attachments) == n_attachments
    if error is None:
        assert parsed.parse_error is None
    else:
        assert parsed.parse_error is not None
        assert error in parsed.parse_error
    # Header names keep their original case and order, values are unfolded.
    assert parsed.headers, name
    assert parsed.headers[0].name in ("Return-Path", "From")
    for header in parsed.headers:
        assert "\r" not in header.value and "\n" not in header.value
        assert not has_surrogates(header.value)
    # Bodies never carry CR: line endings are normalised to "\n".
    for body in (parsed.text, parsed.html):
        assert body is None or "\r" not in body
    # The date, when present, is aware and in UTC.
    assert parsed.date is None or parsed.date.utcoffset() is not None
    assert parsed.date is None or parsed.date.tzinfo == UTC


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_attachment_payload_agrees_with_metadata(name: str) -> None:
    raw = load(name)
    parsed = parse_message(raw)
    for position, attachment in enumerate(parsed.attachments):
        assert attachment.index == position
        found = attachment_payload(raw, position)
        assert found is not None
        meta, data = found
        assert meta == attachment
        assert len(data) == attachment.size
    assert attachment_payload(raw, len(parsed.attachments)) is None
    assert attachment_payload(raw, -1) is None


# --------------------------------------------------------------------------
# Headers and addresses
# --------------------------------------------------------------------------


def test_rfc2047_utf8_base64_subject_and_name() -> None:
    parsed = parse("subject_utf8_b.eml")
    # Two encoded words on two lines: the whitespace between them is dropped,
    # the space that is inside the first one is kept.
    assert parsed.subject == "Grüße aus Köln 🎉 – Angebot"
    assert parsed.from_ == Address("Šop Über", "news@shop.example")
    assert parsed.date == utc(2026, 11, 28, 17, 0, 0)
    assert parsed.message_id == "<20261128170000.4F2A1@shop.example>"
    assert [h.name for h in parsed.headers] == [
        "Return-Path",
        "Received",
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    ]
    assert header_values(parsed, "Subject") == ["Grüße aus Köln 🎉 – Angebot"]
    assert header_values(parsed, "From") == ["Šop Über <news@shop.example>"]
    (received,) = header_values(parsed, "Received")
    assert received.startswith("from mx.shop.example (mx.shop.example [192.0.2.10])")
    assert "by sink.mailharness.test with ESMTP id 4F2A1;" in received
    assert received.endswith("Sat, 28 Nov 2026 17:00:01 +0000")
    assert parsed.text == "Hallo Ana,\n\nschöne Grüße aus Köln!\n"
    assert parsed.cc == parsed.bcc == parsed.reply_to == []
    assert parsed.links == [] and parsed.codes == []


def test_rfc2047_latin1_q_subject_and_qp_body() -> None:
    parsed = parse("subject_latin1_q.eml")
    assert parsed.subject == "Café crème à la créme"
    assert parsed.from_ == Address("Renée Dupré", "renee@hotel.example")
    assert parsed.to == [Address("André", "andre@example.fr")]
    assert parsed.date == utc(2026, 11, 28, 14, 15, 0)
    assert parsed.message_id == "<resa-77@hotel.example>"
    # ISO-8859-1 quoted-printable body, with a soft line break joined.
    assert parsed.text == "Bonjour André,\n\nVotre réservation est confirmée pour le 3 décembre.\n"
    assert parsed.codes == []


def test_rfc2047_iso2022jp_subject_and_body() -> None:
    parsed = parse("subject_iso2022jp.eml")
    assert parsed.subject == "会議のお知らせ"
    assert parsed.from_ == Address("田中太郎", "tanaka@example.jp")
    assert parsed.to == [Address(None, "suzuki@example.jp")]
    assert parsed.date == utc(2026, 11, 29, 0, 0, 0)
    assert parsed.text == "田中です。\n明日の会議は十時からです。\n"


def test_mixed_charsets_groups_and_repeated_headers() -> None:
    parsed = parse("subject_mixed.eml")
    # koi8-r B word, then a folded utf-8 Q word (adjacent words join), then text.
    assert parsed.subject == "Re: [ticket #4821] Привет мир✓ done"
    assert parsed.to == [
        Address("Иван", "ivan@example.ru"),
        Address("Doe, Jane", "jane.doe@example.com"),
        Address(None, "plain@example.net"),
    ]
    # A group's members are listed; the group name is not an address.
    assert parsed.cc == [Address(None, "a@team.example"), Address(None, "b@team.example")]
    assert parsed.bcc == [Address(None, "audit@helpdesk.example")]
    assert parsed.reply_to == [Address(None, "support+4821@helpdesk.example")]
    # "-0000" (no zone information) is taken as UTC.
    assert parsed.date == utc(2026, 11, 28, 23, 59, 59)
    assert parsed.message_id == "<ticket-4821-reply@helpdesk.example>"
    assert header_values(parsed, "X-Repeated") == ["first", "second"]
    assert header_values(parsed, "To") == [
        'Иван <ivan@example.ru>, "Doe, Jane" <jane.doe@example.com>, plain@example.net'
    ]
    assert parsed.text == "Ticket #4821 is resolved.\n"
    assert parsed.codes == ["4821"]


def test_smtputf8_addresses_and_headers() -> None:
    parsed = parse("smtputf8.eml")
    assert parsed.from_ == Address("Jörg Müller", "jörg@münchen.example")
    assert parsed.to == [Address("用户", "用户@例子.广告"), Address(None, "ascii@example.com")]
    assert parsed.subject == "Grüße, 你好"
    assert parsed.message_id == "<utf8-1@münchen.example>"
    assert header_values(parsed, "To") == ["用户 <用户@例子.广告>, ascii@example.com"]
    assert parsed.text == "Hallo 用户, schöne Grüße.\n"
    assert parsed.parse_error is None


def test_long_header_decoded_intact() -> None:
    parsed = parse("long_header.eml")
    subject = mf.long_subject()
    assert len(subject) == 1000
    assert parsed.subject == subject
    assert header_values(parsed, "Subject") == [subject]
    # X-Long is folded over many lines in the source; unfolding restores it.
    value = mf.long_value()
    assert len(value) == 1000
    assert header_values(parsed, "X-Long") == [value]
    assert parsed.text == "Short body.\n"
    assert parsed.message_id is None


def test_headers_only_message() -> None:
    parsed = parse("headers_only.eml")
    assert parsed.text is None
    assert parsed.html is None
    assert parsed.attachments == []
    assert parsed.links == [] and parsed.codes == []
    assert parsed.parse_error is None
    assert parsed.subject == "Ping"
    assert parsed.date == utc(2026, 11, 28, 14, 0, 0)
    # Message-ID is folded right after the colon: no leading blank is kept.
    assert parsed.message_id == "<ping-1@example.com>"
    assert header_values(parsed, "Message-ID") == ["<ping-1@example.com>"]


def test_value_folded_after_colon_has_no_leading_blank() -> None:
    raw = (
        b"From: a@example.com\r\n"
        b"Subject:\r\n =?utf-8?Q?Gr=C3=BC=C3=9Fe?= now\r\n"
        b"X-Tabbed:\r\n\tvalue\r\n"
        b"\r\nbody\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.subject == "Grüße now"
    assert header_values(parsed, "Subject") == ["Grüße now"]
    assert header_values(parsed, "X-Tabbed") == ["value"]


def test_bad_fields_are_reported_and_others_still_read() -> None:
    parsed = parse("bad_fields.eml")
    assert parsed.parse_error is not None
    for phrase in (
        "unknown charset 'x-unknown-charset' in text/plain body",
        "could not parse the To header",
        "could not parse the Cc header",
        "could not parse the Date header",
    ):
        assert phrase in parsed.parse_error
    assert parsed.from_ == Address("Sender", "sender@example.com")
    assert parsed.to == [] and parsed.cc == []
    assert parsed.date is None
    # The raw header text is still shown.
    assert header_values(parsed, "To") == ["foo, bar@"]
    assert header_values(parsed, "Date") == ["not a date at all"]
    # Unknown charset: decoded as UTF-8.
    assert parsed.text == "café 2468\n"
    assert parsed.codes == ["2468"]


def test_undecodable_encoded_word_bytes_become_replacement_characters() -> None:
    raw = (
        b"From: =?utf-8?B?/w==?= <a@example.com>\r\n"
        b"To: =?bogus?Q?caf=E9?= <b@example.com>, =?utf-8?Q?ok=C3=A9?= <c@example.com>\r\n"
        b"Subject: =?bogus?Q?caf=E9?= =?utf-8?Q?=FF?=\r\n"
        b"\r\nbody\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.from_ == Address("\ufffd", "a@example.com")
    assert parsed.to == [Address("caf\ufffd", "b@example.com"), Address("oké", "c@example.com")]
    assert parsed.subject is not None and parsed.subject.startswith("caf")
    values = [parsed.subject, *(h.value for h in parsed.headers)]
    values += [a.name or "" for a in (parsed.from_, *parsed.to)]
    for value in values:
        assert not has_surrogates(value)
        value.encode("utf-8")  # storable: no lone surrogates


def test_raw_8bit_latin1_header_falls_back_to_latin1() -> None:
    parsed = parse_message(
        b"Subject: caf\xe9 cr\xe8me\r\nFrom: R\xe9mi <r@example.com>\r\n\r\nx\r\n"
    )
    assert parsed.subject == "café crème"
    assert parsed.from_ == Address("Rémi", "r@example.com")


def test_empty_input() -> None:
    parsed = parse_message(b"")
    assert parsed.parse_error == "empty message"
    assert parsed.subject is None and parsed.from_ is None and parsed.date is None
    assert parsed.headers == [] and parsed.attachments == []
    assert parsed.text is None and parsed.html is None
    assert parsed.links == [] and parsed.codes == []
    assert attachment_payload(b"", 0) is None


# --------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------


def test_8bit_utf8_body() -> None:
    parsed = parse("body_8bit_utf8.eml")
    assert parsed.text == "Привет! Zürich → 東京 ✈️\nYour booking reference: 583920\n"
    assert parsed.html is None
    assert parsed.codes == ["583920"]
    assert parsed.message_id == "<bk-583920@travel.example>"


def test_nested_mixed_alternative_related() -> None:
    parsed = parse("nested.eml")
    # QP soft break inside "(login needed=\n)." is joined.
    assert parsed.text == (
        "Report attached. Dashboard: https://reports.example.com/m/2026-11 (login needed)."
    )
    assert parsed.html == (
        '<p>Report attached. <a href="https://reports.example.com/m/2026-11">Dashboard</a></p>'
        '<img src="cid:chart@example.com">'
    )
    assert parsed.cc == [Address("Team, All", "team@example.com")]
    assert parsed.attachments == [
        Attachment(0, None, "image/png", len(mf.PNG_1X1), "chart@example.com", "inline"),
        Attachment(
            1, "report-2026-11.pdf", "application/pdf", len(mf.PDF_TINY), None, "attachment"
        ),
    ]
    assert parsed.links == ["https://reports.example.com/m/2026-11"]
    # 2026-11 is a date fragment, not a code.
    assert parsed.codes == []
    raw = load("nested.eml")
    assert attachment_payload(raw, 0) == (parsed.attachments[0], mf.PNG_1X1)
    assert attachment_payload(raw, 1) == (parsed.attachments[1], mf.PDF_TINY)
    assert attachment_payload(raw, 2) is None


def test_inline_cid_images() -> None:
    parsed = parse("inline_cid.eml")
    assert parsed.text is None
    assert parsed.html == (
        '<html><body><p>Hello!</p><img src="cid:logo-123@mailharness.test" alt="logo">'
        '<img src="cid:pixel@mailharness.test" alt=""></body></html>'
    )
    assert parsed.attachments == [
        Attachment(
            0, "logo.png", "image/png", len(mf.PNG_1X1), "logo-123@mailharness.test", "inline"
        ),
        # No filename, no disposition, Content-ID with blanks inside the brackets.
        Attachment(1, None, "image/png", len(mf.PNG_1X1), "pixel@mailharness.test", "inline"),
    ]
    raw = load("inline_cid.eml")
    for index in (0, 1):
        found = attachment_payload(raw, index)
        assert found is not None
        assert found[1] == mf.PNG_1X1
    assert attachment_payload(raw, 2) is None


def test_non_ascii_attachment_names() -> None:
    parsed = parse("attachments_nonascii.eml")
    assert parsed.text == "Anbei Ihre Unterlagen."
    assert parsed.html is None
    assert parsed.attachments == [
        # RFC 2231 filename*=utf-8''...
        Attachment(0, "Rechnung März 2026.pdf", "application/pdf", 125, None, "attachment"),
        # RFC 2047 encoded word inside a quoted filename.
        Attachment(1, "данные.csv", "text/csv", 40, None, "attachment"),
        # RFC 2231 continuations filename*0* / filename*1*; type lower-cased.
        Attachment(2, "写真の.jpg", "image/png", 70, None, "attachment"),
        # A text/plain part with a disposition of attachment is not the body.
        Attachment(3, "notes.txt", "text/plain", 29, None, "attachment"),
    ]
    assert "these are notes" not in (parsed.text or "")


def test_attachment_payload_returns_the_encoded_bytes() -> None:
    raw = load("attachments_nonascii.eml")
    expected = [mf.PDF_TINY, mf.CSV_DATA, mf.PNG_1X1, b"these are notes, not the body"]
    assert [len(data) for data in expected] == [125, 40, 70, 29]
    parsed = parse_message(raw)
    for index, data in enumerate(expected):
        assert attachment_payload(raw, index) == (parsed.attachments[index], data)
    assert attachment_payload(raw, 4) is None
    assert attachment_payload(raw, 1000) is None
    assert attachment_payload(raw, -1) is None


def test_forwarded_message_is_an_attachment_not_a_body() -> None:
    raw = load("forwarded.eml")
    parsed = parse_message(raw)
    assert parsed.text == "FYI, see the forwarded message."
    assert parsed.html is None
    (attachment,) = parsed.attachments
    assert attachment.index == 0
    assert attachment.filename == "forwarded.eml"
    assert attachment.content_type == "message/rfc822"
    assert attachment.content_id is None
    assert attachment.disposition == "attachment"
    # Nothing from inside the forwarded message leaks into the outer one.
    assert parsed.links == []
    assert parsed.codes == []
    assert "774411" not in (parsed.text or "")
    found = attachment_payload(raw, 0)
    assert found is not None
    meta, data = found
    assert meta == attachment and len(data) == attachment.size
    # The payload is the encapsulated message itself, parseable on its own.
    inner = parse_message(data)
    assert inner.subject == "Your order"
    assert inner.from_ == Address(None, "shop@example.net")
    assert inner.links == ["https://shop.example.net/track/9"]
    assert inner.codes == ["774411"]
    assert [a.filename for a in inner.attachments] == ["receipt.pdf"]
    assert attachment_payload(data, 0) == (inner.attachments[0], mf.PDF_TINY)


def test_broken_boundary_sets_parse_error_but_reads_headers() -> None:
    parsed = parse("broken_boundary.eml")
    assert parsed.parse_error is not None
    assert "multipart boundary never appears in the body" in parsed.parse_error
    assert parsed.subject == "Broken boundary"
    assert parsed.from_ == Address(None, "broken@example.com")
    assert parsed.to == [Address(None, "you@example.com")]
    assert parsed.date == utc(2026, 11, 28, 16, 0, 0)
    assert [h.name for h in parsed.headers] == [
        "From",
        "To",
        "Subject",
        "Date",
        "MIME-Version",
        "Content-Type",
    ]
    assert parsed.text is None and parsed.html is None
    assert parsed.attachments == []


def test_bare_lf_line_endings() -> None:
    raw = load("bare_lf.eml")
    assert b"\r" not in raw
    parsed = parse_message(raw)
    assert parsed.subject == "Bare LF line endings"
    assert parsed.to == [Address("Dev", "dev@example.com")]
    assert parsed.message_id == "<lf-1@example.com>"
    assert parsed.date == utc(2026, 11, 28, 16, 30, 0)
    assert parsed.text == "Line one – ok.\nLine two."
    assert parsed.html == "<p>Line one &ndash; ok.</p>\n<p>Line two.</p>\n"
    assert parsed.attachments == [Attachment(0, "build.log", "text/x-log", 19, None, "attachment")]
    assert attachment_payload(raw, 0) == (parsed.attachments[0], b"step 1 ok\nstep 2 ok")
    assert parsed.parse_error is None
    # The same message with CRLF gives the same decoded fields.
    crlf = parse_message(raw.replace(b"\n", b"\r\n"))
    assert (crlf.subject, crlf.to, crlf.text, crlf.html) == (
        parsed.subject,
        parsed.to,
        parsed.text,
        parsed.html,
    )


def test_password_reset_links_and_codes() -> None:
    parsed = parse("password_reset.eml")
    assert parsed.from_ == Address("Example App", "no-reply@app.example.com")
    assert parsed.date == utc(2026, 11, 28, 12, 30, 5)
    assert parsed.message_id == "<reset-482913@app.example.com>"
    assert parsed.text is not None and parsed.text.startswith("Hi Sam,\n\nWe received")
    assert parsed.html is not None and "&amp;uid=1042" in parsed.html  # raw html kept
    # href first (with &amp; unescaped), the identical text URL (with its
    # trailing dot trimmed) de-duplicated, mailto: ignored.
    assert parsed.links == [
        "https://app.example.com/reset?token=Zx9k2&uid=1042&ts=20261128",
        "https://app.example.com/privacy",
    ]
    assert parsed.codes == ["482913"]
    # Dates, times, phone numbers, prices, long refs and URL parts are not codes;
    # neither is the number in the html <title>.
    for not_a_code in ("2026", "1128", "1230", "1042", "20261128", "0199", "1234", "900100"):
        assert not_a_code not in parsed.codes


def test_qp_soft_line_break_inside_url() -> None:
    parsed = parse("qp_html_softbreak.eml")
    assert parsed.text is None
    assert parsed.html is not None
    assert (
        'href="https://track.example.com/c/abc?u=https%3A%2F%2Fexample.com%2Fwelcome&amp;id=77"'
        in parsed.html
    )
    assert "<p>Café opens at 09:00.</p>" in parsed.html
    assert parsed.links == [
        "https://track.example.com/c/abc?u=https%3A%2F%2Fexample.com%2Fwelcome&id=77"
    ]
    # Visible text only: the script's 99887766 and the style's colour are not codes.
    assert parsed.codes == ["551177"]


def test_first_text_part_wins_and_blank_bodies_are_none() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\n   \r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nsecond 1357\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nthird 2468\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n"
        b"--b--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.text == "second 1357"
    assert parsed.html == "<p>html</p>"
    assert parsed.codes == ["1357"]
    assert parsed.attachments == []


# --------------------------------------------------------------------------
# Hostile input: never raises, never hangs
# --------------------------------------------------------------------------


def assert_survives(raw: bytes) -> ParsedMessage:
    """parse_message returns a ParsedMessage; attachment_payload does not raise."""
    parsed = parse_message(raw)
    assert isinstance(parsed, ParsedMessage)
    assert all(isinstance(h, Header) for h in parsed.headers)
    for index in range(len(parsed.attachments) + 1):
        found = attachment_payload(raw, index)
        assert found is None or isinstance(found[1], bytes)
    return parsed


def truncations(raw: bytes) -> Iterator[bytes]:
    size = len(raw)
    for end in sorted({1, 2, 7, 50, 200, size // 4, size // 2, 3 * size // 4, size - 3, size - 1}):
        if 0 < end < size:
            yield raw[:end]


def byte_flips(raw: bytes, rng: random.Random) -> Iterator[bytes]:
    for _ in range(25):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        yield bytes(data)


def duplicated_boundaries(raw: bytes) -> bytes:
    lines = raw.split(b"\n")
    out: list[bytes] = []
    for line in lines:
        out.append(line)
        if line.startswith(b"--"):
            out.extend([line, line])
    return b"\n".join(out)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_truncations_never_raise(name: str) -> None:
    raw = load(name)
    variants = list(truncations(raw))
    assert len(variants) >= 8
    for variant in variants:
        assert_survives(variant)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_byte_flips_never_raise(name: str) -> None:
    rng = random.Random(1234)
    for variant in byte_flips(load(name), rng):
        assert_survives(variant)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_duplicated_boundary_lines_never_raise(name: str) -> None:
    raw = load(name)
    variant = duplicated_boundaries(raw)
    if b"\n--" in raw:
        assert variant != raw
    parsed = assert_survives(variant)
    assert parsed.subject == SUMMARY[name][0]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_nul_bytes_never_raise(name: str) -> None:
    raw = load(name)
    middle = len(raw) // 2
    for variant in (
        raw.replace(b"\n", b"\x00\n"),
        raw[:middle] + b"\x00" * 64 + raw[middle:],
        raw.replace(b": ", b":\x00 ", 3),
        b"\x00" + raw,
    ):
        assert_survives(variant)
    assert_survives(b"\x00" * 10_000)


INVALID_WORDS = [
    b"=?utf-8?Q?unterminated",
    b"=?utf-8?B?###?=",
    b"=?utf-8?B?QUJD?",
    b"=?bogus-charset?Q?caf=E9?=",
    b"=?utf-8?X?unknown-encoding?=",
    b"=??Q?no-charset?=",
    b"=?utf-8??no-encoding?=",
    b"=?utf-8?Q?bad=ZZescape?=",
    b"=?utf-8?Q?=FF=FE?=",
    b"=?utf-8*de?Q?with-language?=",
    b"=?utf-8?B?" + b"A" * 5000 + b"?=",
    b"=?utf-8?Q?" + b"=" * 500 + b"?=",
    b"=?=?=?=?=?=?=?=",
]


@pytest.mark.parametrize("word", INVALID_WORDS, ids=range(len(INVALID_WORDS)))
def test_invalid_encoded_words_never_raise(word: bytes) -> None:
    raw = (
        b"From: " + word + b" <a@example.com>\r\n"
        b"To: " + word + b", b@example.com\r\n"
        b"Subject: Re: " + word + b" tail\r\n"
        b"X-Custom: " + word + b"\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b'--b\r\nContent-Type: text/plain; name="' + word + b'"\r\n'
        b'Content-Disposition: attachment; filename="' + word + b'"\r\n\r\nx\r\n--b--\r\n'
    )
    parsed = assert_survives(raw)
    assert parsed.subject is not None
    assert parsed.subject.startswith("Re: ") and parsed.subject.endswith("tail")
    assert not has_surrogates(parsed.subject)
    for address in (parsed.from_, *parsed.to):
        if address is not None:
            assert not has_surrogates(address.name or "") and not has_surrogates(address.address)
    for attachment in parsed.attachments:
        assert not has_surrogates(attachment.filename or "")


def nested_multipart(depth: int) -> bytes:
    head = b"From: deep@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    )
    leaf = b"Content-Type: text/plain\r\n\r\ndeep body 246810\r\n"
    closing = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    return head + opening + leaf + closing


def test_nesting_below_the_limit_is_walked() -> None:
    parsed, _ = timed_parse(nested_multipart(MAX_DEPTH - 10))
    assert parsed.parse_error is None
    assert parsed.text == "deep body 246810"
    assert parsed.codes == ["246810"]


def test_sixty_deep_nested_multipart() -> None:
    raw = nested_multipart(60)
    parsed, elapsed = timed_parse(raw)
    assert elapsed < TIME_LIMIT
    assert parsed.subject == "deep"
    assert parsed.from_ == Address(None, "deep@example.com")
    assert parsed.parse_error is not None
    assert f"MIME nesting deeper than {MAX_DEPTH} levels" in parsed.parse_error
    assert parsed.text is None
    assert attachment_payload(raw, 0) is None


def test_thousand_deep_nested_multipart_does_not_raise() -> None:
    parsed, elapsed = timed_parse(nested_multipart(1000))
    assert elapsed < TIME_LIMIT
    assert parsed.parse_error is not None


def test_twenty_thousand_headers() -> None:
    raw = (
        b"".join(b"X-Header-%05d: value %d\r\n" % (i, i) for i in range(20_000))
        + b"Subject: last\r\nFrom: many@example.com\r\n\r\nbody 9753\r\n"
    )
    parsed, elapsed = timed_parse(raw)
    assert elapsed < TIME_LIMIT
    assert len(parsed.headers) == MAX_HEADERS
    assert parsed.headers[0] == Header("X-Header-00000", "value 0")
    assert parsed.headers[-1] == Header(
        f"X-Header-{MAX_HEADERS - 1:05d}", f"value {MAX_HEADERS - 1}"
    )
    assert parsed.parse_error is not None
    assert f"more than {MAX_HEADERS} headers" in parsed.parse_error
    # Fields are read from all headers, not only the kept ones.
    assert parsed.subject == "last"
    assert parsed.from_ == Address(None, "many@example.com")
    assert parsed.text == "body 9753\n"


def test_huge_subject_of_many_words_does_not_hang() -> None:
    # The stdlib header parser is quadratic in a value's length: 300 kB took
    # seconds and megabytes took hours before values this long were left raw.
    raw = b"From: a@example.com\r\nSubject: " + b"ab " * 400_000 + b"\r\n\r\nbody\r\n"
    parsed, elapsed = timed_parse(raw)
    assert elapsed < TIME_LIMIT
    assert parsed.subject is not None and parsed.subject.startswith("ab ab ab")
    assert len(parsed.subject) >= 1_000_000
    assert parsed.parse_error is not None and "Subject" in parsed.parse_error
    assert parsed.from_ == Address(None, "a@example.com")
    assert parsed.text == "body\n"


def test_huge_address_list_does_not_hang() -> None:
    addresses = b", ".join(b'"Name %d" <user%d@example.com>' % (i, i) for i in range(40_000))
    raw = b"From: a@example.com\r\nTo: " + addresses + b"\r\nSubject: many\r\n\r\nbody\r\n"
    parsed, elapsed = timed_parse(raw)
    assert elapsed < TIME_LIMIT
    assert parsed.to == []
    assert parsed.parse_error is not None and "could not parse the To header" in parsed.parse_error
    assert parsed.subject == "many"


def test_many_long_headers_do_not_hang() -> None:
    line = b"X-Words-%03d: " + b"ab " * 20_000 + b"\r\n"
    raw = b"".join(line % i for i in range(300)) + b"Subject: s\r\n\r\nbody\r\n"
    parsed, elapsed = timed_parse(raw)
    assert elapsed < TIME_LIMIT
    assert len(parsed.headers) == 301
    assert parsed.headers[-1] == Header("Subject", "s")
    assert parsed.headers[-2].value.startswith("ab ab")
    assert parsed.parse_error is not None and "characters of headers" in parsed.parse_error


def test_many_attachments_are_capped() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
        + b"--x\r\nContent-Type: image/png\r\n\r\nAAAA\r\n" * 1500
        + b"--x--\r\n"
    )
    parsed, elapsed = timed_parse(raw)
    assert elapsed < TIME_LIMIT
    assert len(parsed.attachments) == 1000
    assert parsed.attachments[-1].index == 999
    assert parsed.parse_error is not None and "more than 1000 attachments" in parsed.parse_error


@pytest.mark.parametrize(
    "raw",
    [
        b"x",
        b"\r\n",
        b"\r\n\r\n\r\n",
        b":",
        b": no name\r\n\r\n",
        b"no colon at all\r\n\r\nbody",
        b"Content-Type: multipart/mixed\r\n\r\n--\r\n--\r\n",
        b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\nx\r\n----\r\n',
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\n",
        b"Content-Type: text/plain; charset=base64\r\n\r\nhello\r\n",
        b"Content-Type: text/plain; charset=utf-99\r\n\r\nhello\r\n",
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64===\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n=\r\n=Z=\r\n",
        b"Date: Sat, 99 Foo 99999 99:99:99 +9999\r\n\r\n",
        b"From: " + b"(" * 5000 + b"\r\n\r\n",
        b"To: " + b"<" * 5000 + b"\r\n\r\n",
        b"\xff\xfe\xfd" * 1000,
    ],
    ids=range(18),
)
def test_garbage_never_raises(raw: bytes) -> None:
    parsed, elapsed = timed_parse(raw)
    assert elapsed < TIME_LIMIT
    assert_survives(raw)
    assert parsed.parse_error is None or isinstance(parsed.parse_error, str)
