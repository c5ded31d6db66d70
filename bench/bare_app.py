"""The bare baseline: plain Flask and a psycopg connection pool, one query, no chassis.

``gunicorn --pythonpath bench bare_app:app`` (and the development server, ``bare_devserver.py``)
with ``BASELINE_CONNINFO`` set to a libpq URL of the shop's catalog database. It answers
``GET /api/v1/products/{id}`` with the same document as the shop (``product_json``), from the
same row, on an autocommit connection of a ``psycopg_pool.ConnectionPool`` (one round trip,
no BEGIN or ROLLBACK): the least a Flask app can do for this read, so the gap between it and
the shop is what the shop's stack costs.

The pool holds ``BASELINE_POOL_SIZE`` connections (default 4, Gunicorn's threads per worker in
the baseline): a thread never waits for a connection. Gunicorn imports the app in each worker
(no preload), so each worker opens its own pool after the fork.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, abort
from psycopg_pool import ConnectionPool

from product_json import QUERY, render

POOL_SIZE = int(os.environ.get("BASELINE_POOL_SIZE", "4"))

app = Flask(__name__)
app.json.sort_keys = False  # type: ignore[attr-defined]  # the shop's field order
pool = ConnectionPool(
    os.environ["BASELINE_CONNINFO"],
    min_size=POOL_SIZE,
    max_size=POOL_SIZE,
    kwargs={"autocommit": True},
    open=True,
)


@app.get("/api/v1/products/<int:product_id>")
def get_product(product_id: int) -> dict[str, Any]:
    """One primary-key lookup, rendered as the shop renders a product."""
    with pool.connection() as connection:
        row = connection.execute(QUERY.format("%s"), (product_id,)).fetchone()
    if row is None:
        abort(404)
    return render(row)  # Flask renders a dict with app.json
