"""How the orders service reaches its database: one way to read, one way to write.

Both are SQLAlchemy Core connections of the app's engine, never the ORM session: orders
runs on statements built once (``select()`` of columns, ``insert()``, ``update()``) whose
rows become :class:`~orders.schemas.OrderView` dictionaries, so no identity map, unit of
work or object loading sits on its paths (ADR 0020).

* :func:`reading` — a connection in autocommit: each ``SELECT`` is one round trip, without
  the ``BEGIN … ROLLBACK`` SQLAlchemy would wrap it in (ADR 0004).
* :func:`writing` — a connection for changes. By default its statements form one
  transaction, which the caller commits with ``connection.commit()``; leaving the block
  without it (or with an exception) rolls everything back. A change that is one statement
  passes ``autocommit=True`` instead: the statement is its own transaction, one round trip
  where ``BEGIN``, the statement and ``COMMIT`` would take three (placing's INSERT).

Each returns the connection's own context manager: no layer of its own on the hot paths.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from sqlalchemy import Connection

from orders.models import db


def reading() -> AbstractContextManager[Connection]:
    """A connection for reads: autocommit, one round trip per ``SELECT``."""
    return db.autocommit()


def writing(*, autocommit: bool = False) -> AbstractContextManager[Connection]:
    """A connection for changes: one transaction the caller commits, or, with ``autocommit``,
    each statement committed on its own."""
    return db.autocommit() if autocommit else db.engine.connect()
