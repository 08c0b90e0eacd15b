"""Shared bench plumbing: a throwaway ``mailharness serve`` per store, stats, /proc readings.

SUMMARY
    ``BenchServer`` starts ``mailharness serve`` on free loopback ports with a
    fresh store (a temporary data dir for SQLite, a temporary database for
    Postgres), waits for ``/healthz``, and stops it with SIGTERM (SIGKILL only
    after a bounded grace). ``summarize`` turns latency samples into
    p50/p95/p99; ``proc_memory`` reads VmHWM/VmRSS of a pid.

    Everything here talks to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS_DIR = ROOT / "bench" / "results"
LOOPBACK = "127.0.0.1"
PG_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432"
STORES = ("sqlite", "postgres")

HEALTH_TIMEOUT = 60.0
STOP_GRACE = 30.0
PSQL_TIMEOUT = 60.0


def out(line: str = "") -> None:
    """One line to stdout (the bench's only output channel besides the JSON file)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def free_port() -> int:
    """A TCP port on the loopback that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of an already sorted list."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


@dataclass(frozen=True, slots=True)
class Latency:
    """Latency percentiles in milliseconds."""

    n: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "p50_ms": round(self.p50, 3),
            "p95_ms": round(self.p95, 3),
            "p99_ms": round(self.p99, 3),
            "max_ms": round(self.max, 3),
            "mean_ms": round(self.mean, 3),
        }


def summarize(seconds: list[float]) -> Latency:
    """Percentiles (ms) of latency samples given in seconds."""
    ms = sorted(s * 1000.0 for s in seconds)
    if not ms:
        return Latency(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    return Latency(
        n=len(ms),
        p50=percentile(ms, 50),
        p95=percentile(ms, 95),
        p99=percentile(ms, 99),
        max=ms[-1],
        mean=sum(ms) / len(ms),
    )


def proc_memory(pid: int) -> dict[str, float]:
    """VmHWM (peak RSS) and VmRSS of ``pid`` in MiB, from /proc/<pid>/status."""
    wanted = {"VmHWM", "VmRSS"}
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in wanted:
            kib = int(value.split()[0])  # the kernel reports "NNN kB"
            found[key] = kib / 1024.0
    return found


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds consumed so far by ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def git_revision() -> str | None:
    """HEAD of the checkout (read-only), or None outside git."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", "-h", LOOPBACK, "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        capture_output=True,
        text=True,
        timeout=PSQL_TIMEOUT,
        check=True,
    )


def _psql_value(sql: str) -> str:
    done = subprocess.run(
        ["psql", "-h", LOOPBACK, "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc", sql],
        capture_output=True,
        text=True,
        timeout=PSQL_TIMEOUT,
        check=True,
    )
    return done.stdout.strip()


