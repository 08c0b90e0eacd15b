"""The web UI in a real headless Chromium against a running harness (real SMTP, HTTP,
store; both stores): create an inbox, watch mail arrive live, read it with its HTML
sandboxed, download an attachment, follow a bounced delivery's timeline, log in with
a key and see only that tenant's data, and stay readable on a phone and in dark mode."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from playwright.async_api import BrowserContext, Page, Route, expect

from tests.support import Harness, simple_mail

Shot = Callable[[Page, str], Awaitable[Path]]

BEACON = "http://beacon.example.test/hit"
REMOTE_IMAGE = "http://images.example.test/pixel.png"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201e2276a0c0000000049454e44ae426082"
)
ATTACHMENT = bytes(range(256)) * 40 + b"\x00\r\n\x00 end"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

# Every page of the test records what its top window receives by postMessage.
RECORD_MESSAGES = """
if (window === window.top) {
  window.__posted = [];
  window.addEventListener("message", (e) => window.__posted.push(String(e.data)));
}
"""


def rich_mail(to: str) -> bytes:
    """HTML with a script, an inline handler, a remote image; text; an attachment."""
    msg = EmailMessage()
    msg["From"] = "Shop <shop@example.com>"
    msg["To"] = to
    msg["Subject"] = "Confirm your account"
    msg.set_content("Hello! Your code is 731946.\nConfirm at https://app.example/confirm?t=1\n")
    msg.add_alternative(
        f"""<!doctype html><html><head><title>mail</title></head><body>
<h1 id="greeting">Hello from the shop</h1>
<p id="victim">untouched</p>
<p><a href="https://app.example/confirm?t=1">Confirm</a></p>
<img id="remote" src="{REMOTE_IMAGE}" alt="tracker" width="1" height="1">
<img src="x-broken" onerror="document.getElementById('victim').textContent='pwned by onerror'">
<script>
document.getElementById('victim').textContent = 'pwned';
new Image().src = '{BEACON}';
try {{ parent.document.title = 'pwned'; }} catch (e) {{}}
parent.postMessage('pwned', '*');
</script>
</body></html>""",
        subtype="html",
    )
    msg.add_attachment(
        ATTACHMENT, maintype="application", subtype="octet-stream", filename="report.bin"
    )
    return msg.as_bytes(policy=SMTP)


class Network:
    """Answers the mail's remote image and script beacon, and records who asked."""

    def __init__(self) -> None:
        self.beacon: list[str] = []
        self.images: list[str] = []
        self.image_loaded = asyncio.Event()

    async def install(self, context: BrowserContext) -> None:
        await context.route("http://beacon.example.test/**", self._beacon)
        await context.route("http://images.example.test/**", self._image)

    async def _beacon(self, route: Route) -> None:
        self.beacon.append(route.request.url)
        await route.fulfill(status=204)

    async def _image(self, route: Route) -> None:
        self.images.append(route.request.url)
        self.image_loaded.set()
        await route.fulfill(status=200, content_type="image/png", body=PNG)


async def _flush_sessions(h: Harness) -> None:
    if h.runtime.session_recorder is not None:
        await h.runtime.session_recorder.flush()


