"""Unit tests of app.mail.extract: links and one-time codes from decoded bodies."""

from __future__ import annotations

import time

import pytest

from app.mail.extract import find_codes, find_links, html_to_text

# --------------------------------------------------------------------------
# Links
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Go to https://example.com/a.", ["https://example.com/a"]),
        ("Go to https://example.com/a...", ["https://example.com/a"]),
        ("Really https://example.com/a?!", ["https://example.com/a"]),
        (
            "https://example.com/a, then https://example.com/b;",
            ["https://example.com/a", "https://example.com/b"],
        ),
        ("Open https://example.com/a: now", ["https://example.com/a"]),
        ("'https://example.com/q'", ["https://example.com/q"]),
        ('say "https://example.com/q"', ["https://example.com/q"]),
        ("*https://example.com/bold*", ["https://example.com/bold"]),
        ("`https://example.com/code`", ["https://example.com/code"]),
        # Query strings and fragments keep their inner punctuation.
        ("https://example.com/r?a=1&b=2.3#frag.", ["https://example.com/r?a=1&b=2.3#frag"]),
        ("https://example.com/path/", ["https://example.com/path/"]),
        # Parentheses and brackets: kept when balanced inside the URL.
        ("(see https://example.com/a)", ["https://example.com/a"]),
        ("(see https://example.com/a).", ["https://example.com/a"]),
        ("https://en.wikipedia.org/wiki/Foo_(bar)", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("(https://en.wikipedia.org/wiki/Foo_(bar)).", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("[https://example.com/x]", ["https://example.com/x"]),
        ("https://example.com/list[1]", ["https://example.com/list[1]"]),
        ("{https://example.com/y}", ["https://example.com/y"]),
        # Angle brackets end a URL.
        ("<https://example.com/a>", ["https://example.com/a"]),
        ("Link:<https://example.com/b>next", ["https://example.com/b"]),
        # Whitespace of any kind ends a URL.
        (
            "https://example.com/a\thttps://example.com/b\nhttps://example.com/c",
            ["https://example.com/a", "https://example.com/b", "https://example.com/c"],
        ),
        # Scheme is case-insensitive and kept as written.
        ("HTTPS://EXAMPLE.COM/Upper", ["HTTPS://EXAMPLE.COM/Upper"]),
        ("http://plain.example/x", ["http://plain.example/x"]),
        # Duplicates are kept once, in first-seen order.
        (
            "https://b.example https://a.example https://b.example.",
            ["https://b.example", "https://a.example"],
        ),
        # Plain text is not html: entities are not unescaped there.
        ("https://example.com/?a=1&amp;b=2", ["https://example.com/?a=1&amp;b=2"]),
    ],
)
def test_links_in_text(text: str, expected: list[str]) -> None:
    assert find_links(text, None) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no links here",
        "http:// and https:// alone",
        "http://",
        "ftp://example.com/file",
        "mailto:someone@example.com",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "tel:+14155552671",
        "www.example.com without a scheme",
        "httpx://example.com/not-http",
    ],
)
def test_no_links_in_text(text: str) -> None:
    assert find_links(text, None) == []


def test_no_bodies() -> None:
    assert find_links(None, None) == []
    assert find_links("", "") == []


def test_html_hrefs_first_in_document_order_then_text_urls() -> None:
    html = (
        '<p><a href="https://example.com/second-in-text">one</a>'
        '<map><area href="https://example.com/area" alt=""></map>'
        '<a href="https://example.com/third">three</a></p>'
    )
    text = "Start https://example.com/first then https://example.com/second-in-text"
    assert find_links(text, html) == [
        "https://example.com/second-in-text",
        "https://example.com/area",
        "https://example.com/third",
        "https://example.com/first",
    ]


def test_html_href_entities_are_unescaped() -> None:
    html = '<a href="https://example.com/r?token=Zx9&amp;uid=10&#38;x=&quot;y&quot;">go</a>'
    assert find_links(None, html) == ['https://example.com/r?token=Zx9&uid=10&x="y"']


