"""Extract links and one-time codes from decoded message bodies.

Pure functions, no I/O.

Inputs: the decoded text/plain body and/or the decoded text/html body of a
message (either may be None).

Outputs:
- find_links: every http(s) URL, html ``<a>``/``<area>`` hrefs first (document
  order, entities unescaped by html.parser), then URLs found in the plain text
  (or, when there is no text body, in the visible text of the html), with
  trailing punctuation removed, de-duplicated in order.
- find_codes: standalone runs of 4 to 8 ASCII digits that look like one-time
  codes (not part of a longer number, a word, a date/time, a decimal/price, a
  phone-like group, an e-mail address or a URL), de-duplicated in order.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["find_codes", "find_links", "html_to_text"]

# A URL in running text: scheme, then anything up to whitespace, angle
# brackets, quotes or backticks. Trailing punctuation is trimmed afterwards.
_URL_RE = re.compile(r"https?://[^\s<>\"`]+", re.IGNORECASE)
_TRAILING_PUNCT = ".,;:!?'\")]}>*"
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_DIGIT_RUN_RE = re.compile(r"[0-9]+")
_MIN_CODE_LEN = 4
_MAX_CODE_LEN = 8
# Characters that, glued directly to a digit run, mean it is not a code.
_BLOCKING_NEIGHBOURS = frozenset("_@")
# A separator between a digit run and another digit: date, time, decimal,
# thousands, version, phone groups (2026-11-28, 12:30, 1234.56, 1,234, 555-1234).
_NUMERIC_SEPARATORS = frozenset("-/:.,")
# Characters immediately before a digit run that make it a price or a phone.
_BLOCKING_PREFIXES = frozenset("+$€£¥₹")
_HREF_TAGS = frozenset({"a", "area"})
# Characters of an html body given to html.parser (links and visible text).
MAX_HTML_SCAN = 256 * 1024
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript"})
# Inline elements do not separate words visually; everything else does.
_INLINE_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "bdi",
        "bdo",
        "cite",
        "code",
        "data",
        "dfn",
        "em",
        "font",
        "i",
        "kbd",
        "mark",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "time",
        "tt",
        "u",
        "var",
        "wbr",
    }
)


class _HrefCollector(HTMLParser):
    """Collect href attribute values of <a> and <area> tags in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _HREF_TAGS:
            return
        for name, value in attrs:
            if name == "href" and value:
                self.hrefs.append(value.strip())


class _TextCollector(HTMLParser):
    """Collect the visible text of an html document (no script/style/head)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden_depth += 1
        self._separate(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._separate(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS and self._hidden_depth > 0:
            self._hidden_depth -= 1
        self._separate(tag)

    def handle_data(self, data: str) -> None:
        if self._hidden_depth == 0:
            self.chunks.append(data)

    def _separate(self, tag: str) -> None:
        if tag not in _INLINE_TAGS:
            self.chunks.append("\n")


def bounded_html(html: str) -> str:
    """The part of ``html`` that is safe to give html.parser: at most MAX_HTML_SCAN
    characters, cut before any construct left open at the end.

    html.parser rescans to the end of its input for every ``<`` of an unterminated
    comment, marked section or tag (CVE-2025-6069: 15 kB took 25 s), so the text
    is cut at the first ``<!--`` without a later ``-->``, the first ``<![`` without
    a later ``]>``, and the first ``<`` after the last ``>``. What is cut holds no
    complete tag, so no href is lost; only its plain text is not scanned."""
    html = html[:MAX_HTML_SCAN]
    for opener, closer in (("<!--", "-->"), ("<![", "]>")):
        start = html.find(opener, html.rfind(closer) + 1)
        if start >= 0:
            html = html[:start]
    tail = html.find("<", html.rfind(">") + 1)
    return html[:tail] if tail >= 0 else html


def _feed(parser: HTMLParser, html: str) -> None:
    """Run an HTMLParser over the bounded html; html.parser is lenient and does not raise."""
    parser.feed(bounded_html(html))
    parser.close()


def html_to_text(html: str) -> str:
    """Return the visible text of html: tags dropped, script/style/head skipped."""
    collector = _TextCollector()
    _feed(collector, html)
    return "".join(collector.chunks)


def _html_hrefs(html: str) -> list[str]:
    """Return the http(s) hrefs of <a>/<area> tags, entities unescaped."""
    collector = _HrefCollector()
    _feed(collector, html)
    return [href for href in collector.hrefs if _is_http_url(href)]


def _is_http_url(value: str) -> bool:
    """True if value starts with http:// or https:// and has something after it."""
    lowered = value.lower()
    for scheme in ("http://", "https://"):
        if lowered.startswith(scheme) and len(value) > len(scheme):
            return True
    return False


