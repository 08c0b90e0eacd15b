"""Parse raw RFC 5322 / MIME message bytes into a ParsedMessage.

Pure, no I/O. Built on the stdlib ``email`` package with ``policy.default``.

Inputs: the raw bytes of one message exactly as received (CRLF or bare LF,
7-bit, 8-bit or raw UTF-8 headers).

Outputs:
- parse_message(raw) -> ParsedMessage: decoded headers, addresses, date (UTC),
  text/html bodies, attachment metadata, links and one-time codes. It never
  raises; anything that could not be decoded is described in ``parse_error``
  and the affected field is left empty while the others are still filled.
- attachment_payload(raw, index) -> (Attachment, decoded bytes) or None.

Body/attachment rules: the first non-attachment text/plain and text/html parts
of the outer message are the bodies (line endings normalised to "\\n"); a part
is an attachment when its disposition is "attachment", it has a filename, or it
is anything other than text/plain or text/html. Encapsulated messages
(message/rfc822) are attachments and are not descended into.
"""

from __future__ import annotations

import codecs
import functools
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import errors as email_errors
from email import policy
from email.generator import BytesGenerator
from email.headerregistry import AddressHeader, BaseHeader, DateHeader, UnstructuredHeader
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy
from typing import Any

from app.mail.extract import find_codes, find_links

__all__ = [
    "Address",
    "Attachment",
    "Header",
    "ParsedMessage",
    "attachment_payload",
    "header_block",
    "parse_message",
]

MAX_ATTACHMENTS = 1000
MAX_HEADERS = 10000
MAX_DEPTH = 50
# Bounds applied to the bytes before the stdlib parser sees them (``_shape``): the
# parser's cost grows with header fields, MIME parts and nesting depth (each line
# is checked against every open boundary), so past these the copy it parses is cut
# there and ``parse_error`` says so. The stored raw bytes are never touched.
MAX_PARSED_HEADER_FIELDS = 25_000
MAX_PARTS = 2 * MAX_ATTACHMENTS
# Header values of MIME parts longer than this are cut before the stdlib parses
# them: its parameter parsing is quadratic (a 50 kB Content-Type took seconds).
MAX_PART_HEADER = 4 * 1024
# The stdlib header parsers are quadratic in the length of a value: longer values
# are kept as raw text, and once this much header text has been decoded the
# remaining headers are kept raw too (a hostile message cannot stall ingest).
MAX_HEADER_DECODE = 32 * 1024
MAX_HEADERS_DECODE_TOTAL = 1024 * 1024
FORWARDED_FILENAME = "forwarded.eml"

# Re-serialisation of encapsulated messages: CRLF, header text kept as parsed.
_SERIALISE_POLICY = policy.default.clone(linesep="\r\n", refold_source="none")
_SURROGATE_RE = re.compile("[\udc80-\udcff]")
_EW_CHARSET_RE = re.compile(r"=\?([^?*\s]{1,64})(?=[?*])")
_SLOW_CODECS = frozenset({"punycode", "idna"})
_BODY_TYPES = frozenset({"text/plain", "text/html"})
_ENCAPSULATED_TYPES = frozenset({"message/rfc822", "message/global"})
_STRUCTURE_DEFECTS: tuple[tuple[type[email_errors.MessageDefect], str], ...] = (
    (email_errors.StartBoundaryNotFoundDefect, "multipart boundary never appears in the body"),
    (email_errors.CloseBoundaryNotFoundDefect, "multipart closing boundary is missing"),
    (email_errors.MultipartInvariantViolationDefect, "multipart part has no sub-parts"),
    (email_errors.NoBoundaryInMultipartDefect, "multipart part has no boundary parameter"),
)


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox: decoded display name (None if absent) and addr-spec as given."""

    name: str | None
    address: str


@dataclass(frozen=True, slots=True)
class Header:
    """One top-level header: original-case name, unfolded RFC 2047-decoded value."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """Metadata of one attachment; index is its stable 0-based position."""

    index: int
    filename: str | None
    content_type: str
    size: int
    content_id: str | None
    disposition: str


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything the harness shows about a message; parse_error None if clean."""

    subject: str | None
    from_: Address | None
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    reply_to: list[Address]
    date: datetime | None
    message_id: str | None
    headers: list[Header]
    text: str | None
    html: str | None
    attachments: list[Attachment]
    links: list[str]
    codes: list[str]
    parse_error: str | None


