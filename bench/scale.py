"""Scale bench: SMTP ingest with 1 vs 2 ``mailharness serve`` processes on one Postgres.

WHAT IT MEASURES
    1. Throughput, 1 process: a fresh Postgres database and one ``serve``;
       2 KB messages (the multipart/alternative template of bench/ingest.py)
       over 10 and 50 SMTP connections, each keeping its session and sending
       back-to-back (MAIL/RCPT/DATA), to 50 pre-created inboxes. Each cell is
       run ``runs`` times; msgs/s is the median run (wall clock from the first
       MAIL to the last 250), the spread is shown next to it.
    2. Throughput, 2 processes: a fresh database again and two ``serve``
       processes on it (the second is started once the first is healthy, so
       the start-up migrations never race). The same total connections and
       messages, split evenly: connection i talks to process i % 2. For
       reference, 1 process is also measured at 5 and 25 connections (one
       process's share of the 2-process cells; not part of the ratio).
       Reported: msgs/s, the ratio 2p/1p per connection count, and per
       message the CPU of the servers (summed over processes), of Postgres
       (this database's sessions + Postgres' own background processes) and of
       this client, all from /proc; plus the machine's busy CPU
       (/proc/stat) over the cell, so the share used by anything else on the
       machine is visible ("other").
    3. Cross-process wait wake-up (2 processes): ``runs`` x ``iterations``
       times, create an inbox, park ``GET /wait?count=1&subject=<unique>`` on
       process A, give it 20 ms to arrive, send the mail over SMTP to process
       B, and time B's 250 reply -> A's fully read response (the event travels
       B -> pg_notify -> A's LISTEN connection). Interleaved with the same
       thing on A alone (wait and mail on A) as the same-process reference.
    A warm-up (a few hundred messages, not counted) opens the servers' pools
    before the first cell. Client, servers and Postgres share the machine.

HOW TO RUN
    .venv/bin/python bench/scale.py             # full counts (about 2 min here)
    .venv/bin/python bench/scale.py --quick     # small counts, a smoke test
    Postgres: 127.0.0.1:5432, user postgres, trust auth, ``psql`` on PATH.
    Results: a table on stdout and bench/results/scale-postgres.json
    (scale-postgres-quick.json with --quick).
    Exit status 1 only when a run broke; missed targets are reported, not fatal.

TARGETS
    2 processes >= 1.6x the msgs/s of 1 process (at 10 and at 50 connections);
    cross-process wait wake-up p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
import httpx
from _common import (
    PG_ADMIN_URL,
    RESULTS_DIR,
    BenchServer,
    changed_source_files,
    create_pg_database,
    drop_pg_database,
    git_revision,
    machine_cpu_seconds,
    out,
    postgres_cpu_seconds,
    proc_cpu_seconds,
    summarize,
)
from ingest import SIZES, _message_template, create_inbox, render, send_one, smtp_connect, smtp_quit

STORE = "postgres"
INBOX_COUNT = 50
CONNECTIONS = (10, 50)
# 1 process only, for reference: each process's share of the 2-process cells (not in the ratio).
REFERENCE_CONNECTIONS = (5, 25)
PROCESS_COUNTS = (1, 2)
HTTP_TIMEOUT = 30.0
CELL_TIMEOUT = 120.0  # one throughput run, all connections
WAKE_PHASE_TIMEOUT = 180.0  # all wake-up iterations together
WAIT_SERVER_TIMEOUT = 10  # the ?timeout= of each /wait
WAIT_HEAD_START = 0.020  # lets the /wait request reach the server before the mail is sent
MAX_RECONNECTS = 5  # per connection and run
MAX_WAKE_ERRORS = 20  # give up the wake-up phase after this many failed iterations
WARM_UP_PER_CONNECTION = 20
WARM_UP_CONNECTIONS = 10  # per process

TARGET_RATIO = 1.6
TARGET_WAKE_P99_MS = 50.0
MACHINE_SATURATED = 0.9  # busy share of all cores above which the machine is "the limit"
PROCESS_SATURATED = 0.85  # a serve process at this share of one core is CPU-bound


@dataclass(frozen=True, slots=True)
class Counts:
    per_run: int  # messages per throughput run
    runs: int  # runs per (processes, connections) cell
    wake_iterations: int  # per kind (cross-process and same-process)


FULL = Counts(per_run=2000, runs=3, wake_iterations=200)
QUICK = Counts(per_run=300, runs=1, wake_iterations=30)


# --------------------------------------------------------------------------- servers


@dataclass
class SharedDbServer(BenchServer):
    """``BenchServer`` on an existing Postgres database, which it neither makes nor drops."""

    shared_database: str = ""

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHARNESS_")}
        env["MAILHARNESS_DATA_DIR"] = str(self.work_dir)
        env["MAILHARNESS_LOG_LEVEL"] = "WARNING"
        env["MAILHARNESS_DATABASE_URL"] = f"{PG_ADMIN_URL}/{self.shared_database}"
        return env


@contextlib.contextmanager
def server_group(processes: int) -> Iterator[tuple[str, list[SharedDbServer]]]:
    """A fresh database and ``processes`` serves on it, started one after the other."""
    database = create_pg_database("mh_scale")
    try:
        with contextlib.ExitStack() as stack:
            servers = [
                stack.enter_context(SharedDbServer(STORE, shared_database=database))
                for _ in range(processes)
            ]
            yield database, servers
    finally:
        drop_pg_database(database)


# --------------------------------------------------------------------------- CPU readings


@dataclass(frozen=True, slots=True)
class CpuReading:
    wall: float
    servers: tuple[float, ...]
    postgres: dict[int, float]
    client: float
    machine_busy: float


def read_cpu(servers: list[SharedDbServer], database: str) -> CpuReading:
    return CpuReading(
        wall=time.perf_counter(),
        servers=tuple(proc_cpu_seconds(s.pid) for s in servers),
        postgres=postgres_cpu_seconds(database),
        client=time.process_time(),
        machine_busy=machine_cpu_seconds()[0],
    )


@dataclass(slots=True)
class CpuUse:
    """CPU seconds used over an interval, by part."""

    wall: float = 0.0
    servers: list[float] = field(default_factory=list)
    postgres: float = 0.0
    client: float = 0.0
    machine: float = 0.0

    @classmethod
    def between(cls, a: CpuReading, b: CpuReading) -> CpuUse:
        return cls(
            wall=b.wall - a.wall,
            servers=[y - x for x, y in zip(a.servers, b.servers, strict=True)],
            # A process that started in between counts from zero; one that ended is lost.
            postgres=sum(cpu - a.postgres.get(pid, 0.0) for pid, cpu in b.postgres.items()),
            client=b.client - a.client,
            machine=b.machine_busy - a.machine_busy,
        )

    def add(self, other: CpuUse) -> None:
        self.wall += other.wall
        mine = self.servers or [0.0] * len(other.servers)
        self.servers = [x + y for x, y in zip(mine, other.servers, strict=True)]
        self.postgres += other.postgres
        self.client += other.client
        self.machine += other.machine

    @property
    def ours(self) -> float:
        return sum(self.servers) + self.postgres + self.client

    @property
    def other(self) -> float:
        return max(0.0, self.machine - self.ours)

    def as_json(self, messages: int) -> dict[str, Any]:
        def per_msg(seconds: float) -> float:
            return round(seconds * 1000 / messages, 3) if messages else 0.0

        def cores(seconds: float) -> float:
            return round(seconds / self.wall, 3) if self.wall > 0 else 0.0

        return {
            "wall_s": round(self.wall, 3),
            "ms_per_msg": {
                "servers": per_msg(sum(self.servers)),
                "per_server": [per_msg(s) for s in self.servers],
                "postgres": per_msg(self.postgres),
                "client": per_msg(self.client),
                "all_of_ours": per_msg(self.ours),
            },
            "cores_busy": {
                "servers": cores(sum(self.servers)),
                "per_server": [cores(s) for s in self.servers],
                "postgres": cores(self.postgres),
                "client": cores(self.client),
                "other": cores(self.other),
                "machine": cores(self.machine),
            },
        }


# --------------------------------------------------------------------------- throughput


@dataclass(slots=True)
class Run:
    accepted: int = 0
    elapsed: float = 0.0
    per_process_accepted: list[int] = field(default_factory=list)
    per_process_elapsed: list[float] = field(default_factory=list)  # start -> its last 250

    @property
    def rate(self) -> float:
        return self.accepted / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(slots=True)
class Cell:
    processes: int
    connections: int
    per_run: int
    message_bytes: int
    runs: list[Run] = field(default_factory=list)
    errors: int = 0
    reconnects: int = 0
    cpu: CpuUse = field(default_factory=CpuUse)
    data_latencies: list[float] = field(default_factory=list)
    txn_latencies: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(r.accepted for r in self.runs)

    @property
    def rate(self) -> float:
        """The median run's msgs/s."""
        return statistics.median(r.rate for r in self.runs) if self.runs else 0.0

    def note_error(self, exc: BaseException) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{type(exc).__name__}: {exc}")

    def as_json(self) -> dict[str, Any]:
        return {
            "processes": self.processes,
            "connections": self.connections,
            "connections_per_process": self.connections // self.processes,
            "messages_per_run": self.per_run,
            "message_bytes": self.message_bytes,
            "accepted": self.accepted,
            "errors": self.errors,
            "reconnects": self.reconnects,
            "msgs_per_s": round(self.rate, 1),
            "runs": [
                {
                    "accepted": r.accepted,
                    "elapsed_s": round(r.elapsed, 3),
                    "msgs_per_s": round(r.rate, 1),
                    "per_process_accepted": r.per_process_accepted,
                    "per_process_elapsed_s": [round(e, 3) for e in r.per_process_elapsed],
                }
                for r in self.runs
            ],
            "cpu": self.cpu.as_json(self.accepted),
            "data_reply": summarize(self.data_latencies).as_json(),
            "transaction": summarize(self.txn_latencies).as_json(),
            "error_samples": self.error_samples,
        }


