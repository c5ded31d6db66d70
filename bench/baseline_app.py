"""The baseline: the same lookup in plain Flask with a bare psycopg query, no chassis, no ORM.

``gunicorn --pythonpath bench baseline_app:app`` with ``BASELINE_CONNINFO`` set to a libpq
URL. The gap between this app and the users service under the same Gunicorn worker and
thread counts is what the chassis and the ORM cost per request.

Each Gunicorn thread keeps its own autocommit connection in a ``threading.local``: no pool
library is needed (``psycopg_pool`` is not a workspace dependency), a connection is never
shared between threads, and autocommit means a read is one round trip with no BEGIN or
ROLLBACK. Connections are opened on first use, so they belong to the worker, not the master.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any

import psycopg
from flask import Flask, Response, abort, jsonify

QUERY = "SELECT id, username, display_name, created_at FROM users WHERE id = %s"

app = Flask(__name__)
_local = threading.local()


def _connection() -> psycopg.Connection[tuple[Any, ...]]:
    """This thread's connection, opened (again) when missing or closed."""
    connection: psycopg.Connection[tuple[Any, ...]] | None = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = psycopg.connect(os.environ["BASELINE_CONNINFO"], autocommit=True)
        _local.connection = connection
    return connection


@app.get("/api/v1/users/<int:user_id>")
def get_user(user_id: int) -> Response:
    """One primary-key lookup, rendered like the users service's ``UserPublic``."""
    row = _connection().execute(QUERY, (user_id,)).fetchone()
    if row is None:
        abort(404)
    created_at: datetime = row[3]
    return jsonify(
        id=row[0], username=row[1], display_name=row[2], created_at=created_at.isoformat()
    )