class _PlainHeader(UnstructuredHeader, BaseHeader):
    """Header class that only unfolds and RFC 2047-decodes (no structure)."""


@dataclass(slots=True)
class _Errors:
    """Ordered, de-duplicated list of short failure descriptions."""

    items: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        if message not in self.items:
            self.items.append(message)

    def joined(self) -> str | None:
        return "; ".join(self.items) if self.items else None


@dataclass(slots=True)
class _Walk:
    """Mutable state of one walk over the MIME tree (local to one call)."""

    errors: _Errors
    text: str | None = None
    html: str | None = None
    found: list[tuple[Attachment, EmailMessage]] = field(default_factory=list)


# --------------------------------------------------------------------------
# Header helpers
# --------------------------------------------------------------------------


def _has_surrogates(value: str) -> bool:
    """True if value holds surrogate-escaped raw bytes from the parser."""
    return _SURROGATE_RE.search(value) is not None


def _clean_raw(value: str) -> str:
    """Unfold a raw header value, drop its leading whitespace (left when the value
    is folded right after the colon) and decode raw 8-bit bytes (UTF-8, else Latin-1)."""
    unfolded = value.replace("\r", "").replace("\n", "").lstrip(" \t")
    if not _has_surrogates(unfolded):
        return unfolded
    data = unfolded.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _sanitize(value: str) -> str:
    """Replace surrogate-escaped bytes (undecodable in their declared charset) by U+FFFD."""
    if not _has_surrogates(value):
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def safe_charset(charset: str) -> bool:
    """True for a charset whose decoder is a text codec with linear cost.

    ``punycode`` and ``idna`` decode in quadratic time (CPython's are pure
    Python), and bytes-to-bytes codecs (``zlib_codec``, ``base64``...) are not
    text encodings at all; a hostile message may declare any of them."""
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError, TypeError):
        return False
    return info.name not in _SLOW_CODECS and getattr(info, "_is_text_encoding", True)


def _neutralise_encoded_words(value: str) -> str:
    """Encoded words (RFC 2047) in an unsafe charset get a charset nobody knows, so
    the email package keeps their text undecoded instead of running the codec."""
    if "=?" not in value:
        return value
    return _EW_CHARSET_RE.sub(
        lambda m: "=?unknown-8bit" if _unsafe(m.group(1)) else m.group(0), value
    )


def _unsafe(charset: str) -> bool:
    """A codec Python knows but that must not run on hostile text (unknown ones are
    handled by the email package itself)."""
    try:
        codecs.lookup(charset)
    except (LookupError, ValueError, TypeError):
        return False
    return not safe_charset(charset)


def _decodable(name: str, raw: str) -> str:
    """The cleaned raw value; raises ValueError when it is too long to decode."""
    value = _clean_raw(raw)
    if len(value) > MAX_HEADER_DECODE:
        raise ValueError(f"the {name} header is longer than {MAX_HEADER_DECODE} characters")
    return _neutralise_encoded_words(value)


def _decode_unstructured(name: str, raw: str) -> str:
    """Return the unfolded, RFC 2047-decoded text of a raw header value (may raise)."""
    return str(_PlainHeader(name, _decodable(name, raw)))


def _raw_items(msg: EmailMessage) -> Iterable[tuple[str, Any]]:
    """Return the (name, raw value) pairs of msg's own headers, in order."""
    return msg.raw_items()


def _first_raw(msg: EmailMessage, name: str) -> str | None:
    """Raw value of the first header called name (case-insensitive), or None."""
    wanted = name.lower()
    for key, value in _raw_items(msg):
        if key.lower() == wanted:
            return str(value)
    return None


