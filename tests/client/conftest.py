"""A real `mailharness serve` process per store for the client and plugin tests.

``live`` is module-scoped (so its connections go when the module is done) and parametrised over SQLite (a file in a temporary
data dir) and Postgres (this fixture's own database, created and dropped here so
the other suites' per-test truncation never touches it). The server runs in key
mode: an admin key, plus one tenant key the tests use, so every call really
carries ``Authorization: Bearer``. It is started with the plugin's own
``ServerProcess`` (the same code ``--mailharness-start`` uses).
"""

from __future__ import annotations

import os
import secrets
import smtplib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import pytest
from mailharness import Mailharness
from mailharness._server import ServerProcess
from sqlalchemy.engine import make_url

from tests.conftest import PG_SERVER, _asyncpg_dsn, run_in_thread


@dataclass(frozen=True)
class Live:
    store: str
    url: str
    smtp_host: str
    smtp_port: int
    admin_key: str
    key: str
    database_url: str

    def client(self) -> Mailharness:
        return Mailharness(self.url, self.key)

    def send_mail(
        self,
        to: str,
        subject: str = "Hello",
        body: str = "Hi there",
        *,
        sender: str = "app@example.com",
        html: str | None = None,
        attachments: tuple[tuple[str, str, bytes], ...] = (),
    ) -> None:
        """One SMTP transaction with the stdlib smtplib, as an application would."""
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, to, subject
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
        for filename, ctype, data in attachments:
            maintype, subtype = ctype.split("/")
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=30) as smtp:
            smtp.send_message(msg)


@pytest.fixture(scope="session")
def client_pg_url() -> Iterator[str]:
    name = f"mh_client_{secrets.token_hex(4)}"
    admin = _asyncpg_dsn(PG_SERVER)

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_in_thread(execute(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
    run_in_thread(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    data_dir: Path = tmp_path_factory.mktemp(f"live-{request.param}")
    if request.param == "sqlite":
        database_url = f"sqlite+aiosqlite:///{data_dir / 'mailharness.db'}"
    else:
        database_url = request.getfixturevalue("client_pg_url")
    admin_key = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "MAILHARNESS_DATABASE_URL": database_url,
        "MAILHARNESS_ADMIN_KEY": admin_key,
        "MAILHARNESS_LOG_LEVEL": "INFO",
        "MAILHARNESS_RETRY_MIN_BACKOFF": "0.2",
        "MAILHARNESS_DB_POOL_SIZE": "2",  # a shared Postgres: keep few connections open
    }
    server = ServerProcess(data_dir=data_dir, command=[sys.executable, "-m", "app.cli"], env=env)
    server.start()
    try:
        with Mailharness(server.url, admin_key) as admin:
            key = admin.create_key(f"client-{request.param}-{secrets.token_hex(4)}").key
        assert key
        yield Live(
            store=request.param,
            url=server.url,
            smtp_host=server.host,
            smtp_port=server.smtp_port,
            admin_key=admin_key,
            key=key,
            database_url=database_url,
        )
    finally:
        server.stop()


@pytest.fixture
def mh(live: Live) -> Iterator[Mailharness]:
    with live.client() as client:
        yield client