def _trim_url(url: str) -> str:
    """Strip trailing punctuation that belongs to the sentence, not the URL.

    A closing bracket is kept when the URL contains the matching opening one
    (e.g. https://en.wikipedia.org/wiki/Foo_(bar)). Linear: bracket counts are
    taken once and updated as characters are dropped.
    """
    counts = {char: url.count(char) for char in "()[]{}"}
    end = len(url)
    while end and url[end - 1] in _TRAILING_PUNCT:
        last = url[end - 1]
        opener = _CLOSERS.get(last)
        if opener is not None:
            if counts[opener] >= counts[last]:
                break
            counts[last] -= 1
        end -= 1
    return url[:end]


def _text_urls(text: str) -> list[str]:
    """Return the http(s) URLs found in plain text, trimmed, in order."""
    urls = (_trim_url(match.group(0)) for match in _URL_RE.finditer(text))
    return [url for url in urls if _is_http_url(url)]


def _plain_source(text: str | None, html: str | None) -> str:
    """Text to scan for plain-text URLs and codes: the text body, else html text."""
    if text is not None and text.strip():
        return text
    if html:
        return html_to_text(html)
    return ""


def find_links(text: str | None, html: str | None) -> list[str]:
    """Return html hrefs then plain-text URLs, de-duplicated in first-seen order."""
    links: list[str] = []
    if html:
        links.extend(_html_hrefs(html))
    links.extend(_text_urls(_plain_source(text, html)))
    return list(dict.fromkeys(links))


def _blank_urls(text: str) -> str:
    """Replace every URL by spaces of the same length so offsets are kept."""
    return _URL_RE.sub(lambda match: " " * len(match.group(0)), text)


def _glued_to_word(char: str) -> bool:
    """True if char, adjacent to a digit run, makes the run part of a token."""
    return char.isalnum() or char in _BLOCKING_NEIGHBOURS


def _separated_number(text: str, sep_index: int, digit_index: int) -> bool:
    """True if text[sep_index] is a numeric separator and text[digit_index] a digit."""
    if not 0 <= sep_index < len(text) or not 0 <= digit_index < len(text):
        return False
    return text[sep_index] in _NUMERIC_SEPARATORS and text[digit_index].isdigit()


def _is_code_at(text: str, start: int, end: int) -> bool:
    """Decide whether the digit run text[start:end] is a standalone code."""
    if not _MIN_CODE_LEN <= end - start <= _MAX_CODE_LEN:
        return False
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    if (before and _glued_to_word(before)) or (after and _glued_to_word(after)):
        return False
    if before and before in _BLOCKING_PREFIXES:
        return False
    if _separated_number(text, start - 1, start - 2):
        return False
    return not _separated_number(text, end, end + 1)


def find_codes(text: str | None, html: str | None) -> list[str]:
    """Return 4-8 digit one-time codes from the text body (else the html's text)."""
    source = _blank_urls(_plain_source(text, html))
    codes = [
        match.group(0)
        for match in _DIGIT_RUN_RE.finditer(source)
        if _is_code_at(source, match.start(), match.end())
    ]
    return list(dict.fromkeys(codes))
