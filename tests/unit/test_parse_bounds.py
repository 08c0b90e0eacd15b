"""Hostile structures end quickly in a ParsedMessage whose parse_error names the bound.

Each of these took from seconds to hours before the bounds in ``app.mail.parse``
and ``app.mail.extract`` existed (timings on one core of the CI machine)."""

from __future__ import annotations

import base64
import gzip
import time

from app.mail import attachment_payload, header_block, parse_message
from app.mail.extract import bounded_html, find_links
from app.mail.parse import MAX_DEPTH, MAX_PARSED_HEADER_FIELDS, MAX_PARTS, ParsedMessage

TIME_LIMIT = 5.0
HEAD = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hostile\r\n"


def timed(raw: bytes) -> ParsedMessage:
    start = time.perf_counter()
    parsed = parse_message(raw)
    assert time.perf_counter() - start < TIME_LIMIT
    return parsed


def test_many_mime_parts_are_cut_at_the_bound() -> None:
    # 200,000 parts took 46 s (the stdlib builds an object per part).
    raw = (
        HEAD
        + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        + b"--b\r\nContent-Type: image/png\r\n\r\nx\r\n" * 50_000
        + b"--b--\r\n"
    )
    parsed = timed(raw)
    assert parsed.subject == "hostile"
    assert parsed.parse_error is not None
    assert f"more than {MAX_PARTS} MIME parts" in parsed.parse_error
    assert 0 < len(parsed.attachments) <= MAX_PARTS
    assert attachment_payload(raw, 5) is not None


def test_deep_multipart_nesting_is_cut() -> None:
    depth = 5000  # 1,000 levels took 18 s
    raw = HEAD + b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    parsed = timed(raw + b"Content-Type: text/plain\r\n\r\nleaf\r\n")
    assert parsed.subject == "hostile"
    assert parsed.parse_error is not None
    assert f"MIME nesting deeper than {MAX_DEPTH} levels" in parsed.parse_error


def test_deep_encapsulated_messages_keep_the_outer_fields() -> None:
    raw = HEAD + b"Content-Type: message/rfc822\r\n\r\n" * 3000 + b"Subject: inner\r\n\r\nx\r\n"
    parsed = timed(raw)
    assert parsed.subject == "hostile"  # was: nothing at all (RecursionError)
    assert parsed.parse_error is not None and "encapsulated messages" in parsed.parse_error


def test_header_fields_beyond_the_parse_bound_are_not_parsed() -> None:
    raw = HEAD + b"X-A: b\r\n" * (MAX_PARSED_HEADER_FIELDS + 5000) + b"\r\nbody\r\n"
    parsed = timed(raw)
    assert parsed.subject == "hostile"
    assert parsed.parse_error is not None
    assert f"more than {MAX_PARSED_HEADER_FIELDS} header fields" in parsed.parse_error
    assert header_block(raw)[0] == MAX_PARSED_HEADER_FIELDS + 5003


def test_long_parameter_header_inside_a_part() -> None:
    # 100,000 parameters in a part's Content-Type took 271 s (quadratic parsing).
    raw = (
        HEAD
        + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        + b"Content-Type: text/plain; "
        + b"a=b; " * 100_000
        + b"\r\n\r\nbody 4711\r\n--b--\r\n"
    )
    parsed = timed(raw)
    assert parsed.text == "body 4711"


def test_quadratic_codecs_are_not_run() -> None:
    raw = HEAD + b"Content-Type: text/plain; charset=punycode\r\n\r\n" + b"a" * 2_000_000
    parsed = timed(raw)
    assert parsed.parse_error is not None and "punycode" in parsed.parse_error
    subject = b"Subject: =?punycode?q?" + b"a" * 30_000 + b"?=\r\n\r\nx"
    assert timed(subject).subject is not None


def test_bytes_codecs_never_decompress() -> None:
    bomb = gzip.compress(b"\0" * 10_000_000)
    raw = (
        HEAD
        + b"Content-Type: text/plain; charset=zlib_codec\r\nContent-Encoding: gzip\r\n"
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(bomb)
    )
    parsed = timed(raw)
    assert parsed.text is not None and len(parsed.text) <= len(bomb) * 2
    assert parsed.parse_error is not None and "zlib_codec" in parsed.parse_error


def test_html_parser_worst_cases_are_bounded() -> None:
    # CVE-2025-6069: 15 kB of this took 25 s in html.parser.
    for html in ("<!--" + "<a " * 200_000, "<![ " * 200_000, "<a " * 200_000, "x" * 5_000_000):
        start = time.perf_counter()
        find_links(None, html)
        assert time.perf_counter() - start < TIME_LIMIT
    assert (
        bounded_html('<a href="https://x.test/">x</a><!-- open')
        == '<a href="https://x.test/">x</a>'
    )
    assert find_links(None, '<a href="https://x.test/">x</a><!--<a ') == ["https://x.test/"]
