"""TLS for SMTP intake: the server certificate and the ``ssl.SSLContext`` made from it.

SUMMARY
    ``server_context(settings)`` returns a server-side context (TLS 1.2 or newer,
    no client certificates) for STARTTLS (RFC 3207) and the implicit-TLS
    listener (RFC 8314). It loads ``smtp_tls_cert`` / ``smtp_tls_key`` when
    set. Otherwise it uses a self-signed certificate kept in
    ``<data_dir>/tls/`` (``cert.pem``; ``key.pem`` with mode 0600), made at
    the first start (EC P-256, CN = ``smtp_hostname``, SAN DNS
    ``smtp_hostname`` and ``localhost``, IP ``127.0.0.1`` and ``::1``, valid
    ten years) and reused on every later start, so a test client can trust
    that one file. Delete the directory to get a new one.

    The pair is written in a private staging directory and renamed into
    place, so two processes starting at once on the same ``data_dir`` end up
    with one consistent pair (the loser reuses the winner's).

CONFIGURATION PARAMETERS
    smtp_tls_cert, smtp_tls_key, smtp_hostname, data_dir.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import shutil
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.config import Settings

log = logging.getLogger(__name__)

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"
VALIDITY = datetime.timedelta(days=3650)


class TlsConfigError(RuntimeError):
    """The TLS certificate or key cannot be used."""


def tls_dir(settings: Settings) -> Path:
    """Where the generated certificate lives."""
    return settings.data_dir / "tls"


def server_context(settings: Settings) -> ssl.SSLContext:
    """The context both TLS entry points use (blocking: reads, maybe writes, files)."""
    if settings.smtp_tls_cert is not None:
        cert, key = settings.smtp_tls_cert, settings.smtp_tls_key
    else:
        cert, key = ensure_self_signed(tls_dir(settings), settings.smtp_hostname)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # CERT_NONE: no client certificates
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(
            f"cannot load the SMTP TLS certificate {cert}"
            + (f" / key {key}" if key else "")
            + f": {exc}"
        ) from exc
    return context


def ensure_self_signed(directory: Path, hostname: str) -> tuple[Path, Path]:
    """``directory``'s certificate and key, generated first when there are none."""
    cert, key = directory / CERT_NAME, directory / KEY_NAME
    found = {cert.exists(), key.exists()}
    if len(found) == 2:  # maybe another process's rename fell between the two checks
        found = {cert.exists(), key.exists()}
    if found == {True}:
        _check_reused(cert, hostname)
        return cert, key
    if found == {True, False}:
        raise TlsConfigError(
            f"{directory} holds only one of {CERT_NAME} and {KEY_NAME}: remove the directory "
            "to generate a new pair, or set smtp_tls_cert and smtp_tls_key"
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tls-", dir=directory.parent))
    try:
        _write_pair(staging, hostname)
        staging.chmod(0o755)  # the certificate is public; the key file itself is 0600
        try:
            staging.rename(directory)  # atomic; fails when a non-empty directory is there
        except OSError as exc:
            if not (cert.exists() and key.exists()):
                raise TlsConfigError(f"cannot create {directory}: {exc}") from exc
            # Another process generated the pair first: use theirs.
        else:
            log.info("generated a self-signed TLS certificate for %s in %s", hostname, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return cert, key


def _write_pair(directory: Path, hostname: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    names: list[x509.GeneralName] = []
    for entry in dict.fromkeys([hostname, "localhost", "127.0.0.1", "::1"]):  # no duplicates
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(entry)))
        except ValueError:
            names.append(x509.DNSName(entry))
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))  # tolerate clock skew
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(names),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(directory / KEY_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem)
    (directory / CERT_NAME).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _check_reused(path: Path, hostname: str) -> None:
    """Warn (do not replace: clients may trust this file) when the kept certificate no
    longer fits the configuration."""
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound) as exc:
        raise TlsConfigError(f"cannot read the TLS certificate {path}: {exc}") from exc
    names = [*san.get_values_for_type(x509.DNSName)] + [
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    ]
    if hostname not in names:
        log.warning(
            "the TLS certificate %s is for %s, not smtp_hostname %s; "
            "delete %s to generate a new one",
            path,
            ", ".join(names),
            hostname,
            path.parent,
        )
    if certificate.not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
        log.warning("the TLS certificate %s has expired; delete %s", path, path.parent)
