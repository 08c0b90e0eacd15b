"""Delivery bench: how fast the MTA side of ``mailharness serve`` moves queued mail.

WHAT IT MEASURES (per store: SQLite file and/or Postgres)
    1. Local throughput: N sends (``POST /api/v1/inboxes/{id}/send``, one
       recipient each, spread over 50 local inboxes) pushed as fast as a few
       concurrent HTTP clients can (each client sends back-to-back on its own
       keep-alive connection). The enqueue rate is N over first request ->
       last 202. The end-to-end rate is N over first 202 -> the moment the
       last delivery is ``delivered``. That moment comes from long-polls
       (``GET /api/v1/deliveries/{id}/wait?state=delivered``) that are opened
       right after the 202 of each of the last 50 sends. It is checked
       against the server's ``updated_at`` of every delivery, which the bench
       reads through the list endpoint at the end; that read also verifies
       that all N were delivered. The bench does not poll.
    2. Remote throughput: the same, to recipients on a non-harness domain,
       relayed to a smarthost that runs inside this process: an aiosmtpd
       ``SMTP`` on 127.0.0.1 port 0, which answers "250 OK" and counts each
       (Message-ID, recipient). The count must equal N, each exactly once.
    3. Idle latency: 200 sequential sends (local, then remote) with the queue
       idle. Right after each 202 the bench opens ``/wait?state=delivered``
       and times 202 received -> wait response received: p50/p95/p99.
       The server-side part (delivery ``created_at`` -> ``delivered`` event)
       is reported too.
    Each store gets its own server on free loopback ports and a fresh store
    (temporary data dir / temporary Postgres database, dropped afterwards),
    with ``MAILHARNESS_RELAY_URL`` pointing at the in-process smarthost.
    Client, smarthost and server share the machine's CPUs.

HOW TO RUN
    .venv/bin/python bench/delivery.py                    # both stores, full counts
    .venv/bin/python bench/delivery.py --store sqlite     # one store
    .venv/bin/python bench/delivery.py --quick            # small counts, smoke test
    --worker-batch / --worker-concurrency set MAILHARNESS_WORKER_BATCH /
    MAILHARNESS_WORKER_CONCURRENCY on the server (default: the server's, 50 / 20).
    Postgres: 127.0.0.1:5432, user postgres, trust auth, ``psql`` on PATH.
    Results: tables on stdout and bench/results/delivery-<store>.json
    (delivery-<store>-quick.json with --quick).
    Exit status 1 only when a run broke; missed targets are reported, not fatal.

TARGETS
    >= 500 deliveries/s end to end to local inboxes on SQLite;
    idle 202 -> delivered p50 < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import platform
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from _common import (
    LOOPBACK,
    RESULTS_DIR,
    STORES,
    BenchServer,
    changed_source_files,
    git_revision,
    out,
    proc_cpu_seconds,
    summarize,
)
from aiosmtpd.smtp import SMTP as SmtpdServer

HARNESS_DOMAIN = "mailharness.test"
REMOTE_DOMAIN = "remote-bench.example"
INBOX_COUNT = 50
SENDERS = 8  # concurrent HTTP clients in the throughput phases
TAIL = 50  # the last TAIL sends of a throughput phase get a wait right after their 202
HTTP_TIMEOUT = 60.0
WAIT_SERVER_TIMEOUT = 30  # the ?timeout= of each /wait; a 408 re-arms it until PHASE_TIMEOUT
PHASE_TIMEOUT = 900.0  # one phase, all clients
LIST_PAGE = 500
WARMUP_SENDS = 10  # per route, sequential, not counted

TARGET_LOCAL_RATE = 500.0
TARGET_IDLE_P50_MS = 20.0

BODY = (
    "Hi,\n\nthanks for your order. Your parcel left our warehouse this morning and should "
    "arrive within two to three business days. You can follow it with the tracking link "
    "below; if anything looks wrong, reply to this email and our support team will get back "
    "to you within one business day.\n\nTrack: https://bench-app.example/t/{tag}\n\n-- \n"
    "Bench App\n"
)


@dataclass(frozen=True, slots=True)
class Counts:
    throughput: int
    idle: int


FULL = Counts(throughput=2000, idle=200)
QUICK = Counts(throughput=200, idle=30)


# --------------------------------------------------------------------------- server


@dataclass
class DeliveryBenchServer(BenchServer):
    """``BenchServer`` with the relay pointed at the bench's smarthost (and worker knobs)."""

    extra_env: dict[str, str] = field(default_factory=dict)

    def _environment(self) -> dict[str, str]:
        env = super()._environment()
        env.update(self.extra_env)
        return env


