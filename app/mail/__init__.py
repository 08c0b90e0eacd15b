"""Pure message-parsing layer: raw RFC 5322 bytes in, ParsedMessage out.

No I/O. Inputs are raw message bytes; outputs are frozen dataclasses
(ParsedMessage, Address, Header, Attachment) plus helpers to fetch an
attachment's decoded bytes and to extract links and one-time codes.
"""

from __future__ import annotations

from app.mail.extract import find_codes, find_links
from app.mail.parse import (
    Address,
    Attachment,
    Header,
    ParsedMessage,
    attachment_payload,
    header_block,
    parse_message,
)

__all__ = [
    "Address",
    "Attachment",
    "Header",
    "ParsedMessage",
    "attachment_payload",
    "find_codes",
    "find_links",
    "header_block",
    "parse_message",
]