async def test_inbox_live_and_message_views(
    harness: Harness, context: BrowserContext, page: Page, shot: Shot
) -> None:
    base = harness.base_url
    net = Network()
    await net.install(context)
    await context.add_init_script(RECORD_MESSAGES)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)

    # One click makes a throwaway inbox; its page says it is empty and live.
    await page.goto(f"{base}/")
    await expect(page.get_by_role("heading", name="Inboxes", exact=True)).to_be_visible()
    await page.get_by_role("button", name="New throwaway inbox").click()
    await expect(page).to_have_url(re.compile(rf"/ui/inboxes/({UUID})\?created=1$"))
    address = (await page.locator("#address").inner_text()).strip()
    assert re.fullmatch(r"[a-z0-9]{8,}@mailharness\.test", address), address
    await expect(page.locator("[data-empty]")).to_be_visible()
    await expect(page.locator("[data-live-state]")).to_have_text(re.compile(r"^Live"))
    await page.get_by_role("button", name=f"Copy address {address}").click()
    assert await page.evaluate("navigator.clipboard.readText()") == address
    await shot(page, "inbox-empty")

    # Mail sent over SMTP shows up without a reload, newest first.
    await page.evaluate("window.__sameDocument = true")
    await harness.send("app@example.com", [address], simple_mail(to=address, subject="First"))
    rows = page.locator("[data-message-id]")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("First")
    await expect(page.locator("[data-empty]")).to_be_hidden()
    await expect(page).to_have_title(f"(1) {address} · Mailharness")
    first_subject = await rows.first.locator(".subject").bounding_box()
    first_height = (await rows.first.bounding_box() or {}).get("height")

    await harness.send("shop@example.com", [address], rich_mail(address))
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("Confirm your account")
    await expect(page.locator("[data-count]")).to_have_text("2")
    await expect(page).to_have_title(f"(2) {address} · Mailharness")
    assert await page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    # The row that was there keeps its place in its columns and its height.
    old = rows.nth(1)
    assert await old.locator(".subject").bounding_box() is not None
    moved = await old.locator(".subject").bounding_box()
    assert first_subject is not None and moved is not None
    assert (moved["x"], moved["width"]) == (first_subject["x"], first_subject["width"])
    assert (await old.bounding_box() or {}).get("height") == first_height
    await shot(page, "inbox-live")

    # Keyboard: j/k move through the rows, Enter opens one.
    await _flush_sessions(harness)
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    await page.keyboard.press("k")
    await expect(rows.first.locator("a.row")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(rf"/ui/messages/{UUID}$"))
    await expect(page.get_by_role("heading", name="Confirm your account")).to_be_visible()

    # The HTML is rendered in the sandboxed frame, and none of its script ran.
    frame = page.frame_locator("iframe.mail-frame")
    await expect(frame.locator("#greeting")).to_have_text("Hello from the shop")
    await expect(frame.locator("#victim")).to_have_text("untouched")
    assert await page.title() == "Confirm your account · Mailharness"
    assert await page.evaluate("window.__posted") == []
    assert net.beacon == [] and net.images == [], "nothing remote is fetched by default"
    await shot(page, "message-html")

    # Remote images load only when asked, and still no script runs.
    await page.get_by_role("link", name="Load remote images").click()
    await expect(frame.locator("#greeting")).to_have_text("Hello from the shop")
    await asyncio.wait_for(net.image_loaded.wait(), 15)
    assert net.images == [REMOTE_IMAGE]
    await expect(frame.locator("#victim")).to_have_text("untouched")
    assert net.beacon == [] and await page.evaluate("window.__posted") == []

    # The attachment downloads byte for byte.
    await page.get_by_role("tab", name="Attachments (1)").click()
    async with page.expect_download() as info:
        await page.get_by_role("link", name="report.bin").click()
    download = await info.value
    assert download.suggested_filename == "report.bin"
    assert Path(await download.path()).read_bytes() == ATTACHMENT

    await page.get_by_role("tab", name=re.compile(r"^Links & codes")).click()
    panel = page.locator("#p-links")
    await expect(panel).to_contain_text("731946")
    await expect(panel.get_by_role("link", name="https://app.example/confirm?t=1")).to_be_visible()

    await page.keyboard.press("3")  # the third tab: headers
    await expect(page.locator("#p-headers")).to_be_visible()
    subject_row = page.locator("#p-headers tr", has=page.locator("th", has_text="Subject"))
    await expect(subject_row).to_contain_text("Confirm your account")

    await page.get_by_role("tab", name="Raw source").click()
    await expect(page.locator("#p-raw pre")).to_contain_text("Content-Type: multipart/mixed")

    await page.get_by_role("tab", name="SMTP session").click()
    transcript = page.locator("#p-session table")
    await expect(transcript).to_contain_text("MAIL FROM:<shop@example.com>")
    await expect(transcript).to_contain_text("250 2.0.0 Ok: queued as")
    await shot(page, "message-session")

    # Back to the inbox (u): the opened message is read, the other still unread.
    await page.keyboard.press("u")
    await expect(page).to_have_url(re.compile(rf"/ui/inboxes/{UUID}$"))
    await expect(rows.first).not_to_have_class(re.compile(r"\bunread\b"))
    await expect(rows.nth(1)).to_have_class(re.compile(r"\bunread\b"))
    await expect(page).to_have_title(f"(1) {address} · Mailharness")


