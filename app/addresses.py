"""Mailbox address rules shared by the SMTP edge, the API and ingest.

``normalize_address`` gives the canonical inbox key (lower-case, IDN domain in
its Unicode form); ``valid_address`` checks an addr-spec closely enough for an
SMTP RCPT or an API field (RFC 5321/5322 with RFC 6531 UTF-8 allowed).
"""

from __future__ import annotations

import re

# dot-atom local part (RFC 5322 3.2.3) with UTF-8 allowed (RFC 6531), or a quoted string.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]"
_LOCAL = rf'(?:{_ATEXT}+(?:\.{_ATEXT}+)*|"(?:[^"\\\r\n]|\\.)*")'
_LABEL = r"[A-Za-z0-9\u0080-\U0010ffff](?:[A-Za-z0-9\-\u0080-\U0010ffff]{0,61}[A-Za-z0-9\u0080-\U0010ffff])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[^\[\]\s]+\])"
_ADDR_RE = re.compile(rf"^{_LOCAL}@{_DOMAIN}$")
_LOCAL_RE = re.compile(rf"^{_LOCAL}$")

MAX_ADDRESS = 320  # RFC 5321 4.5.3.1: 64 local + @ + 255 domain


def valid_address(address: str) -> bool:
    return len(address) <= MAX_ADDRESS and bool(_ADDR_RE.match(address))


def valid_local_part(local: str) -> bool:
    return 0 < len(local) <= 64 and bool(_LOCAL_RE.match(local))


def normalize_address(address: str) -> str:
    """The inbox key of an address: stripped of <>, lower-cased, IDNA domain decoded."""
    address = address.strip().strip("<>").strip()
    local, sep, domain = address.rpartition("@")
    if not sep:
        return address.lower()
    domain = domain.lower().rstrip(".")
    if "xn--" in domain:
        try:
            domain = domain.encode("ascii").decode("idna")
        except UnicodeError:
            pass
    return f"{local.lower()}@{domain}"
