"""A `mailharness worker` process killed with SIGKILL in the middle of a delivery, then
restarted: every delivery reaches its final state exactly once, counted by the remote."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.api.schemas.delivery import SendRequest
from app.api.schemas.inboxes import InboxCreate
from app.config import DEFAULT_TENANT_ID
from app.runtime import Runtime
from app.store.models import Delivery, DeliveryEvent
from tests.conftest import make_settings
from tests.support import RemoteHandler, start_remote

TOTAL = 12
STALL_AT = 4  # the 4th remote transaction hangs at RCPT until the worker is dead


class StallingRemote(RemoteHandler):
    def __init__(self) -> None:
        super().__init__()
        self.rcpts_seen = 0
        self.stalled = asyncio.Event()
        self.release = asyncio.Event()
        self.all_in = asyncio.Event()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.rcpts_seen += 1
        if self.rcpts_seen == STALL_AT:
            self.stalled.set()
            await self.release.wait()
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.received) >= TOTAL:
            self.all_in.set()
        return reply


async def _start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "worker", env=env, stderr=asyncio.subprocess.PIPE
    )


async def test_sigkilled_worker_loses_nothing_and_sends_nothing_twice(
    db_url: str, tmp_path: Path
) -> None:
    handler = StallingRemote()
    remote = await start_remote(handler)
    relay = f"smtp://127.0.0.1:{remote.port}"
    runtime = Runtime.build(make_settings(db_url, tmp_path, relay_url=relay))
    try:
        outbox = runtime.outbox(DEFAULT_TENANT_ID)
        sender = await runtime.mailbox(DEFAULT_TENANT_ID).create_inbox(
            InboxCreate(address="crashy")
        )
        for i in range(TOTAL):
            await outbox.send(sender.id, SendRequest(to=[f"r{i}@remote.example"], subject=f"m{i}"))
    finally:
        await runtime.close()

    env = {
        **os.environ,
        "MAILHARNESS_DATA_DIR": str(tmp_path),
        "MAILHARNESS_DATABASE_URL": db_url,
        "MAILHARNESS_RELAY_URL": relay,
        "MAILHARNESS_DELIVERY_LEASE": "2",
        "MAILHARNESS_WORKER_CONCURRENCY": "1",
        "MAILHARNESS_WORKER_BATCH": "3",
        "MAILHARNESS_WORKER_POLL_INTERVAL": "0.5",
        "MAILHARNESS_LOG_LEVEL": "WARNING",
    }
    first = await _start_worker(env)
    second: asyncio.subprocess.Process | None = None
    try:
        await asyncio.wait_for(handler.stalled.wait(), 30)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        handler.release.set()
        second = await _start_worker(env)
        await asyncio.wait_for(handler.all_in.wait(), 60)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
        remote.server.close()

    # Exactly once at the remote...
    rcpts = sorted(r for got in handler.received for r in got.rcpt_tos)
    assert rcpts == sorted(f"r{i}@remote.example" for i in range(TOTAL))
    # ...and exactly one final state in the store, after one successful attempt each.
    runtime = Runtime.build(make_settings(db_url, tmp_path))
    try:
        async with runtime.db.read() as session:
            deliveries = list((await session.execute(select(Delivery))).scalars())
            events = list((await session.execute(select(DeliveryEvent))).scalars())
    finally:
        await runtime.close()
    assert len(deliveries) == TOTAL
    assert {d.state for d in deliveries} == {"delivered"}
    assert all(d.lease_owner is None for d in deliveries)
    for d in deliveries:
        types = [e.type for e in events if e.delivery_id == d.id]
        assert types.count("delivered") == 1, types