def test_same_url_in_html_and_text_is_listed_once() -> None:
    html = '<a href="https://example.com/r?a=1&amp;b=2">Reset</a>'
    text = "Reset: https://example.com/r?a=1&b=2."
    assert find_links(text, html) == ["https://example.com/r?a=1&b=2"]


def test_html_non_http_hrefs_are_ignored() -> None:
    html = (
        '<a href="mailto:help@example.com">mail</a>'
        '<a href="tel:+15551234">call</a>'
        '<a href="javascript:void(0)">js</a>'
        '<a href="ftp://example.com/f">ftp</a>'
        '<a href="#top">top</a>'
        '<a href="/relative/path">rel</a>'
        '<a href="https://">empty</a>'
        "<a>no href</a>"
        '<a href="">blank</a>'
        '<a href="  https://example.com/kept  ">kept</a>'
    )
    assert find_links(None, html) == ["https://example.com/kept"]


def test_only_a_and_area_hrefs_count() -> None:
    html = (
        '<link rel="stylesheet" href="https://cdn.example.com/style.css">'
        '<img src="https://cdn.example.com/pixel.gif">'
        '<base href="https://example.com/base/">'
        '<a href="https://example.com/link">x</a>'
    )
    assert find_links(None, html) == ["https://example.com/link"]


def test_html_only_uses_visible_text_urls() -> None:
    html = (
        "<html><head><title>https://title.example/x</title>"
        "<style>a{background:url(https://style.example/bg.png)}</style></head>"
        "<body><p>Copy: https://visible.example/a?x=1&amp;y=2.</p>"
        '<script>var u = "https://script.example/s";</script>'
        "<!-- https://comment.example/c -->"
        '<a href="https://visible.example/b">https://visible.example/b</a>'
        "</body></html>"
    )
    assert find_links(None, html) == [
        "https://visible.example/b",
        "https://visible.example/a?x=1&y=2",
    ]


def test_html_text_is_not_scanned_when_there_is_a_text_body() -> None:
    html = "<p>Only here: https://html-only.example/x</p>"
    assert find_links("text without links", html) == []
    # A blank text body counts as no text body.
    assert find_links("  \n\t ", html) == ["https://html-only.example/x"]


def test_pathological_trailing_brackets_are_linear() -> None:
    text = "http://a" + ")" * 200_000 + " https://example.com/ok"
    start = time.perf_counter()
    links = find_links(text, None)
    assert time.perf_counter() - start < 2.0
    assert links == ["http://a", "https://example.com/ok"]
    balanced = "https://example.com/" + "(" * 50_000 + ")" * 50_001
    assert find_links(balanced, None) == ["https://example.com/" + "(" * 50_000 + ")" * 50_000]


# --------------------------------------------------------------------------
# Codes
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Your code is 123456", ["123456"]),
        ("code: 1234", ["1234"]),
        ("code: 12345678", ["12345678"]),
        ("482913", ["482913"]),
        ("Code:482913.", ["482913"]),
        ("(482913)", ["482913"]),
        ("'482913', then", ["482913"]),
        ('"482913"', ["482913"]),
        ("Use 4829 13 later", ["4829"]),
        ("line one\n654321\nline three", ["654321"]),
        ("Ticket #4821 is resolved", ["4821"]),
        ("first 1111 second 2222 third 3333", ["1111", "2222", "3333"]),
        # De-duplicated in first-seen order.
        ("111111 222222 111111 333333 222222", ["111111", "222222", "333333"]),
        # Too short or too long.
        ("123 and 123456789 and 1234567890", []),
        # Not dates.
        ("on 2026-11-28", []),
        ("on 28/11/2026", []),
        ("on 11.28.2026", []),
        ("on 2026/11/28 or 2026.11.28", []),
        ("at 2026-11-28T12:30:00Z", []),
        # Not times.
        ("at 12:30", []),
        ("from 09:00 to 17:45:30", []),
        ("1230:45 and 12:3045", []),
        # Not prices, decimals, thousands.
        ("total 1,234", []),
        ("total 12.50", []),
        ("total 1234.56", []),
        ("total 1,234.56 or 12,345,678", []),
        ("pi is 3.14159", []),
        ("$1234 or €5678 or £9012 or ¥3456 or ₹7890", []),
        # Not phone numbers.
        ("Call +14155552671 or +4989123456", []),
        ("Call 555-1234 or 1-800-555-0199", []),
        ("Call (555) 123-4567", []),
        # Not versions.
        ("version 1.2345 or 2.0.12345", []),
        # Not glued to letters, underscores or @.
        ("abc123456 123456abc A1234 1234x", []),
        ("_1234 1234_ x_5678_y", []),
        ("user1234@example.com or 5678@example.com or a@9012", []),
        ("Ab1234Cd and zürich1234", []),
        # Only ASCII digits.
        ("١٢٣٤٥٦ ۱۲۳۴ ४५६७", []),
    ],
)
def test_codes_in_text(text: str, expected: list[str]) -> None:
    assert find_codes(text, None) == expected


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/reset?code=123456",
        "http://example.com/123456/",
        "https://example.com/a/654321 and more",
        "Link: <https://example.com/verify/482913>",
    ],
)
def test_codes_inside_urls_are_ignored(text: str) -> None:
    assert find_codes(text, None) == []