@dataclass
class BenchServer:
    """One ``mailharness serve`` subprocess on a fresh store; use as a context manager."""

    store: str
    http_port: int = 0
    smtp_port: int = 0
    pid: int = 0
    work_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mh-bench-")))
    database: str | None = None
    _proc: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "server.log"

    def __enter__(self) -> BenchServer:
        try:
            self._start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._cleanup()

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHARNESS_")}
        env["MAILHARNESS_DATA_DIR"] = str(self.work_dir)
        env["MAILHARNESS_LOG_LEVEL"] = "WARNING"
        if self.store == "postgres":
            self.database = f"mh_bench_{os.getpid()}_{int(time.time())}"
            _psql(f'CREATE DATABASE "{self.database}"')
            env["MAILHARNESS_DATABASE_URL"] = f"{PG_ADMIN_URL}/{self.database}"
        elif self.store != "sqlite":
            raise ValueError(f"unknown store {self.store!r}")
        return env

    def _start(self) -> None:
        env = self._environment()
        self.http_port, self.smtp_port = free_port(), free_port()
        while self.smtp_port == self.http_port:  # bounded in practice: ports are distinct
            self.smtp_port = free_port()
        cmd = [
            str(BIN / "mailharness"),
            "serve",
            "--host",
            LOOPBACK,
            "--http-port",
            str(self.http_port),
            "--smtp-port",
            str(self.smtp_port),
        ]
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                cmd, env=env, cwd=self.work_dir, stdout=log, stderr=subprocess.STDOUT
            )
        self.pid = self._proc.pid
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + HEALTH_TIMEOUT
        with httpx.Client(base_url=self.base_url, timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    raise RuntimeError(
                        f"mailharness exited with {self._proc.returncode} during start-up:\n"
                        + self.log_tail()
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/healthz").status_code == 200:
                        return
                time.sleep(0.1)
        raise RuntimeError(f"/healthz not ready after {HEALTH_TIMEOUT:.0f}s:\n{self.log_tail()}")

    def store_bytes(self) -> int | None:
        """Size of the store on disk: the SQLite file + WAL, or pg_database_size."""
        if self.store == "sqlite":
            files = self.work_dir.glob("mailharness.db*")
            return sum(p.stat().st_size for p in files)
        if self.database is None:
            return None
        try:
            return int(_psql_value(f"SELECT pg_database_size('{self.database}')"))
        except (OSError, subprocess.SubprocessError, ValueError):
            return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def log_problems(self, limit: int = 20) -> list[str]:
        """Server log lines at WARNING or above (the bench runs it at WARNING)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if line.strip()][:limit]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; idempotent."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            if proc is not None:
                self.exit_code = proc.returncode
            return
        proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            self.exit_code = proc.wait(timeout=STOP_GRACE)

    def _cleanup(self) -> None:
        try:
            self.stop()
        finally:
            if self.database is not None:
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    _psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            shutil.rmtree(self.work_dir, ignore_errors=True)


# --------------------------------------------------------------------------- multi-process helpers
# (added for bench/scale.py; nothing above depends on them)

_PG_CLIENT_BACKEND = re.compile(r"\S+\(\d+\)|\[local\]")  # "host(port)" of a client session


def create_pg_database(prefix: str = "mh_bench") -> str:
    """CREATE a uniquely named database on the bench Postgres and return its name."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    _psql(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(name: str) -> None:
    """DROP the database (FORCE: closes leftover sessions); errors are swallowed."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all CPUs, from /proc/stat.

    busy = user + nice + system + irq + softirq + steal; total adds idle and iowait.
    Over an interval, busy / elapsed is the machine's load in cores (2.0 = both of 2 cores).
    """
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in fields)
    tick = os.sysconf("SC_CLK_TCK")
    busy = user + nice + system + irq + softirq + steal
    return busy / tick, (busy + idle + iowait) / tick


def postgres_cpu_seconds(database: str) -> dict[int, float]:
    """CPU seconds so far of each local Postgres process that works for ``database``.

    That is the client backends connected to ``database`` plus Postgres' own
    background processes (postmaster, WAL writer, checkpointer, autovacuum, ...),
    which are shared with any other database in use. Backends of other
    databases are left out. Processes are found by scanning /proc (the server
    must run on this machine); a process that ends between two readings loses
    its share, so take readings while the pools are warm.
    """
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            pid = int(entry.name)
            if f" {database} " not in cmdline and _PG_CLIENT_BACKEND.search(cmdline):
                continue  # a session of another database
            found[pid] = proc_cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
    return found


def changed_source_files() -> list[str] | None:
    """Files under app/ and migrations/ that differ from HEAD (read-only git), or None."""
    found: list[str] = []
    for cmd in (
        ["git", "diff-index", "--name-only", "HEAD", "--", "app", "migrations"],
        ["git", "ls-files", "--others", "--exclude-standard", "--", "app", "migrations"],
    ):
        try:
            done = subprocess.run(
                cmd, cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        found.extend(line for line in done.stdout.splitlines() if line.strip())
    return sorted(set(found))
