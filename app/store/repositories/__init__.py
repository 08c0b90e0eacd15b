"""Repositories, one per aggregate. Each is scoped to one tenant at construction,
so every query they build carries the tenant filter and no route can forget it."""

from __future__ import annotations
