# Mailharness: SMTP sink + store + REST API in one process.
#
#   docker build -t mailharness .
#   docker run --rm -p 8025:8025 -p 2525:2525 -v mailharness-data:/data mailharness
#
# The source tree stays at /srv/mailharness and is installed in editable mode:
# app/store/migrate.py finds the Alembic scripts at <source>/migrations, next to
# app/, which a regular (non-editable) install into site-packages would lose.

FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /srv/mailharness

# Dependencies first, from pyproject.toml alone, so code changes reuse this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The package itself (README.md is needed: pyproject.toml names it as the readme).
COPY README.md ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-deps -e . \
    && python -c "import app.store.migrate as m; assert (m.MIGRATIONS_DIR / 'env.py').is_file(), m.MIGRATIONS_DIR"

# Unprivileged user; /data is the only place it writes.
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home mailharness \
    && mkdir -p /data \
    && chown mailharness:mailharness /data

ENV MAILHARNESS_DATA_DIR=/data \
    MAILHARNESS_HOST=0.0.0.0 \
    MAILHARNESS_HTTP_PORT=8025 \
    MAILHARNESS_SMTP_PORT=2525

VOLUME ["/data"]
WORKDIR /data
USER mailharness

EXPOSE 8025 2525

# No curl in the slim image: probe /healthz with the standard library.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/healthz' % os.environ.get('MAILHARNESS_HTTP_PORT', '8025'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]

# `serve` migrates the store first, then runs HTTP and SMTP; it stops cleanly on SIGTERM.
CMD ["mailharness", "serve"]
