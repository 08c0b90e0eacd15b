"""Server-sent events over ASGI: a response that streams, heartbeats and drops slow readers.

SUMMARY
    ``EventStream(chunks, write_timeout=...)`` sends ``text/event-stream``
    headers, then each chunk the async iterator yields. A send that cannot
    complete within ``write_timeout`` (the client stopped reading and the
    socket buffers are full) ends the stream: a slow client is dropped, it
    never holds up anyone else. A client disconnect cancels the producer at
    once, which releases its bus subscription; so does ``closing`` (the server
    is stopping), after which the response ends cleanly and the client
    reconnects with ``Last-Event-ID``.

    ``encode(event, data, id)`` formats one event (JSON data on one line).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)


def encode(event: str, data: Any, event_id: str | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str) -> bytes:
    return f": {text}\n\n".encode()


class EventStream(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        write_timeout: float,
        closing: asyncio.Event | None = None,
        status_code: int = 200,
    ) -> None:
        super().__init__(
            status_code=status_code,
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
            media_type=self.media_type,
        )
        self.chunks = chunks
        self.write_timeout = write_timeout
        self.closing = closing or asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                # no content-length: the body streams (x-accel-buffering: for nginx)
                "headers": [(k, v) for k, v in self.raw_headers if k != b"content-length"],
            }
        )
        pump = asyncio.create_task(self._pump(send))
        watch = asyncio.create_task(_until_disconnect(receive))
        closing = asyncio.create_task(self.closing.wait())
        try:
            done, _ = await asyncio.wait(
                {pump, watch, closing}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (pump, watch, closing):
                task.cancel()
            for task in (pump, watch, closing):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(Exception):
                await self.chunks.aclose()  # type: ignore[attr-defined]
        if pump in done and pump.exception() is not None:
            raise pump.exception()  # type: ignore[misc]
        if closing in done:  # the server is stopping: end the response properly
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    send({"type": "http.response.body", "body": b"", "more_body": False}),
                    self.write_timeout,
                )

    async def _pump(self, send: Send) -> None:
        async for chunk in self.chunks:
            try:
                async with asyncio.timeout(self.write_timeout):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except TimeoutError:
                log.warning(
                    "event stream dropped: the client read nothing for %ss", self.write_timeout
                )
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
