"""Settings: every ``MAILHARNESS_*`` environment variable, read once and passed down.

SUMMARY
    ``Settings`` is built once at process start (``Settings()`` reads the
    environment) and handed to the composition root; nothing reads the
    environment after that, and no module holds a settings global.

CONFIGURATION PARAMETERS
    See the field list below; each field is ``MAILHARNESS_<FIELD NAME>``.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_TENANT_ID = "00000000-0000-0000-0000-000000000000"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Settings(BaseSettings):
    """Runtime configuration. Defaults give a working single-process SQLite harness."""

    model_config = SettingsConfigDict(env_prefix="MAILHARNESS_", extra="ignore")

    data_dir: Path = Field(default=Path("."), description="Holds mailharness.db and TLS material.")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite:///<data_dir>/mailharness.db.",
    )
    host: str = Field(default="127.0.0.1", description="Address both listeners bind.")
    http_port: int = Field(default=8025, ge=0, le=65535)
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    smtp_hostname: str = Field(default="mailharness.local", description="Name in the 220 greeting.")
    domains: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["mailharness.test"],
        description="Harness domains; the first one completes bare local parts.",
    )
    smtp_strict: bool = Field(
        default=False,
        description="Refuse RCPT to unknown inboxes (550 5.1.1) instead of creating them.",
    )
    smtp_max_message_size: int = Field(default=50 * 1024 * 1024, ge=1024)
    smtp_max_line_length: int = Field(
        default=4096, ge=1001, description="Longest accepted line in DATA, CRLF included."
    )
    smtp_timeout: float = Field(
        default=300.0, gt=0, description="Idle seconds before a session is closed."
    )
    smtp_starttls: bool | None = Field(
        default=None,
        description="Offer STARTTLS on smtp_port. Default: on when smtp_tls_cert is set or "
        "smtp_require_tls, else off, because clients that upgrade whenever STARTTLS is offered "
        "(aiosmtplib, Nodemailer, ... by default) then reject a self-signed certificate.",
    )
    smtp_tls_cert: Path | None = Field(
        default=None,
        description="PEM certificate (chain) for STARTTLS and smtps_port. Unset: a self-signed "
        "certificate for smtp_hostname is generated in <data_dir>/tls/ and reused.",
    )
    smtp_tls_key: Path | None = Field(
        default=None,
        description="PEM private key for smtp_tls_cert (unset: the key is in the cert file).",
    )
    smtps_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of an implicit-TLS listener (SMTPS, RFC 8314); unset: none.",
    )
    smtp_require_tls: bool = Field(
        default=False,
        description="On smtp_port, answer every command but EHLO, NOOP, STARTTLS and QUIT with "
        "530 5.7.0 until STARTTLS (RFC 3207 4). Turns STARTTLS on.",
    )
    smtp_auth_allow_plaintext: bool = Field(
        default=False,
        description="Offer and accept AUTH without TLS (otherwise 538 5.7.11, RFC 4954 4).",
    )
    smtp_max_recipients: int = Field(
        default=100,
        ge=1,
        description="RCPTs per message; more get 452 4.5.3 (RFC 5321 4.5.3.1.8 and 4.5.3.1.10).",
    )
    smtp_max_connections: int = Field(
        default=200,
        ge=1,
        description="Concurrent SMTP sessions (both listeners); more get 421 4.7.0 and are closed.",
    )
    smtp_max_connections_per_minute: int = Field(
        default=0,
        ge=0,
        description="Connections one client IP may open per sliding minute (0: no limit); "
        "more get 421 4.7.0 and are closed.",
    )
    session_retention: int = Field(
        default=10_000,
        ge=0,
        description="SMTP session transcripts kept (intake and relay; the newest, over all "
        "tenants; the janitor trims the rest). 0: no transcripts are recorded.",
    )
    wait_default_timeout: float = Field(default=30.0, gt=0)
    wait_max_timeout: float = Field(default=300.0, gt=0)
    # Server-sent events: a comment line this often keeps proxies from closing an idle
    # stream; a client that cannot take an event within the write timeout is dropped.
    sse_heartbeat: float = Field(default=15.0, gt=0)
    sse_write_timeout: float = Field(default=10.0, gt=0)
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (comma-separated); none by default.",
    )
    require_keys: bool = Field(
        default=False, description="Refuse to start unless API keys (or an admin key) exist."
    )
    admin_key: str | None = Field(
        default=None,
        description="Key that manages API keys over /api/v1/keys; setting it turns key mode on.",
    )
    catchall_key: str | None = Field(
        default=None,
        description="Key mode: name (or id) of the API key whose tenant receives inboxes that "
        "unauthenticated SMTP mail creates for unknown addresses; unset: refused (550 5.7.1).",
    )
    api_max_body_size: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="Largest HTTP request body in bytes; larger ones get 413 payload_too_large.",
    )
    api_rate_limit: float | None = Field(
        default=None,
        ge=0,
        description="Requests per second per key (per client IP in open mode), in memory per "
        "process; more get 429 with Retry-After. 0: off. Default: off when host is loopback, "
        "else 50.",
    )
    api_rate_burst: int | None = Field(
        default=None,
        ge=1,
        description="Requests a key may make at once before api_rate_limit applies "
        "(default: 4 x api_rate_limit, at least 1).",
    )
    api_max_waits: int = Field(
        default=100,
        ge=0,
        description="Concurrent long-polls (wait, quiet, delivery wait) per key (per client "
        "IP in open mode), per process; more get 429. 0: no limit.",
    )
    max_inboxes_per_key: int = Field(
        default=0,
        ge=0,
        description="Inboxes one tenant may hold (API and catch-all); more get 409 "
        "inbox_limit (SMTP: 452 4.3.1). 0: no limit.",
    )
    inbox_max_messages: int = Field(
        default=0, ge=0, description="Messages kept per inbox (0: no limit); see inbox_full."
    )
    inbox_max_bytes: int = Field(
        default=0,
        ge=0,
        description="Raw bytes kept per inbox (0: no limit); see inbox_full.",
    )
    inbox_full: Literal["evict", "refuse"] = Field(
        default="evict",
        description="At inbox_max_messages / inbox_max_bytes: evict the oldest messages in the "
        "storing transaction, or refuse new mail (SMTP 452 4.2.2; local delivery deferred).",
    )
    smtp_max_header_fields: int = Field(
        default=1000,
        ge=10,
        description="Header fields of a message received over SMTP; more get 552 5.3.4.",
    )
    smtp_max_header_size: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Bytes of a message's header block over SMTP; more get 552 5.3.4.",
    )
    db_pool_size: int = Field(default=10, ge=1)
    db_statement_timeout: float = Field(
        default=30.0,
        ge=0,
        description="Postgres statement_timeout in seconds for every connection (0: none).",
    )
    retention_max_age: float = Field(
        default=0,
        ge=0,
        description="Delete received messages older than this many seconds (0: keep).",
    )
    retention_max_per_inbox: int = Field(
        default=0,
        ge=0,
        description="Keep at most this many newest messages per inbox (0: no limit).",
    )
    janitor_interval: float = Field(
        default=30.0, gt=0, description="Seconds between housekeeping sweeps (expired inboxes)."
    )
    relay_mode: Literal["off", "smarthost", "mx"] | None = Field(
        default=None,
        description="Where mail for non-harness domains goes: off (held), smarthost "
        "(relay_url) or mx (the domain's MX). Default: smarthost when relay_url is set, else off.",
    )
    relay_url: str | None = Field(
        default=None,
        description="Smarthost: smtp://[user:pass@]host[:port] (STARTTLS when offered), "
        "smtp+starttls:// (required), smtps:// (implicit TLS).",
    )
    relay_match: str | None = Field(
        default=None,
        description="Recipients of mail received over SMTP that are also relayed onward: "
        "comma-separated globs, or re:<regex>.",
    )
    relay_timeout: float = Field(
        default=30.0, gt=0, description="Seconds per SMTP command when relaying."
    )
    relay_helo: str | None = Field(
        default=None, description="EHLO name when relaying (default smtp_hostname)."
    )
    retry_min_backoff: float = Field(default=1.0, gt=0, description="First retry delay, seconds.")
    retry_max_backoff: float = Field(
        default=300.0, gt=0, description="Longest retry delay, seconds."
    )
    queue_lifetime: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds a deferred delivery is retried before it expires.",
    )
    delivery_lease: float = Field(
        default=300.0,
        gt=0,
        description="Seconds a worker holds a claimed delivery before others may reclaim it.",
    )
    destination_concurrency: int = Field(
        default=20,
        ge=1,
        description="Deliveries in flight to one remote destination (smarthost or MX domain), across all workers.",
    )
    worker_batch: int = Field(default=50, ge=1, description="Deliveries claimed per round.")
    webhook_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a webhook endpoint has to answer one POST."
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, description="POSTs of one webhook call before it is marked failed."
    )
    webhook_min_backoff: float = Field(
        default=5.0, gt=0, description="Seconds before the first webhook retry."
    )
    webhook_max_backoff: float = Field(
        default=600.0, gt=0, description="Longest gap between webhook retries, seconds."
    )
    webhook_settle: float | None = Field(
        default=None,
        ge=0,
        description="Seconds the webhook fan-out waits before reading new rows, so that a "
        "transaction with an earlier sequence number that commits later is not skipped "
        "(default 0 on SQLite, one writer; 1 on Postgres, several).",
    )
    worker_concurrency: int = Field(
        default=20, ge=1, description="Destinations delivered to at once."
    )
    worker_poll_interval: float = Field(
        default=5.0, gt=0, description="Longest idle sleep of the worker between wake-up events."
    )
    log_level: str = Field(default="INFO")

    @field_validator("domains", mode="before")
    @classmethod
    def _split_domains(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("domains")
    @classmethod
    def _need_one_domain(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one harness domain is needed")
        return [d.lower() for d in value]

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgres://"):
                url = "postgresql+asyncpg://" + url.removeprefix("postgres://")
            elif url.startswith("postgresql://"):
                url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mailharness.db').resolve()}"

    @property
    def effective_relay_mode(self) -> Literal["off", "smarthost", "mx"]:
        if self.relay_mode is not None:
            return self.relay_mode
        return "smarthost" if self.relay_url else "off"

    @model_validator(mode="after")
    def _relay_needs_url(self) -> Settings:
        if self.relay_mode == "smarthost" and not self.relay_url:
            raise ValueError("relay_mode=smarthost needs relay_url")
        if self.retry_min_backoff > self.retry_max_backoff:
            raise ValueError("retry_min_backoff must not exceed retry_max_backoff")
        return self

    @model_validator(mode="after")
    def _smtp_tls_consistent(self) -> Settings:
        if self.smtp_tls_key is not None and self.smtp_tls_cert is None:
            raise ValueError("smtp_tls_key needs smtp_tls_cert")
        if self.smtp_require_tls and self.smtp_starttls is False:
            raise ValueError("smtp_require_tls needs smtp_starttls")
        return self

    @property
    def effective_smtp_starttls(self) -> bool:
        if self.smtp_starttls is not None:
            return self.smtp_starttls
        return self.smtp_tls_cert is not None or self.smtp_require_tls

    @property
    def effective_api_rate(self) -> tuple[float, int]:
        """(requests per second, burst); (0, 0) when rate limiting is off."""
        rate = self.api_rate_limit
        if rate is None:
            rate = 0.0 if _loopback(self.host) else 50.0
        if rate <= 0:
            return 0.0, 0
        return rate, self.api_rate_burst or max(1, int(rate * 4))

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")
