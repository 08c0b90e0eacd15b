"""Several processes on one Postgres: a wait on one is woken by mail stored by another,
also after the listener's connection is killed (Postgres only: SQLite is single-process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from app.events.bus import DeliveryUpdated, Event, MessageReceived, RuleHit
from app.events.pg_bridge import CHANNEL, asyncpg_dsn, decode, encode
from app.runtime import Runtime
from app.server import Services
from app.store.db import create_engine
from tests.conftest import TABLES_TO_EMPTY, make_settings
from tests.support import Harness, simple_mail


@pytest.fixture
async def two_nodes(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[Harness, Harness]]:
    """Two full Mailharness nodes (own bus, own bridge) on one Postgres database."""
    nodes: list[Harness] = []
    clients: list[httpx.AsyncClient] = []
    try:
        for i in range(2):
            runtime = Runtime.build(make_settings(pg_url, tmp_path / f"n{i}"))
            services = Services(runtime)
            await services.start()
            assert runtime.bridge is not None
            await asyncio.wait_for(runtime.bridge.connected.wait(), 10)
            base = f"http://127.0.0.1:{services.http_port}"
            client = httpx.AsyncClient(base_url=base, timeout=30)
            clients.append(client)
            nodes.append(Harness(runtime, services, client, base, "127.0.0.1", services.smtp_port))
        yield nodes[0], nodes[1]
    finally:
        for client in clients:
            await client.aclose()
        for node in nodes:
            await node.services.stop()
        engine = create_engine(pg_url, pool_size=1)
        async with engine.begin() as conn:
            await conn.execute(
                text(f"TRUNCATE {', '.join(TABLES_TO_EMPTY)} RESTART IDENTITY CASCADE")
            )
        await engine.dispose()


def test_payload_round_trip() -> None:
    events: list[Event] = [
        MessageReceived(tenant_id="t", inbox_id="i", message_id="m", seq=7),
        DeliveryUpdated(
            tenant_id="t", delivery_id="d", outbound_id="o", inbox_id=None, state="queued"
        ),
        RuleHit(tenant_id="t", rule_id="r", inbox_id="i", hits=3),
        RuleHit(tenant_id="t", rule_id="r", inbox_id=None, hits=1),
    ]
    for event in events:
        assert decode(encode(event, "me")) == ("me", event)


async def _parked(node: Harness, inbox_id: str, **params: object) -> asyncio.Task[httpx.Response]:
    task = asyncio.create_task(
        node.http.get(f"/api/v1/inboxes/{inbox_id}/wait", params={"timeout": 20, **params})
    )
    await asyncio.wait_for(node.runtime.bus.until_subscribers(f"inbox:{inbox_id}", 1), 10)
    return task


async def test_wait_on_one_node_wakes_for_mail_stored_by_another(
    two_nodes: tuple[Harness, Harness],
) -> None:
    a, b = two_nodes
    inbox = await a.create_inbox()
    wait = await _parked(a, inbox["id"])
    reply = await b.send("app@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
    assert reply.code == 250
    resp = await wait
    assert resp.status_code == 200
    assert resp.json()["items"][0]["submission_id"] == reply.message.rsplit(" ", 1)[-1]


async def test_killed_listener_connection_still_delivers_the_wake_up(
    two_nodes: tuple[Harness, Harness], pg_url: str
) -> None:
    a, b = two_nodes
    inbox = await a.create_inbox()
    wait = await _parked(a, inbox["id"])
    assert a.runtime.bridge is not None
    conn = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        killed = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE $1",
            f"LISTEN%{CHANNEL}%",
        )
    finally:
        await conn.close()
    assert killed >= 1
    # Mail stored while a listener is down or reconnecting must still wake the waiter.
    reply = await b.send("app@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
    assert reply.code == 250
    resp = await wait
    assert resp.status_code == 200
    assert len(resp.json()["items"]) == 1


async def test_delivery_queued_on_one_node_is_picked_up_by_the_other_worker(
    two_nodes: tuple[Harness, Harness],
) -> None:
    a, b = two_nodes
    a.runtime.worker.stop()  # only b's worker runs
    sender = await a.create_inbox()
    target = await a.create_inbox()
    sent = (
        await a.http.post(
            f"/api/v1/inboxes/{sender['id']}/send", json={"to": [target["address"]], "subject": "x"}
        )
    ).json()
    resp = await a.http.get(
        f"/api/v1/deliveries/{sent['deliveries'][0]['id']}/wait",
        params={"state": "delivered", "timeout": 20},
    )
    assert resp.status_code == 200
    assert resp.json()["events"][-1]["type"] == "delivered"


async def test_only_one_janitor_sweeps_at_a_time(
    two_nodes: tuple[Harness, Harness], pg_url: str
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from app.janitor import ADVISORY_KEY
    from app.store.models import Inbox
    from app.store.types import utcnow

    a, b = two_nodes
    inbox = await a.create_inbox(expires_in=60)
    async with a.runtime.db.write() as session:
        await session.execute(
            update(Inbox)
            .where(Inbox.id == inbox["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    holder = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_KEY)
        # Another process holds the janitor lock: both nodes skip their sweep.
        assert await a.runtime.janitor.sweep() == 0
        assert await b.runtime.janitor.sweep() == 0
        assert (await a.http.get(f"/api/v1/inboxes/{inbox['id']}")).status_code == 200
        await holder.execute("SELECT pg_advisory_unlock($1)", ADVISORY_KEY)
        assert await b.runtime.janitor.sweep() == 1
    finally:
        await holder.close()
    assert (await a.http.get(f"/api/v1/inboxes/{inbox['id']}")).status_code == 404


async def test_statement_timeout_bounds_every_statement(pg_url: str, tmp_path: Path) -> None:
    from sqlalchemy.exc import DBAPIError

    runtime = Runtime.build(make_settings(pg_url, tmp_path, db_statement_timeout=0.2))
    try:
        async with runtime.db.read() as session:
            with pytest.raises(DBAPIError, match="statement timeout"):
                await session.execute(text("SELECT pg_sleep(2)"))
    finally:
        await runtime.close()


async def test_event_stream_on_one_node_sees_mail_and_rule_hits_from_another(
    two_nodes: tuple[Harness, Harness],
) -> None:
    from tests.integration.test_events_stream import stream

    a, b = two_nodes
    inbox = await a.create_inbox(address="sse-cross")
    rule = (
        await a.http.post(
            "/api/v1/rules",
            json={"match": {"sender": "bad@example.com"}, "stage": "mail", "reply": {"code": 451}},
        )
    ).json()
    async with stream(a) as events:
        await b.send(
            "x@example.com", [inbox["address"]], simple_mail(to=inbox["address"], subject="via b")
        )
        with pytest.raises(Exception, match="451"):
            await b.send("bad@example.com", [inbox["address"]], simple_mail(to=inbox["address"]))
        got = {}
        while len(got) < 2:
            e = await events.event()
            got[e.event] = e.data
    assert got["message.received"]["subject"] == "via b"
    assert got["rule.hit"]["id"] == rule["id"] and got["rule.hit"]["hits"] == 1
