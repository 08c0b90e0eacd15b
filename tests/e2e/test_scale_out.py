"""Scale-out on Postgres with real processes: three `mailharness serve` on one database.

A wait on one process returns mail sent to another; 1,000 deliveries queued across
the processes, with one process SIGKILLed half-way, reach the remote server exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
from sqlalchemy import text

from app.store.db import create_engine
from tests.conftest import TABLES_TO_EMPTY
from tests.support import RemoteHandler, simple_mail, start_remote

TOTAL = 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Node:
    proc: asyncio.subprocess.Process
    http_port: int
    smtp_port: int
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    log: list[str] = field(default_factory=list)
    drain: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


async def _drain(node: Node) -> None:
    assert node.proc.stderr is not None
    while line := await node.proc.stderr.readline():
        text_line = line.decode(errors="replace")
        node.log.append(text_line)
        if "mailharness ready" in text_line:
            node.ready.set()


class CountingRemote(RemoteHandler):
    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self.all_in = asyncio.Event()
        self.half_in = asyncio.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        count = len({r for got in self.received for r in got.rcpt_tos})
        if count >= self.total // 2:
            self.half_in.set()
        if count >= self.total:
            self.all_in.set()
        return reply


@pytest.fixture
async def cluster(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[list[Node], CountingRemote]]:
    handler = CountingRemote(TOTAL)
    remote = await start_remote(handler)
    nodes: list[Node] = []
    for i in range(3):
        http_port, smtp_port = _free_port(), _free_port()
        env = {
            **os.environ,
            "MAILHARNESS_DATA_DIR": str(tmp_path / f"node{i}"),
            "MAILHARNESS_DATABASE_URL": pg_url,
            "MAILHARNESS_RELAY_URL": f"smtp://127.0.0.1:{remote.port}",
            # Long enough that a loaded CI machine does not reclaim live work (duplicates);
            # short enough that the dead node's leases return quickly.
            "MAILHARNESS_DELIVERY_LEASE": "8",
            "MAILHARNESS_WORKER_POLL_INTERVAL": "1",
            "MAILHARNESS_LOG_LEVEL": "INFO",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--http-port",
            str(http_port),
            "--smtp-port",
            str(smtp_port),
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        node = Node(proc=proc, http_port=http_port, smtp_port=smtp_port)
        node.drain = asyncio.create_task(_drain(node))
        nodes.append(node)
    try:
        for node in nodes:
            await asyncio.wait_for(node.ready.wait(), 60)
        yield nodes, handler
    finally:
        for node in nodes:
            if node.proc.returncode is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in nodes:
            try:
                await asyncio.wait_for(node.proc.wait(), 30)
            except TimeoutError:
                node.proc.kill()
                await node.proc.wait()
            if node.drain is not None:
                await node.drain
        remote.server.close()
        engine = create_engine(pg_url, pool_size=1)
        async with engine.begin() as conn:
            await conn.execute(
                text(f"TRUNCATE {', '.join(TABLES_TO_EMPTY)} RESTART IDENTITY CASCADE")
            )
        await engine.dispose()


async def test_wait_on_one_process_returns_mail_sent_to_another(
    cluster: tuple[list[Node], CountingRemote],
) -> None:
    nodes, _ = cluster
    a, b = nodes[0], nodes[1]
    async with httpx.AsyncClient(base_url=a.base, timeout=30) as http:
        for _ in range(5):
            inbox = (await http.post("/api/v1/inboxes", json={})).json()
            wait = asyncio.create_task(
                http.get(f"/api/v1/inboxes/{inbox['id']}/wait", params={"timeout": 20})
            )
            # Send at once: whether the wait on A is already parked (woken over
            # LISTEN/NOTIFY) or not yet (it then finds the stored mail), it must return.
            # tests/integration/test_pg_bridge.py covers the parked case deterministically.
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=b.smtp_port) as client:
                await client.sendmail(
                    "app@example.com", [inbox["address"]], simple_mail(to=inbox["address"])
                )
            sent_at = time.perf_counter()
            resp = await wait
            assert resp.status_code == 200
            assert time.perf_counter() - sent_at < 2.0


async def test_a_thousand_deliveries_across_processes_despite_a_kill(
    cluster: tuple[list[Node], CountingRemote],
) -> None:
    nodes, remote = cluster
    clients = [httpx.AsyncClient(base_url=n.base, timeout=60) for n in nodes]
    delivery_ids: list[str] = []
    try:
        sender = (await clients[0].post("/api/v1/inboxes", json={"address": "bulk"})).json()
        rr = itertools.cycle(clients)
        sem = asyncio.Semaphore(20)

        async def send(i: int, client: httpx.AsyncClient) -> None:
            async with sem:
                resp = await client.post(
                    f"/api/v1/inboxes/{sender['id']}/send",
                    json={"to": [f"r{i}@remote.example"], "subject": f"n{i}"},
                )
                assert resp.status_code == 202, resp.text
                delivery_ids.append(resp.json()["deliveries"][0]["id"])

        await asyncio.gather(*(send(i, next(rr)) for i in range(TOTAL)))
        await asyncio.wait_for(remote.half_in.wait(), 120)
        nodes[2].proc.send_signal(signal.SIGKILL)  # one whole process dies mid-delivery
        await asyncio.wait_for(remote.all_in.wait(), 180)

        # Every delivery reaches "delivered" in the store (survivors reclaim the dead
        # process's leases), checked with push-based waits on the surviving nodes.
        survivors = clients[:2]

        async def final(i: int, delivery_id: str) -> str:
            async with sem:
                resp = await survivors[i % 2].get(
                    f"/api/v1/deliveries/{delivery_id}/wait",
                    params={"state": "final", "timeout": 60},
                )
                assert resp.status_code == 200, resp.text
                state: str = resp.json()["state"]
                return state

        states = await asyncio.gather(*(final(i, d) for i, d in enumerate(delivery_ids)))
    finally:
        for client in clients:
            await client.aclose()
    assert states == ["delivered"] * TOTAL
    rcpts = [r for got in remote.received for r in got.rcpt_tos]
    assert sorted(set(rcpts)) == sorted(f"r{i}@remote.example" for i in range(TOTAL))
    # At-least-once across a SIGKILL: only a delivery the dead process had already
    # handed to the remote, but not yet recorded, can arrive twice (Postfix has the
    # same window); at most one batch of in-flight work.
    assert len(rcpts) - TOTAL <= 50
