"""One product row as the JSON ``GET /api/v1/products/{id}`` answers, for the baselines.

The shop's catalog renders a product with marshmallow (``ProductPublic``): these fields in
this order, timestamps in ISO 8601 with the UTC offset. The baselines read the same row of the
same database and must answer the same document, or the comparison is void (the runner
checks it before measuring), so they share this one function.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

QUERY = (
    "SELECT id, sku, name, description, price, currency, stock, active, created_at, updated_at "
    "FROM products WHERE id = {}"
)
"""The one-row read, with the driver's placeholder (``%s`` for psycopg, ``$1`` for asyncpg)."""
FIELDS = ("id", "sku", "name", "description", "price", "currency", "stock", "active")


def render(row: Sequence[Any]) -> dict[str, Any]:
    """The product's JSON document, from a row in :data:`QUERY`'s column order."""
    document = dict(zip(FIELDS, row[:8], strict=True))
    document["created_at"] = _iso(row[8])
    document["updated_at"] = _iso(row[9])
    return document


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
