"""Build delivery status notifications (bounces), RFC 3464 / RFC 3462.

Pure, no I/O and no clock reads (times are passed in). Stdlib ``email`` only.

Inputs: the original message's raw bytes, the envelope sender, who the DSN
goes to, the reporting MTA's host name, one DsnRecipient per failed or
delayed recipient, the arrival time, the current time, the postmaster address
and the Message-ID domain.

Output: build_dsn(...) -> the raw DSN bytes (CRLF line endings), a
multipart/report; report-type=delivery-status message with three parts:

1. text/plain: a human-readable explanation listing each recipient, what
   happened and the remote server's reply.
2. message/delivery-status: the RFC 3464 per-message fields (Reporting-MTA,
   Arrival-Date), then one block per recipient (Final-Recipient, Action,
   Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date). The fields are
   US-ASCII: a non-ASCII recipient is written as an RFC 6533 "utf-8" address
   (utf-8-addr-xtext) and non-ASCII characters in diagnostics become "?".
3. text/rfc822-headers: the original header block (up to the first empty
   line), line endings normalised to CRLF; raw 8-bit header bytes are kept
   as they are (Content-Transfer-Encoding: 8bit). The original body is never
   included.

Invalid input (no recipients, an unknown action, an unusable address or host
name) raises ValueError. Naive datetimes are taken as UTC.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Literal

__all__ = [
    "DsnRecipient",
    "build_dsn",
]

SUBJECT_FAILED = "Undelivered Mail Returned to Sender"
SUBJECT_DELAYED = "Delayed Mail (still being retried)"
SENDER_NAME = "Mail Delivery System"

# Serialising: CRLF; source-parsed delivery-status fields are written verbatim.
_ASCII_POLICY = policy.SMTP.clone(refold_source="none")
_UTF8_POLICY = policy.SMTPUTF8.clone(refold_source="none")
# Building the text part: 7-bit so non-ASCII text becomes quoted-printable/base64.
_PART_POLICY = policy.SMTP.clone(cte_type="7bit")

_MAX_FIELD_LINE = 78  # fold delivery-status fields at spaces beyond this
_HARD_LINE = 900  # split an unbreakable run longer than this (RFC 5322 limit is 998)
_STATUS = re.compile(r"[45]\.\d{1,3}\.\d{1,3}")
_STATUS_IN_TEXT = re.compile(r"(?<![\d.])([45]\.\d{1,3}\.\d{1,3})(?![\d.])")
_DIAGNOSTIC_TYPE = re.compile(r"([A-Za-z][A-Za-z0-9-]*)\s*;\s*(.*)", re.DOTALL)
_SMTP_REPLY = re.compile(r"[2-5]\d\d[ -]")
_HOST = re.compile(r"[A-Za-z0-9.\-\[\]:_]+")
_QCHAR = frozenset(chr(code) for code in range(0x21, 0x7F)) - {"+", "=", "\\"}


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    """One recipient the report is about.

    status is an RFC 3463 code such as "5.1.1"; when it is empty or not a
    4.x.x/5.x.x code, one is taken from the diagnostic text if it holds one,
    else "5.0.0" (failed) or "4.0.0" (delayed). diagnostic is e.g.
    "smtp; 550 5.1.1 No such user" (a bare SMTP reply gets "smtp; " prepended,
    other text "X-Mailharness; "). remote_mta is a host name (Remote-MTA: dns);
    it and the address are made US-ASCII for the delivery-status part rather
    than rejected, so a bounce can always be built.
    """

    address: str
    action: Literal["failed", "delayed"]
    status: str
    diagnostic: str | None
    remote_mta: str | None
    last_attempt: datetime | None


# --------------------------------------------------------------------------
# Field helpers
# --------------------------------------------------------------------------


def _ascii_text(value: str) -> str:
    """One line of printable US-ASCII: whitespace runs -> one space, others -> '?'."""
    collapsed = " ".join(value.split())
    return "".join(char if " " <= char <= "~" else "?" for char in collapsed)


def _human_text(value: str) -> str:
    """One line of text for the human-readable part (whitespace collapsed).

    Surrogate-escaped raw bytes (e.g. of a server reply) are decoded as UTF-8,
    else Latin-1; any other lone surrogate becomes U+FFFD.
    """
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        clean = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    else:
        try:
            clean = data.decode("utf-8")
        except UnicodeDecodeError:
            clean = data.decode("latin-1")
    return " ".join(clean.split())


def _fold(name: str, value: str) -> str:
    """A "Name: value" field folded at spaces (lines joined with CRLF + space).

    value must already be one line with single spaces. A run without spaces
    longer than _HARD_LINE is split (a space appears there when unfolded).
    """
    head = f"{name}:"
    lines: list[str] = []
    current = head
    for word in value.split(" "):
        for start in range(0, len(word), _HARD_LINE):
            piece = word[start : start + _HARD_LINE]
            if current != head and len(current) + 1 + len(piece) > _MAX_FIELD_LINE:
                lines.append(current)
                current = f" {piece}"
            else:
                current = f"{current} {piece}"
    lines.append(current)
    return "\r\n".join(lines)


def _aware(value: datetime) -> datetime:
    """value with UTC assumed when it is naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value


