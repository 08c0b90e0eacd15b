"""Test helpers: the running-harness handle and real SMTP clients."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from typing import Any

import aiosmtplib
import httpx

from app.runtime import Runtime
from app.server import Services


@dataclass
class Harness:
    runtime: Runtime
    services: Services
    http: httpx.AsyncClient
    base_url: str
    smtp_host: str
    smtp_port: int

    async def create_inbox(self, **body: Any) -> dict[str, Any]:
        resp = await self.http.post("/api/v1/inboxes", json=body)
        assert resp.status_code == 201, resp.text
        data: dict[str, Any] = resp.json()
        return data

    async def send(self, mail_from: str, rcpts: list[str], data: bytes) -> aiosmtplib.SMTPResponse:
        """Send one transaction with aiosmtplib; returns the reply to the end of DATA."""
        async with aiosmtplib.SMTP(
            hostname=self.smtp_host, port=self.smtp_port, start_tls=False
        ) as client:
            await client.ehlo()
            if mail_from:
                await client.mail(mail_from)
            else:  # the null reverse-path, which aiosmtplib's mail() refuses to write
                resp = await client.execute_command(b"MAIL FROM:<>")
                assert resp.code == 250, resp
            for rcpt in rcpts:
                await client.rcpt(rcpt)
            return await client.data(data)

    def send_sync(self, mail_from: str, rcpts: list[str], data: bytes) -> dict[str, Any]:
        """Send with the stdlib smtplib (run it in a thread from async tests)."""
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=30) as client:
            return client.sendmail(mail_from, rcpts, data)

    async def send_stdlib(self, mail_from: str, rcpts: list[str], data: bytes) -> dict[str, Any]:
        return await asyncio.to_thread(self.send_sync, mail_from, rcpts, data)


def simple_mail(
    *, to: str, subject: str = "Hello", body: str = "Hi there", sender: str = "app@example.com"
) -> bytes:
    return (
        f"From: App <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{abs(hash((to, subject, body)))}@example.com>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class RemoteHandler:
    """A scriptable remote MTA: replies queued per RCPT address and for DATA, then 250."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.rcpt_replies: dict[str, list[str]] = {}
        self.data_replies: list[str] = []
        self.connections = 0
        self.arrived = asyncio.Event()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        queue = self.rcpt_replies.get(address)
        if queue:
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
            if not reply.startswith("250"):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if not reply.startswith("250"):
                return reply
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        self.arrived.set()
        return "250 2.0.0 Ok: remote accepted"


@dataclass
class RemoteServer:
    handler: RemoteHandler
    server: asyncio.Server
    port: int


async def start_remote(handler: RemoteHandler | None = None) -> RemoteServer:
    """A real aiosmtpd server on 127.0.0.1, port 0, on the running loop."""
    from aiosmtpd.smtp import SMTP

    handler = handler or RemoteHandler()
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        handler.connections += 1
        return SMTP(handler, hostname="remote.test", enable_SMTPUTF8=True, loop=loop)

    server = await loop.create_server(factory, "127.0.0.1", 0)
    return RemoteServer(handler=handler, server=server, port=server.sockets[0].getsockname()[1])


@dataclass
class SseEvent:
    event: str | None
    data: Any
    id: str | None
    comments: list[str]


class SseReader:
    """Reads server-sent events off a streaming httpx response, one block at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def block(self, timeout: float = 10.0) -> SseEvent:
        """The next block (an event, or comments only), within ``timeout`` seconds."""
        import json

        fields: dict[str, str] = {}
        comments: list[str] = []
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if line == "":
                    if fields or comments:
                        data = fields.get("data")
                        return SseEvent(
                            event=fields.get("event"),
                            data=json.loads(data) if data is not None else None,
                            id=fields.get("id"),
                            comments=comments,
                        )
                    continue
                if line.startswith(":"):
                    comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
        raise EOFError("the event stream ended")

    async def event(self, timeout: float = 10.0) -> SseEvent:
        """The next real event, skipping comment-only blocks (heartbeats)."""
        async with asyncio.timeout(timeout):
            while True:
                block = await self.block(timeout)
                if block.event is not None:
                    return block


@dataclass
class WebhookPost:
    headers: dict[str, str]
    body: bytes
    path: str


class WebhookReceiver:
    """A real HTTP endpoint on an ephemeral port: records each POST and answers the
    next scripted status (then ``default``). ``next()`` waits for a POST, push-based."""

    def __init__(self, statuses: list[int] | None = None, default: int = 200) -> None:
        self.statuses = list(statuses or [])
        self.default = default
        self.posts: list[WebhookPost] = []
        self._queue: asyncio.Queue[WebhookPost] = asyncio.Queue()
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        post = WebhookPost(
            headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body=body,
            path=scope["path"],
        )
        self.posts.append(post)
        self._queue.put_nowait(post)
        status = self.statuses.pop(0) if self.statuses else self.default
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": f"status {status}".encode()})

    async def start(self) -> WebhookReceiver:
        import uvicorn

        from app.server import _Uvicorn, bind

        sock = bind("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app, log_config=None, access_log=False, lifespan="off", interface="asgi3"
        )
        self._server = _Uvicorn(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        await self._server.ready.wait()
        return self

    async def next(self, timeout: float = 10.0) -> WebhookPost:
        async with asyncio.timeout(timeout):
            return await self._queue.get()

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
