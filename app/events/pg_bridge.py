"""Postgres LISTEN/NOTIFY bridge: events cross processes that share one database.

SUMMARY
    Every event published on this process's bus is sent with ``pg_notify`` on
    the ``mailharness_events`` channel (small JSON: ids, never bodies) from a
    dedicated sender connection, in publish order. A dedicated listener
    connection receives the other processes' events and delivers them to the
    local bus only (its own are recognised by the origin id and skipped).

    When the listener connection drops, the bridge reconnects with backoff;
    while it is down it wakes every local subscription every
    ``FALLBACK_SECONDS`` so waiters re-read the store, and once reconnected it
    wakes them once more, so a notification missed during the gap cannot leave
    a waiter hanging. Events are published after their commit, so a reader
    woken by one always finds the rows.

CONFIGURATION PARAMETERS
    database_url (Postgres only; SQLite is single-process).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from app.events.bus import DeliveryUpdated, Event, EventBus, MessageReceived, RuleHit

log = logging.getLogger(__name__)

CHANNEL = "mailharness_events"
FALLBACK_SECONDS = 0.5
MAX_BACKOFF = 5.0
SEND_QUEUE = 10_000


def encode(event: Event, origin: str) -> str:
    if isinstance(event, MessageReceived):
        body: dict[str, Any] = {
            "t": "m",
            "te": event.tenant_id,
            "i": event.inbox_id,
            "m": event.message_id,
            "s": event.seq,
        }
    elif isinstance(event, RuleHit):
        body = {"t": "r", "te": event.tenant_id, "r": event.rule_id, "i": event.inbox_id}
        body["h"] = event.hits
    else:
        body = {
            "t": "d",
            "te": event.tenant_id,
            "d": event.delivery_id,
            "o": event.outbound_id,
            "i": event.inbox_id,
            "st": event.state,
        }
    body["or"] = origin
    return json.dumps(body, separators=(",", ":"))


def decode(payload: str) -> tuple[str, Event]:
    body = json.loads(payload)
    if body["t"] == "m":
        return body["or"], MessageReceived(
            tenant_id=body["te"], inbox_id=body["i"], message_id=body["m"], seq=int(body["s"])
        )
    if body["t"] == "r":
        return body["or"], RuleHit(
            tenant_id=body["te"], rule_id=body["r"], inbox_id=body["i"], hits=int(body["h"])
        )
    return body["or"], DeliveryUpdated(
        tenant_id=body["te"],
        delivery_id=body["d"],
        outbound_id=body["o"],
        inbox_id=body["i"],
        state=body["st"],
    )


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


class PgBridge:
    def __init__(self, *, url: str, bus: EventBus) -> None:
        self.dsn = asyncpg_dsn(url)
        self.bus = bus
        self.origin = uuid.uuid4().hex
        self.connected = asyncio.Event()
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=SEND_QUEUE)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        self.bus.forward_to(self._enqueue)
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="pg-bridge-listen"),
            asyncio.create_task(self._send_forever(), name="pg-bridge-send"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        self.bus.forward_to(None)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- out -------------------------------------------------------------------
    def _enqueue(self, event: Event) -> None:
        try:
            self._outbox.put_nowait(encode(event, self.origin))
        except asyncio.QueueFull:
            # Other processes' waiters fall back to their own timers; never block ingest.
            log.warning("pg bridge send queue full; dropping a notification")

    async def _send_forever(self) -> None:
        backoff = 0.1
        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("pg bridge sender cannot connect: %s", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.1
            try:
                while True:
                    payload = await self._outbox.get()
                    batch = [payload]
                    while not self._outbox.empty() and len(batch) < 100:
                        batch.append(self._outbox.get_nowait())
                    await conn.executemany(
                        "SELECT pg_notify($1, $2)", [(CHANNEL, p) for p in batch]
                    )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("pg bridge sender lost its connection: %s", type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    # -- in --------------------------------------------------------------------
    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            origin, event = decode(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("pg bridge ignored a malformed notification")
            return
        if origin != self.origin:
            self.bus.deliver_local(event)

    async def _listen_forever(self) -> None:
        backoff = 0.1
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("pg bridge listener cannot connect: %s", type(exc).__name__)
                await self._fallback(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            backoff = 0.1
            try:
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                self.connected.set()
                # Anything published while we were away: make every waiter re-read.
                self.bus.kick_all()
                await lost.wait()
                log.warning("pg bridge listener connection lost; reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("pg bridge listener failed: %s", type(exc).__name__)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _fallback(self, seconds: float) -> None:
        """While disconnected: wake local waiters periodically so they re-read the store."""
        end = asyncio.get_running_loop().time() + seconds
        while (left := end - asyncio.get_running_loop().time()) > 0:
            await asyncio.sleep(min(FALLBACK_SECONDS, left))
            self.bus.kick_all()
