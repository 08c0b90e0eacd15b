"""`mailharness serve` as a real process: starts, migrates, serves the reset flow over
real sockets, logs one line per transaction, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import smtplib
import socket
import sys
from pathlib import Path

import httpx

MAIL = (
    b"From: App <app@example.com>\r\nTo: {to}\r\nSubject: Your magic link\r\n\r\n"
    b"Sign in with https://app.example.com/magic?t=q1w2 or code 90210.\r\n"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _read_until(stream: asyncio.StreamReader, marker: str, seen: list[str]) -> None:
    while True:
        line = (await stream.readline()).decode()
        if not line:
            raise AssertionError("serve exited early:\n" + "".join(seen))
        seen.append(line)
        if marker in line:
            return


async def test_serve_process_end_to_end(db_url: str, tmp_path: Path) -> None:
    http_port, smtp_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "MAILHARNESS_DATA_DIR": str(tmp_path),
        "MAILHARNESS_DATABASE_URL": db_url,
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
    assert proc.stderr is not None
    log: list[str] = []
    try:
        await asyncio.wait_for(_read_until(proc.stderr, "mailharness ready", log), 30)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
            assert (await http.get("/readyz")).status_code == 200
            inbox = (await http.post("/api/v1/inboxes", json={"address": "e2e"})).json()
            wait = asyncio.create_task(
                http.get(f"/api/v1/inboxes/{inbox['id']}/wait", params={"timeout": 20})
            )

            def send() -> None:
                with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
                    client.sendmail(
                        "app@example.com",
                        [inbox["address"]],
                        MAIL.replace(b"{to}", inbox["address"].encode()),
                    )

            await asyncio.to_thread(send)
            msg = (await wait).json()["items"][0]
            assert msg["subject"] == "Your magic link"
            assert msg["links"] == ["https://app.example.com/magic?t=q1w2"]
            assert msg["codes"] == ["90210"]
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stderr.read(), 30)
        log.append(rest.decode())
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = "".join(log)
    assert "smtp accepted submission=" in text
    assert "http POST /api/v1/inboxes 201" in text
    assert "stopped" in text
    assert "Sign in with" not in text  # never a body in the logs


async def test_serve_refuses_to_start_without_keys_when_required(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MAILHARNESS_DATA_DIR": str(tmp_path),
        "MAILHARNESS_REQUIRE_KEYS": "1",
        "MAILHARNESS_HTTP_PORT": str(_free_port()),
        "MAILHARNESS_SMTP_PORT": str(_free_port()),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode != 0
    assert b"MAILHARNESS_REQUIRE_KEYS" in err
