"""SMTP session transcripts: what was said, in order, with timings, never a secret.

SUMMARY
    A ``Transcript`` collects one SMTP session, inbound (a client talking to
    our listener) or outbound (our relay client talking to a remote MTA):
    who talked to whom, HELO, TLS version and cipher, the AUTH user, and every
    command (``"C"``) and reply (``"S"``) line with its offset in milliseconds
    since the session started. It is plain memory; a ``TranscriptSink``
    (``app.services.sessions.SessionRecorder``) stores finished ones.

    Client bytes are fed raw (``client_bytes``) and classified by the last
    reply, so the same rules hold in both directions:
      * after ``354`` the bytes are message data: one summary line
        ``<message data: N bytes>`` is recorded when the terminating ``.``
        arrives, never the content;
      * after ``334`` the next line is an AUTH response (a credential):
        recorded as ``****`` (``*``, the client's cancel, stays);
      * ``AUTH <mechanism> <initial-response>`` is recorded as
        ``AUTH <mechanism> ****``.
    At most ``MAX_LINES`` lines are kept (then one ``… truncated`` line), each
    at most ``MAX_LINE_CHARS`` characters.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from app.store.types import utcnow

Direction = Literal["inbound", "outbound"]

MAX_LINES = 2000
MAX_LINE_CHARS = 1000
SECRET = "****"
TRUNCATED = "… truncated"
_MAX_PARTIAL = 64 * 1024  # bytes of one unfinished command line kept for the record

_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


class TranscriptSink(Protocol):
    """Takes finished transcripts (without blocking) and can wait until they are stored."""

    def record(self, transcript: Transcript) -> None: ...

    async def flush(self) -> None: ...


def _clip(text: str) -> str:
    if len(text) > MAX_LINE_CHARS:
        return text[: MAX_LINE_CHARS - 1] + "…"
    return text


def mask_command(line: str) -> str:
    """``AUTH PLAIN dXNlcgB...`` -> ``AUTH PLAIN ****``; other commands unchanged."""
    parts = line.split()
    if parts and parts[0].upper() == "AUTH" and len(parts) > 2:
        return f"{parts[0]} {parts[1]} {SECRET}"
    return line


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID header of ``raw`` (unfolded, stripped), looking at the header only."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[: end + 2]
    found = _MESSAGE_ID.search(head)
    if found is None:
        return None
    value = re.sub(rb"\r?\n", b"", found.group(1)).decode("utf-8", "replace").strip()
    return value or None


@dataclass(eq=False)
class Transcript:
    direction: Direction
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_at: datetime = field(default_factory=utcnow)
    ended_at: datetime | None = None
    client_address: str | None = None
    server_address: str | None = None
    helo: str | None = None
    tls_version: str | None = None
    tls_cipher: str | None = None
    auth_user: str | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    submission_ids: list[str] = field(default_factory=list)
    inbox_ids: list[str] = field(default_factory=list)
    # Outbound: what was being relayed (the store links it to its outbound/deliveries).
    mail_from: str | None = None
    recipients: list[str] = field(default_factory=list)
    message_id: str | None = None
    _t0: float = field(default_factory=time.perf_counter, repr=False)
    _phase: Literal["command", "data", "secret"] = field(default="command", repr=False)
    _partial: bytearray = field(default_factory=bytearray, repr=False)
    _partial_dropped: int = field(default=0, repr=False)
    _data_bytes: int = field(default=0, repr=False)
    _data_line_start: bool = field(default=True, repr=False)
    _truncated: bool = field(default=False, repr=False)

    # -- lines ---------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.ended_at is not None

    def _add(self, direction: Literal["C", "S"], text: str) -> None:
        if self._truncated or self.finished:
            return
        ms = round((time.perf_counter() - self._t0) * 1000, 3)
        if len(self.lines) >= MAX_LINES:
            self._truncated = True
            text = TRUNCATED
        self.lines.append({"ms": ms, "dir": direction, "text": _clip(text)})

    def server(self, reply: str | bytes) -> None:
        """A reply as written or read (possibly several lines); sets what the client's
        next bytes are: message data after 354, a credential after 334."""
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
        for line in lines:
            self._add("S", line)
        code = lines[-1][:3]
        self._phase = "data" if code == "354" else "secret" if code == "334" else "command"
        if self._phase == "data":
            self._data_bytes = 0
            self._data_line_start = True

    def server_reply(self, code: int, message: str) -> None:
        """A parsed reply (aiosmtplib's code and ``\\n``-joined message lines)."""
        texts = message.split("\n") if message else [""]
        last = len(texts) - 1
        self.server(
            "\n".join(f"{code}{' ' if i == last else '-'}{t}".rstrip() for i, t in enumerate(texts))
        )

    def client_bytes(self, chunk: bytes) -> None:
        """Bytes the client sent, in order (whole or partial lines, or message data)."""
        if not chunk:
            return
        if self._phase == "data":
            self._data(chunk)
            return
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            piece = chunk[start:] if newline < 0 else chunk[start : newline + 1]
            room = _MAX_PARTIAL - len(self._partial)
            self._partial += piece[:room]
            self._partial_dropped += max(0, len(piece) - room)
            if newline < 0:
                return
            self._client_line()
            start = newline + 1
            if start >= len(chunk):
                return

    def _client_line(self) -> None:
        raw = bytes(self._partial).rstrip(b"\r\n")
        text = raw.decode("utf-8", "replace")
        dropped = self._partial_dropped
        self._partial.clear()
        self._partial_dropped = 0
        if self._phase == "secret":
            self._phase = "command"
            self._add("C", "*" if text.strip() == "*" else SECRET)
            return
        text = mask_command(text)
        if dropped or len(text) > MAX_LINE_CHARS:
            text = f"{text[: MAX_LINE_CHARS - 40]}… <{len(raw) + dropped} bytes>"
        self._add("C", text)

    def _data(self, chunk: bytes) -> None:
        if self._data_line_start and chunk == b".\r\n":
            self._end_data()
            return
        if chunk.endswith(b"\r\n.\r\n"):  # a whole message written at once (outbound)
            self._data_bytes += len(chunk) - 3
            self._end_data()
            return
        self._data_bytes += len(chunk)
        self._data_line_start = chunk.endswith(b"\r\n")  # aiosmtpd's idea of a line end

    def _end_data(self) -> None:
        self._add("C", f"<message data: {self._data_bytes} bytes>")
        self._phase = "command"
        self._data_bytes = 0

    # -- facts -----------------------------------------------------------------
    def note_submission(self, submission_id: str, inbox_ids: Sequence[str]) -> None:
        self.submission_ids.append(submission_id)
        for inbox_id in inbox_ids:
            if inbox_id not in self.inbox_ids:
                self.inbox_ids.append(inbox_id)

    def note_tls(self, ssl_object: Any) -> None:
        """From an ``ssl.SSLObject``/``SSLSocket`` (anything with version() and cipher())."""
        if ssl_object is None:
            return
        try:
            version = ssl_object.version()
            cipher = ssl_object.cipher()
        except Exception:  # not (or no longer) a live TLS object
            return
        if version:
            self.tls_version = str(version)
        if cipher:
            self.tls_cipher = str(cipher[0])

    def finish(self) -> None:
        if self.finished:
            return
        if self._phase == "data":  # the session ended inside DATA
            self._add("C", f"<message data: {self._data_bytes} bytes, incomplete>")
        elif self._partial and self._phase == "command":
            self._client_line()
        self.ended_at = utcnow()