def test_code_next_to_a_url_is_found() -> None:
    text = "Open https://example.com/verify/111111 and type 482913."
    assert find_codes(text, None) == ["482913"]


def test_codes_and_not_codes_mixed() -> None:
    text = (
        "We received a request on 2026-11-28 at 12:30 (UTC).\n"
        "Your one-time code is: 482913\n"
        "Or open https://app.example.com/reset?token=Zx9k2&uid=1042&ts=20261128.\n"
        "Call +14155552671 or 1-800-555-0199. Order total: $1,234.56, ref 12345678901.\n"
        "Backup code 7731, again 482913.\n"
    )
    assert find_codes(text, None) == ["482913", "7731"]


def test_html_only_codes_come_from_visible_text() -> None:
    html = (
        "<html><head><title>Code 121212</title>"
        "<style>.c{color:#654321} .d{width:1234px}</style>"
        "<script>var x = 777777;</script></head>"
        '<body><p data-code="999999" title="888888" class="c123456">'
        'Code <b id="345678">482913</b></p>'
        '<img src="https://example.com/p/565656.png" alt="">'
        "<!-- 343434 -->"
        "</body></html>"
    )
    assert find_codes(None, html) == ["482913"]


def test_html_inline_tags_join_and_blocks_separate() -> None:
    assert find_codes(None, "<p>Code: <b>12</b><i>34</i></p>") == ["1234"]
    assert find_codes(None, "<p>Code: <span>98</span>7654</p>") == ["987654"]
    assert find_codes(None, "<table><tr><td>12</td><td>3456</td></tr></table>") == ["3456"]
    assert find_codes(None, "<p>12</p><p>345678</p>") == ["345678"]


def test_html_character_references_are_decoded() -> None:
    assert find_codes(None, "<p>Code &#52;&#56;&#50;&#57;&#49;&#51;</p>") == ["482913"]
    assert find_codes(None, "<p>&pound;1234 or &euro;5678</p>") == []


def test_html_codes_ignored_when_there_is_a_text_body() -> None:
    html = "<p>Code <b>482913</b></p>"
    assert find_codes("no code in the text", html) == []
    assert find_codes("text code 135790", html) == ["135790"]
    assert find_codes(" \n ", html) == ["482913"]


def test_no_codes_without_bodies() -> None:
    assert find_codes(None, None) == []
    assert find_codes("", "") == []


# --------------------------------------------------------------------------
# html_to_text
# --------------------------------------------------------------------------


def test_html_to_text_drops_hidden_elements_and_unescapes() -> None:
    html = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<p>Caf&eacute; &amp; <b>bar</b></p><script>x()</script>"
        "<template>tpl</template><noscript>ns</noscript><p>end</p></body></html>"
    )
    text = html_to_text(html)
    assert "Café & bar" in text
    assert "end" in text
    for hidden in ("T", "p{}", "x()", "tpl", "ns"):
        assert hidden not in text.split()


def test_html_to_text_survives_broken_markup() -> None:
    assert "text" in html_to_text("<p>text<div <b>unclosed")
    assert html_to_text("") == ""
    assert "after" in html_to_text("<script>never closed</script><p>after")
