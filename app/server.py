"""Runs one Mailharness process: HTTP (uvicorn) and SMTP on the same event loop.

SUMMARY
    ``Services`` starts the SMTP listener and uvicorn with a given runtime,
    and stops them in order: stop accepting SMTP and let open transactions
    finish, let HTTP requests finish (bounded), then close the store.
    ``serve(settings)`` is what ``mailharness serve`` runs: migrate, start,
    wait for SIGTERM/SIGINT, stop cleanly.

CONFIGURATION PARAMETERS
    host, http_port, smtp_port (and everything the runtime reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Generator

import uvicorn

from app.api.app import create_app
from app.config import Settings
from app.runtime import Runtime, is_loopback
from app.store.migrate import upgrade

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling (the process runner owns signals)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Name TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
    # listener says IPPROTO_TCP; without it every response on a kept-alive
    # connection waits ~40 ms for the peer's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


class Services:
    def __init__(self, runtime: Runtime, *, worker: bool = True) -> None:
        self.runtime = runtime
        self.with_worker = worker
        self.http_port = 0
        self._http: _Uvicorn | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []

    @property
    def smtp_port(self) -> int:
        return self.runtime.smtp.port

    @property
    def smtps_port(self) -> int | None:
        """The implicit-TLS port once started (None when that listener is off)."""
        return self.runtime.smtp.smtps_port

    async def start(
        self,
        *,
        http_sock: socket.socket | None = None,
        smtp_sock: socket.socket | None = None,
        smtps_sock: socket.socket | None = None,
    ) -> None:
        settings = self.runtime.settings
        await self.runtime.smtp.start(sock=smtp_sock, smtps_sock=smtps_sock)
        http_sock = http_sock or bind(settings.host, settings.http_port)
        self.http_port = http_sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.runtime),
            log_config=None,
            access_log=False,
            lifespan="off",
            # Test clients keep connections open between calls; a short keep-alive
            # makes them race the server's close of an idle connection.
            timeout_keep_alive=75,
            timeout_graceful_shutdown=SHUTDOWN_GRACE,
        )
        self._http = _Uvicorn(config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[http_sock]))
        ready = asyncio.create_task(self._http.ready.wait())
        await asyncio.wait({ready, self._http_task}, return_when=asyncio.FIRST_COMPLETED)
        if not self._http.started:
            ready.cancel()
            await self._http_task
            raise RuntimeError("the HTTP server stopped during start-up")
        log.info("http listening on %s:%d", settings.host, self.http_port)
        await self.runtime.start_bridge()
        self._background.append(asyncio.create_task(self.runtime.janitor.run()))
        self._background.append(asyncio.create_task(self.runtime.webhook_dispatcher.run()))
        if self.with_worker:
            self._background.append(asyncio.create_task(self.runtime.worker.run()))

    async def stop(self) -> None:
        self.runtime.closing.set()  # event streams end; clients resume elsewhere
        self.runtime.janitor.stop()
        self.runtime.worker.stop()
        self.runtime.webhook_dispatcher.stop()
        await self.runtime.smtp.stop(grace=SHUTDOWN_GRACE)
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            await self._http_task
        await asyncio.gather(*self._background)
        await self.runtime.close()


def warn_if_exposed(host: str, keyed: bool = False) -> None:
    if not is_loopback(host) and not keyed:
        log.warning(
            "OPEN MODE on %s: no API keys are configured and the harness is reachable "
            "from the network; anyone who can connect can read all mail",
            host,
        )


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(settings: Settings, *, worker: bool = True) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(settings.effective_database_url)
    runtime = Runtime.build(settings)
    if settings.require_keys and not await runtime.keys().keyed_mode():
        await runtime.close()
        raise SystemExit(
            "MAILHARNESS_REQUIRE_KEYS is set but no API key exists: "
            "run `mailharness keys create --name NAME` or set MAILHARNESS_ADMIN_KEY"
        )
    services = Services(runtime, worker=worker)
    warn_if_exposed(settings.host, keyed=await runtime.keys().keyed_mode())
    stop = _stop_on_signals()
    try:
        await services.start()
        log.info(
            "mailharness ready: smtp=%s:%d http=http://%s:%d",
            settings.host,
            services.smtp_port,
            settings.host,
            services.http_port,
        )
        await stop.wait()
        log.info("shutting down")
    finally:
        await services.stop()
        log.info("stopped")


async def run_worker(settings: Settings) -> None:
    """Only the delivery worker (``mailharness worker``): no listeners."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(settings.effective_database_url)
    runtime = Runtime.build(settings)
    stop = _stop_on_signals()
    await runtime.start_bridge()
    task = asyncio.create_task(runtime.worker.run())
    log.info("mailharness worker ready")
    try:
        await stop.wait()
    finally:
        runtime.worker.stop()
        await task
        await runtime.close()
        log.info("stopped")