def _collect_headers(msg: EmailMessage, errors: _Errors) -> list[Header]:
    """Decode the top-level headers in order, capped at MAX_HEADERS."""
    headers: list[Header] = []
    budget = MAX_HEADERS_DECODE_TOTAL
    for name, raw in _raw_items(msg):
        if len(headers) >= MAX_HEADERS:
            errors.add(f"more than {MAX_HEADERS} headers; the rest were dropped")
            break
        budget -= len(str(raw))
        if budget < 0:
            errors.add(
                f"more than {MAX_HEADERS_DECODE_TOTAL} characters of headers; the rest were not decoded"
            )
            headers.append(Header(name=name, value=_clean_raw(str(raw))))
            continue
        try:
            value = _decode_unstructured(name, str(raw))
        except Exception:  # the email package raises many exception types
            errors.add(f"could not decode the {name} header")
            value = _clean_raw(str(raw))
        headers.append(Header(name=name, value=value))
    return headers


def _structured(name: str, raw: str) -> Any:
    """Parse raw with the policy's header class for name (may raise)."""
    return policy.default.header_factory(name, _decodable(name, raw))


def _has_defects(header: object) -> bool:
    """True if a parsed header object recorded parse defects."""
    return bool(getattr(header, "defects", None))


def _parse_addresses(msg: EmailMessage, name: str, errors: _Errors) -> list[Address]:
    """Mailboxes of the first header called name; [] if absent or unparseable."""
    raw = _first_raw(msg, name)
    if raw is None:
        return []
    try:
        header = _structured(name, raw)
    except Exception:
        errors.add(f"could not parse the {name} header")
        return []
    if not isinstance(header, AddressHeader):
        return []
    addresses = [
        Address(name=_sanitize(item.display_name) or None, address=_sanitize(item.addr_spec))
        for item in header.addresses
        if item.addr_spec and item.addr_spec != "<>"
    ]
    if not addresses and _has_defects(header):
        errors.add(f"could not parse the {name} header")
    return addresses


def _parse_date(msg: EmailMessage, errors: _Errors) -> datetime | None:
    """Date header as an aware UTC datetime (naive -0000 dates taken as UTC)."""
    raw = _first_raw(msg, "Date")
    if raw is None:
        return None
    try:
        header = _structured("Date", raw)
        value = header.datetime if isinstance(header, DateHeader) else None
        if not isinstance(value, datetime):
            errors.add("could not parse the Date header")
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except Exception:
        errors.add("could not parse the Date header")
        return None


def _parse_subject(msg: EmailMessage, errors: _Errors) -> str | None:
    """Decoded Subject, or None when there is no Subject header."""
    raw = _first_raw(msg, "Subject")
    if raw is None:
        return None
    try:
        return _decode_unstructured("Subject", raw)
    except Exception:
        errors.add("could not decode the Subject header")
        return _clean_raw(raw)


def _parse_message_id(msg: EmailMessage) -> str | None:
    """The Message-ID value, unfolded and stripped; None if absent or blank."""
    raw = _first_raw(msg, "Message-ID")
    if raw is None:
        return None
    return _clean_raw(raw).strip() or None


# --------------------------------------------------------------------------
# Part helpers
# --------------------------------------------------------------------------


def _content_id(part: EmailMessage) -> str | None:
    """Content-ID without surrounding whitespace and angle brackets."""
    raw = _first_raw(part, "Content-ID")
    if raw is None:
        return None
    value = _clean_raw(raw).strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value or None


def _filename(part: EmailMessage) -> str | None:
    """Decoded filename (RFC 2231 / RFC 2047), from disposition or type 'name'."""
    value = part.get_filename()
    if not isinstance(value, str):
        return None
    value = _clean_raw(value).strip()
    return value or None


def _disposition(part: EmailMessage, content_id: str | None, parent_type: str) -> str:
    """'attachment' or 'inline'; without a header, inline iff cid or in related."""
    declared = part.get_content_disposition()
    if declared in ("attachment", "inline"):
        return declared
    if content_id is not None or parent_type == "multipart/related":
        return "inline"
    return "attachment"


def _serialise(msg: EmailMessage) -> bytes:
    """Serialise a parsed message back to bytes (CRLF line endings)."""
    buffer = io.BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=_SERIALISE_POLICY).flatten(msg)
    return buffer.getvalue()