@pytest.mark.parametrize(
    "settings_overrides", [{"retry_min_backoff": 600, "retry_max_backoff": 900}]
)
async def test_delivery_timelines_and_fault_rules(harness: Harness, page: Page, shot: Shot) -> None:
    base = harness.base_url
    sender = await harness.create_inbox(address="sender")
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))

    # Two rules made in the UI: an unknown user and a greylisting server.
    await page.goto(f"{base}/ui/rules")
    for recipient, code, enhanced, text in (
        ("nobody@mailharness.test", "550", "5.1.1", "No such user"),
        ("later@mailharness.test", "451", "4.7.1", "Greylisted"),
    ):
        form = page.locator("form[action='/ui/rules']")
        await form.get_by_label("Stage").select_option("rcpt")
        await form.get_by_label("Recipient glob").fill(recipient)
        await form.get_by_label("Reply code").fill(code)
        await form.get_by_label("Enhanced").fill(enhanced)
        await form.get_by_label("Text").fill(text)
        await form.get_by_role("button", name="Add rule").click()
        await expect(page.locator("table.rules")).to_contain_text(recipient)
        if await page.locator("details.create[open]").count() == 0:
            await page.get_by_text("Add a rule…").click()
    await expect(page.locator("td[data-hits]")).to_have_text(["0", "0"])

    # The sent page is open and live when the message is queued through the API.
    await page.goto(f"{base}/ui/inboxes/{sender['id']}/sent")
    await expect(page.locator("[data-live-state]")).to_have_text(re.compile(r"^Live"))
    await page.evaluate("window.__sameDocument = true")
    resp = await harness.http.post(
        f"/api/v1/inboxes/{sender['id']}/send",
        json={
            "to": ["nobody@mailharness.test", "later@mailharness.test", "ok@mailharness.test"],
            "subject": "Welcome",
            "text": "Hi",
        },
    )
    assert resp.status_code == 202, resp.text
    card = page.locator(f"#o-{resp.json()['id']}")
    bounced = card.locator(".delivery", has_text="nobody@mailharness.test")
    deferred = card.locator(".delivery", has_text="later@mailharness.test")
    delivered = card.locator(".delivery", has_text="ok@mailharness.test")
    await expect(bounced).to_have_attribute("data-state", "bounced")
    await expect(deferred).to_have_attribute("data-state", "deferred")
    await expect(delivered).to_have_attribute("data-state", "delivered")
    assert await page.evaluate("window.__sameDocument") is True, "the page was reloaded"

    await expect(bounced.locator(".timeline .ev-type")).to_have_text(
        ["queued", "attempt", "bounced"]
    )
    await expect(bounced.locator(".ev-bounced")).to_contain_text("550 5.1.1 No such user")
    await expect(bounced.locator(".reply")).to_contain_text("550 5.1.1 No such user")
    await expect(deferred.locator(".ev-deferred")).to_contain_text("451 4.7.1 Greylisted")
    await expect(deferred).to_contain_text("next retry")
    await expect(deferred).to_contain_text("1 attempt")
    await shot(page, "sent-timelines")

    # The compose form queues mail from the inbox too.
    await page.get_by_text("Send a message from this inbox…").click()
    await page.get_by_label("To").fill("ok@mailharness.test")
    await page.get_by_label("Subject").fill("From the form")
    await page.get_by_role("button", name="Queue it").click()
    await expect(page.locator("[data-outbound]").first).to_contain_text("From the form")

    # Hits are counted, live; a rule is deleted from the UI.
    await page.goto(f"{base}/ui/rules")
    nobody = page.locator("tr", has_text="nobody@mailharness.test")
    later = page.locator("tr", has_text="later@mailharness.test")
    await expect(nobody.locator("td[data-hits]")).to_have_text("1")
    await expect(later.locator("td[data-hits]")).to_have_text("1")
    await page.evaluate("window.__sameDocument = true")
    async with aiosmtplib.SMTP(hostname=harness.smtp_host, port=harness.smtp_port) as client:
        await client.ehlo()
        await client.mail("app@example.com")
        with pytest.raises(aiosmtplib.SMTPRecipientRefused):
            await client.rcpt("later@mailharness.test")
    await expect(later.locator("td[data-hits]")).to_have_text("2")
    assert await page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    await nobody.get_by_role("button", name="Delete").click()
    await expect(page.locator("tr", has_text="nobody@mailharness.test")).to_have_count(0)
    assert len((await harness.http.get("/api/v1/rules")).json()["items"]) == 1

    # The bounce put a delivery-status notification into the sender's inbox.
    await page.goto(f"{base}/ui/inboxes/{sender['id']}")
    await expect(page.locator("[data-message-id]").first).to_contain_text(
        "Undelivered Mail Returned to Sender"
    )
    await page.goto(f"{base}/ui/status")
    await expect(page.locator("[data-queue-depth]")).to_have_text("1")