async def one_run(
    cell: Cell,
    servers: list[SharedDbServer],
    *,
    template: bytes,
    count: int,
    recipients: list[str],
    record: bool = True,
) -> Run:
    """``count`` messages over ``cell.connections`` sessions; connection i -> server i % P."""
    connections, procs = cell.connections, len(servers)
    shares = [
        count // connections + (1 if i < count % connections else 0) for i in range(connections)
    ]
    ports = [servers[i % procs].smtp_port for i in range(connections)]
    clients = await asyncio.gather(*(smtp_connect(port) for port in ports))
    tag = uuid.uuid4().hex[:8]
    run = Run(per_process_accepted=[0] * procs, per_process_elapsed=[0.0] * procs)
    started = 0.0

    async def worker(index: int, client: aiosmtplib.SMTP) -> None:
        reconnects = 0
        proc = index % procs
        try:
            for n in range(shares[index]):
                rcpt = recipients[(index + n * connections) % len(recipients)]
                message = render(template, to=rcpt, subject=f"Order {tag}-{index}-{n} has shipped")
                try:
                    sent = await send_one(client, rcpt, message)
                except aiosmtplib.SMTPServerDisconnected as exc:
                    cell.note_error(exc)
                    if reconnects >= MAX_RECONNECTS:
                        return
                    reconnects += 1
                    cell.reconnects += 1
                    client.close()
                    client = await smtp_connect(ports[index])
                    continue
                except aiosmtplib.SMTPException as exc:
                    cell.note_error(exc)
                    await client.rset()
                    continue
                run.accepted += 1
                run.per_process_accepted[proc] += 1
                run.per_process_elapsed[proc] = max(
                    run.per_process_elapsed[proc], sent.done_at - started
                )
                if record:
                    cell.data_latencies.append(sent.data_latency)
                    cell.txn_latencies.append(sent.txn_latency)
        finally:
            await smtp_quit(client)

    started = time.perf_counter()
    async with asyncio.timeout(CELL_TIMEOUT):
        await asyncio.gather(*(worker(i, c) for i, c in enumerate(clients)))
    run.elapsed = time.perf_counter() - started
    return run


