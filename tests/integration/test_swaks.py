"""swaks, the SMTP swiss-army knife, against the harness: plain, greylisted, STARTTLS+AUTH.

swaks is installed by `make test` (Debian package); in CI a missing swaks fails."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from tests.support import Harness

SWAKS = shutil.which("swaks")
if SWAKS is None and not os.environ.get("CI"):
    pytest.skip("swaks is not installed (make test installs it)", allow_module_level=True)


async def swaks(h: Harness, *args: str) -> tuple[int, str]:
    assert SWAKS is not None, "swaks must be installed in CI"
    proc = await asyncio.create_subprocess_exec(
        SWAKS,
        "--server",
        f"{h.smtp_host}:{h.smtp_port}",
        "--from",
        "app@example.com",
        "--timeout",
        "10",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_swaks_plain_send(harness: Harness) -> None:
    inbox = await harness.create_inbox(address="swaks")
    code, out = await swaks(
        harness,
        "--to",
        inbox["address"],
        "--header",
        "Subject: Hello from swaks",
        "--body",
        "code 4711",
    )
    assert code == 0, out
    assert "250 2.0.0 Ok: queued as" in out
    msg = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]
    assert msg["subject"] == "Hello from swaks"
    assert msg["codes"] == ["4711"]


async def test_swaks_sees_greylisting(harness: Harness) -> None:
    await harness.http.post(
        "/api/v1/rules",
        json={
            "match": {"recipient": "grey@mailharness.test"},
            "stage": "rcpt",
            "reply": {"code": 451, "enhanced": "4.7.1", "text": "Greylisted"},
            "times": 1,
        },
    )
    code, out = await swaks(harness, "--to", "grey@mailharness.test")
    assert code != 0 and "451 4.7.1 Greylisted" in out
    code, out = await swaks(harness, "--to", "grey@mailharness.test")
    assert code == 0, out


@pytest.mark.parametrize("settings_overrides", [{"smtp_starttls": True}])
async def test_swaks_starttls_and_auth(harness: Harness) -> None:
    inbox = await harness.create_inbox(address="secure")
    code, out = await swaks(
        harness,
        "--to",
        inbox["address"],
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        "ci-user",
        "--auth-password",
        "s3cret-pass",
    )
    assert code == 0, out
    assert "220 2.0.0" in out or "220 " in out  # STARTTLS accepted
    msg = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]
    assert msg["envelope"]["tls"] is True
    assert msg["envelope"]["authenticated"] == "ci-user"
    assert "s3cret-pass" not in str(msg)