async def test_keyed_mode_asks_for_a_key_and_shows_one_tenant(
    harness: Harness, context: BrowserContext, page: Page, shot: Shot
) -> None:
    base, http = harness.base_url, harness.http
    _, alice = await harness.runtime.keys().create("alice")
    _, bob = await harness.runtime.keys().create("bob")
    mine = (
        await http.post("/api/v1/inboxes", json={"address": "alice"}, headers={"X-API-Key": alice})
    ).json()
    theirs = (
        await http.post("/api/v1/inboxes", json={"address": "bob"}, headers={"X-API-Key": bob})
    ).json()
    await harness.send("a@example.com", [mine["address"]], simple_mail(to=mine["address"]))
    await harness.send("b@example.com", [theirs["address"]], simple_mail(to=theirs["address"]))

    await page.goto(f"{base}/")
    await expect(page).to_have_url(re.compile(r"/ui/login\?next=%2F$"))
    await expect(page.get_by_role("heading", name="API key needed")).to_be_visible()
    await shot(page, "login")
    await page.get_by_label("API key").fill("mhk_not-a-key")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_have_text("That key is unknown or revoked.")
    await page.get_by_label("API key").fill(alice)
    await page.get_by_role("button", name="Log in").click()

    await expect(page).to_have_url(f"{base}/")
    await expect(page.locator(".inbox-list")).to_contain_text("alice@mailharness.test")
    assert "bob@mailharness.test" not in await page.content()
    [cookie] = [c for c in await context.cookies() if c["name"] == "mailharness_key"]
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert "mhk_" not in await page.evaluate("document.cookie"), "scripts can read the key"

    # The live view authenticates its event stream with the cookie.
    await page.get_by_role("link", name=re.compile("alice@mailharness.test")).click()
    await expect(page.locator("[data-message-id]")).to_have_count(1)
    await expect(page.locator("[data-live-state]")).to_have_text(re.compile(r"^Live"))
    await harness.send("shop@example.com", [mine["address"]], rich_mail(mine["address"]))
    await expect(page.locator("[data-message-id]").first).to_contain_text("Confirm your account")

    # The framed HTML and the downloads authenticate with the cookie as well.
    await page.locator("[data-message-id] a.row").first.click()
    frame = page.frame_locator("iframe.mail-frame")
    await expect(frame.locator("#greeting")).to_have_text("Hello from the shop")
    await page.get_by_role("tab", name="Attachments (1)").click()
    async with page.expect_download() as info:
        await page.get_by_role("link", name="report.bin").click()
    assert Path(await (await info.value).path()).read_bytes() == ATTACHMENT

    # Another tenant's inbox does not exist for this key.
    resp = await page.goto(f"{base}/ui/inboxes/{theirs['id']}")
    assert resp is not None and resp.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    await page.goto(f"{base}/ui/search?q=hello")
    assert "bob@mailharness.test" not in await page.content()

    await page.get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(re.compile(r"/ui/login"))
    await page.goto(f"{base}/ui/rules")
    await expect(page).to_have_url(re.compile(r"/ui/login\?next=%2Fui%2Frules$"))


async def _readable(page: Page, url: str) -> dict[str, Any]:
    await page.goto(url)
    result: dict[str, Any] = await page.evaluate(
        """() => ({
            overflow: document.documentElement.scrollWidth - window.innerWidth,
            background: getComputedStyle(document.body).backgroundColor,
            color: getComputedStyle(document.body).color,
        })"""
    )
    return result


def _luminance(css: str) -> float:
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


async def test_narrow_screens_and_dark_mode(harness: Harness, browser: Any, shot: Shot) -> None:
    base = harness.base_url
    inbox = await harness.create_inbox(
        address="a-rather-long-address-for-a-phone-screen", tags=["qa", "signup"]
    )
    await harness.send("shop@example.com", [inbox["address"]], rich_mail(inbox["address"]))
    msg = (await harness.http.get(f"/api/v1/inboxes/{inbox['id']}/wait")).json()["items"][0]
    await harness.http.post(
        f"/api/v1/inboxes/{inbox['id']}/send",
        json={"to": ["ok@mailharness.test", "someone@example.com"], "subject": "Hi"},
    )
    await harness.http.post(
        "/api/v1/rules",
        json={"match": {"recipient": "*@example.com"}, "stage": "rcpt", "reply": {"code": 550}},
    )
    pages = {
        "index": f"{base}/",
        "inbox": f"{base}/ui/inboxes/{inbox['id']}",
        "message": f"{base}/ui/messages/{msg['id']}",
        "sent": f"{base}/ui/inboxes/{inbox['id']}/sent",
        "rules": f"{base}/ui/rules",
        "status": f"{base}/ui/status",
        "search": f"{base}/ui/search?q=confirm",
    }
    for mode, viewport, scheme in (
        ("narrow", {"width": 390, "height": 844}, "light"),
        ("dark", {"width": 1280, "height": 860}, "dark"),
        ("narrow-dark", {"width": 390, "height": 844}, "dark"),
    ):
        shown = pages if mode != "narrow-dark" else {k: pages[k] for k in ("inbox", "message")}
        ctx = await browser.new_context(viewport=viewport, color_scheme=scheme)
        try:
            page = await ctx.new_page()
            for name, url in shown.items():
                seen = await _readable(page, url)
                assert seen["overflow"] <= 0, f"{name} scrolls sideways at {viewport}"
                dark = _luminance(seen["background"]) < 0.2 and _luminance(seen["color"]) > 0.7
                assert dark == (scheme == "dark"), (name, scheme, seen)
                await shot(page, f"{name}-{mode}")
        finally:
            await ctx.close()