# --------------------------------------------------------------------------- smarthost

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<?([^>\r\n]+)>?", re.IGNORECASE | re.MULTILINE)


def bare_message_id(value: str | None) -> str:
    return (value or "").strip().strip("<>").strip()


class CountingHandler:
    """aiosmtpd handler: accept everything with 250 and count (Message-ID, recipient)."""

    def __init__(self) -> None:
        self.transactions = 0
        self.recipients = 0
        self.bytes = 0
        self.copies: collections.Counter[tuple[str, str]] = collections.Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content: bytes = envelope.original_content or envelope.content or b""
        head = content.split(b"\r\n\r\n", 1)[0]
        match = _MESSAGE_ID.search(head)
        message_id = match.group(1).decode(errors="replace").strip() if match else ""
        self.transactions += 1
        self.bytes += len(content)
        for rcpt in envelope.rcpt_tos:
            self.recipients += 1
            self.copies[(message_id, rcpt.lower())] += 1
        return "250 OK"

    def snapshot(self) -> tuple[int, int]:
        return self.transactions, self.recipients


@dataclass
class Smarthost:
    handler: CountingHandler
    port: int


@contextlib.asynccontextmanager
async def smarthost() -> AsyncIterator[Smarthost]:
    handler = CountingHandler()
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(
        lambda: SmtpdServer(handler, hostname="smarthost.bench", ident="bench smarthost"),
        host=LOOPBACK,
        port=0,
    )
    port = int(srv.sockets[0].getsockname()[1])
    try:
        yield Smarthost(handler=handler, port=port)
    finally:
        srv.close()
        await srv.wait_closed()


# --------------------------------------------------------------------------- HTTP helpers


def parse_time(value: str) -> float:
    """An API timestamp (RFC 3339, UTC, ``Z``) as epoch seconds."""
    return datetime.fromisoformat(value).timestamp()


