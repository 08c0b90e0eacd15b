"""The store: SQLAlchemy 2 async engine, table models and repositories.

Repositories only add, flush and query; the caller (ingest, API services)
owns the transaction and commits.
"""

from __future__ import annotations
