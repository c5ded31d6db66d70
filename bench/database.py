"""The logins' users database (migrate, seed), libpq URLs, and the PostgreSQL server's version."""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import make_url

from flotilla.data.migrations import upgrade
from flotilla.testing import postgres_server_url
from users import create_app
from users.config import UsersSettings
from users.passwords import passwords

SEEDED_PASSWORD = "bench-password"
"""Every seeded user's password (a throw-away database; S rules are off under bench/)."""


def prepare_database(settings: UsersSettings, users: int) -> tuple[int, int]:
    """Migrate the users schema, seed ``users`` rows; return the lowest and highest id.

    Every row gets the same password hash, made with the Argon2id cost in ``settings`` (the
    servers' own), so a login verifies at that cost and never re-hashes.
    """
    app = create_app(settings)
    upgrade(app)
    with app.app_context():
        password_hash = passwords().hash(SEEDED_PASSWORD)
    app.extensions["flotilla.db"].engine.dispose()
    with psycopg.connect(libpq_url(settings.DATABASE_URL), autocommit=True) as connection:
        seed_users(connection, users, password_hash)
        connection.execute("VACUUM ANALYZE users")
        row = connection.execute("SELECT min(id), max(id) FROM users").fetchone()
    assert row is not None
    print(f"seeded {users} users (ids {row[0]}..{row[1]})", flush=True)
    return int(row[0]), int(row[1])


def seed_users(connection: psycopg.Connection[Any], count: int, password_hash: str) -> None:
    """One set-based INSERT: the rows come from ``generate_series`` inside PostgreSQL."""
    connection.execute(
        """
        INSERT INTO users (username, email, password_hash, display_name, roles, is_active,
                           created_at, updated_at, password_changed_at)
        SELECT 'user' || n, 'user' || n || '@example.test', %(hash)s, 'User ' || n,
               '["customer"]'::json, true, now(), now(), now()
        FROM generate_series(1, %(count)s) AS n
        """,
        {"hash": password_hash, "count": count},
    )


def libpq_url(url: Any) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://...``) as a URL libpq understands."""
    return str(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))


def server_version() -> str:
    """The PostgreSQL server's version, as ``SHOW server_version`` reports it."""
    with psycopg.connect(libpq_url(postgres_server_url())) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"