def _date(value: datetime) -> str:
    return format_datetime(_aware(value))


def _xtext_address(address: str) -> str:
    """RFC 6533 utf-8-addr-xtext: QCHARs as-is, everything else as \\x{HEX}."""
    return "".join(char if char in _QCHAR else f"\\x{{{ord(char):X}}}" for char in address)


def _final_recipient(address: str) -> str:
    """The value of Final-Recipient: "rfc822; addr", or "utf-8; xtext" if non-ASCII."""
    if address.isascii():
        return f"rfc822; {_ascii_text(address)}"
    return f"utf-8; {_xtext_address(''.join(address.split()))}"


def _status(recipient: DsnRecipient) -> str:
    """A valid RFC 3463 status for the recipient (derived when missing or invalid)."""
    status = (recipient.status or "").strip()
    if _STATUS.fullmatch(status):
        return status
    found = _STATUS_IN_TEXT.search(recipient.diagnostic or "")
    if found:
        return found.group(1)
    return "5.0.0" if recipient.action == "failed" else "4.0.0"


def _diagnostic_parts(diagnostic: str) -> tuple[str, str]:
    """Split a diagnostic into (type, text), inventing the type when it is missing."""
    text = _human_text(diagnostic)
    match = _DIAGNOSTIC_TYPE.fullmatch(text)
    if match:
        return match.group(1), match.group(2)
    if _SMTP_REPLY.match(text + " "):
        return "smtp", text
    return "X-Mailharness", text


def _host(field: str, value: str) -> str:
    """A host name usable after "dns; " (raise ValueError if it is not one)."""
    host = value.strip()
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"{field}: {value!r} is not a valid host name") from None
    if not _HOST.fullmatch(host):
        raise ValueError(f"{field}: {value!r} is not a valid host name")
    return host


def _remote_host(value: str) -> str:
    """The remote MTA for "Remote-MTA: dns; ..." (lenient: made ASCII, spaces dropped)."""
    try:
        return _host("remote_mta", value)
    except ValueError:
        return _ascii_text(value).replace(" ", "") or "unknown"


def _mailbox(field: str, value: str, display_name: str = "") -> Address:
    """An Address for a header; raise ValueError for anything but local@domain."""
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or any(char.isspace() or char in "<>\x00\x7f" for char in text)
        or any(ord(char) < 32 for char in text)
    ):
        raise ValueError(f"{field}: {value!r} is not an address of the form local@domain")
    return Address(display_name=display_name, username=local, domain=domain)


# --------------------------------------------------------------------------
# Parts
# --------------------------------------------------------------------------


def _original_headers(original: bytes) -> bytes:
    """The header block of original (up to the first empty line), CRLF-terminated lines."""
    lines: list[bytes] = []
    for line in original.split(b"\n"):
        line = line.removesuffix(b"\r")
        if not line:
            break
        lines.append(line)
    return b"".join(line + b"\r\n" for line in lines)


def _human_part(
    *,
    reporting_mta: str,
    envelope_from: str,
    recipients: Sequence[DsnRecipient],
    arrival: datetime,
) -> EmailMessage:
    """Part 1: text/plain explanation for a person."""
    failed = [item for item in recipients if item.action == "failed"]
    delayed = [item for item in recipients if item.action == "delayed"]
    sender = _human_text(envelope_from) or "<>"
    lines = [
        f"This is the mail delivery system at {reporting_mta}.",
        "",
        f"Your message from {sender}, received {_date(arrival)},",
    ]
    if failed:
        lines += [
            "could not be delivered to one or more recipients. Delivery has been",
            "abandoned for the recipients below; their mail systems rejected the",
            "message or could not be reached.",
        ]
    else:
        lines += [
            "has not yet been delivered to one or more recipients. Delivery is",
            "still being retried; you do not need to send the message again.",
        ]
    for title, group in (
        ("Delivery failed:", failed),
        ("Delivery delayed (still being retried):", delayed),
    ):
        if not group:
            continue
        lines += ["", title, ""]
        for item in group:
            lines.append(f"  <{_human_text(item.address)}>: status {_status(item)}")
            if item.diagnostic and item.diagnostic.strip():
                _, text = _diagnostic_parts(item.diagnostic)
                if item.remote_mta and item.remote_mta.strip():
                    lines.append(f"    The server {_human_text(item.remote_mta)} said: {text}")
                else:
                    lines.append(f"    Reason: {text}")
            elif item.remote_mta and item.remote_mta.strip():
                lines.append(f"    Remote server: {_human_text(item.remote_mta)}")
            if item.last_attempt is not None:
                lines.append(f"    Last attempt: {_date(item.last_attempt)}")
    lines += [
        "",
        "The headers of your original message are attached.",
    ]
    text = "\n".join(lines) + "\n"
    part = EmailMessage(policy=_PART_POLICY)
    part.set_content(text, subtype="plain", charset="utf-8")
    del part["MIME-Version"]  # only the top level carries it
    part["Content-Description"] = "Notification"
    return part


