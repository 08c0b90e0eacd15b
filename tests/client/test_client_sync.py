"""The synchronous client against a real `mailharness serve` (SQLite and Postgres):
inboxes, messages, waits and their errors, quiet, sending and delivery state, fault
rules, sessions, keys, and the exception tree."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from mailharness import (
    ApiError,
    AuthError,
    Conflict,
    ConnectionFailed,
    DeliveryStateConflict,
    Mailharness,
    NoMatch,
    NotFound,
    QuietViolation,
    WaitTimeout,
)
from mailharness._server import free_port

from tests.client.conftest import Live


def _later(seconds: float, fn: object, *args: object) -> threading.Thread:
    """Run ``fn`` in a thread after ``seconds`` (mail arriving while a wait is open)."""

    def run() -> None:
        time.sleep(seconds)
        fn(*args)  # type: ignore[operator]

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_inbox_lifecycle(mh: Mailharness, live: Live) -> None:
    token = f"life-{live.store}-{time.monotonic_ns()}"
    inbox = mh.create_inbox(token, name="Life", tags=["client", token], expires_in=3600)
    assert inbox.address == f"{token}@mailharness.test"
    assert inbox.name == "Life" and set(inbox.tags) == {"client", token}
    assert inbox.expires_at is not None and inbox.expires_at.tzinfo is not None
    assert mh.get_inbox(inbox.id) == inbox
    assert [i.id for i in mh.list_inboxes(tag=token)] == [inbox.id]

    with pytest.raises(Conflict) as taken:
        mh.create_inbox(token)
    assert taken.value.status == 409

    random = mh.create_inbox()
    assert random.address.endswith("@mailharness.test") and len(random.address) > 20

    live.send_mail(inbox.address, "one")
    assert mh.wait_for(inbox, subject="one", timeout=10).subject == "one"
    assert mh.get_inbox(inbox).message_count == 1
    mh.empty_inbox(inbox)
    assert list(mh.messages(inbox)) == []
    mh.delete_inbox(inbox)
    with pytest.raises(NotFound) as gone:
        mh.get_inbox(inbox.id)
    assert gone.value.status == 404 and gone.value.error == "not_found"
    mh.delete_inbox(random)


def test_messages_read_raw_attachments_seen_search_delete(mh: Mailharness, live: Live) -> None:
    inbox = mh.create_inbox()
    word = f"zebra{time.monotonic_ns()}"
    live.send_mail(
        inbox.address,
        "Your invoice",
        f"Code 482913, see https://shop.example/invoice/7 {word}",
        sender="Shop <billing@shop.example>",
        html='<a href="https://shop.example/invoice/7">open</a>',
        attachments=(("invoice.pdf", "application/pdf", b"%PDF-1.4 fake"),),
    )
    msg = mh.wait_for(inbox, subject="invoice", timeout=10)
    assert msg.from_ is not None and msg.from_.address == "billing@shop.example"
    assert str(msg.from_) == "Shop <billing@shop.example>"
    assert msg.to[0].address == inbox.address
    assert msg.link(contains="/invoice/") == "https://shop.example/invoice/7"
    assert msg.code() == "482913" and msg.code(length=6) == "482913"
    with pytest.raises(NoMatch):
        msg.link(contains="/reset/")
    with pytest.raises(NoMatch):
        msg.code(length=8)
    assert msg.header("subject") == "Your invoice"
    assert msg.envelope.rcpt_to == [inbox.address]
    assert msg.has_attachments
    att = msg.attachment("invoice.pdf")
    assert att.content_type == "application/pdf"
    assert mh.download(att) == b"%PDF-1.4 fake"

    raw = mh.raw(msg)
    assert b"Subject: Your invoice" in raw

    [summary] = mh.messages(inbox)
    assert summary.id == msg.id and not summary.seen
    assert mh.mark_seen(msg).seen
    assert [m.id for m in mh.messages(inbox, seen=True)] == [msg.id]
    assert list(mh.messages(inbox, seen=False)) == []

    assert [m.id for m in mh.search(word)] == [msg.id]
    assert [m.id for m in mh.search(inbox=inbox)] == [msg.id]
    assert list(mh.search(f"nothing{word}")) == []

    mh.delete_message(msg)
    with pytest.raises(NotFound):
        mh.get_message(msg.id)
    mh.delete_inbox(inbox)


def test_wait_for_returns_mail_that_arrives_during_the_wait(mh: Mailharness, live: Live) -> None:
    inbox = mh.create_inbox()
    live.send_mail(inbox.address, "noise")
    sender = _later(0.3, live.send_mail, inbox.address, "Reset your password", "go")
    msg = mh.wait_for(inbox, subject="reset", from_="app@example.com", body="go", timeout=15)
    sender.join()
    assert msg.subject == "Reset your password"

    # since a message: only later mail counts; wait_for_all returns oldest first
    live.send_mail(inbox.address, "batch 1")
    live.send_mail(inbox.address, "batch 2")
    both = mh.wait_for_all(inbox, 2, subject="batch", since=msg, timeout=10)
    assert [m.subject for m in both] == ["batch 1", "batch 2"]
    assert mh.wait_for(inbox, header={"Subject": "batch 2"}, timeout=5).subject == "batch 2"
    mh.delete_inbox(inbox)


def test_wait_timeout_carries_what_was_awaited(mh: Mailharness) -> None:
    inbox = mh.create_inbox()
    started = datetime.now(UTC)
    with pytest.raises(WaitTimeout) as caught:
        mh.wait_for(inbox, subject="never", from_="x@y.example", since=started, timeout=0.5)
    err = caught.value
    assert err.status == 408 and err.error == "timeout"
    assert err.inbox_id == inbox.id and err.address == inbox.address
    assert err.filters == {"subject": "never", "from_": "x@y.example", "since": started}
    assert err.timeout == 0.5 and err.count == 1
    text = str(err)
    assert "subject='never'" in text and "from='x@y.example'" in text
    assert inbox.address in text and "0.5 s" in text

    with pytest.raises(WaitTimeout) as by_id:
        mh.wait_for_all(inbox.id, 3, timeout=0.2)
    assert by_id.value.address is None and by_id.value.count == 3
    mh.delete_inbox(inbox)


def test_quiet_passes_then_is_broken_with_the_offending_messages(
    mh: Mailharness, live: Live
) -> None:
    inbox = mh.create_inbox()
    live.send_mail(inbox.address, "Welcome")  # before the window: ignored below
    mh.quiet(inbox, subject="welcome", since=datetime.now(UTC), timeout=0.3)

    sender = _later(0.3, live.send_mail, inbox.address, "Welcome again")
    start = time.monotonic()
    with pytest.raises(QuietViolation) as caught:
        mh.quiet(inbox, subject="welcome", since=datetime.now(UTC), timeout=20)
    sender.join()
    assert time.monotonic() - start < 15  # answered as soon as the mail arrived
    err = caught.value
    assert isinstance(err, Conflict) and err.status == 409
    assert [m.subject for m in err.messages] == ["Welcome again"]
    assert "Welcome again" in str(err)
    mh.delete_inbox(inbox)


def test_send_locally_and_wait_for_delivery(mh: Mailharness) -> None:
    sender, receiver = mh.create_inbox(), mh.create_inbox()
    out = mh.send(
        sender,
        to=[receiver.address],
        subject="Local hop",
        text="hello 123456",
        headers={"X-Test": "yes"},
        attachments=[("a.txt", "text/plain", b"attached")],
    )
    delivery = out.delivery(receiver.address)
    done = mh.wait_for_delivery(delivery, state="delivered", timeout=20)
    assert done.state == "delivered" and done.attempts >= 1
    assert [e.type for e in done.events][-1] == "delivered"

    got = mh.wait_for(receiver, subject="Local hop", timeout=10)
    assert got.header("X-Test") == "yes" and got.code() == "123456"
    assert mh.download(got.attachment("a.txt")) == b"attached"

    assert mh.outbound(out.id).deliveries[0].state == "delivered"
    assert [o.id for o in mh.sent(sender)] == [out.id]
    assert [d.id for d in mh.deliveries(inbox=sender)] == [delivery.id]
    assert mh.get_delivery(delivery.id).recipient == receiver.address
    assert list(mh.messages(sender)) == []  # sent mail is not received mail

    released = mh.release(got, [sender.address])
    mh.wait_for_delivery(released.deliveries[0], timeout=20)
    assert mh.wait_for(sender, subject="Local hop", timeout=10).id != got.id
    mh.delete_inbox(sender)
    mh.delete_inbox(receiver)


def test_rules_bounce_a_delivery_into_a_state_conflict(mh: Mailharness) -> None:
    sender, receiver = mh.create_inbox(), mh.create_inbox()
    rule = mh.create_rule(
        "rcpt", code=550, enhanced="5.1.1", text="No such user", inbox=receiver, times=1
    )
    assert rule.stage == "rcpt" and rule.match == {"inbox_id": receiver.id}
    assert rule.reply is not None and rule.reply.code == 550 and rule.times == 1
    assert rule.id in [r.id for r in mh.rules()]

    out = mh.send(sender, to=[receiver.address], subject="Doomed", text="x")
    with pytest.raises(DeliveryStateConflict) as caught:
        mh.wait_for_delivery(out.deliveries[0], state="delivered", timeout=20)
    err = caught.value
    assert err.wanted == "delivered" and err.delivery is not None
    assert err.delivery.state == "bounced"
    assert err.delivery.last_response is not None and err.delivery.last_response.code == 550
    assert mh.get_rule(rule).hits == 1

    mh.delete_rule(rule)
    with pytest.raises(NotFound):
        mh.get_rule(rule.id)
    with pytest.raises(NotFound):
        mh.wait_for_delivery("00000000-0000-4000-8000-000000000000", timeout=0.1)

    held = mh.send(sender, to=["someone@external.example"], subject="Out", text="x")
    with pytest.raises(DeliveryStateConflict) as not_held:
        mh.wait_for_delivery(held.deliveries[0], state="delivered", timeout=20)
    assert not_held.value.delivery is not None and not_held.value.delivery.state == "held"
    mh.delete_inbox(sender)
    mh.delete_inbox(receiver)


def test_greylisted_delivery_times_out_then_is_delivered(mh: Mailharness) -> None:
    sender, receiver = mh.create_inbox(), mh.create_inbox()
    rule = mh.create_rule("rcpt", code=451, enhanced="4.7.1", text="Greylisted", inbox=receiver)
    out = mh.send(sender, to=[receiver.address], subject="Grey", text="x")
    delivery = out.deliveries[0]
    with pytest.raises(WaitTimeout) as caught:
        mh.wait_for_delivery(delivery, state="delivered", timeout=0.5)
    assert caught.value.filters == {"delivery": delivery.id, "state": "delivered"}
    assert mh.wait_for_delivery(delivery, state="deferred", timeout=10).state == "deferred"
    mh.delete_rule(rule)
    done = mh.wait_for_delivery(delivery, state="delivered", timeout=30)
    assert [e.type for e in done.events].count("deferred") >= 1
    mh.delete_inbox(sender)
    mh.delete_inbox(receiver)


def test_sessions_are_listed_per_inbox(live: Live) -> None:
    # An inbound transcript belongs to the tenant of the inbox that got the mail; here
    # the admin key's (the default tenant).
    mh = Mailharness(live.url, live.admin_key)
    inbox = mh.create_inbox()
    live.send_mail(inbox.address, "transcript")
    mh.wait_for(inbox, timeout=10)

    def recorded() -> list[str]:
        return [s.id for s in mh.sessions(inbox=inbox, direction="inbound")]

    # Transcripts are written in the background after the session ends and the API
    # offers nothing to wait on, so this one check polls (bounded).
    deadline = time.monotonic() + 10
    while not recorded() and time.monotonic() < deadline:
        time.sleep(0.05)
    [session_id] = recorded()
    session = mh.get_session(session_id)
    assert session.direction == "inbound" and inbox.id in session.inbox_ids
    assert any(line.dir == "S" and line.text.startswith("250") for line in session.lines)
    mh.delete_inbox(inbox)
    mh.close()


def test_keys_and_auth_errors(live: Live) -> None:
    with Mailharness(live.url, live.admin_key) as admin:
        created = admin.create_key(f"temp-{time.monotonic_ns()}")
        assert created.key and created.key not in repr(created)
        assert created.id in [k.id for k in admin.keys()]
        with Mailharness(live.url, created.key) as tenant:
            inbox = tenant.create_inbox()
            with Mailharness(live.url, live.key) as other, pytest.raises(NotFound):
                other.get_inbox(inbox.id)  # another tenant's id
            admin.revoke_key(created.id)
            with pytest.raises(AuthError) as revoked:
                tenant.list_inboxes()
            assert revoked.value.status == 401 and revoked.value.error == "unauthorized"
    with Mailharness(live.url) as anonymous, pytest.raises(AuthError):
        anonymous.create_inbox()
    with Mailharness(live.url, live.key) as tenant, pytest.raises(AuthError):
        tenant.keys()  # needs the admin key


def test_errors_for_bad_input_and_no_server(mh: Mailharness) -> None:
    with pytest.raises(ApiError) as bad:
        mh.create_rule("connect", code=451, recipient="x@y")  # no recipient at connect
    assert bad.value.status == 422 and bad.value.error == "invalid_request"
    assert type(bad.value) is ApiError
    assert mh.ready()

    with Mailharness(f"http://127.0.0.1:{free_port('127.0.0.1')}") as nowhere:
        with pytest.raises(ConnectionFailed) as down:
            nowhere.list_inboxes()
    assert "mailharness serve" in str(down.value)
