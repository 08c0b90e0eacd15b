"""Mailpit search strings translated for our search service: only the matching
difference (Mailpit's substrings -> our word prefixes) is rewritten."""

from __future__ import annotations

import pytest

from app.compat.mailpit.search import to_query


@pytest.mark.parametrize(
    ("mailpit", "ours"),
    [
        ("Welc", "Welc*"),
        ("subject:Pass", "subject:Pass*"),
        ("SUBJECT:Pass", "SUBJECT:Pass*"),
        ('subject:"Password reset"', 'subject:"Password reset"'),
        ('"exact phrase" word', '"exact phrase" word*'),
        ("from:a@b.test to:@c.test cc:dave", "from:a@b.test to:@c.test cc:dave"),
        ("-spam !junk", "-spam* !junk*"),
        ("is:unread has:attachments", "is:unread has:attachments"),
        (
            "after:2026-01-01 before:2026-12-31 larger:2MB",
            "after:2026-01-01 before:2026-12-31 larger:2MB",
        ),
        ("message-id:abc@x.test", "message-id:abc@x.test"),
        ("word* hello.", "word* hello."),
        ("NOT foo", "NOT* foo*"),  # Mailpit has no NOT operator: it is a word there
    ],
)
def test_words_become_prefixes_and_the_rest_passes_through(mailpit: str, ours: str) -> None:
    assert to_query(mailpit) == ours


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_is_everything(blank: str | None) -> None:
    assert to_query(blank) is None