def _status_text(
    *, reporting_mta: str, arrival: datetime, recipients: Sequence[DsnRecipient]
) -> str:
    """The message/delivery-status body (RFC 3464 sections 2.2 and 2.3), CRLF."""
    blocks = [
        "\r\n".join(
            [
                _fold("Reporting-MTA", f"dns; {reporting_mta}"),
                _fold("Arrival-Date", _date(arrival)),
            ]
        )
    ]
    for item in recipients:
        fields = [
            _fold("Final-Recipient", _final_recipient(item.address)),
            f"Action: {item.action}",
            f"Status: {_status(item)}",
        ]
        if item.remote_mta and item.remote_mta.strip():
            fields.append(_fold("Remote-MTA", f"dns; {_remote_host(item.remote_mta)}"))
        if item.diagnostic and item.diagnostic.strip():
            kind, text = _diagnostic_parts(item.diagnostic)
            fields.append(_fold("Diagnostic-Code", _ascii_text(f"{kind}; {text}")))
        if item.last_attempt is not None:
            fields.append(_fold("Last-Attempt-Date", _date(item.last_attempt)))
        blocks.append("\r\n".join(fields))
    return "\r\n\r\n".join(blocks) + "\r\n"


def _status_part(text: str, serialise_policy: EmailPolicy[EmailMessage]) -> EmailMessage:
    """Part 2: message/delivery-status holding exactly text.

    The stdlib models this type as a list of header blocks, so the part is
    made by parsing; the generator writes the blocks back verbatim.
    """
    source = b"Content-Type: message/delivery-status\r\n\r\n" + text.encode("ascii")
    return BytesParser(policy=serialise_policy).parsebytes(source)


def _headers_part(original: bytes) -> EmailMessage:
    """Part 3: text/rfc822-headers with the original header block (8bit if needed)."""
    block = _original_headers(original)
    part = EmailMessage(policy=_PART_POLICY)
    cte = "7bit" if block.isascii() else "8bit"
    part.set_content(block, "text", "rfc822-headers", cte=cte)
    del part["MIME-Version"]  # only the top level carries it
    part["Content-Description"] = "Undelivered Message Headers"
    return part


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def _check_recipients(recipients: Sequence[DsnRecipient]) -> None:
    if not recipients:
        raise ValueError("recipients: a DSN needs at least one recipient")
    for index, item in enumerate(recipients):
        if item.action not in ("failed", "delayed"):
            raise ValueError(f"recipients[{index}].action: {item.action!r} is not failed/delayed")
        if not item.address.strip():
            raise ValueError(f"recipients[{index}].address: empty address")


def build_dsn(
    *,
    original: bytes,
    envelope_from: str,
    to: str,
    reporting_mta: str,
    recipients: Sequence[DsnRecipient],
    arrival: datetime,
    now: datetime,
    postmaster: str,
    message_id_domain: str,
) -> bytes:
    """Build the raw bytes of a DSN about recipients of original; see the module doc."""
    _check_recipients(recipients)
    reporting_host = _host("reporting_mta", reporting_mta)
    id_domain = _host("message_id_domain", message_id_domain)
    sender = _mailbox("postmaster", postmaster, SENDER_NAME)
    recipient = _mailbox("to", to)
    utf8 = not (sender.addr_spec.isascii() and recipient.addr_spec.isascii())
    serialise_policy = _UTF8_POLICY if utf8 else _ASCII_POLICY

    all_delayed = all(item.action == "delayed" for item in recipients)
    msg = EmailMessage(policy=serialise_policy)
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = SUBJECT_DELAYED if all_delayed else SUBJECT_FAILED
    msg["Date"] = _date(now)
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@{id_domain}>"
    msg["Auto-Submitted"] = "auto-replied"
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = "multipart/report; report-type=delivery-status"
    msg.attach(
        _human_part(
            reporting_mta=reporting_host,
            envelope_from=envelope_from,
            recipients=recipients,
            arrival=arrival,
        )
    )
    status_text = _status_text(reporting_mta=reporting_host, arrival=arrival, recipients=recipients)
    msg.attach(_status_part(status_text, serialise_policy))
    msg.attach(_headers_part(original))

    buffer = io.BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=serialise_policy).flatten(msg)
    return buffer.getvalue()
