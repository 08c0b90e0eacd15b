"""The pytest plugin, driven with ``pytester``: a small application's test suite using
the plugin against a real `mailharness serve` (SQLite and Postgres).

The application under test is an ``httpx`` client whose transport is the app itself:
``POST /reset`` sends a password-reset mail over real SMTP (smtplib) to the
harness, exactly as a web app would.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from mailharness import Mailharness, NotFound

from tests.client.conftest import Live

pytest_plugins = ["pytester"]

APP_CONFTEST = '''
import json
import secrets
import smtplib
from email.message import EmailMessage

import httpx
import pytest


@pytest.fixture
def app_client(mailharness_smtp):
    """The application: POST /reset mails a reset link to the given address."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/reset":
            email = json.loads(request.content)["email"]
            msg = EmailMessage()
            msg["From"] = "Acme <no-reply@acme.example>"
            msg["To"] = email
            msg["Subject"] = "Reset your password"
            token = secrets.token_urlsafe(8)
            msg.set_content(f"Open https://acme.example/reset/{token} or enter 918273.")
            with smtplib.SMTP(*mailharness_smtp, timeout=30) as smtp:
                smtp.send_message(msg)
            return httpx.Response(202)
        return httpx.Response(404)

    with httpx.Client(transport=httpx.MockTransport(handle), base_url="http://app") as client:
        yield client
