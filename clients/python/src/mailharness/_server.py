"""Start and stop a throwaway ``mailharness serve`` process (``pytest --mailharness-start``).

The server runs on free loopback ports with its own temporary data directory
(so its SQLite file is fresh; ``MAILHARNESS_DATABASE_URL`` and every other
``MAILHARNESS_*`` setting in the environment still apply). Its log goes to
``<data_dir>/serve.log``. ``start()`` returns once ``/readyz`` answers 200
(store reachable, SMTP listening), checking at growing intervals for at most
``timeout`` seconds and failing at once, with the log's tail, if the process
exits. ``stop()`` sends SIGTERM and waits, then kills.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from mailharness._errors import MailharnessError


class ServerStartError(MailharnessError):
    """The server process could not be started or did not become ready."""


def find_command() -> list[str]:
    """The ``mailharness`` executable next to this Python, else on PATH."""
    here = Path(sys.executable).parent / "mailharness"
    if here.is_file() and os.access(here, os.X_OK):
        return [str(here)]
    found = shutil.which("mailharness")
    if found:
        return [found]
    raise ServerStartError(
        "--mailharness-start needs the server: `pip install mailharness` (the `mailharness` "
        "command was not found next to this Python or on PATH)"
    )


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    def __init__(
        self,
        *,
        data_dir: Path,
        command: Sequence[str] | None = None,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.command = list(command) if command else find_command()
        self.host = host
        self.env = dict(os.environ if env is None else env)
        self.http_port = 0
        self.smtp_port = 0
        self.log_path = data_dir / "serve.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.http_port, self.smtp_port = free_port(self.host), free_port(self.host)
        env = {**self.env, "MAILHARNESS_DATA_DIR": str(self.data_dir)}
        args = [
            *self.command,
            "serve",
            "--host",
            self.host,
            "--http-port",
            str(self.http_port),
            "--smtp-port",
            str(self.smtp_port),
        ]
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        delay = 0.05
        with httpx.Client(base_url=self.url, timeout=2.0) as http:
            while True:
                if self._proc.poll() is not None:
                    raise ServerStartError(
                        f"`{' '.join(self.command)} serve` exited with {self._proc.returncode}:\n"
                        + self.log_tail()
                    )
                try:
                    if http.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                if time.monotonic() + delay > deadline:
                    self.stop()
                    raise ServerStartError(
                        f"mailharness serve was not ready within {timeout:g} s:\n" + self.log_tail()
                    )
                time.sleep(delay)  # process start-up only; bounded by the deadline
                delay = min(delay * 1.5, 0.5)

    def stop(self, timeout: float = 20.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
