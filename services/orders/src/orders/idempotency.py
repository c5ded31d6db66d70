"""``Idempotency-Key``: placing an order is safe to repeat, and a repeat returns the first answer.

A client that sent ``POST /api/v1/orders`` and lost the answer (a timeout, a dropped
connection) cannot know whether the order exists. It sends the same request with the same
key again and gets what the first request got, with ``Idempotent-Replayed: true``, instead
of a second order. Keys belong to a customer (two customers may pick the same key) and are
remembered for ``IDEMPOTENCY_KEY_RETENTION`` seconds once their order is placed.

The key is a column of the order the request creates, unique per customer: two concurrent
requests with one key cannot both create an order, because the second insert violates the
unique index. While the first is running the second is told so (409, ``Retry-After``); an
order whose request failed in a way that certainly changed nothing is deleted, key and all,
so the client may simply try again with it. The answer is stored on the order when it is
placed, in the same UPDATE.

A request that has given up never keeps its key: an order left ``abandoned`` for recovery
holds none (:mod:`orders.lifecycle`), and an order still ``pending`` after any request could have
finished with it (its worker died) is abandoned by the retry that finds it
(:func:`replay`). So a retry waits at most a request deadline, never for recovery.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, select, update

from flotilla import BadRequest, Conflict, ValidationFailed
from orders import undo
from orders.database import writing
from orders.models import Order
from orders.schemas import StoredResponse

log = logging.getLogger(__name__)

RETRY_IN_PROGRESS_AFTER = 1  # seconds: placing an order takes well under one
_KEY = re.compile(r"[\x20-\x7e]{1,255}")  # printable ASCII; \x20 is the space

_FIND = select(
    Order.id,
    Order.state,
    Order.created_at,
    Order.request_hash,
    Order.response_status,
    Order.response_body,
).where(Order.user_id == bindparam("key_user_id"), Order.idempotency_key == bindparam("key_value"))


class IdempotencyKeyRequired(BadRequest):
    """The request has no ``Idempotency-Key`` header (400)."""

    code, title = "idempotency-key-required", "Idempotency Key Required"


class InvalidIdempotencyKey(BadRequest):
    """The ``Idempotency-Key`` is not 1 to 255 printable ASCII characters (400)."""

    code, title = "invalid-idempotency-key", "Invalid Idempotency Key"


class IdempotencyKeyReused(ValidationFailed):
    """The key was first sent with another request body (422)."""

    code, title = "idempotency-key-reused", "Idempotency Key Reused"


class RequestInProgress(Conflict):
    """The first request with this key has not finished yet (409, ``Retry-After``)."""

    code, title = "request-in-progress", "Request In Progress"


def checked_key(value: str | None) -> str:
    """``value`` if it is a usable key; :class:`IdempotencyKeyRequired` or ``Invalid...``."""
    if not value:
        raise IdempotencyKeyRequired(
            "Send an Idempotency-Key header, new for each order, to place an order safely."
        )
    if not _KEY.fullmatch(value):
        raise InvalidIdempotencyKey("The Idempotency-Key must be 1 to 255 printable ASCII.")
    return value


def request_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 of ``body`` as canonical JSON: same content, same hash, whatever the layout."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def replay(
    *, user_id: int, key: str, hash_: str, orphaned_before: datetime
) -> StoredResponse | None:
    """The answer for a key an earlier request took: its stored answer, 422 or 409; or ``None``.

    ``None`` says the key is free again, for the caller to place the order afresh: the
    earlier request failed and deleted its order, or its order is an *orphan*, still
    ``pending`` though created before ``orphaned_before``, when no request could still be
    placing it (the worker running it died). The orphan is abandoned here, its key freed,
    and recovery releases whatever catalog holds for it.
    """
    with writing(autocommit=True) as connection:  # a read that may abandon an orphan
        record = connection.execute(_FIND, {"key_user_id": user_id, "key_value": key}).one_or_none()
        if record is None:
            return None
        if record.request_hash != hash_:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used with a different request; use a new key."
            )
        if record.response_status is not None:
            return StoredResponse(
                record.response_status, dict(record.response_body or {}), replayed=True
            )
        if record.created_at < orphaned_before and undo.abandon(
            connection, record.id, created_before=orphaned_before
        ):
            log.warning("orphaned order abandoned for a retry", extra={"order_id": record.id})
            return None
    raise request_in_progress()


def request_in_progress() -> RequestInProgress:
    """The 409 for a key whose request is running: retry in a moment."""
    return RequestInProgress(
        "A request with this Idempotency-Key is still being processed; retry.",
        headers={"Retry-After": str(RETRY_IN_PROGRESS_AFTER)},
    )


PRUNE_BATCH = 1000
"""Keys forgotten per statement; recovery prunes on every pass, so a backlog drains quickly."""


def prune_completed(connection: Connection, *, created_before: datetime) -> int:
    """Forget the keys of placed orders created before ``created_before``; return how many.

    The orders stay; their keys may be used again, as for a new request. At most
    :data:`PRUNE_BATCH` at a time, oldest first: the statement is prepared, and a prepared
    plan cannot know how few rows the cutoff leaves, so without an ordered limit PostgreSQL
    settles on reading the whole table on every pass (measured: 66,000 rows every 10 s).
    """
    oldest = (
        select(Order.id)
        .where(
            Order.idempotency_key.is_not(None),
            Order.response_status.is_not(None),
            Order.created_at < created_before,
        )
        .order_by(Order.created_at)
        .limit(PRUNE_BATCH)
    )
    result = connection.execute(
        update(Order)
        .where(Order.id.in_(oldest.scalar_subquery()))
        .values(idempotency_key=None, request_hash=None, response_status=None, response_body=None)
    )
    return result.rowcount
