"""Use cases behind the API: each takes the database and the caller's tenant."""

from __future__ import annotations
