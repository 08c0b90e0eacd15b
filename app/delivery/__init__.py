"""Delivery (Postfix's qmgr + smtp/local agents): the durable queue in the store, the
worker that claims and delivers, the pure retry policy, and the transports."""

from __future__ import annotations
