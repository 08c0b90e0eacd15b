"""SMTP security extensions over real sockets: STARTTLS (generated and CA-issued
certificates), implicit TLS, required TLS, AUTH PLAIN/LOGIN, and the connection and
recipient limits with their reply codes."""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import logging
import smtplib
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
import trustme
from cryptography import x509
from cryptography.x509.oid import NameOID

from app.runtime import Runtime
from app.server import Services
from app.smtp.server import ConnectionRate
from tests.conftest import make_settings
from tests.support import Harness, simple_mail

HOSTNAME = "smtp.harness.test"
USER = "ci-user@example.com"
PASSWORD = "s3cret-Passw0rd-that-must-not-leak"


def _cert_file(h: Harness) -> Path:
    return h.runtime.settings.data_dir / "tls" / "cert.pem"


def _trusting(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


def _fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


async def _plain_client(h: Harness, *, port: int | None = None) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(hostname=h.smtp_host, port=port or h.smtp_port, start_tls=False)
    await client.connect()
    await client.ehlo()
    return client


async def _tls_client(h: Harness, context: ssl.SSLContext) -> aiosmtplib.SMTP:
    """EHLO, STARTTLS checking the name ``HOSTNAME``, EHLO again."""
    client = await _plain_client(h)
    assert client.supports_extension("starttls")
    await client.starttls(tls_context=context, server_hostname=HOSTNAME)
    await client.ehlo()
    return client


async def _send_and_fetch(h: Harness, client: aiosmtplib.SMTP, subject: str) -> dict[str, Any]:
    """One transaction on an open session; the stored message from the API."""
    inbox = await h.create_inbox()
    await client.mail("app@example.com")
    await client.rcpt(inbox["address"])
    reply = await client.data(simple_mail(to=inbox["address"], subject=subject))
    assert reply.code == 250, reply
    listed = (await h.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]
    resp = await h.http.get(f"/api/v1/messages/{listed['id']}")
    assert resp.status_code == 200, resp.text
    message: dict[str, Any] = resp.json()
    return message


async def _message_count(h: Harness) -> int:
    inboxes = (await h.http.get("/api/v1/inboxes")).json()["items"]
    return sum(i["message_count"] for i in inboxes)


async def _first_reply(host: str, port: int) -> tuple[str, bool]:
    """Connect, read the first reply line, QUIT if it was the greeting, and read to EOF
    (the server has let go of the session once the client sees EOF)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        line = (await asyncio.wait_for(reader.readline(), 10)).decode().rstrip()
        if line.startswith("220"):
            writer.write(b"QUIT\r\n")
            await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 10)
        return line, rest == b"" or rest.startswith(b"221")
    finally:
        writer.close()


# --- defaults -------------------------------------------------------------------------------


async def test_no_starttls_and_no_certificate_by_default(harness: Harness) -> None:
    client = await _plain_client(harness)
    try:
        assert not client.supports_extension("starttls")
        assert not client.supports_extension("auth")
        resp = await client.execute_command(b"STARTTLS")
        assert (resp.code, resp.message) == (454, "4.7.0 TLS not available")
    finally:
        await client.quit()
    assert not (harness.runtime.settings.data_dir / "tls").exists()
    assert harness.services.smtps_port is None


# --- STARTTLS and implicit TLS with the generated certificate ---------------------------------


class TestGeneratedCertificate:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"smtp_starttls": True, "smtp_hostname": HOSTNAME, "smtps_port": 0}

    async def test_certificate_files_and_contents(self, harness: Harness) -> None:
        cert_path = _cert_file(harness)
        key_path = cert_path.with_name("key.pem")
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == HOSTNAME
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert {HOSTNAME, "localhost"} <= set(san.get_values_for_type(x509.DNSName))
        assert "127.0.0.1" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
        lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
        assert lifetime > datetime.timedelta(days=9 * 365)

    async def test_starttls_with_the_generated_certificate(self, harness: Harness) -> None:
        client = await _tls_client(harness, _trusting(_cert_file(harness)))
        try:
            assert not client.supports_extension("starttls")  # RFC 3207 4.2
            resp = await client.execute_command(b"STARTTLS")
            assert (resp.code, resp.message) == (503, "5.5.1 TLS already active")
            message = await _send_and_fetch(harness, client, "over starttls")
        finally:
            await client.quit()
        assert message["envelope"]["tls"] is True
        assert message["envelope"]["authenticated"] is None

    async def test_stdlib_client_and_the_plaintext_flag(self, harness: Harness) -> None:
        inbox = await harness.create_inbox()
        context = _trusting(_cert_file(harness))

        def send(tls: bool) -> None:
            # smtplib checks the certificate against the host it connected to: the
            # IP address SAN 127.0.0.1.
            with smtplib.SMTP(harness.smtp_host, harness.smtp_port, timeout=10) as c:
                if tls:
                    c.starttls(context=context)
                subject = "tls" if tls else "plain"
                c.sendmail(
                    "a@example.com", [inbox["address"]], simple_mail(to="x", subject=subject)
                )

        await asyncio.to_thread(send, False)
        await asyncio.to_thread(send, True)
        items = (
            await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait", params={"count": 2})
        ).json()["items"]
        flags = {m["subject"]: m["envelope"]["tls"] for m in items}
        assert flags == {"plain": False, "tls": True}

    async def test_implicit_tls_listener(self, harness: Harness) -> None:
        port = harness.services.smtps_port
        assert port is not None and port not in (0, harness.smtp_port)
        # The name check against smtp_hostname, on a raw TLS socket.
        reader, writer = await asyncio.open_connection(
            harness.smtp_host, port, ssl=_trusting(_cert_file(harness)), server_hostname=HOSTNAME
        )
        try:
            greeting = (await asyncio.wait_for(reader.readline(), 10)).decode()
            assert greeting.startswith(f"220 {HOSTNAME} ")
            der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
            assert _fingerprint(der) == _fingerprint(
                ssl.PEM_cert_to_DER_cert(_cert_file(harness).read_text())
            )
        finally:
            writer.close()
        client = aiosmtplib.SMTP(
            hostname=harness.smtp_host,
            port=port,
            use_tls=True,
            tls_context=_trusting(_cert_file(harness)),
        )
        await client.connect()
        try:
            await client.ehlo()
            assert not client.supports_extension("starttls")
            assert client.supports_extension("auth")  # already encrypted
            message = await _send_and_fetch(harness, client, "over smtps")
        finally:
            await client.quit()
        assert message["envelope"]["tls"] is True

    async def test_client_that_rejects_the_certificate(
        self, harness: Harness, caplog: pytest.LogCaptureFixture
    ) -> None:
        client = await _plain_client(harness)
        with pytest.raises(ssl.SSLCertVerificationError):
            # The system trust store does not know the self-signed certificate.
            await client.starttls(tls_context=ssl.create_default_context())
        client.close()
        port = harness.services.smtps_port
        assert port is not None
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                harness.smtp_host, port, ssl=ssl.create_default_context(), server_hostname=HOSTNAME
            )
        # Routine, not an error; and the server goes on serving.
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        client = await _tls_client(harness, _trusting(_cert_file(harness)))
        try:
            assert (await _send_and_fetch(harness, client, "after"))["envelope"]["tls"] is True
        finally:
            await client.quit()


async def test_generated_certificate_is_reused_across_restarts(db_url: str, tmp_path: Path) -> None:
    settings = make_settings(db_url, tmp_path, smtp_starttls=True, smtp_hostname=HOSTNAME)
    cert_path = tmp_path / "tls" / "cert.pem"
    key_path = tmp_path / "tls" / "key.pem"
    seen: list[tuple[str, bytes, bytes, int]] = []
    for _ in range(2):
        services = Services(Runtime.build(settings))
        await services.start()
        try:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=services.smtp_port, start_tls=False)
            await client.connect()
            await client.starttls(tls_context=_trusting(cert_path), server_hostname=HOSTNAME)
            ssl_object = client.get_transport_info("ssl_object")
            presented = _fingerprint(ssl_object.getpeercert(binary_form=True))
            await client.quit()
        finally:
            await services.stop()
        seen.append(
            (presented, cert_path.read_bytes(), key_path.read_bytes(), cert_path.stat().st_ino)
        )
    first, second = seen
    assert first == second
    assert first[0] == _fingerprint(ssl.PEM_cert_to_DER_cert(first[1].decode()))


# --- a CA-issued certificate from the settings ------------------------------------------------


class TestCaIssuedCertificate:
    @pytest.fixture
    def ca(self) -> trustme.CA:
        return trustme.CA()

    @pytest.fixture
    def settings_overrides(self, ca: trustme.CA, tmp_path: Path) -> dict[str, Any]:
        leaf = ca.issue_cert(HOSTNAME, "127.0.0.1")
        folder = tmp_path / "issued"
        folder.mkdir()
        for i, pem in enumerate(leaf.cert_chain_pems):
            pem.write_to_path(str(folder / "chain.pem"), append=i > 0)
        leaf.private_key_pem.write_to_path(str(folder / "key.pem"))
        # STARTTLS is on because a certificate is configured.
        return {
            "smtp_hostname": HOSTNAME,
            "smtp_tls_cert": folder / "chain.pem",
            "smtp_tls_key": folder / "key.pem",
            "smtps_port": 0,
        }

    @pytest.fixture
    def context(self, ca: trustme.CA) -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        return context

    async def test_starttls_with_the_configured_certificate(
        self, harness: Harness, context: ssl.SSLContext
    ) -> None:
        client = await _tls_client(harness, context)
        try:
            message = await _send_and_fetch(harness, client, "ca issued")
        finally:
            await client.quit()
        assert message["envelope"]["tls"] is True
        assert not (harness.runtime.settings.data_dir / "tls").exists()  # nothing generated

    async def test_implicit_tls_with_the_configured_certificate(
        self, harness: Harness, context: ssl.SSLContext
    ) -> None:
        port = harness.services.smtps_port
        assert port is not None

        def send() -> None:
            with smtplib.SMTP_SSL(harness.smtp_host, port, context=context, timeout=10) as c:
                c.login(USER, PASSWORD)
                c.sendmail("a@example.com", ["smtps@mailharness.test"], simple_mail(to="x"))

        await asyncio.to_thread(send)
        inboxes = (await harness.http.get("/api/v1/inboxes")).json()["items"]
        [box] = [i for i in inboxes if i["address"] == "smtps@mailharness.test"]
        msg = (await harness.http.get(f"/api/v1/inboxes/{box['id']}/wait")).json()["items"][0]
        assert msg["envelope"]["tls"] is True
        assert msg["envelope"]["authenticated"] == USER


# --- required TLS -----------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"smtp_require_tls": True}])
async def test_require_tls_refuses_mail_before_starttls(harness: Harness) -> None:
    client = await _plain_client(harness)
    try:
        assert client.supports_extension("starttls")
        for command in (b"MAIL FROM:<a@example.com>", b"AUTH PLAIN", b"HELO x"):
            resp = await client.execute_command(command)
            assert (resp.code, resp.message) == (
                530,
                "5.7.0 Must issue a STARTTLS command first",
            ), command
        await client.starttls(tls_context=_trusting(_cert_file(harness)))
        await client.ehlo()
        message = await _send_and_fetch(harness, client, "after starttls")
    finally:
        await client.quit()
    assert message["envelope"]["tls"] is True
    assert await _message_count(harness) == 1


# --- AUTH -------------------------------------------------------------------------------------


def _leaks(text: str) -> list[str]:
    """Forms of the password that must not show up."""
    secrets = [
        PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode(),
    ]
    return [s for s in secrets if s in text]


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


class TestAuthOverTls:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"smtp_starttls": True, "smtp_hostname": HOSTNAME}

    @pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
    async def test_auth_records_the_username_and_never_the_password(
        self, harness: Harness, debug_logs: pytest.LogCaptureFixture, mechanism: str
    ) -> None:
        client = await _tls_client(harness, _trusting(_cert_file(harness)))
        try:
            assert set(client.esmtp_extensions["auth"].split()) >= {"PLAIN", "LOGIN"}
            if mechanism == "PLAIN":
                reply = await client.auth_plain(USER, PASSWORD)
            else:
                reply = await client.auth_login(USER, PASSWORD)
            assert (reply.code, reply.message) == (235, "2.7.0 Authentication successful")
            message = await _send_and_fetch(harness, client, f"auth {mechanism}")
        finally:
            await client.quit()
        assert message["envelope"]["authenticated"] == USER
        assert message["envelope"]["tls"] is True
        raw_json = (await harness.http.get(f"/api/v1/messages/{message['id']}")).text
        assert _leaks(raw_json) == []
        logged = "\n".join(
            f"{r.name} {r.getMessage()}" for r in debug_logs.records
        )  # server-side: app.*, mail.log (aiosmtpd), asyncio
        assert "smtp auth" in logged and USER in logged  # the log did see the session
        assert _leaks(logged) == []
        assert not any(
            r.name == "mail.log" and "deprecated" in r.getMessage() for r in debug_logs.records
        )

    async def test_auth_over_plaintext_is_neither_offered_nor_accepted(
        self, harness: Harness
    ) -> None:
        client = await _plain_client(harness)
        try:
            assert client.supports_extension("starttls")
            assert not client.supports_extension("auth")
            blob = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
            resp = await client.execute_command(f"AUTH PLAIN {blob}".encode())
            assert resp.code == 538
            assert resp.message.startswith("5.7.11 Encryption required")
            message = await _send_and_fetch(harness, client, "plain, anonymous")
        finally:
            await client.quit()
        assert message["envelope"]["authenticated"] is None

    async def test_auth_not_during_a_transaction_and_only_once(self, harness: Harness) -> None:
        client = await _tls_client(harness, _trusting(_cert_file(harness)))
        try:
            await client.mail("a@example.com")
            blob = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
            resp = await client.execute_command(f"AUTH PLAIN {blob}".encode())
            assert (resp.code, resp.message[:5]) == (503, "5.5.1")
            await client.rset()
            assert (await client.auth_plain(USER, PASSWORD)).code == 235
            resp = await client.execute_command(f"AUTH PLAIN {blob}".encode())
            assert (resp.code, resp.message) == (503, "5.5.1 Already authenticated")
        finally:
            await client.quit()

    async def test_verify_seam_can_refuse(self, harness: Harness) -> None:
        checked: list[tuple[str, str]] = []

        def verify(username: str, password: bytes, mechanism: str) -> bool:
            checked.append((username, mechanism))
            return password == b"right"

        harness.runtime.smtp.authenticator.verify = verify
        client = await _tls_client(harness, _trusting(_cert_file(harness)))
        try:
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as err:
                await client.auth_plain(USER, "wrong")
            assert (err.value.code, err.value.message) == (
                535,
                "5.7.8 Authentication credentials invalid",
            )
            assert (await client.auth_login(USER, "right")).code == 235
        finally:
            await client.quit()
        assert checked == [(USER, "PLAIN"), (USER, "LOGIN")]


@pytest.mark.parametrize("settings_overrides", [{"smtp_auth_allow_plaintext": True}])
async def test_auth_over_plaintext_when_allowed(harness: Harness) -> None:
    client = await _plain_client(harness)
    try:
        assert set(client.esmtp_extensions["auth"].split()) >= {"PLAIN", "LOGIN"}
        assert (await client.auth_login(USER, PASSWORD)).code == 235
        message = await _send_and_fetch(harness, client, "plaintext auth")
    finally:
        await client.quit()
    assert message["envelope"]["authenticated"] == USER
    assert message["envelope"]["tls"] is False


# --- limits -----------------------------------------------------------------------------------


async def test_the_101st_recipient_gets_452(harness: Harness) -> None:
    client = await _plain_client(harness)
    try:
        await client.mail("a@example.com")
        for i in range(100):
            await client.rcpt(f"r{i}@mailharness.test")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as err:
            await client.rcpt("r100@mailharness.test")
        assert (err.value.code, err.value.message) == (452, "4.5.3 Too many recipients")
        # The transaction goes on with the first hundred.
        assert (await client.data(simple_mail(to="r0@mailharness.test"))).code == 250
    finally:
        await client.quit()
    addresses = {
        i["address"]
        for i in (await harness.http.get("/api/v1/inboxes", params={"limit": 200})).json()["items"]
    }
    assert "r99@mailharness.test" in addresses
    assert "r100@mailharness.test" not in addresses


@pytest.mark.parametrize("settings_overrides", [{"smtp_max_connections": 2}])
async def test_connections_over_the_cap_get_421(harness: Harness) -> None:
    host, port = harness.smtp_host, harness.smtp_port
    held = [await asyncio.open_connection(host, port) for _ in range(2)]
    try:
        for reader, _ in held:
            assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"220 ")
        line, closed = await _first_reply(host, port)
        assert line == "421 4.7.0 Too many connections, try again later"
        assert closed
        # A slot frees when a session ends.
        reader, writer = held.pop()
        writer.write(b"QUIT\r\n")
        assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"221")
        writer.close()
        line, _ = await _first_reply(host, port)
        assert line.startswith("220 ")
    finally:
        for _, writer in held:
            writer.close()


@pytest.mark.parametrize("settings_overrides", [{"smtp_max_connections_per_minute": 3}])
async def test_connections_over_the_per_ip_rate_get_421(harness: Harness) -> None:
    for _ in range(3):
        line, _ = await _first_reply(harness.smtp_host, harness.smtp_port)
        assert line.startswith("220 ")
    line, closed = await _first_reply(harness.smtp_host, harness.smtp_port)
    assert line == "421 4.7.0 Too many connections from your address, slow down"
    assert closed


def test_connection_rate_window_and_bounded_memory() -> None:
    now = [1000.0]
    rate = ConnectionRate(2, window=60.0, max_clients=3, clock=lambda: now[0])
    assert rate.allow("a") and rate.allow("a")
    assert not rate.allow("a")  # refused attempts are not counted
    now[0] += 30
    assert not rate.allow("a")
    now[0] += 30.5  # the first two have left the window
    assert rate.allow("a") and rate.allow("a") and not rate.allow("a")
    for client in ("b", "c", "d", "e"):
        assert rate.allow(client)
    assert len(rate) == 3  # the least recently seen ("a", "b") were forgotten
    assert rate.allow("a")