async def measure_cell(
    servers: list[SharedDbServer],
    database: str,
    *,
    template: bytes,
    connections: int,
    counts: Counts,
    recipients: list[str],
) -> Cell:
    cell = Cell(
        processes=len(servers),
        connections=connections,
        per_run=counts.per_run,
        message_bytes=len(template),
    )
    for _ in range(counts.runs):
        before = read_cpu(servers, database)
        run = await one_run(
            cell, servers, template=template, count=counts.per_run, recipients=recipients
        )
        cell.cpu.add(CpuUse.between(before, read_cpu(servers, database)))
        cell.runs.append(run)
    return cell


async def warm_up(servers: list[SharedDbServer], template: bytes, recipients: list[str]) -> None:
    """Open every server's DB pool and SMTP paths; nothing is recorded."""
    connections = WARM_UP_CONNECTIONS * len(servers)
    scratch = Cell(processes=len(servers), connections=connections, per_run=0, message_bytes=0)
    await one_run(
        scratch,
        servers,
        template=template,
        count=connections * WARM_UP_PER_CONNECTION,
        recipients=recipients,
        record=False,
    )
    if scratch.errors:
        raise RuntimeError(f"warm-up failed: {scratch.error_samples}")


# --------------------------------------------------------------------------- wait wake-up


