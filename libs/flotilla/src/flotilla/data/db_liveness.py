"""Hand out no pooled PostgreSQL connection that the server has already closed.

When PostgreSQL restarts, fails over or ends idle sessions, it tells each client goodbye (an
error message, then end of stream) on connections that sit idle in the pool. Without a check,
the next request on each such connection fails with a 503 after the database is back: one
per pool, since SQLAlchemy then drops the pool's older connections. ``pool_pre_ping`` prevents
that with a round trip on every checkout; this check costs one ``poll`` system call instead.
An idle connection has nothing to say: if its socket is readable or its state is bad, the
server has spoken or hung up, and the pool replaces it before the caller sees it.

It does not catch a peer that vanished without a word (a dead host, a cut network): the TCP
keepalives and ``tcp_user_timeout`` of :func:`flotilla.data.db.create_engine_from_settings` break
those within seconds, and ``DATABASE_POOL_PRE_PING`` remains for whoever wants the round trip.
See ADR 0027.
"""

from __future__ import annotations

import select
from typing import Any

from psycopg import pq
from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError


def drop_closed_connections(engine: Engine) -> None:
    """Make ``engine``'s pool replace, at checkout, connections the server has closed."""
    event.listen(engine, "checkout", _refuse_if_closed)


def _refuse_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # The pool catches DisconnectionError from a checkout listener, discards the connection
    # and checks out another (a new one, if need be).
    if not is_open(dbapi_connection.pgconn):
        raise DisconnectionError("the server closed this pooled connection")


def is_open(pgconn: pq.abc.PGconn) -> bool:
    """Whether an idle connection is still open: in good state, with nothing unread on it."""
    if pgconn.status != pq.ConnStatus.OK:
        return False
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN)
    return not poller.poll(0)
