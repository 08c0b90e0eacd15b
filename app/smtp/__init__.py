"""The SMTP edge (Postfix's smtpd): protocol only; every accepted message goes to ingest."""

from __future__ import annotations