def _payload_bytes(part: EmailMessage) -> bytes:
    """Decoded payload of a leaf part, or the serialised encapsulated message."""
    if part.is_multipart():
        inner = part.get_payload()
        if not isinstance(inner, list):
            return b""
        return b"".join(_serialise(sub) for sub in inner if isinstance(sub, EmailMessage))
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _decode_body(part: EmailMessage, errors: _Errors) -> str:
    """Decode a text part (what get_content() does; undeclared charset = UTF-8).

    An unknown or unusable charset falls back to UTF-8 with replacement
    characters and is reported in errors. Line endings become "\\n".
    """
    payload = _payload_bytes(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        if not safe_charset(charset):
            raise LookupError(charset)
        text = payload.decode(charset, "replace")
    except (LookupError, UnicodeError, ValueError):
        errors.add(f"unknown charset {charset!r} in {part.get_content_type()} body")
        text = payload.decode("utf-8", "replace")
    return text.replace("\r\n", "\n")


def _is_attachment(part: EmailMessage, content_type: str) -> bool:
    """Attachment if disposition says so, it has a filename, or it is not a body type."""
    if part.get_content_disposition() == "attachment":
        return True
    if _filename(part) is not None:
        return True
    return content_type not in _BODY_TYPES


def _make_attachment(part: EmailMessage, index: int, parent_type: str) -> Attachment:
    """Build the Attachment metadata for part at position index."""
    content_type = part.get_content_type()
    content_id = _content_id(part)
    filename = _filename(part)
    if filename is None and content_type in _ENCAPSULATED_TYPES:
        filename = FORWARDED_FILENAME
    return Attachment(
        index=index,
        filename=filename,
        content_type=content_type,
        size=len(_payload_bytes(part)),
        content_id=content_id,
        disposition=_disposition(part, content_id, parent_type),
    )


def _add_attachment(part: EmailMessage, parent_type: str, walk: _Walk) -> None:
    """Append part to the attachments unless the cap is reached."""
    if len(walk.found) >= MAX_ATTACHMENTS:
        walk.errors.add(f"more than {MAX_ATTACHMENTS} attachments; the rest were dropped")
        return
    attachment = _make_attachment(part, len(walk.found), parent_type)
    walk.found.append((attachment, part))


def _take_body(part: EmailMessage, content_type: str, walk: _Walk) -> None:
    """Use part as the text or html body if that body is still missing."""
    if content_type == "text/plain" and walk.text is None:
        body = _decode_body(part, walk.errors)
        walk.text = body if body.strip() else None
    elif content_type == "text/html" and walk.html is None:
        body = _decode_body(part, walk.errors)
        walk.html = body if body.strip() else None


def _visit_leaf(part: EmailMessage, content_type: str, parent_type: str, walk: _Walk) -> None:
    """Classify a non-multipart part as attachment or body."""
    if _is_attachment(part, content_type):
        _add_attachment(part, parent_type, walk)
    else:
        _take_body(part, content_type, walk)


def _children(part: EmailMessage) -> list[EmailMessage]:
    """Sub-parts of a multipart part."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return []
    return [child for child in payload if isinstance(child, EmailMessage)]


def _walk(part: EmailMessage, depth: int, parent_type: str, walk: _Walk) -> None:
    """Depth-first walk of the MIME tree, bounded by MAX_DEPTH."""
    if depth > MAX_DEPTH:
        walk.errors.add(f"MIME nesting deeper than {MAX_DEPTH} levels; deeper parts ignored")
        return
    try:
        content_type = part.get_content_type()
        if content_type.startswith("message/") and part.is_multipart():
            _add_attachment(part, parent_type, walk)
        elif part.is_multipart():
            for child in _children(part):
                _walk(child, depth + 1, content_type, walk)
        elif not content_type.startswith("multipart/"):
            _visit_leaf(part, content_type, parent_type, walk)
    except RecursionError:
        walk.errors.add("MIME structure too deep to walk")
    except Exception:
        walk.errors.add("could not decode a MIME part")


def _structure_errors(msg: EmailMessage, errors: _Errors) -> None:
    """Record defects that mean the MIME structure is broken (bounded walk)."""
    pending: list[tuple[EmailMessage, int]] = [(msg, 0)]
    while pending:
        part, depth = pending.pop()
        for defect in getattr(part, "defects", ()):
            for defect_type, message in _STRUCTURE_DEFECTS:
                if isinstance(defect, defect_type):
                    errors.add(message)
        if depth < MAX_DEPTH and _descend(part):
            pending.extend((child, depth + 1) for child in _children(part))


def _descend(part: EmailMessage) -> bool:
    """True for a multipart part whose children belong to this message."""
    try:
        return part.is_multipart() and not part.get_content_type().startswith("message/")
    except Exception:
        return False


def _walk_message(msg: EmailMessage, errors: _Errors) -> _Walk:
    """Walk msg and return the collected bodies and attachments."""
    walk = _Walk(errors=errors)
    _walk(msg, 0, "", walk)
    return walk


class _MemoPolicy(EmailPolicy):
    """``policy.default`` with parsed header objects memoised by (name, value).

    The stdlib re-parses a header on every access (``get_content_type`` alone
    runs ~18 times per multipart message, inside the parser too), and that
    parsing is most of the cost of ingest. Header objects are immutable
    ``str`` subclasses, so sharing them between accesses and messages is safe;
    only short values are cached, so memory stays bounded.
    """

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if len(value) > MAX_PART_HEADER:
            value = value[:MAX_PART_HEADER]
        value = _neutralise_encoded_words(value)
        if len(value) > _MEMO_MAX_VALUE:
            return super().header_fetch_parse(name, value)
        return _memo_fetch(name, value)


_MEMO_MAX_VALUE = MAX_PART_HEADER
_MEMO_POLICY = _MemoPolicy()


@functools.lru_cache(maxsize=4096)
def _memo_fetch(name: str, value: str) -> Any:
    return EmailPolicy.header_fetch_parse(_MEMO_POLICY, name, value)


def _parse_bytes(raw: bytes) -> EmailMessage:
    """Parse raw bytes with policy.default semantics (may raise on pathological input)."""
    return BytesParser(policy=_MEMO_POLICY).parsebytes(raw)  # type: ignore[return-value]


_HEADER_END_RE = re.compile(rb"\r?\n\r?\n")
_FIELD_START_RE = re.compile(rb"^[^ \t\r\n]", re.MULTILINE)
# A boundary parameter (a multipart opens), a line starting with "--" (maybe a
# delimiter or a close delimiter of an open multipart), or an encapsulated message
# (which the parser descends into recursively).
_STRUCTURE_RE = re.compile(
    rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s";]{1,200}))|^--([^\r\n]{0,250})'
    rb"|^(content-type:[ \t]*message/)",
    re.IGNORECASE | re.MULTILINE,
)


def header_block(raw: bytes) -> tuple[int, int]:
    """(header fields, bytes) of the top-level header block: the SMTP edge's check."""
    end = _HEADER_END_RE.search(raw)
    head_end = end.start() if end else len(raw)
    return len(_FIELD_START_RE.findall(raw, 0, head_end)), head_end


def _cut_headers(raw: bytes, errors: _Errors) -> bytes:
    """``raw`` with the top-level header block cut after MAX_PARSED_HEADER_FIELDS fields."""
    end = _HEADER_END_RE.search(raw)
    head_end = end.start() if end else len(raw)
    if raw.count(b"\n", 0, head_end) < MAX_PARSED_HEADER_FIELDS:
        return raw  # fewer lines than the bound, so fewer fields
    for i, match in enumerate(_FIELD_START_RE.finditer(raw, 0, head_end)):
        if i == MAX_PARSED_HEADER_FIELDS:
            errors.add(
                f"more than {MAX_PARSED_HEADER_FIELDS} header fields; the rest were not parsed"
            )
            body = raw[end.end() :] if end else b""
            return raw[: match.start()] + b"\r\n" + body
    return raw


def _cut_structure(raw: bytes, errors: _Errors) -> bytes:
    """``raw`` cut before the part that opens a multipart deeper than MAX_DEPTH, or at
    the delimiter of part MAX_PARTS + 1 (one linear scan; boundaries are tracked the
    way the parser tracks them, so the estimate never undercounts)."""
    opened: set[bytes] = set()
    parts = encapsulated = 0
    part_start = 0
    for match in _STRUCTURE_RE.finditer(raw):
        if match.group(4) is not None:
            # Counted as if never closed: an upper bound on their nesting.
            encapsulated += 1
            if encapsulated > MAX_DEPTH:
                errors.add(f"more than {MAX_DEPTH} encapsulated messages; the rest were not parsed")
                return raw[: match.start()]
            continue
        declared = match.group(1) or match.group(2)
        if declared is not None:
            if declared in opened:
                continue
            if len(opened) >= MAX_DEPTH:
                errors.add(f"MIME nesting deeper than {MAX_DEPTH} levels; deeper parts ignored")
                return raw[:part_start]
            opened.add(declared)
            continue
        token = (match.group(3) or b"").rstrip(b" \t\r")
        if token.endswith(b"--") and token[:-2] in opened:
            opened.discard(token[:-2])
        elif token in opened:
            parts += 1
            if parts > MAX_PARTS:
                errors.add(f"more than {MAX_PARTS} MIME parts; the rest were not parsed")
                return raw[: match.start()]
            part_start = match.start()
    return raw


def _shape(raw: bytes, errors: _Errors) -> bytes:
    """The copy of ``raw`` the stdlib parses: within the bounds, or cut where they end."""
    data = _cut_headers(raw, errors)
    if b"\n--" in data or data.startswith(b"--") or b"essage/" in data:
        data = _cut_structure(data, errors)
    return data


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def _empty(error: str) -> ParsedMessage:
    """A ParsedMessage with every field empty and the given parse_error."""
    return ParsedMessage(
        subject=None,
        from_=None,
        to=[],
        cc=[],
        bcc=[],
        reply_to=[],
        date=None,
        message_id=None,
        headers=[],
        text=None,
        html=None,
        attachments=[],
        links=[],
        codes=[],
        parse_error=error,
    )


def _extract(text: str | None, html: str | None, errors: _Errors) -> tuple[list[str], list[str]]:
    """Links and codes of the bodies; never raises."""
    try:
        return find_links(text, html), find_codes(text, html)
    except Exception:
        errors.add("could not extract links and codes")
        return [], []


def _build(msg: EmailMessage, errors: _Errors) -> ParsedMessage:
    """Turn a parsed EmailMessage into a ParsedMessage."""
    headers = _collect_headers(msg, errors)
    from_list = _parse_addresses(msg, "From", errors)
    _structure_errors(msg, errors)
    walk = _walk_message(msg, errors)
    links, codes = _extract(walk.text, walk.html, errors)
    return ParsedMessage(
        subject=_parse_subject(msg, errors),
        from_=from_list[0] if from_list else None,
        to=_parse_addresses(msg, "To", errors),
        cc=_parse_addresses(msg, "Cc", errors),
        bcc=_parse_addresses(msg, "Bcc", errors),
        reply_to=_parse_addresses(msg, "Reply-To", errors),
        date=_parse_date(msg, errors),
        message_id=_parse_message_id(msg),
        headers=headers,
        text=walk.text,
        html=walk.html,
        attachments=[attachment for attachment, _ in walk.found],
        links=links,
        codes=codes,
        parse_error=errors.joined(),
    )


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse raw message bytes; never raises (failures go to parse_error)."""
    if not raw:
        return _empty("empty message")
    errors = _Errors()
    try:
        return _build(_parse_bytes(_shape(raw, errors)), errors)
    except RecursionError:
        return _empty("message structure too deep to parse")
    except Exception as exc:
        return _empty(f"could not parse message ({type(exc).__name__})")


def attachment_payload(raw: bytes, index: int) -> tuple[Attachment, bytes] | None:
    """Re-parse raw and return the attachment at that index with its decoded bytes.

    Returns None if there is no such index (or the message cannot be parsed).
    """
    if not raw or index < 0:
        return None
    try:
        errors = _Errors()
        walk = _walk_message(_parse_bytes(_shape(raw, errors)), errors)
        if index >= len(walk.found):
            return None
        attachment, part = walk.found[index]
        return attachment, _payload_bytes(part)
    except Exception:
        return None
