"""pytest plugin: Mailharness fixtures, failure reports, and an optional server.

Loaded automatically (entry point ``pytest11``) wherever ``mailharness-client`` is
installed, and inert until a test asks for one of its fixtures: nothing here
touches the network at import or configuration time.

CONFIGURATION (first found wins: command line > ini > environment > default)
    --mailharness-url    ini mailharness_url    env MAILHARNESS_URL    http://127.0.0.1:8025
    --mailharness-key    ini mailharness_key    env MAILHARNESS_KEY    (none: open mode)
    --mailharness-smtp   ini mailharness_smtp   env MAILHARNESS_SMTP   <url host>:2525
    --mailharness-start  start `mailharness serve` on free ports with a temporary data
                         directory for the session (per xdist worker); it replaces the
                         URL and SMTP address above.

FIXTURES
    mailharness          session-scoped ``Mailharness`` client
    mailharness_settings the resolved settings (url, key, smtp, and where each came from)
    mailharness_smtp     ``SmtpAddress(host, port)`` your application should send to
    inbox                a fresh ``BoundInbox`` per test, deleted after; its address holds
                         the test name, the xdist worker id and a random token
    inbox_factory        ``inbox_factory(address=None, name=None, tags=())`` for more
    mailharness_rules    ``mailharness_rules.create("rcpt", code=451, ...)``; every rule
                         created through it is deleted after the test

On a failing test, the report gets one section per fixture inbox: its address,
its newest messages (time, sender, subject) and its pending or last wait with
the filters and timeout.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Unpack
from urllib.parse import urlsplit

import pytest

from mailharness._bound import BoundInbox
from mailharness._config import DEFAULT_URL
from mailharness._errors import NotFound
from mailharness._models import Rule
from mailharness._ops import RuleSpec, Stage
from mailharness._server import ServerProcess
from mailharness._sync import Mailharness

INBOXES = pytest.StashKey[list[BoundInbox]]()
DEFAULT_SMTP_PORT = 2525


class SmtpAddress(NamedTuple):
    host: str
    port: int


@dataclass(frozen=True)
class Settings:
    url: str
    url_source: str
    key: str | None
    key_source: str
    smtp: SmtpAddress
    smtp_source: str
    start: bool


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mailharness", "Mailharness email test harness")
    group.addoption(
        "--mailharness-url",
        dest="mailharness_url",
        metavar="URL",
        help=f"Mailharness HTTP API base URL (default {DEFAULT_URL}; env MAILHARNESS_URL)",
    )
    group.addoption(
        "--mailharness-key",
        dest="mailharness_key",
        metavar="KEY",
        help="API key sent as a Bearer token (env MAILHARNESS_KEY is safer: not in `ps`)",
    )
    group.addoption(
        "--mailharness-smtp",
        dest="mailharness_smtp",
        metavar="HOST:PORT",
        help="SMTP address the application sends to (default: the URL's host, port 2525)",
    )
    group.addoption(
        "--mailharness-start",
        dest="mailharness_start",
        action="store_true",
        default=False,
        help="start `mailharness serve` for the session on free ports (needs the server)",
    )
    parser.addini("mailharness_url", "Mailharness HTTP API base URL")
    parser.addini("mailharness_key", "Mailharness API key")
    parser.addini("mailharness_smtp", "SMTP HOST:PORT of the Mailharness server")


def _pick(config: pytest.Config, name: str, env: str) -> tuple[str | None, str]:
    value = config.getoption(name, default=None)
    if value:
        return str(value), "command line"
    ini = config.getini(name)
    if ini:
        return str(ini), "ini"
    if os.environ.get(env):
        return os.environ[env], "environment"
    return None, "default"


def _smtp_address(value: str) -> SmtpAddress:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise pytest.UsageError(f"mailharness smtp address must be HOST:PORT, not {value!r}")
    return SmtpAddress(host.strip("[]"), int(port))


def resolve_settings(config: pytest.Config) -> Settings:
    """The plugin's settings; command line > ini > environment > default for each."""
    url, url_source = _pick(config, "mailharness_url", "MAILHARNESS_URL")
    key, key_source = _pick(config, "mailharness_key", "MAILHARNESS_KEY")
    smtp, smtp_source = _pick(config, "mailharness_smtp", "MAILHARNESS_SMTP")
    url = url or DEFAULT_URL
    default_host = urlsplit(url).hostname or "127.0.0.1"
    return Settings(
        url=url.rstrip("/"),
        url_source=url_source,
        key=key,
        key_source=key_source,
        smtp=_smtp_address(smtp) if smtp else SmtpAddress(default_host, DEFAULT_SMTP_PORT),
        smtp_source=smtp_source,
        start=bool(config.getoption("mailharness_start", default=False)),
    )


