"""Where one request's time goes: cProfile of a benchmark app, in-process, on real PostgreSQL.

``uv run python bench/profile_request.py [--app users|transactional|baseline]``

wrk tells how much slower the chassis is than the baseline; this tells why. The app is
called as a WSGI callable in one thread, with no server and no network client in between,
so the figures are the app's own work plus one database round trip. The environment is set
as under Gunicorn (``PROMETHEUS_MULTIPROC_DIR`` makes metrics file-backed), and the same
apps as in ``benchmark.py`` are loaded with the same settings and an access token signed for this
run, so the profile is of the code that was load-tested, token verification included.
cProfile inflates code that makes many small calls; read it for shares, not for times.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import importlib.util
import os
import pstats
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
from werkzeug.test import EnvironBuilder

from credentials import generate_signing_key, issue_bench_token
from database import libpq_url, seed_users
from flotilla import load_settings
from flotilla.testing import migrate, postgres_database
from targets import users_env
from users import create_app
from users.config import UsersSettings

BENCH_DIR = Path(__file__).resolve().parent
PATHS = {
    "users": "/api/v1/users/{id}",
    "transactional": "/bench/users/{id}/transactional",
    "baseline": "/api/v1/users/{id}",
}
SEEDED_USERS = 1000
WARMUP_REQUESTS = 300

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def main() -> None:
    """Seed a throw-away database, time the requests, then profile the same requests."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", choices=sorted(PATHS), default="users")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--top", type=int, default=40, help="functions shown")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key")
    args = parser.parse_args()
    with postgres_database() as database_url, tempfile.TemporaryDirectory() as metrics_dir:
        env = users_env(database_url, generate_signing_key())
        settings = load_settings(UsersSettings, **env)
        prepare_database(settings)
        app = load_app(args.app, env, metrics_dir)
        token = issue_bench_token(settings, 1)
        environs = request_environs(PATHS[args.app], args.requests, token)
        serve(app, environs[:WARMUP_REQUESTS])
        started = time.perf_counter()
        serve(app, environs)
        elapsed = time.perf_counter() - started
        print(f"{args.app}: {elapsed / args.requests * 1e6:.0f} µs per request, unprofiled")
        profile = cProfile.Profile()
        profile.runcall(serve, app, environs)
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)
        dispose(app)


def prepare_database(settings: UsersSettings) -> None:
    """Migrate the users schema and insert ``SEEDED_USERS`` rows in one statement."""
    migrate(create_app(settings))
    with psycopg.connect(libpq_url(settings.DATABASE_URL)) as connection:
        seed_users(connection, SEEDED_USERS, "not-a-hash")


def load_app(name: str, env: dict[str, str], metrics_dir: str) -> WsgiApp:
    """Import the app the way Gunicorn would, with the environment the benchmark gives it."""
    os.environ.update(
        env,
        BASELINE_CONNINFO=libpq_url(env["DATABASE_URL"]),
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
    )
    if name == "users":
        return importlib.import_module("users.wsgi").app  # type: ignore[no-any-return]
    module_name = f"{name}_app"
    spec = importlib.util.spec_from_file_location(module_name, BENCH_DIR / f"{module_name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app  # type: ignore[no-any-return]


def request_environs(template: str, count: int, token: str) -> list[dict[str, Any]]:
    """WSGI environs for ``count`` GETs of random seeded ids, built before timing starts."""
    ids = (random.randint(1, SEEDED_USERS) for _ in range(count))
    headers = [("Authorization", f"Bearer {token}")]
    return [
        EnvironBuilder(path=template.format(id=user_id), headers=headers).get_environ()
        for user_id in ids
    ]


def serve(app: WsgiApp, environs: list[dict[str, Any]]) -> None:
    """Call the app once per environ and read the whole body, as a server would."""

    def start_response(status: str, _headers: Any, _exc_info: Any = None) -> None:
        if not status.startswith("200"):
            raise RuntimeError(f"unexpected status {status}")

    for environ in environs:
        b"".join(app(dict(environ), start_response))


def dispose(app: Any) -> None:
    """Close the app's pooled connections so the throw-away database can be dropped."""
    state = getattr(app, "extensions", {}).get("flotilla.db")
    if state is not None:
        state.engine.dispose()


if __name__ == "__main__":
    main()
