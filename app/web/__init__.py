"""The web UI for people: server-rendered pages (Jinja2) over the per-tenant services.

``mount(app, runtime)`` serves it from the API process: the inbox list at ``/`` and
every page under ``/ui``. Pages call the same services as the REST API, with the same
tenant dependency (a header key, or the login cookie); a little vanilla JavaScript
adds live updates over the API's server-sent events, copy buttons and shortcuts.
"""

from __future__ import annotations

from app.web.app import create_web_app, mount

__all__ = ["create_web_app", "mount"]