@dataclass(slots=True)
class WakeUps:
    kind: str
    iterations: int = 0
    latencies: list[float] = field(default_factory=list)
    early: int = 0  # the wait's response was read before the 250 (latency counted as 0)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def note_error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "iterations": self.iterations,
            "head_start_ms": WAIT_HEAD_START * 1000,
            "early_responses": self.early,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "latency": summarize(self.latencies).as_json(),
        }


async def wake_once(
    result: WakeUps,
    wait_http: httpx.AsyncClient,
    smtp: aiosmtplib.SMTP,
    template: bytes,
    local_part: str,
) -> bool:
    """One iteration; False when the SMTP session broke and must be reopened."""
    result.iterations += 1
    inbox = await create_inbox(wait_http, local_part)
    subject = f"Wake {local_part} {uuid.uuid4().hex}"

    async def pending_wait() -> tuple[httpx.Response, float]:
        response = await wait_http.get(
            f"/api/v1/inboxes/{inbox['id']}/wait",
            params={"timeout": WAIT_SERVER_TIMEOUT, "count": 1, "subject": subject},
        )
        return response, time.perf_counter()

    waiter = asyncio.create_task(pending_wait())
    await asyncio.sleep(WAIT_HEAD_START)
    if waiter.done():
        result.note_error(f"wait finished before the mail was sent: {waiter!r}")
        return True
    try:
        sent = await send_one(
            smtp, inbox["address"], render(template, to=inbox["address"], subject=subject)
        )
    except aiosmtplib.SMTPException as exc:
        waiter.cancel()
        result.note_error(f"smtp: {type(exc).__name__}: {exc}")
        return not isinstance(exc, aiosmtplib.SMTPServerDisconnected)
    response, received_at = await waiter
    items = response.json().get("items", []) if response.status_code == 200 else []
    if len(items) != 1 or items[0].get("subject") != subject:
        result.note_error(f"wait answered {response.status_code}: {response.text[:200]}")
        return True
    latency = received_at - sent.done_at
    if latency < 0:
        result.early += 1
        latency = 0.0
    result.latencies.append(latency)
    return True


