"""One database per service from one ``DATABASE_URL``, for ``make run`` and ``make demo``.

Every service keeps its own tables and its own Alembic history, so two services must never
share a database. When only ``DATABASE_URL`` is given it is read as a template: each service
gets the database named after it, ``<name>_<service>``
(``postgresql+psycopg://postgres@127.0.0.1/shop`` → ``shop_users``, ``shop_catalog``,
``shop_orders``, ``shop_notifications``; ``sqlite:///shop.db`` → ``shop_users.db`` ...).
On PostgreSQL, :func:`ensure_database` creates a missing one through the server's
``postgres`` maintenance database, as the URL's user.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from sqlalchemy import make_url


def service_database_url(url: str, service: str) -> str:
    """``url`` with its database (PostgreSQL) or file stem (SQLite) suffixed ``_<service>``."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite":
        stem, dot, extension = database.rpartition(".")
        renamed = f"{stem}_{service}.{extension}" if dot and "/" not in extension else ""
        database = renamed or f"{database}_{service}"
    else:
        database = f"{database or parsed.username or 'flotilla'}_{service}"
    return parsed.set(database=database).render_as_string(hide_password=False)


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database of ``url`` if it is missing; True if it was created.

    Other backends are left alone: SQLite makes its file on first use.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        return False
    server = parsed.set(drivername="postgresql", database="postgres")
    conninfo = server.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
        query = "SELECT 1 FROM pg_database WHERE datname = %s"
        if connection.execute(query, (parsed.database,)).fetchone() is not None:
            return False
        try:
            connection.execute(
                sql.SQL("CREATE DATABASE {}").format(sql.Identifier(parsed.database))
            )
        except psycopg.errors.DuplicateDatabase:  # another runner created it meanwhile
            return False
    return True


def masked(url: str) -> str:
    """``url`` without its password, safe to print or write to a file."""
    return make_url(url).render_as_string(hide_password=True) if url else ""