async def create_inbox(http: httpx.AsyncClient, local_part: str) -> dict[str, Any]:
    response = await http.post("/api/v1/inboxes", json={"address": local_part})
    if response.status_code != 201:
        raise RuntimeError(f"creating inbox {local_part}: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


async def send(
    http: httpx.AsyncClient, inbox_id: str, rcpt: str, subject: str, tag: str
) -> dict[str, Any]:
    """One send; the 202 body, or RuntimeError."""
    response = await http.post(
        f"/api/v1/inboxes/{inbox_id}/send",
        json={"to": [rcpt], "subject": subject, "text": BODY.format(tag=tag)},
    )
    if response.status_code != 202:
        raise RuntimeError(f"send answered {response.status_code}: {response.text[:200]}")
    body: dict[str, Any] = response.json()
    if len(body.get("deliveries", [])) != 1:
        raise RuntimeError(f"send answered without exactly one delivery: {response.text[:200]}")
    return body


async def wait_delivered(
    http: httpx.AsyncClient, delivery_id: str, deadline: float
) -> tuple[dict[str, Any], float]:
    """Long-poll until ``delivered``; (the delivery, perf_counter() when the 200 was read).

    A 408 re-arms the wait until ``deadline``; anything else raises RuntimeError.
    """
    while True:
        response = await http.get(
            f"/api/v1/deliveries/{delivery_id}/wait",
            params={"state": "delivered", "timeout": WAIT_SERVER_TIMEOUT},
        )
        received = time.perf_counter()
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body, received
        if response.status_code != 408 or received >= deadline:
            raise RuntimeError(
                f"wait on {delivery_id} answered {response.status_code}: {response.text[:200]}"
            )


async def list_deliveries(http: httpx.AsyncClient, inbox_id: str) -> list[dict[str, Any]]:
    """Every delivery sent from ``inbox_id`` (all states), through the paged list endpoint."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(10_000):  # bounded: pages of LIST_PAGE
        params: dict[str, Any] = {"inbox_id": inbox_id, "limit": LIST_PAGE}
        if cursor:
            params["cursor"] = cursor
        response = await http.get("/api/v1/deliveries", params=params)
        if response.status_code != 200:
            raise RuntimeError(f"listing deliveries: {response.status_code} {response.text[:200]}")
        page = response.json()
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items
    raise RuntimeError("listing deliveries: too many pages")


def delivered_at(delivery: dict[str, Any]) -> float | None:
    """Epoch seconds of the delivery's ``delivered`` event (the server's clock)."""
    for ev in delivery.get("events", []):
        if ev.get("type") == "delivered":
            return parse_time(ev["at"])
    return None


def new_client(base_url: str, connections: int = 1) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        base_url=base_url, timeout=HTTP_TIMEOUT, trust_env=False, limits=limits
    )


# --------------------------------------------------------------------------- throughput


@dataclass(slots=True)
class Flow:
    """One throughput phase: ``requested`` sends to one route, then all delivered."""

    route: str
    requested: int
    senders: int
    accepted: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    started: float = 0.0  # perf_counter() of the first request
    first_202: float = 0.0
    first_202_wall: float = 0.0  # time.time() at first_202, to place the server's clock
    last_202: float = 0.0
    last_202_wall: float = 0.0
    tail_done: float = 0.0  # the last tail wait's response
    server_last_delivered: float = 0.0  # perf_counter() domain, from the server's timestamps
    done: float = 0.0
    last_outside_tail: bool = False
    backlog_at_last_202: int = 0  # deliveries not yet delivered when the last 202 arrived
    states: dict[str, int] = field(default_factory=dict)
    send_latencies: list[float] = field(default_factory=list)
    server_queue_latencies: list[float] = field(default_factory=list)  # created -> delivered
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    remote_transactions: int | None = None
    remote_recipients: int | None = None
    remote_exactly_once: bool | None = None
    remote_missing: int | None = None
    remote_duplicates: int | None = None

    def note_error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)

    @property
    def enqueue_elapsed(self) -> float:
        return self.last_202 - self.started

    @property
    def e2e_elapsed(self) -> float:
        return self.done - self.first_202

    @property
    def delivered(self) -> int:
        return self.states.get("delivered", 0)

    @property
    def enqueue_rate(self) -> float:
        return self.accepted / self.enqueue_elapsed if self.enqueue_elapsed > 0 else 0.0

    @property
    def e2e_rate(self) -> float:
        return self.delivered / self.e2e_elapsed if self.e2e_elapsed > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        per = self.delivered or 1
        return {
            "route": self.route,
            "requested": self.requested,
            "senders": self.senders,
            "accepted": self.accepted,
            "delivered": self.delivered,
            "states": self.states,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "enqueue_s": round(self.enqueue_elapsed, 3),
            "enqueue_per_s": round(self.enqueue_rate, 1),
            "e2e_s": round(self.e2e_elapsed, 3),
            "e2e_deliveries_per_s": round(self.e2e_rate, 1),
            "drain_after_last_202_s": round(self.done - self.last_202, 3),
            "backlog_at_last_202": self.backlog_at_last_202,
            "tail_waits_done_s": round(self.tail_done - self.first_202, 3),
            "server_last_delivered_s": round(self.server_last_delivered - self.first_202, 3),
            "last_delivered_outside_tail": self.last_outside_tail,
            "send_202": summarize(self.send_latencies).as_json(),
            "server_created_to_delivered": summarize(self.server_queue_latencies).as_json(),
            "server_cpu_s": round(self.server_cpu, 2),
            "server_cpu_ms_per_delivery": round(self.server_cpu * 1000 / per, 2),
            "client_cpu_ms_per_delivery": round(self.client_cpu * 1000 / per, 2),
            "remote_transactions": self.remote_transactions,
            "remote_recipients": self.remote_recipients,
            "remote_exactly_once": self.remote_exactly_once,
            "remote_missing": self.remote_missing,
            "remote_duplicates": self.remote_duplicates,
        }


async def run_flow(
    server: BenchServer,
    smarthost: Smarthost,
    *,
    route: str,
    recipients: list[str],
    count: int,
    senders: int,
) -> Flow:
    """``count`` sends from a fresh sender inbox over ``senders`` clients; all waited for."""
    flow = Flow(route=route, requested=count, senders=senders)
    tag = uuid.uuid4().hex[:8]
    async with new_client(server.base_url, TAIL + 2) as control:
        sender_inbox = await create_inbox(control, f"sender-{route}-{tag}")
        ids: list[str | None] = [None] * count
        message_ids: list[str | None] = [None] * count
        next_index = iter(range(count))  # shared by the sender tasks (one event loop)
        tail: list[asyncio.Task[tuple[dict[str, Any], float]]] = []
        deadline = time.perf_counter() + PHASE_TIMEOUT
        clients = [new_client(server.base_url) for _ in range(senders)]
        remote_before = smarthost.handler.snapshot()

        async def sender(http: httpx.AsyncClient) -> None:
            for i in next_index:
                rcpt = recipients[i % len(recipients)]
                t0 = time.perf_counter()
                if not flow.started:
                    flow.started = t0
                try:
                    body = await send(
                        http, sender_inbox["id"], rcpt, f"Delivery bench {tag} {i}", tag
                    )
                except (RuntimeError, httpx.HTTPError) as exc:
                    flow.note_error(f"send {i}: {type(exc).__name__}: {exc}")
                    continue
                t1 = time.perf_counter()
                if not flow.first_202:
                    flow.first_202, flow.first_202_wall = t1, time.time()
                if t1 > flow.last_202:
                    flow.last_202, flow.last_202_wall = t1, time.time()
                flow.accepted += 1
                flow.send_latencies.append(t1 - t0)
                delivery_id = body["deliveries"][0]["id"]
                ids[i], message_ids[i] = delivery_id, bare_message_id(body.get("message_id"))
                if i >= count - TAIL:
                    tail.append(asyncio.create_task(wait_delivered(control, delivery_id, deadline)))

        server_cpu, client_cpu = proc_cpu_seconds(server.pid), time.process_time()
        try:
            async with asyncio.timeout(PHASE_TIMEOUT):
                await asyncio.gather(*(sender(c) for c in clients))
                results = await asyncio.gather(*tail, return_exceptions=True)
        finally:
            for task in tail:
                task.cancel()
            await asyncio.gather(*(c.aclose() for c in clients))
        flow.server_cpu = proc_cpu_seconds(server.pid) - server_cpu
        flow.client_cpu = time.process_time() - client_cpu
        tail_ids: set[str] = set()
        for result in results:
            if isinstance(result, BaseException):
                flow.note_error(f"tail wait: {type(result).__name__}: {result}")
                continue
            delivery, received = result
            tail_ids.add(delivery["id"])
            flow.tail_done = max(flow.tail_done, received)

        # The final check: every delivery of this phase, with its state and timeline.
        listed = await list_deliveries(control, sender_inbox["id"])
    ours = {i for i in ids if i is not None}
    mine = [d for d in listed if d["id"] in ours]
    if len(mine) != len(ours) or len(listed) != len(ours):
        flow.note_error(f"list endpoint shows {len(listed)} deliveries, {len(ours)} were sent")
    flow.states = dict(collections.Counter(d["state"] for d in mine))
    last_wall, last_id = 0.0, ""
    for d in mine:
        at = delivered_at(d)
        if at is None:
            continue
        flow.server_queue_latencies.append(at - parse_time(d["created_at"]))
        if at > last_wall:
            last_wall, last_id = at, d["id"]
        if at > flow.last_202_wall:
            flow.backlog_at_last_202 += 1
    flow.server_last_delivered = flow.first_202 + (last_wall - flow.first_202_wall)
    flow.last_outside_tail = bool(last_id) and last_id not in tail_ids
    flow.done = max(flow.tail_done, flow.server_last_delivered)

    if route == "remote":
        after = smarthost.handler.snapshot()
        flow.remote_transactions = after[0] - remote_before[0]
        flow.remote_recipients = after[1] - remote_before[1]
        copies = smarthost.handler.copies
        keys = [
            (mid, recipients[i % len(recipients)].lower())
            for i, mid in enumerate(message_ids)
            if mid is not None
        ]
        flow.remote_missing = sum(1 for k in keys if copies[k] == 0)
        flow.remote_duplicates = sum(copies[k] - 1 for k in keys if copies[k] > 1)
        flow.remote_exactly_once = (
            flow.remote_missing == 0
            and flow.remote_duplicates == 0
            and flow.remote_recipients == count
            and len(keys) == count
        )
    return flow


# --------------------------------------------------------------------------- idle latency


@dataclass(slots=True)
class Idle:
    route: str
    iterations: int
    latencies: list[float] = field(default_factory=list)  # 202 read -> wait response read
    send_latencies: list[float] = field(default_factory=list)  # request -> 202 read
    server_latencies: list[float] = field(default_factory=list)  # created_at -> delivered event
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    remote_count_ok: bool | None = None

    def note_error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)

    def as_json(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "iterations": self.iterations,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "latency_202_to_delivered": summarize(self.latencies).as_json(),
            "send_request_to_202": summarize(self.send_latencies).as_json(),
            "server_created_to_delivered": summarize(self.server_latencies).as_json(),
            "remote_count_ok": self.remote_count_ok,
        }


async def run_idle(
    server: BenchServer, smarthost: Smarthost, *, route: str, recipient: str, iterations: int
) -> Idle:
    """Sequential sends; after each 202 a wait for ``delivered`` (the queue is idle)."""
    idle = Idle(route=route, iterations=iterations)
    tag = uuid.uuid4().hex[:8]
    remote_before = smarthost.handler.snapshot()
    async with new_client(server.base_url, 2) as http:
        sender_inbox = await create_inbox(http, f"idle-{route}-{tag}")
        deadline = time.perf_counter() + PHASE_TIMEOUT
        async with asyncio.timeout(PHASE_TIMEOUT):
            for i in range(iterations):
                t0 = time.perf_counter()
                try:
                    body = await send(http, sender_inbox["id"], recipient, f"Idle {tag} {i}", tag)
                    t1 = time.perf_counter()
                    delivery, t2 = await wait_delivered(http, body["deliveries"][0]["id"], deadline)
                except (RuntimeError, httpx.HTTPError) as exc:
                    idle.note_error(f"{i}: {type(exc).__name__}: {exc}")
                    continue
                idle.send_latencies.append(t1 - t0)
                idle.latencies.append(t2 - t1)
                at = delivered_at(delivery)
                if at is not None:
                    idle.server_latencies.append(at - parse_time(delivery["created_at"]))
    if route == "remote":
        after = smarthost.handler.snapshot()
        idle.remote_count_ok = after[1] - remote_before[1] == len(idle.latencies)
    return idle


async def warm_up(server: BenchServer, recipients: dict[str, str]) -> None:
    """A few sequential sends per route (connections, first-query costs); not counted."""
    async with new_client(server.base_url, 2) as http:
        inbox = await create_inbox(http, f"warmup-{uuid.uuid4().hex[:8]}")
        deadline = time.perf_counter() + PHASE_TIMEOUT
        for rcpt in recipients.values():
            for i in range(WARMUP_SENDS):
                body = await send(http, inbox["id"], rcpt, f"Warm-up {i}", "warmup")
                await wait_delivered(http, body["deliveries"][0]["id"], deadline)


# --------------------------------------------------------------------------- per store


def reproduce_command(args: argparse.Namespace, store: str) -> str:
    parts = [".venv/bin/python bench/delivery.py", f"--store {store}"]
    if args.quick:
        parts.append("--quick")
    if args.worker_batch is not None:
        parts.append(f"--worker-batch {args.worker_batch}")
    if args.worker_concurrency is not None:
        parts.append(f"--worker-concurrency {args.worker_concurrency}")
    if args.senders != SENDERS:
        parts.append(f"--senders {args.senders}")
    return " ".join(parts)


def worker_env(args: argparse.Namespace) -> dict[str, str]:
    env: dict[str, str] = {}
    if args.worker_batch is not None:
        env["MAILHARNESS_WORKER_BATCH"] = str(args.worker_batch)
    if args.worker_concurrency is not None:
        env["MAILHARNESS_WORKER_CONCURRENCY"] = str(args.worker_concurrency)
    return env


async def bench_store(
    server: BenchServer, host: Smarthost, counts: Counts, args: argparse.Namespace
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "store": server.store,
        "command": reproduce_command(args, server.store),
        "quick": args.quick,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_revision": git_revision(),
        "uncommitted_app_files": changed_source_files(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "worker_batch": args.worker_batch or "default (50)",
        "worker_concurrency": args.worker_concurrency or "default (20)",
        "senders": args.senders,
        "tail_waits": TAIL,
    }
    run = uuid.uuid4().hex[:6]
    async with new_client(server.base_url, 4) as http:
        local = [
            (await create_inbox(http, f"bench-{run}-{i:02d}"))["address"]
            for i in range(INBOX_COUNT)
        ]
        if any(not a.endswith("@" + HARNESS_DOMAIN) for a in local):
            raise RuntimeError(f"inboxes are not on {HARNESS_DOMAIN}: {local[:3]}")
        sample = await send(
            http, (await create_inbox(http, f"probe-{run}"))["id"], local[0], "probe", "probe"
        )
        outbound = await http.get(f"/api/v1/outbound/{sample['id']}")
        report["message_bytes"] = (
            outbound.json().get("size") if outbound.status_code == 200 else None
        )
    remote = [f"user-{i:02d}@{REMOTE_DOMAIN}" for i in range(INBOX_COUNT)]
    await warm_up(server, {"local": local[0], "remote": remote[0]})

    flows: list[Flow] = []
    for route, rcpts in (("local", local), ("remote", remote)):
        flow = await run_flow(
            server,
            host,
            route=route,
            recipients=rcpts,
            count=counts.throughput,
            senders=args.senders,
        )
        flows.append(flow)
        out(
            f"  [{server.store}] {route:<6} x{counts.throughput}: enqueue {flow.enqueue_rate:7.1f}/s, "
            f"end-to-end {flow.e2e_rate:7.1f} deliveries/s"
        )
    idles: list[Idle] = []
    for route, rcpt in (("local", local[1]), ("remote", remote[1])):
        idle = await run_idle(server, host, route=route, recipient=rcpt, iterations=counts.idle)
        idles.append(idle)
        out(
            f"  [{server.store}] idle {route:<6} 202->delivered p50 "
            f"{summarize(idle.latencies).p50:.2f} ms"
        )
    report["throughput"] = [f.as_json() for f in flows]
    report["idle"] = [i.as_json() for i in idles]
    report["smarthost_total"] = {
        "transactions": host.handler.transactions,
        "recipients": host.handler.recipients,
    }
    report["targets"] = evaluate_targets(report)
    return report


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[tuple[str, float, str, float]] = []
    local = next(f for f in report["throughput"] if f["route"] == "local")
    if report["store"] == "sqlite":
        checks.append(
            ("local deliveries/s e2e", local["e2e_deliveries_per_s"], ">=", TARGET_LOCAL_RATE)
        )
    for idle in report["idle"]:
        p50 = idle["latency_202_to_delivered"]["p50_ms"]
        checks.append((f"idle {idle['route']} p50 ms", p50, "<", TARGET_IDLE_P50_MS))
    return [
        {
            "name": name,
            "value": value,
            "op": op,
            "target": target,
            "passed": value >= target if op == ">=" else value < target,
        }
        for name, value, op, target in checks
    ]


# --------------------------------------------------------------------------- output


def print_report(report: dict[str, Any]) -> None:
    out()
    out(
        f"== mailharness delivery bench: store={report['store']}"
        f"{' (QUICK)' if report['quick'] else ''} =="
    )
    out(f"command: {report['command']}")
    out(
        f"git {report['git_revision']}, python {report['python']}, {report['cpus']} CPUs "
        f"(client, smarthost and server share them); message {report['message_bytes']} B; "
        f"worker batch {report['worker_batch']}, concurrency {report['worker_concurrency']}"
    )
    dirty = report["uncommitted_app_files"]
    if dirty:
        out(f"uncommitted changes under app/ or migrations/ (measured as is): {', '.join(dirty)}")
    load = report["load_average_at_start"]
    busy = " -- the machine was busy: other processes share the CPUs" if load[0] >= 1.0 else ""
    out(f"load average at start: {load[0]} {load[1]} {load[2]} (1, 5, 15 min){busy}")
    out()
    out(
        f"Throughput ({report['senders']} HTTP clients sending back-to-back, one recipient per "
        f"send, 50 recipients; end-to-end = first 202 -> last delivered)"
    )
    out(
        f"{'route':<6} {'sent':>5} {'dlvd':>5} {'err':>3} | {'enqueue':>8} {'e2e':>8} | "
        f"{'e2e':>6} {'drain':>6} {'backlog':>7} | {'202 p50':>7} {'p99':>7} | "
        f"{'queue p50':>9} {'p99':>7} | {'srv CPU':>7} {'cli CPU':>7}"
    )
    out(
        f"{'':<6} {'':>5} {'':>5} {'':>3} | {'/s':>8} {'dlv/s':>8} | "
        f"{'s':>6} {'s':>6} {'@last202':>7} | {'ms':>7} {'ms':>7} | "
        f"{'ms':>9} {'ms':>7} | {'ms/dlv':>7} {'ms/dlv':>7}"
    )
    for f in report["throughput"]:
        s, q = f["send_202"], f["server_created_to_delivered"]
        out(
            f"{f['route']:<6} {f['accepted']:>5} {f['delivered']:>5} {f['errors']:>3} | "
            f"{f['enqueue_per_s']:>8.1f} {f['e2e_deliveries_per_s']:>8.1f} | "
            f"{f['e2e_s']:>6.2f} {f['drain_after_last_202_s']:>6.2f} "
            f"{f['backlog_at_last_202']:>7} | {s['p50_ms']:>7.2f} {s['p99_ms']:>7.2f} | "
            f"{q['p50_ms']:>9.1f} {q['p99_ms']:>7.1f} | "
            f"{f['server_cpu_ms_per_delivery']:>7.2f} {f['client_cpu_ms_per_delivery']:>7.2f}"
        )
    for f in report["throughput"]:
        if f["last_delivered_outside_tail"]:
            out(
                f"  note: {f['route']}: the last delivery was not one of the tail waits; "
                "its server timestamp was used"
            )
        if f["route"] == "remote":
            out(
                f"  smarthost: {f['remote_recipients']} recipients in {f['remote_transactions']} "
                f"transactions for {f['accepted']} sends; missing {f['remote_missing']}, "
                f"duplicates {f['remote_duplicates']} -> exactly once: "
                f"{'YES' if f['remote_exactly_once'] else 'NO'}"
            )
    out()
    out("Idle latency (sequential; 202 read -> /wait?state=delivered response read)")
    out(
        f"{'route':<6} {'n':>4} {'err':>3} | {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} | "
        f"{'send->202 p50':>13} | {'server created->delivered p50':>29} {'p99':>6}"
    )
    for i in report["idle"]:
        lat, snd, srv = (
            i["latency_202_to_delivered"],
            i["send_request_to_202"],
            i["server_created_to_delivered"],
        )
        out(
            f"{i['route']:<6} {lat['n']:>4} {i['errors']:>3} | {lat['p50_ms']:>7.2f} "
            f"{lat['p95_ms']:>7.2f} {lat['p99_ms']:>7.2f} {lat['max_ms']:>7.2f} | "
            f"{snd['p50_ms']:>10.2f} ms | {srv['p50_ms']:>26.2f} ms {srv['p99_ms']:>6.2f}"
        )
    out()
    out("Targets")
    for t in report["targets"]:
        verdict = "PASS" if t["passed"] else "FAIL"
        out(f"  {t['name']:<24} {t['value']:>9} {t['op']:>2} {t['target']:<7} {verdict}")
    problems = report.get("server_log", [])
    if problems:
        out()
        out(f"Server log (WARNING and above, first {len(problems)} lines):")
        for line in problems:
            out(f"  {line}")
    errors = [s for part in (*report["throughput"], *report["idle"]) for s in part["error_samples"]]
    if errors:
        out("Client error samples:")
        for line in errors[:10]:
            out(f"  {line}")


def write_json(report: dict[str, Any]) -> str:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if report["quick"] else ""  # a smoke test never overwrites a full run
    path = RESULTS_DIR / f"delivery-{report['store']}{suffix}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return str(path.relative_to(RESULTS_DIR.parent.parent))


async def run_store_async(store: str, args: argparse.Namespace) -> dict[str, Any]:
    counts = QUICK if args.quick else FULL
    async with smarthost() as host:
        env = {"MAILHARNESS_RELAY_URL": f"smtp://{LOOPBACK}:{host.port}", **worker_env(args)}
        server = DeliveryBenchServer(store, extra_env=env)
        # Start-up blocks (subprocess + /healthz); keep the smarthost's loop free meanwhile.
        await asyncio.to_thread(server.__enter__)
        try:
            started = time.perf_counter()
            report = await bench_store(server, host, counts, args)
            report["duration_s"] = round(time.perf_counter() - started, 1)
            report["smarthost_port"] = host.port
            await asyncio.to_thread(server.stop)
            report["server_exit_code"] = server.exit_code
            report["server_log"] = server.log_problems()
        finally:
            await asyncio.to_thread(server.__exit__, None, None, None)
    return report


def run_store(store: str, args: argparse.Namespace) -> dict[str, Any]:
    out(f"-- {store}: starting mailharness serve")
    report = asyncio.run(run_store_async(store, args))
    print_report(report)
    out(f"results: {write_json(report)} (run took {report['duration_s']} s)")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--store", choices=[*STORES, "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="small counts (smoke test)")
    parser.add_argument("--senders", type=int, default=SENDERS, help="concurrent HTTP clients")
    parser.add_argument("--worker-batch", type=int, default=None, help="MAILHARNESS_WORKER_BATCH")
    parser.add_argument(
        "--worker-concurrency", type=int, default=None, help="MAILHARNESS_WORKER_CONCURRENCY"
    )
    args = parser.parse_args(argv)
    stores = list(STORES) if args.store == "both" else [args.store]
    failed = False
    for store in stores:
        try:
            report = run_store(store, args)
        except Exception as exc:  # one store failing should not hide the other's figures
            out(f"!! {store}: bench failed: {type(exc).__name__}: {exc}")
            failed = True
            continue
        broken = [
            p["route"]
            for p in (*report["throughput"], *report["idle"])
            if p["errors"] or p.get("remote_exactly_once") is False
        ]
        missed = [t["name"] for t in report["targets"] if not t["passed"]]
        if broken:
            out(f"-- {store}: errors or lost/duplicated mail in: {', '.join(broken)}")
            failed = True
        out(f"-- {store}: targets missed: {', '.join(missed)}" if missed else f"-- {store}: ok")
    # Exit 1 only when a run broke; missed targets are reported, not an error.
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