@pytest.fixture(scope="session")
def mailharness_settings(pytestconfig: pytest.Config) -> Settings:
    return resolve_settings(pytestconfig)


@pytest.fixture(scope="session")
def _mailharness_server(
    mailharness_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess | None]:
    if not mailharness_settings.start:
        yield None
        return
    server = ServerProcess(data_dir=tmp_path_factory.mktemp("mailharness"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mailharness(
    mailharness_settings: Settings, _mailharness_server: ServerProcess | None
) -> Iterator[Mailharness]:
    """The session's client (on the started server with ``--mailharness-start``)."""
    url = _mailharness_server.url if _mailharness_server else mailharness_settings.url
    with Mailharness(url, mailharness_settings.key) as client:
        yield client


@pytest.fixture(scope="session")
def mailharness_smtp(
    mailharness_settings: Settings, _mailharness_server: ServerProcess | None
) -> SmtpAddress:
    """Where the application under test should send its mail."""
    if _mailharness_server is not None:
        return SmtpAddress(_mailharness_server.host, _mailharness_server.smtp_port)
    return mailharness_settings.smtp


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def unique_local_part(test_name: str) -> str:
    """``<test name>-<xdist worker>-<random>``: unique per test, worker and run."""
    slug = "-".join(re.findall(r"[a-z0-9]+", test_name.lower()))[:30].strip("-") or "test"
    return f"{slug}-{worker_id()}-{secrets.token_hex(5)}"


InboxFactory = Callable[..., BoundInbox]


@pytest.fixture
def inbox_factory(
    request: pytest.FixtureRequest, mailharness: Mailharness
) -> Iterator[InboxFactory]:
    """Creates inboxes for this test (unique addresses by default); deletes them after."""
    created: list[BoundInbox] = []

    def make(
        address: str | None = None, *, name: str | None = None, tags: Sequence[str] = ()
    ) -> BoundInbox:
        made = mailharness.create_inbox(
            address or unique_local_part(request.node.name),
            name=name or request.node.nodeid[:200],
            tags=["pytest", *tags],
        )
        bound = mailharness.bind(made)
        created.append(bound)
        request.node.stash.setdefault(INBOXES, []).append(bound)
        return bound

    yield make
    for bound in created:
        try:
            mailharness.delete_inbox(bound)
        except NotFound:
            pass  # the test deleted it itself


@pytest.fixture
def inbox(inbox_factory: InboxFactory) -> BoundInbox:
    """A fresh inbox for this test, deleted after it."""
    return inbox_factory()


class RuleSet:
    """Fault rules created for one test; ``cleanup()`` deletes them all."""

    def __init__(self, client: Mailharness) -> None:
        self.client = client
        self.created: list[Rule] = []

    def create(self, stage: Stage, **spec: Unpack[RuleSpec]) -> Rule:
        rule = self.client.create_rule(stage, **spec)
        self.created.append(rule)
        return rule

    def cleanup(self) -> None:
        for rule in self.created:
            try:
                self.client.delete_rule(rule)
            except NotFound:
                pass  # deleted already (by the test, or with its inbox)
        self.created.clear()


@pytest.fixture
def mailharness_rules(mailharness: Mailharness) -> Iterator[RuleSet]:
    """Create fault rules with ``.create(stage, ...)``; they are removed after the test."""
    rules = RuleSet(mailharness)
    yield rules
    rules.cleanup()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        for bound in item.stash.get(INBOXES, []):
            report.sections.append((f"mailharness inbox {bound.address}", bound.report()))
    return report