async def run_wakeups(
    a: SharedDbServer, b: SharedDbServer, http_a: httpx.AsyncClient, iterations: int
) -> tuple[WakeUps, WakeUps]:
    """Alternate cross-process (wait on A, mail to B) and same-process (all on A) iterations."""
    cross, same = WakeUps("wait on A, SMTP to B"), WakeUps("wait on A, SMTP to A")
    template = _message_template(SIZES["2KB"], attachment=False)
    run = uuid.uuid4().hex[:8]
    smtp = {"B": await smtp_connect(b.smtp_port), "A": await smtp_connect(a.smtp_port)}
    ports = {"A": a.smtp_port, "B": b.smtp_port}
    try:
        async with asyncio.timeout(WAKE_PHASE_TIMEOUT):
            for i in range(iterations):
                for key, result in (("B", cross), ("A", same)):
                    ok = await wake_once(
                        result, http_a, smtp[key], template, f"wake-{run}-{key}{i}"
                    )
                    if not ok:
                        smtp[key].close()
                        smtp[key] = await smtp_connect(ports[key])
                if cross.errors + same.errors > MAX_WAKE_ERRORS:
                    raise RuntimeError(
                        f"wake-up phase: too many errors: {cross.error_samples + same.error_samples}"
                    )
    finally:
        for client in smtp.values():
            await smtp_quit(client)
    return cross, same


# --------------------------------------------------------------------------- one configuration


