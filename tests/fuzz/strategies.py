"""Hypothesis strategies for hostile mail: mutated corpus messages and generated structures.

``mutated()`` starts from a message of ``tests/fixtures/*.eml`` and applies byte
flips, deletions, duplications and insertions of MIME-significant tokens (CRLFs,
boundaries, encoded words, transfer encodings, charsets, NUL, html openers).
``generated()`` builds messages from scratch: nested multiparts (down to far past
the nesting bound), encapsulated messages, many or long headers, bad charsets,
malformed RFC 2047, NUL bytes and long lines. ``hostile()`` is either.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CORPUS = [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))]

TOKENS = [
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b"--",
    b"\x00",
    b"\xff\xfe\x80",
    b"=?utf-8?B?",
    b"=?utf-8?Q?caf=C3=A9?=",
    b"=?bogus?Q?caf=E9?=",
    b"=?punycode?q?aaaaaaaa?=",
    b"=?utf-8?B?////?=",
    b"?=",
    b'; boundary="zz"',
    b"Content-Type: multipart/mixed; boundary=zz\r\n",
    b"\r\n--zz\r\n",
    b"\r\n--zz--\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Transfer-Encoding: x-uuencode\r\nbegin 644 x\r\n",
    b"; charset=utf-99",
    b"; charset=punycode",
    b"; charset=zlib_codec",
    b"=\r\n",
    b"=ZZ",
    b"<!--",
    b"<![",
    b"<a href='https://x.test/(",
    b"Content-Disposition: attachment; filename*0*=utf-8''%FF%FE; filename*1=x\r\n",
    b"x" * 3000,
    b"a=b; " * 300,
]

CHARSETS = [
    "utf-8",
    "us-ascii",
    "iso-8859-1",
    "utf-16",
    "utf-7",
    "shift_jis",
    "punycode",
    "idna",
    "zlib_codec",
    "base64",
    "utf-99",
    "",
    "x-unknown",
    "cp1252",
]
ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "gzip", "bogus"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "duplicate"]))
        pos = draw(st.integers(0, len(raw)))
        if op == "flip" and raw:
            raw[min(pos, len(raw) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            raw[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del raw[pos : pos + draw(st.integers(1, 200))]
        else:
            chunk = raw[pos : pos + draw(st.integers(1, 100))]
            raw[pos:pos] = chunk * draw(st.integers(1, 50))
    return bytes(raw)


header_names = st.sampled_from(
    [
        "Subject",
        "From",
        "To",
        "Cc",
        "Date",
        "Message-ID",
        "Reply-To",
        "X-Test",
        "Content-ID",
        "Received",
        "DKIM-Signature",
        "\x00Bad",
        "Sub ject",
        ":",
        "",
    ]
)
header_values = st.one_of(
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.sampled_from(
        [
            "=?utf-8?B?w6k=?=",
            "=?utf-8?B?w6",
            "=?iso-8859-1?q?caf=E9?= x",
            "=?punycode?q?" + "a" * 500 + "?=",
            '"unterminated <a@b',
            "<<<>>>",
            "a@b, , ,,",
            "(((((",
            "Mon, 99 Foo 99999",
            "=?x?y?z?=" * 50,
        ]
    ),
)


def _header(name: str, value: str) -> bytes:
    return (
        name.encode("utf-8", "surrogateescape") + b": " + value.encode("utf-8", "surrogateescape")
    )


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    ctype = draw(
        st.sampled_from(
            [
                "text/plain",
                "text/html",
                "application/octet-stream",
                "image/png",
                "text/plain; format=flowed",
                "message/delivery-status",
            ]
        )
    )
    charset = draw(st.sampled_from(CHARSETS))
    cte = draw(st.sampled_from(ENCODINGS))
    body = draw(
        st.one_of(
            st.binary(max_size=300),
            st.sampled_from(
                [
                    b"<!--<a " * 300,
                    b"code 123456 https://x.test/a",
                    b"\x00" * 100,
                    b"=E9=\r\n=ZZ",
                    b"!!!not base64===",
                    b"x" * 5000,
                ]
            ),
        )
    )
    extra = draw(st.lists(st.builds(_header, header_names, header_values), max_size=3))
    head = [
        b"Content-Type: " + ctype.encode() + (b"; charset=" + charset.encode() if charset else b""),
        b"Content-Transfer-Encoding: " + cte.encode(),
        *extra,
    ]
    if draw(st.booleans()):
        head.append(
            b'Content-Disposition: attachment; filename="'
            + draw(st.binary(max_size=40)).replace(b'"', b"")
            + b'"'
        )
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _multipart(children: list[bytes], boundary: bytes, close: bool) -> bytes:
    out = b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\npreamble\r\n'
    for child in children:
        out += b"--" + boundary + b"\r\n" + child + b"\r\n"
    return out + (b"--" + boundary + b"--\r\n" if close else b"")


@st.composite
def tree(draw: st.DrawFn, depth: int = 0) -> bytes:
    if depth >= 4 or draw(st.integers(0, 2)) == 0:
        return draw(leaf())
    kind = draw(st.sampled_from(["multipart", "multipart", "message"]))
    if kind == "message":
        return b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n" + draw(tree(depth + 1))
    children = draw(st.lists(tree(depth + 1), min_size=0, max_size=4))
    boundary = draw(st.sampled_from([b"b%d" % depth, b"zz", b"", b"a b", b"-" * 70]))
    return _multipart(children, boundary, draw(st.booleans()))


@st.composite
def generated(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.builds(_header, header_names, header_values), max_size=10))
    shape = draw(
        st.sampled_from(["tree", "deep", "deep_message", "many_headers", "long_line", "nul"])
    )
    top = b"From: fuzz@example.com\r\nSubject: fuzz\r\n" + b"\r\n".join(headers)
    top += b"\r\n" if headers else b""
    if shape == "tree":
        body = draw(tree())
    elif shape == "deep":
        n = draw(big(2000))
        body = (
            b"".join(
                b"Content-Type: multipart/mixed; boundary=d%d\r\n\r\n--d%d\r\n" % (i, i)
                for i in range(n)
            )
            + b"Content-Type: text/plain\r\n\r\ndeep\r\n"
            + b"".join(b"--d%d--\r\n" % i for i in reversed(range(n)))
        )
    elif shape == "deep_message":
        body = b"Content-Type: message/rfc822\r\n\r\n" * draw(big(400)) + b"Subject: x\r\n\r\ny"
    elif shape == "many_headers":
        body = b"X-Many: v\r\n" * draw(magnitude(500, 3000)) + b"\r\nbody"
    elif shape == "long_line":
        body = b"Content-Type: text/plain\r\n\r\n" + b"y" * draw(magnitude(1000, 20000))
    elif shape == "many_parts":
        body = (
            b"Content-Type: multipart/mixed; boundary=p\r\n\r\n"
            + b"--p\r\n\r\nx\r\n" * draw(big(20_000))
            + b"--p--\r\n"
        )
    elif shape == "long_parameters":
        body = (
            b"Content-Type: multipart/mixed; boundary=p\r\n\r\n--p\r\nContent-Type: text/plain; "
            + b"a=b; " * draw(big(20_000))
            + b"\r\n\r\nx\r\n--p--\r\n"
        )
    elif shape == "open_html":
        opener = draw(st.sampled_from([b"<!--", b"<![ ", b""]))
        body = b"Content-Type: text/html\r\n\r\n" + opener + b"<a " * draw(big(12_000))
    elif shape == "slow_charset":
        charset = draw(st.sampled_from([b"punycode", b"idna", b"zlib_codec"]))
        body = (
            b"Content-Type: text/plain; charset="
            + charset
            + b"\r\n\r\n"
            + b"a" * draw(big(100_000))
        )
    else:
        body = b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>\x00</p>" + b"\x00" * 100
    return top + body


def magnitude(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers in [low, high] that reach the top often (plain integers rarely do)."""
    return st.one_of(st.sampled_from([high, high // 4]), st.integers(low, high))


def big(high: int) -> st.SearchStrategy[int]:
    """A size that matters: these shapes exist to hit a bound (every one of them was
    slow or crashed the parser before its bound existed)."""
    return st.sampled_from([high // 4, high])


def hostile() -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(), generated())
