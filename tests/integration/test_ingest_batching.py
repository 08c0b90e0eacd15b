"""Group commit in ingest: concurrent SMTP transactions share one store transaction,
yet each one succeeds or fails on its own, and a store failure stores nothing.

To make the batch deterministic the tests hold the store's write path (SQLite: the
in-process write lock; Postgres: an EXCLUSIVE lock on ``message``), send one DATA and
wait until the committer is stuck writing it, then send all the others and let go
once they are queued: the first transaction is written alone, the others in one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from tests.support import Harness, simple_mail

CLIENTS = 30


async def _open(h: Harness) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(hostname=h.smtp_host, port=h.smtp_port, start_tls=False)
    await client.connect()
    await client.ehlo()
    return client


async def _until(condition: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(20):
        while not condition():
            await asyncio.sleep(0.005)
    assert condition(), what


class _Release(Exception):
    pass


@contextlib.asynccontextmanager
async def _held_store(h: Harness) -> AsyncIterator[None]:
    """Block every message insert until the block exits (rolled back, never committed)."""
    with contextlib.suppress(_Release):
        async with h.runtime.db.write() as session:
            if not h.runtime.db.is_sqlite:
                await session.execute(text("LOCK TABLE message IN EXCLUSIVE MODE"))
            yield
            raise _Release


async def _data_in_one_batch(h: Harness, sends: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run every send (each ends in DATA) so that all but the first share one batch:
    the first is sent alone and the committer blocks on the held store with it; the
    others are sent only then, so they all queue for the next batch. Returns the
    outcomes (reply or exception) in order."""
    ingest = h.runtime.ingest
    batches, jobs = ingest.stats.batches, ingest.stats.jobs
    async with _held_store(h):
        primer = asyncio.create_task(sends[0]())
        await _until(lambda: ingest.stats.jobs == jobs + 1, "the committer took the first job")
        rest = [asyncio.create_task(send()) for send in sends[1:]]
        await _until(lambda: ingest.in_flight == len(sends), "every DATA reached the committer")
    outcomes = await asyncio.gather(primer, *rest, return_exceptions=True)
    assert (ingest.stats.batches - batches, ingest.stats.jobs - jobs) == (2, len(sends))
    assert ingest.stats.largest >= len(sends) - 1
    return outcomes


async def _count(h: Harness, inbox_id: str) -> int:
    resp = await h.http.get(f"/api/v1/inboxes/{inbox_id}")
    assert resp.status_code == 200, resp.text
    count: int = resp.json()["message_count"]
    return count


async def _total(h: Harness) -> int:
    inboxes = (await h.http.get("/api/v1/inboxes", params={"limit": 100})).json()["items"]
    return sum(i["message_count"] for i in inboxes)


@pytest.mark.parametrize("settings_overrides", [{"smtp_strict": True}])
async def test_one_failing_transaction_in_a_batch_fails_alone(harness: Harness) -> None:
    boxes = [await harness.create_inbox() for _ in range(10)]
    doomed = await harness.create_inbox()
    clients = [await _open(harness) for _ in range(CLIENTS)]
    try:
        # RCPT for everyone first (strict mode checks it there).
        rcpt_refused: list[int] = []
        expected: dict[str, int] = {b["id"]: 0 for b in boxes}
        for i, client in enumerate(clients):
            await client.mail("app@example.com")
            if i == 0:  # its inbox is deleted before DATA
                await client.rcpt(doomed["address"])
                continue
            if i <= 4:  # an unknown recipient is refused at RCPT; the known one goes on
                with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                    await client.rcpt(f"nobody{i}@mailharness.test")
                rcpt_refused.append(refused.value.code)
            targets = boxes[:3] if i == 5 else [boxes[i % len(boxes)]]
            for box in targets:
                await client.rcpt(box["address"])
                expected[box["id"]] += 1
        assert rcpt_refused == [550] * 4
        assert (await harness.http.delete(f"/api/v1/inboxes/{doomed['id']}")).status_code == 204

        def send(i: int) -> Callable[[], Awaitable[aiosmtplib.SMTPResponse]]:
            return lambda: clients[i].data(simple_mail(to="x@mailharness.test", subject=f"n{i}"))

        # The doomed transaction shares the second batch with 28 others.
        outcomes = await _data_in_one_batch(
            harness, [send(i) for i in range(1, CLIENTS)] + [send(0)]
        )
    finally:
        for client in clients:
            with contextlib.suppress(aiosmtplib.SMTPException):
                await client.quit()

    *accepted, refused = outcomes
    assert isinstance(refused, aiosmtplib.SMTPDataError), refused
    assert refused.code == 550
    assert doomed["address"] in refused.message
    assert all(isinstance(r, aiosmtplib.SMTPResponse) and r.code == 250 for r in accepted), [
        r for r in accepted if not isinstance(r, aiosmtplib.SMTPResponse)
    ]
    submission_ids = [r.message.rsplit(" ", 1)[-1] for r in accepted]
    assert len(set(submission_ids)) == CLIENTS - 1

    for box in boxes:
        assert await _count(harness, box["id"]) == expected[box["id"]]
    assert await _total(harness) == CLIENTS - 1 + 2  # one transaction had 3 recipients
    assert (await harness.http.get(f"/api/v1/inboxes/{doomed['id']}")).status_code == 404
    # The unknown inbox failed its job alone, without rolling back the shared batch.
    assert harness.runtime.ingest.stats.retried == 0
    # The 3-recipient transaction (client 5) made 3 messages with one submission id.
    resp = await harness.http.get(
        "/api/v1/messages", params={"submission_id": submission_ids[5 - 1]}
    )
    assert sorted(m["inbox_id"] for m in resp.json()["items"]) == sorted(b["id"] for b in boxes[:3])


