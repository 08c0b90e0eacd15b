"""Compose an outgoing RFC 5322 / MIME message from structured fields.

Pure, no I/O and no clock reads (the current time is passed in as ``now``).
Built on the stdlib ``email`` package only.

Inputs: sender, recipients (To/Cc/Reply-To, each either a bare addr-spec or
``Display Name <addr-spec>``), subject, optional text and/or html body,
custom headers, attachments, the Message-ID domain and the current time.
Bcc is deliberately not an input: Bcc recipients are envelope-only and never
appear in the headers.

Outputs:
- compose(...) -> Composed: the raw message bytes (CRLF line endings
  throughout), its Message-ID (with angle brackets) and whether it needs
  SMTPUTF8 (some address is non-ASCII, so the headers are raw UTF-8).
- validate_header(name, value): the check applied to every custom header.

A naive ``now`` is taken as UTC.

Every invalid input raises ComposeError (a ValueError) whose ``field`` names
the offending input, e.g. "subject", "to[1]", "headers.X-Foo",
"attachments[0].content_type".

Body layout: text only -> text/plain; html only -> text/html; both ->
multipart/alternative (text first); attachments -> multipart/mixed wrapping
that; no body at all -> an empty text/plain part. Non-ASCII text is sent as
quoted-printable or base64 (7-bit safe), attachments as base64 with
RFC 2231-encoded non-ASCII filenames (raw UTF-8 in an SMTPUTF8 message).
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import errors as email_errors
from email import policy
from email.generator import BytesGenerator
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime

__all__ = [
    "FORBIDDEN_HEADERS",
    "MAX_ATTACHMENT_BYTES",
    "MAX_BODY_BYTES",
    "MAX_SUBJECT_CHARS",
    "ComposeError",
    "Composed",
    "OutgoingAttachment",
    "compose",
    "validate_header",
]

MAX_SUBJECT_CHARS = 998
MAX_BODY_BYTES = 10 * 1024 * 1024  # text + html, UTF-8 encoded
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024  # each attachment, decoded

# Headers the composer owns; custom headers may not set them (case-insensitive).
FORBIDDEN_HEADERS = frozenset(
    name.lower()
    for name in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Message-ID",
        "Date",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Reply-To",
    )
)

# Building parts: 7-bit so non-ASCII text becomes quoted-printable/base64.
_PART_POLICY = policy.SMTP.clone(cte_type="7bit")
# Serialising: CRLF; raw UTF-8 headers only when an address needs SMTPUTF8.
_ASCII_POLICY = policy.SMTP
_UTF8_POLICY = policy.SMTPUTF8

# Custom headers are kept as plain text (no Date/address reinterpretation).
_UNSTRUCTURED = HeaderRegistry(use_default_map=False)

_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 ftext
_MIME_TOKEN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"  # RFC 6838 restricted-name
_CONTENT_TYPE = re.compile(rf"({_MIME_TOKEN})/({_MIME_TOKEN})")
_NAME_ADDR = re.compile(r"(?P<name>.*?)\s*<(?P<addr>[^<>]*)>", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LINE_BREAK_OR_NUL = re.compile(r"[\r\n\x00]")
_DOMAIN = re.compile(r"[A-Za-z0-9.\-\[\]:_]+")


class ComposeError(ValueError):
    """An input of compose() is invalid; ``field`` names it (str() is "field: what")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class OutgoingAttachment:
    """One attachment: filename (may be non-ASCII), MIME type "type/subtype", bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Composed:
    """The composed message: raw bytes (CRLF) and its Message-ID with brackets.

    smtputf8 is True when some address is non-ASCII: the headers then hold raw
    UTF-8 and the message must be relayed with the SMTPUTF8 extension.
    """

    raw: bytes
    message_id: str
    smtputf8: bool = False


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def validate_header(name: str, value: str) -> None:
    """Check one custom header; raise ComposeError(field="headers.<name>") if unusable.

    The name must be an RFC 5322 field name (printable ASCII 33..126 except
    ':'), must not be one of FORBIDDEN_HEADERS, and the value must not contain
    CR, LF or NUL (header injection).
    """
    field = f"headers.{name}"
    if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
        raise ComposeError(
            field, f"header name {name!r} must be printable ASCII (33..126) without ':'"
        )
    if name.lower() in FORBIDDEN_HEADERS:
        raise ComposeError(
            field, f"the {name} header is set by the composer and cannot be overridden"
        )
    if not isinstance(value, str):
        raise ComposeError(field, "header value must be a string")
    if _LINE_BREAK_OR_NUL.search(value):
        raise ComposeError(field, "header value must not contain CR, LF or NUL")
    _check_unicode(field, value)


def _check_unicode(field: str, value: str) -> None:
    """Raise if value holds lone surrogates (it could not be encoded as UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ComposeError(field, "is not valid Unicode (lone surrogates)") from None


def _check_single_line(field: str, value: object) -> str:
    """Return value if it is a string without CR, LF or NUL; else raise."""
    if not isinstance(value, str):
        raise ComposeError(field, "must be a string")
    if _LINE_BREAK_OR_NUL.search(value):
        raise ComposeError(field, "must not contain CR, LF or NUL")
    _check_unicode(field, value)
    return value


def _unquote_display_name(name: str) -> str:
    """Strip one level of "..." quoting (with backslash escapes) from a display name."""
    name = name.strip()
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        return re.sub(r"\\(.)", r"\1", name[1:-1])
    return name


def _split_addr_spec(field: str, addr_spec: str) -> tuple[str, str]:
    """Validate an addr-spec and return (local part, domain); non-ASCII is allowed."""
    if not addr_spec:
        raise ComposeError(field, "address is empty")
    if _CONTROL.search(addr_spec) or any(char.isspace() for char in addr_spec):
        raise ComposeError(
            field, f"address {addr_spec!r} contains whitespace or control characters"
        )
    local, at, domain = addr_spec.rpartition("@")
    if not at or not local or not domain:
        raise ComposeError(field, f"address {addr_spec!r} must be local-part@domain")
    if local.isascii():
        try:
            parsed = Address(addr_spec=addr_spec)
        except (ValueError, IndexError, email_errors.MessageError) as exc:
            raise ComposeError(field, f"address {addr_spec!r} is not valid ({exc})") from None
        return parsed.username, parsed.domain
    # Non-ASCII (SMTPUTF8) local part: the stdlib parser rejects it, so check
    # the shape ourselves: a dot-atom of non-special characters.
    if '"' in local or any(not atom for atom in local.split(".")):
        raise ComposeError(field, f"address {addr_spec!r} has an invalid local part")
    if re.search(r'[()<>\[\]:;@\\,"]', local):
        raise ComposeError(field, f"address {addr_spec!r} has an invalid local part")
    try:
        Address(addr_spec=f"x@{domain}")
    except (ValueError, IndexError, email_errors.MessageError) as exc:
        raise ComposeError(field, f"address {addr_spec!r} has an invalid domain ({exc})") from None
    return local, domain


def _mailbox(field: str, value: object, display_name: str | None = None) -> Address:
    """Parse "addr" or "Name <addr>" into an Address (display_name overrides)."""
    text = _check_single_line(field, value).strip()
    name = ""
    match = _NAME_ADDR.fullmatch(text)
    if match:
        name = _unquote_display_name(match.group("name"))
        text = match.group("addr").strip()
    if display_name is not None:
        name = display_name.strip()
    local, domain = _split_addr_spec(field, text)
    try:
        return Address(display_name=name, username=local, domain=domain)
    except (ValueError, IndexError, email_errors.MessageError) as exc:
        raise ComposeError(field, f"address {text!r} is not valid ({exc})") from None


def _mailboxes(field: str, values: Sequence[str]) -> list[Address]:
    """Parse a list of addresses; field is the list's name ("to", "cc", ...)."""
    if isinstance(values, str | bytes):
        raise ComposeError(field, "must be a list of addresses, not a single string")
    return [_mailbox(f"{field}[{index}]", value) for index, value in enumerate(values)]


def _is_ascii_address(address: Address) -> bool:
    return address.addr_spec.isascii()


def _message_id(message_id: str | None, domain: str) -> str:
    """The given Message-ID (brackets added if missing) or a fresh <uuid4hex@domain>."""
    if message_id is not None:
        value = _check_single_line("message_id", message_id).strip()
        if not (value.startswith("<") and value.endswith(">")):
            value = f"<{value}>"
        inner = value[1:-1]
        left, at, right = inner.partition("@")
        if (
            not at
            or not left
            or not right
            or not inner.isascii()
            or re.search(r"[\s<>\x00-\x1f\x7f]", inner)
        ):
            raise ComposeError("message_id", f"{message_id!r} must look like <id@domain>")
        return value
    domain = _check_single_line("message_id_domain", domain).strip()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise ComposeError("message_id_domain", f"{domain!r} is not a valid domain") from None
    if not _DOMAIN.fullmatch(domain):
        raise ComposeError("message_id_domain", f"{domain!r} is not a valid domain")
    return f"<{uuid.uuid4().hex}@{domain}>"


def _format_date(now: datetime) -> str:
    """RFC 5322 date of now in its own offset; a naive now is taken as UTC."""
    if now.tzinfo is None or now.utcoffset() is None:
        now = now.replace(tzinfo=UTC)
    return format_datetime(now)


def _check_body(text: str | None, html: str | None) -> None:
    size = 0
    for field, value in (("text", text), ("html", html)):
        if value is None:
            continue
        if not isinstance(value, str):
            raise ComposeError(field, "must be a string")
        _check_unicode(field, value)
        size += len(value.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise ComposeError("body", f"text + html is {size} bytes; the limit is {MAX_BODY_BYTES}")


def _check_attachment(index: int, attachment: OutgoingAttachment) -> tuple[str, str]:
    """Validate one attachment; return its (maintype, subtype) in lower case."""
    field = f"attachments[{index}]"
    filename = attachment.filename
    if not isinstance(filename, str) or not filename.strip():
        raise ComposeError(f"{field}.filename", "must be a non-empty string")
    if _CONTROL.search(filename):
        raise ComposeError(f"{field}.filename", "must not contain control characters")
    _check_unicode(f"{field}.filename", filename)
    content_type = attachment.content_type
    match = _CONTENT_TYPE.fullmatch(content_type.strip()) if isinstance(content_type, str) else None
    if match is None:
        raise ComposeError(
            f"{field}.content_type", f"{content_type!r} is not a MIME type of the form type/subtype"
        )
    maintype, subtype = match.group(1).lower(), match.group(2).lower()
    if maintype in ("multipart", "message"):
        raise ComposeError(
            f"{field}.content_type",
            f"{maintype}/* cannot be attached as data; use application/octet-stream",
        )
    if not isinstance(attachment.data, bytes | bytearray | memoryview):
        raise ComposeError(f"{field}.data", "must be bytes")
    size = len(attachment.data)
    if size > MAX_ATTACHMENT_BYTES:
        raise ComposeError(
            f"{field}.data", f"attachment is {size} bytes; the limit is {MAX_ATTACHMENT_BYTES}"
        )
    return maintype, subtype


# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------


def _build_body(
    text: str | None, html: str | None, attachments: Sequence[tuple[OutgoingAttachment, str, str]]
) -> MIMEPart:
    """The MIME body tree (no envelope headers)."""
    body = MIMEPart(policy=_PART_POLICY)
    if html is not None and text is None:
        body.set_content(html, subtype="html", charset="utf-8")
    else:
        body.set_content(text or "", subtype="plain", charset="utf-8")
        if html is not None:
            body.add_alternative(html, subtype="html", charset="utf-8")
    for attachment, maintype, subtype in attachments:
        body.add_attachment(
            bytes(attachment.data),
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
        )
    return body


def _serialise(msg: EmailMessage, utf8: bool) -> bytes:
    buffer = io.BytesIO()
    generator = BytesGenerator(
        buffer, mangle_from_=False, policy=_UTF8_POLICY if utf8 else _ASCII_POLICY
    )
    generator.flatten(msg)
    return buffer.getvalue()


def compose(
    *,
    from_address: str,
    from_name: str | None,
    to: Sequence[str],
    cc: Sequence[str] = (),
    subject: str,
    text: str | None = None,
    html: str | None = None,
    reply_to: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
    attachments: Sequence[OutgoingAttachment] = (),
    message_id_domain: str,
    now: datetime,
    message_id: str | None = None,
) -> Composed:
    """Build the raw bytes of one outgoing message; raise ComposeError on bad input.

    ``to`` may be empty (a Bcc-only message has no To header). Custom headers
    are validated with validate_header and added in the given order after the
    standard ones, as unstructured text (RFC 2047-encoded when non-ASCII).
    """
    if from_name is not None:
        _check_single_line("from_name", from_name)
    sender = _mailbox("from_address", from_address, from_name)
    to_list = _mailboxes("to", to)
    cc_list = _mailboxes("cc", cc)
    reply_list = _mailboxes("reply_to", reply_to)
    _check_single_line("subject", subject)
    if len(subject) > MAX_SUBJECT_CHARS:
        raise ComposeError(
            "subject", f"subject is {len(subject)} characters; the limit is {MAX_SUBJECT_CHARS}"
        )
    _check_body(text, html)
    custom = list((headers or {}).items())
    for name, value in custom:
        validate_header(name, value)
    checked = [
        (attachment, *_check_attachment(index, attachment))
        for index, attachment in enumerate(attachments)
    ]
    date = _format_date(now)
    msg_id = _message_id(message_id, message_id_domain)

    everyone = [sender, *to_list, *cc_list, *reply_list]
    utf8 = not all(_is_ascii_address(address) for address in everyone)
    msg = EmailMessage(policy=_UTF8_POLICY if utf8 else _ASCII_POLICY)
    try:
        msg["From"] = sender
        if to_list:
            msg["To"] = to_list
        if cc_list:
            msg["Cc"] = cc_list
        if reply_list:
            msg["Reply-To"] = reply_list
        msg["Subject"] = subject
        msg["Date"] = date
        msg["Message-ID"] = msg_id
        msg["MIME-Version"] = "1.0"
    except (ValueError, TypeError, IndexError, email_errors.MessageError) as exc:
        raise ComposeError("headers", f"could not build the standard headers ({exc})") from None
    for name, value in custom:
        try:
            msg[name] = _UNSTRUCTURED(name, value)
        except (ValueError, TypeError, IndexError, email_errors.MessageError) as exc:
            raise ComposeError(f"headers.{name}", f"invalid header ({exc})") from None

    body = _build_body(text, html, checked)
    for name, value in body.raw_items():
        msg[name] = value
    msg.set_payload(body.get_payload())
    try:
        raw = _serialise(msg, utf8)
    except (ValueError, TypeError, IndexError, UnicodeError, email_errors.MessageError) as exc:
        raise ComposeError("headers", f"could not serialise the message ({exc})") from None
    return Composed(raw=raw, message_id=msg_id, smtputf8=utf8)
