# syntax=docker/dockerfile:1
# One image per service from one file: docker build --build-arg SERVICE=users -t flotilla/users .
# SERVICE is users, catalog, orders or notifications. The same image runs every process of its
# service (web, migration, relay, worker); only the command and the environment differ.
# PYTHON_IMAGE and UV_IMAGE name where the interpreter and uv come from: the official images by
# default; any Debian bookworm with Python 3.11, and any image with uv at /uv, serve as well
# (`make containers` builds both from Debian's packages, where no registry is reachable).
ARG SERVICE=users
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.8

# uv itself, pinned: the same version that wrote uv.lock.
FROM ${UV_IMAGE} AS uv

# Builder: resolve nothing, install exactly what uv.lock says. Every dependency ships a wheel
# for this platform, so no compiler is installed here either.
FROM ${PYTHON_IMAGE} AS builder
ARG SERVICE
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_FROZEN=1 \
    UV_NO_DEV=1
WORKDIR /app
# Dependencies first, from the lock file and the workspace's pyproject files only: this layer
# is rebuilt when a dependency changes, not when the code does.
COPY pyproject.toml uv.lock ./
COPY libs/flotilla/pyproject.toml libs/flotilla/
COPY services/users/pyproject.toml services/users/
COPY services/catalog/pyproject.toml services/catalog/
COPY services/orders/pyproject.toml services/orders/
COPY services/notifications/pyproject.toml services/notifications/
COPY services/console/pyproject.toml services/console/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --no-install-workspace --package "flotilla-${SERVICE}"
# Then the code: the chassis and this service only (with its migrations, which the installed
# package finds beside its sources).
COPY libs/flotilla/ libs/flotilla/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --package "flotilla-${SERVICE}"

# Runtime: the interpreter, the virtual environment and the code; no uv, no compiler, no root.
FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
RUN groupadd --system --gid 10001 flotilla \
    && useradd --system --uid 10001 --gid flotilla --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin flotilla
WORKDIR /app
COPY --from=builder --chown=root:root /app /app
# VAR_DIR and the metrics directory are under /tmp: with a read-only root filesystem, /tmp is
# the one writable mount (an emptyDir in Kubernetes, a tmpfs in compose). The web server
# creates the metrics directory and hands it to its workers as PROMETHEUS_MULTIPROC_DIR; set
# for every process instead, it would stop the migrations, relays and worker, which do not
# create it. Both servers are configured alike, so WEB_SERVER=gunicorn is all a switch takes.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GRANIAN_BIND=0.0.0.0:8000 \
    GRANIAN_METRICS_DIR=/tmp/flotilla/metrics \
    GUNICORN_BIND=0.0.0.0:8000 \
    GUNICORN_METRICS_DIR=/tmp/flotilla/metrics \
    VAR_DIR=/tmp/flotilla
USER 10001:10001
EXPOSE 8000
# Liveness only: readiness checks the dependencies, and a restart cures none of them.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz/live', timeout=2)"]

# The default command of each service: its web server, granian unless WEB_SERVER=gunicorn
# (which then replaces flotilla serve in the same process). A final stage per service, picked
# by SERVICE below, keeps every command in exec form: the process gets the signals itself,
# as PID 1.
FROM runtime AS service-users
CMD ["flotilla", "serve", "users.wsgi:app"]

FROM runtime AS service-catalog
CMD ["flotilla", "serve", "catalog.wsgi:app"]

FROM runtime AS service-orders
CMD ["flotilla", "serve", "orders.wsgi:app"]

FROM runtime AS service-console
CMD ["flotilla", "serve", "console.wsgi:app"]

# The notifications image runs its worker: it has no web server, so no HTTP health check.
FROM runtime AS service-notifications
HEALTHCHECK NONE
CMD ["flask", "--app", "notifications", "tasks", "worker"]

# service-${SERVICE} is a stage above, not an image that a tag could pin.
# hadolint ignore=DL3006
FROM service-${SERVICE}