'''

RESET_TEST = """
def test_reset(inbox, app_client):
    app_client.post("/reset", json={"email": inbox.address})
    msg = inbox.wait_for(subject="Reset your password", timeout=10)
    assert msg.link(contains="/reset/")
    assert msg.code() == "918273"
"""


def _args(live: Live) -> list[str]:
    return [
        f"--mailharness-url={live.url}",
        f"--mailharness-key={live.key}",
        f"--mailharness-smtp={live.smtp_host}:{live.smtp_port}",
    ]


@pytest.fixture
def app(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for var in ("MAILHARNESS_URL", "MAILHARNESS_KEY", "MAILHARNESS_SMTP"):
        monkeypatch.delenv(var, raising=False)
    # the inner runs need neither asyncio nor a cache (in-process and subprocess alike)
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:asyncio -p no:cacheprovider")
    pytester.makeconftest(APP_CONFTEST)
    return pytester


def test_password_reset_in_three_lines(app: pytest.Pytester, live: Live) -> None:
    app.makepyfile(test_app=RESET_TEST)
    result = app.runpytest(*_args(live))
    result.assert_outcomes(passed=1)


def test_inbox_is_fresh_unique_and_deleted_after(app: pytest.Pytester, live: Live) -> None:
    record = app.path / "seen.json"
    app.makepyfile(
        test_app=f"""
        import json

        def test_one(inbox, inbox_factory, mailharness):
            other = inbox_factory(tags=["extra"])
            assert other.address != inbox.address
            assert "-main-" in inbox.address and inbox.address.startswith("test-one-")
            assert list(inbox.messages()) == []
            assert mailharness.get_inbox(inbox.id).tags == ["pytest"]
            with open({str(record)!r}, "w") as f:
                json.dump([inbox.id, other.id], f)
        """
    )
    app.runpytest(*_args(live)).assert_outcomes(passed=1)
    with Mailharness(live.url, live.key) as mh:
        for inbox_id in json.loads(record.read_text()):
            with pytest.raises(NotFound):
                mh.get_inbox(inbox_id)


def test_rules_created_through_the_fixture_are_removed(app: pytest.Pytester, live: Live) -> None:
    record = app.path / "rule.txt"
    app.makepyfile(
        test_app=f"""
        import smtplib
        import pytest

        def test_greylisted(inbox, mailharness_rules, mailharness, mailharness_smtp):
            rule = mailharness_rules.create("rcpt", code=451, enhanced="4.7.1", recipient=inbox.address, times=1)
            open({str(record)!r}, "w").write(rule.id)
            with smtplib.SMTP(*mailharness_smtp) as smtp:
                with pytest.raises(smtplib.SMTPRecipientsRefused):
                    smtp.sendmail("a@example.com", [inbox.address], b"Subject: one\\r\\n\\r\\nx\\r\\n")
                smtp.sendmail("a@example.com", [inbox.address], b"Subject: two\\r\\n\\r\\nx\\r\\n")
            assert inbox.wait_for(timeout=10).subject == "two"
            assert mailharness.get_rule(rule).hits == 1
        """
    )
    app.runpytest(*_args(live)).assert_outcomes(passed=1)
    rule_id = record.read_text()
    with Mailharness(live.url, live.key) as mh:
        assert rule_id not in [r.id for r in mh.rules()]
        with pytest.raises(NotFound):
            mh.get_rule(rule_id)


def test_failure_report_shows_inbox_messages_and_the_wait(app: pytest.Pytester, live: Live) -> None:
    app.makepyfile(
        test_app="""
        def test_wrong_subject(inbox, app_client):
            app_client.post("/reset", json={"email": inbox.address})
            inbox.wait_for(subject="Reset", timeout=10)
            inbox.wait_for(subject="Welcome aboard", from_="team@acme.example", timeout=0.5)

        def test_fails_after_wait(inbox, app_client):
            app_client.post("/reset", json={"email": inbox.address})
            msg = inbox.wait_for(subject="Reset", timeout=10)
            assert msg.code() == "000000"

        def test_passes(inbox):
            assert inbox.address
        """
    )
    result = app.runpytest(*_args(live))
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    sections = re.findall(r"-+ mailharness inbox (\S+) -+\n(.*?)(?=\n[-=_]{5})", out, re.S)
    assert len(sections) == 2, out
    (addr1, first), (addr2, second) = sections
    assert addr1.startswith("test-wrong-subject-main-") and addr1.endswith("@mailharness.test")
    assert f"inbox {addr1} (id " in first
    assert "recent messages (newest first" in first
    assert "from Acme <no-reply@acme.example>: 'Reset your password'" in first
    assert (
        "last wait: wait_for(subject='Welcome aboard', from='team@acme.example', timeout=0.5s)"
        in first
    )
    assert "timed out (" in first
    assert "all waits:" in first and "wait_for(subject='Reset', timeout=10s)" in first
    assert addr2.startswith("test-fails-after-wait-main-")
    assert "last wait: wait_for(subject='Reset', timeout=10s)" in second and ": ok" in second
    assert "test-passes" not in out  # no section for a passing test
    # the WaitTimeout itself says what was awaited
    assert "WaitTimeout: no 1 message(s) matching subject='Welcome aboard'" in out


def test_parallel_workers_never_see_each_others_mail(app: pytest.Pytester, live: Live) -> None:
    out_dir = app.path / "seen"
    out_dir.mkdir()
    app.makepyfile(
        test_app=f"""
        import json
        import os
        import smtplib

        import pytest

        @pytest.mark.parametrize("n", range(12))
        def test_isolated(n, inbox, mailharness_smtp):
            mine = [f"case {{n}} mail {{i}}" for i in range(3)]
            with smtplib.SMTP(*mailharness_smtp) as smtp:
                for subject in mine:
                    smtp.sendmail("a@example.com", [inbox.address],
                                  f"Subject: {{subject}}\\r\\n\\r\\nbody\\r\\n".encode())
            got = inbox.wait_for_all(3, timeout=20)
            assert sorted(m.subject for m in got) == mine
            inbox.quiet(timeout=0.3)
            assert sorted(m.subject for m in inbox.messages()) == mine
            worker = os.environ["PYTEST_XDIST_WORKER"]
            assert f"-{{worker}}-" in inbox.address
            with open(os.path.join({str(out_dir)!r}, f"{{n}}.json"), "w") as f:
                json.dump([worker, inbox.address], f)
        """
    )
    result = app.runpytest_subprocess(*_args(live), "-n", "4", timeout=300)
    result.assert_outcomes(passed=12)
    seen = [json.loads(p.read_text()) for p in out_dir.iterdir()]
    assert len(seen) == 12
    assert len({address for _, address in seen}) == 12
    assert len({worker for worker, _ in seen}) > 1  # really ran on several workers


SETTINGS_TEST = """
def test_settings(mailharness_settings):
    s = mailharness_settings
    print(f"URL={s.url} [{s.url_source}] KEY={s.key} [{s.key_source}] SMTP={s.smtp.host}:{s.smtp.port} [{s.smtp_source}]")
"""


@pytest.mark.parametrize(
    ("cli", "ini", "env", "expected"),
    [
        (
            {},
            {},
            {},
            "URL=http://127.0.0.1:8025 [default] KEY=None [default] SMTP=127.0.0.1:2525 [default]",
        ),
        (
            {},
            {},
            {"URL": "http://env.example:1", "KEY": "k-env"},
            "URL=http://env.example:1 [environment] KEY=k-env [environment] SMTP=env.example:2525 [default]",
        ),
        (
            {},
            {"url": "http://ini.example:2", "smtp": "ini.example:26"},
            {"URL": "http://env.example:1", "KEY": "k-env", "SMTP": "env.example:25"},
            "URL=http://ini.example:2 [ini] KEY=k-env [environment] SMTP=ini.example:26 [ini]",
        ),
        (
            {"url": "http://cli.example:3/", "key": "k-cli"},
            {"url": "http://ini.example:2", "key": "k-ini"},
            {"URL": "http://env.example:1", "KEY": "k-env"},
            "URL=http://cli.example:3 [command line] KEY=k-cli [command line] SMTP=cli.example:2525 [default]",
        ),
    ],
)
def test_settings_precedence(
    app: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    cli: dict[str, str],
    ini: dict[str, str],
    env: dict[str, str],
    expected: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(f"MAILHARNESS_{name}", value)
    if ini:
        app.makeini("[pytest]\n" + "".join(f"mailharness_{k} = {v}\n" for k, v in ini.items()))
    app.makepyfile(test_settings=SETTINGS_TEST)
    args = [f"--mailharness-{k}={v}" for k, v in cli.items()]
    result = app.runpytest("-s", *args)
    result.assert_outcomes(passed=1)
    assert expected in result.stdout.str()


def test_key_precedence_reaches_the_server(
    app: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, live: Live
) -> None:
    app.makepyfile(test_app="def test_uses_inbox(inbox):\n    assert inbox.id\n")
    app.makeini(f"[pytest]\nmailharness_url = {live.url}\nmailharness_key = {live.key}\n")
    monkeypatch.setenv("MAILHARNESS_KEY", "wrong-env-key")
    app.runpytest().assert_outcomes(passed=1)  # ini beats env
    result = app.runpytest("--mailharness-key=wrong-cli-key")  # cli beats ini
    result.assert_outcomes(errors=1)
    assert "AuthError: 401 unauthorized" in result.stdout.str()


def test_inert_without_a_server(app: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*_args: object, **_kwargs: object) -> httpx.Response:
        raise AssertionError("the plugin used the network")

    app.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    with monkeypatch.context() as patched:  # (not undo(): pytester's chdir is on monkeypatch)
        patched.setattr(httpx.Client, "send", no_network)
        patched.setattr(httpx.AsyncClient, "send", no_network)
        app.runpytest().assert_outcomes(passed=1)

    from mailharness._server import free_port

    closed = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    app.makepyfile(test_needs="def test_needs(inbox):\n    pass\n")
    result = app.runpytest(f"--mailharness-url={closed}")
    result.assert_outcomes(passed=1, errors=1)
    assert f"cannot reach Mailharness at {closed}" in result.stdout.str()


def test_mailharness_start_runs_a_server_for_the_session(
    app: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, live: Live
) -> None:
    args = ["--mailharness-start"]
    if live.store == "postgres":  # a second serve process on the same database
        monkeypatch.setenv("MAILHARNESS_DATABASE_URL", live.database_url)
        monkeypatch.setenv("MAILHARNESS_DB_POOL_SIZE", "2")
        args.append(f"--mailharness-key={live.key}")
    else:
        monkeypatch.delenv("MAILHARNESS_DATABASE_URL", raising=False)
    monkeypatch.delenv("MAILHARNESS_ADMIN_KEY", raising=False)
    app.makepyfile(
        test_app=RESET_TEST
        + """
def test_started_server(mailharness, mailharness_smtp, mailharness_settings):
    assert mailharness.base_url != mailharness_settings.url
    assert mailharness.base_url.startswith("http://127.0.0.1:")
    assert mailharness_smtp.port not in (2525, 0)
    assert mailharness.ready()
"""
    )
    app.runpytest(*args).assert_outcomes(passed=2)