def new_http(base_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    return httpx.AsyncClient(
        base_url=base_url, timeout=HTTP_TIMEOUT, trust_env=False, limits=limits
    )


async def bench_configuration(
    processes: int, database: str, servers: list[SharedDbServer], counts: Counts
) -> dict[str, Any]:
    template = _message_template(SIZES["2KB"], attachment=False)
    result: dict[str, Any] = {
        "processes": processes,
        "database": database,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    async with new_http(servers[0].base_url) as http_a:
        run = uuid.uuid4().hex[:6]
        recipients = [
            (await create_inbox(http_a, f"scale-{run}-{i:02d}"))["address"]
            for i in range(INBOX_COUNT)
        ]
        await warm_up(servers, template, recipients)
        cells = []
        connections_list = CONNECTIONS if processes > 1 else CONNECTIONS + REFERENCE_CONNECTIONS
        for connections in sorted(connections_list):
            cell = await measure_cell(
                servers,
                database,
                template=template,
                connections=connections,
                counts=counts,
                recipients=recipients,
            )
            cells.append(cell)
            spread = ", ".join(f"{r.rate:.0f}" for r in cell.runs)
            out(
                f"  [{processes}p] 2KB x{connections:<2} {cell.rate:8.1f} msgs/s (runs: {spread}); "
                f"machine busy {cell.cpu.machine / cell.cpu.wall * 100:.0f}% of 1 core"
            )
        result["throughput"] = [c.as_json() for c in cells]
        if processes >= 2:
            cross, same = await run_wakeups(servers[0], servers[1], http_a, counts.wake_iterations)
            out(
                f"  [{processes}p] wake-up p99: cross-process "
                f"{summarize(cross.latencies).p99:.2f} ms, same-process "
                f"{summarize(same.latencies).p99:.2f} ms"
            )
            result["wait_wakeup"] = {
                "cross_process": cross.as_json(),
                "same_process": same.as_json(),
            }
    return result


def run_configuration(processes: int, counts: Counts) -> dict[str, Any]:
    out(f"-- {processes} process(es): fresh database, starting mailharness serve x{processes}")
    with server_group(processes) as (database, servers):
        started = time.perf_counter()
        result = asyncio.run(bench_configuration(processes, database, servers, counts))
        result["duration_s"] = round(time.perf_counter() - started, 1)
        for server in servers:
            server.stop()
        result["server_exit_codes"] = [s.exit_code for s in servers]
        result["server_log"] = [line for s in servers for line in s.log_problems(10)]
    return result


# --------------------------------------------------------------------------- report


def reproduce_command(quick: bool) -> str:
    return ".venv/bin/python bench/scale.py" + (" --quick" if quick else "")


def cell_of(report: dict[str, Any], processes: int, connections: int) -> dict[str, Any]:
    config = next(c for c in report["configurations"] if c["processes"] == processes)
    return next(c for c in config["throughput"] if c["connections"] == connections)


def analyse(report: dict[str, Any]) -> dict[str, Any]:
    """Ratios, the CPU-bound ceiling and which resource ran out, per connection count."""
    cpus = report["cpus"] or 1
    scaling = []
    for conns in CONNECTIONS:
        one, two = cell_of(report, 1, conns), cell_of(report, 2, conns)
        rate1 = one["msgs_per_s"] or math.nan
        ratio = two["msgs_per_s"] / rate1
        entry: dict[str, Any] = {"connections": conns, "ratio_2p_1p": round(ratio, 3)}
        for label, cell in (("1p", one), ("2p", two)):
            busy, per_msg = cell["cpu"]["cores_busy"], cell["cpu"]["ms_per_msg"]
            # If every core did only this workload, at this CPU cost per message:
            ceiling = cpus * 1000.0 / per_msg["all_of_ours"] if per_msg["all_of_ours"] else 0.0
            machine_limited = busy["machine"] >= MACHINE_SATURATED * cpus
            process_limited = max(busy["per_server"]) >= PROCESS_SATURATED
            entry[label] = {
                "msgs_per_s": cell["msgs_per_s"],
                "machine_busy_cores": busy["machine"],
                "ours_busy_cores": round(busy["servers"] + busy["postgres"] + busy["client"], 3),
                "other_busy_cores": busy["other"],
                "cpu_ceiling_msgs_per_s": round(ceiling, 1),
                "share_of_ceiling": round(cell["msgs_per_s"] / ceiling, 3) if ceiling else 0.0,
                "machine_limited": machine_limited,
                "process_limited": process_limited,
            }
        # The most the cores allow, relative to 1 process: at 2p's CPU cost per message,
        # and at 1p's (i.e. if a second process added no CPU per message at all).
        entry["ratio_cap_at_2p_cost"] = round(entry["2p"]["cpu_ceiling_msgs_per_s"] / rate1, 3)
        entry["ratio_cap_at_1p_cost"] = round(entry["1p"]["cpu_ceiling_msgs_per_s"] / rate1, 3)
        # The CPU per message of one process carrying the same share (conns / 2) alone.
        half = cell_of(report, 1, conns // 2)["cpu"]["ms_per_msg"]
        entry["same_share_1p_ms_per_msg"] = {
            "connections": conns // 2,
            "servers": half["servers"],
            "postgres": half["postgres"],
        }
        scaling.append(entry)
    return {"scaling": scaling}


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    checks = [
        (f"2p/1p msgs/s @ {s['connections']} conns", s["ratio_2p_1p"], ">=", TARGET_RATIO)
        for s in report["analysis"]["scaling"]
    ]
    two = next(c for c in report["configurations"] if c["processes"] == 2)
    cross = two["wait_wakeup"]["cross_process"]["latency"]
    checks.append(("cross-process wake p99 ms", cross["p99_ms"], "<", TARGET_WAKE_P99_MS))
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


def one_ms(report: dict[str, Any], processes: int, connections: int) -> str:
    ms = cell_of(report, processes, connections)["cpu"]["ms_per_msg"]
    return f"{ms['servers']:.2f}+{ms['postgres']:.2f}"


def pct(cores: float) -> str:
    return f"{cores * 100:.0f}%"


def print_report(report: dict[str, Any]) -> None:
    cpus = report["cpus"]
    out()
    out(
        f"== mailharness scale bench: 1 vs 2 serve processes on one Postgres"
        f"{' (QUICK)' if report['quick'] else ''} =="
    )
    out(f"command: {report['command']}")
    out(
        f"git {report['git_revision']}, python {report['python']}, {cpus} CPUs (client, "
        f"Postgres and the servers share them); message {report['message_bytes']} B; "
        f"{report['runs']} run(s) x {report['messages_per_run']} msgs per cell"
    )
    dirty = report["uncommitted_app_files"]
    if dirty:
        out(f"uncommitted changes under app/ or migrations/ (measured as is): {', '.join(dirty)}")
    load = report["load_average_at_start"]
    busy = " -- the machine was busy: other processes share the CPUs" if load[0] >= 1.0 else ""
    out(f"load average at start: {load[0]} {load[1]} {load[2]} (1, 5, 15 min){busy}")
    out()
    out("Throughput, 2 KB (one session per connection, back-to-back MAIL/RCPT/DATA, 50 inboxes;")
    out("connections split evenly over the processes; msgs/s = median run)")
    out(
        f"{'procs':>5} {'conns':>5} {'msgs':>6} {'err':>3} {'msgs/s':>7} {'runs min-max':>13} | "
        f"{'DATA p50':>8} {'p99':>7} | {'CPU ms/msg':>10} {'':>5} {'':>5} | "
        f"{'CPU busy, % of one core (200% = the whole machine)':<50}"
    )
    out(
        f"{'':>5} {'':>5} {'':>6} {'':>3} {'':>7} {'':>13} | {'ms':>8} {'ms':>7} | "
        f"{'servers':>10} {'pg':>5} {'cli':>5} | "
        f"{'servers':>9} {'(each)':>11} {'pg':>5} {'cli':>5} {'other':>6} {'machine':>8}"
    )
    for config in report["configurations"]:
        for c in config["throughput"]:
            rates = [r["msgs_per_s"] for r in c["runs"]]
            ms, busy, d = c["cpu"]["ms_per_msg"], c["cpu"]["cores_busy"], c["data_reply"]
            each = "/".join(pct(x) for x in busy["per_server"]) if c["processes"] > 1 else "-"
            ref = c["connections"] in REFERENCE_CONNECTIONS
            conns = f"{c['connections']}{'*' if ref else ''}"
            out(
                f"{c['processes']:>5} {conns:>5} {c['accepted']:>6} {c['errors']:>3} "
                f"{c['msgs_per_s']:>7.1f} {f'{min(rates):.0f}-{max(rates):.0f}':>13} | "
                f"{d['p50_ms']:>8.2f} {d['p99_ms']:>7.2f} | "
                f"{ms['servers']:>10.2f} {ms['postgres']:>5.2f} {ms['client']:>5.2f} | "
                f"{pct(busy['servers']):>9} {each:>11} {pct(busy['postgres']):>5} "
                f"{pct(busy['client']):>5} {pct(busy['other']):>6} {pct(busy['machine']):>8}"
            )
    out(
        f"  * 1 process at {' and '.join(map(str, REFERENCE_CONNECTIONS))} connections: "
        "the per-process share of the 2-process cells, for reference (not in the ratio)"
    )
    two = next(c for c in report["configurations"] if c["processes"] == 2)
    out()
    out("Balance, 2 processes (per run: msgs accepted by A/B, and start -> last 250 of each)")
    for c in two["throughput"]:
        runs = "; ".join(
            f"{r['per_process_accepted'][0]}/{r['per_process_accepted'][1]} in "
            f"{r['per_process_elapsed_s'][0]:.2f}/{r['per_process_elapsed_s'][1]:.2f} s"
            for r in c["runs"]
        )
        out(f"  x{c['connections']:<2} {runs}")
    out()
    out("Scaling 2p / 1p, and what limited it")
    for s in report["analysis"]["scaling"]:
        one, dos = s["1p"], s["2p"]
        out(
            f"  {s['connections']:>2} conns: {one['msgs_per_s']:.1f} -> {dos['msgs_per_s']:.1f} "
            f"msgs/s = {s['ratio_2p_1p']:.2f}x"
        )
        for label, e in (("1p", one), ("2p", dos)):
            limits = []
            if e["machine_limited"]:
                limits.append(f"machine saturated (>= {MACHINE_SATURATED:.0%} of {cpus} cores)")
            if e["process_limited"]:
                limits.append(f"a serve process >= {PROCESS_SATURATED:.0%} of one core")
            out(
                f"      {label}: machine {pct(e['machine_busy_cores'])} busy (this bench "
                f"{pct(e['ours_busy_cores'])}, other {pct(e['other_busy_cores'])}); "
                f"CPU-bound ceiling {e['cpu_ceiling_msgs_per_s']:.0f} msgs/s, reached "
                f"{e['share_of_ceiling']:.0%}; {'; '.join(limits) or 'no CPU limit reached'}"
            )
        half = s["same_share_1p_ms_per_msg"]
        out(
            f"      CPU ms/msg servers+pg: 1p x{s['connections']} "
            f"{one_ms(report, 1, s['connections'])}, 1p x{half['connections']} (one process's "
            f"share alone) {half['servers']:.2f}+{half['postgres']:.2f}, 2p x{s['connections']} "
            f"{one_ms(report, 2, s['connections'])}"
        )
        out(
            f"      most {cpus} cores allow: {s['ratio_cap_at_2p_cost']:.2f}x at the 2p CPU cost "
            f"per message, {s['ratio_cap_at_1p_cost']:.2f}x even if 2p cost no more than 1p"
        )
    out()
    out(
        f"Wait wake-up, 2 processes (250 reply -> /wait response read; "
        f"{WAIT_HEAD_START * 1000:.0f} ms head start)"
    )
    for key in ("cross_process", "same_process"):
        w = two["wait_wakeup"][key]
        lat = w["latency"]
        out(
            f"  {w['kind']:<21} n={lat['n']}/{w['iterations']} err={w['errors']} "
            f"early={w['early_responses']}: p50 {lat['p50_ms']:.2f}  p95 {lat['p95_ms']:.2f}  "
            f"p99 {lat['p99_ms']:.2f}  max {lat['max_ms']:.2f}  mean {lat['mean_ms']:.2f} ms"
        )
    out()
    out("Targets")
    for t in report["targets"]:
        verdict = "PASS" if t["passed"] else "FAIL"
        out(f"  {t['name']:<28} {t['value']:>8} {t['op']:>2} {t['target']:<6} {verdict}")
    problems = [line for config in report["configurations"] for line in config["server_log"]]
    if problems:
        out()
        out(f"Server logs (WARNING and above, first {len(problems)} lines):")
        for line in problems:
            out(f"  {line}")
    errors = [
        s
        for config in report["configurations"]
        for c in config["throughput"]
        for s in c["error_samples"]
    ]
    errors += [s for w in two["wait_wakeup"].values() for s in w["error_samples"]]
    if errors:
        out("Client error samples:")
        for line in errors[:10]:
            out(f"  {line}")


def write_json(report: dict[str, Any]) -> str:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if report["quick"] else ""  # a smoke test never overwrites a full run
    path = RESULTS_DIR / f"scale-{STORE}{suffix}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return str(path.relative_to(RESULTS_DIR.parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small counts (smoke test)")
    args = parser.parse_args(argv)
    if shutil.which("psql") is None:
        out("!! psql not found on PATH")
        return 1
    counts = QUICK if args.quick else FULL
    started = time.perf_counter()
    report: dict[str, Any] = {
        "store": STORE,
        "command": reproduce_command(args.quick),
        "quick": args.quick,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_revision": git_revision(),
        "uncommitted_app_files": changed_source_files(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "message_bytes": len(_message_template(SIZES["2KB"], attachment=False)),
        "runs": counts.runs,
        "messages_per_run": counts.per_run,
        "configurations": [],
    }
    try:
        for processes in PROCESS_COUNTS:
            report["configurations"].append(run_configuration(processes, counts))
    except (Exception, subprocess.SubprocessError) as exc:
        out(f"!! bench failed: {type(exc).__name__}: {exc}")
        return 1
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["analysis"] = analyse(report)
    report["targets"] = evaluate_targets(report)
    report["duration_s"] = round(time.perf_counter() - started, 1)
    print_report(report)
    load = report["load_average_at_end"]
    out(f"load average at end: {load[0]} {load[1]} {load[2]}")
    out(f"results: {write_json(report)} (run took {report['duration_s']} s)")
    missed = [t["name"] for t in report["targets"] if not t["passed"]]
    out(f"-- targets missed: {', '.join(missed)}" if missed else "-- ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