async def _send_to_all(
    h: Harness, boxes: list[dict[str, Any]]
) -> list[aiosmtplib.SMTPResponse | BaseException]:
    def send(i: int) -> Callable[[], Awaitable[aiosmtplib.SMTPResponse]]:
        box = boxes[i % len(boxes)]
        return lambda: h.send("app@example.com", [box["address"]], simple_mail(to=box["address"]))

    return await _data_in_one_batch(h, [send(i) for i in range(CLIENTS)])


def _all_451(outcomes: list[Any]) -> None:
    for outcome in outcomes:
        assert isinstance(outcome, aiosmtplib.SMTPDataError), outcome
        assert outcome.code == 451
        assert outcome.message.startswith("4.3.0")


async def test_failing_writes_fail_the_whole_batch_with_451(harness: Harness) -> None:
    boxes = [await harness.create_inbox() for _ in range(5)]
    async with harness.runtime.db.write() as session:
        await session.execute(text("ALTER TABLE message_raw RENAME TO message_raw_gone"))
    try:
        outcomes = await _send_to_all(harness, boxes)
    finally:
        async with harness.runtime.db.write() as session:
            await session.execute(text("ALTER TABLE message_raw_gone RENAME TO message_raw"))
    _all_451(outcomes)
    assert harness.runtime.ingest.stats.retried >= 1  # the batch, then each on its own
    assert await _total(harness) == 0
    # The store works again: the next message is stored.
    reply = await harness.send("app@example.com", [boxes[0]["address"]], simple_mail(to="x@y.z"))
    assert reply.code == 250
    assert await _total(harness) == 1


async def test_failing_commit_fails_the_whole_batch_with_451(harness: Harness) -> None:
    boxes = [await harness.create_inbox() for _ in range(5)]
    engine = harness.runtime.db.engine.sync_engine

    # Only the commit of a transaction that inserted messages fails (the worker and
    # the janitor commit as usual).
    def note_insert(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO message "):
            conn.info["inserted_messages"] = True

    def fail_commit(conn: Any) -> None:
        if conn.info.pop("inserted_messages", False):
            raise OperationalError("COMMIT", None, Exception("disk I/O error (injected)"))

    def forget(conn: Any) -> None:
        conn.info.pop("inserted_messages", None)

    hooks: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", note_insert),
        ("commit", fail_commit),
        ("rollback", forget),
    ]
    for name, fn in hooks:
        event.listen(engine, name, fn)
    try:
        outcomes = await _send_to_all(harness, boxes)
    finally:
        for name, fn in hooks:
            event.remove(engine, name, fn)
    _all_451(outcomes)
    assert harness.runtime.ingest.stats.retried == 0  # the writes worked; the commit did not
    assert await _total(harness) == 0
    reply = await harness.send("app@example.com", [boxes[0]["address"]], simple_mail(to="x@y.z"))
    assert reply.code == 250
    assert await _total(harness) == 1
