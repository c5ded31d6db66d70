"""``Idempotency-Key``: placing an order is safe to repeat, and a repeat returns the first answer.

A client that sent ``POST /api/v1/orders`` and lost the answer (a timeout, a dropped
connection) cannot know whether the order exists. It sends the same request with the same
key again and gets what the first request got, with ``Idempotent-Replayed: true``, instead
of a second order. Keys belong to a customer (two customers may pick the same key) and are
remembered for ``IDEMPOTENCY_KEY_RETENTION`` seconds once their order is placed.

The key is written in the same transaction as the pending order: two concurrent requests
with one key cannot both create an order, because the second insert violates the primary
key. While the first is running the second is told so (409, ``Retry-After``); a key whose
request failed in a way that certainly changed nothing is deleted with its order, so the
client may simply try again with it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from flask import Response, current_app
from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from flotilla import BadRequest, Conflict, ValidationFailed
from flotilla.columns import utc_now
from orders.models import IdempotencyKey, db

IN_PROGRESS, COMPLETED = "in_progress", "completed"
REPLAYED_HEADER = "Idempotent-Replayed"
RETRY_IN_PROGRESS_AFTER = 1  # seconds: placing an order takes well under one
_KEY = re.compile(r"[\x20-\x7e]{1,255}")  # printable ASCII; \x20 is the space

_INSERT = insert(IdempotencyKey)
_THIS_KEY = (IdempotencyKey.user_id == bindparam("key_user_id")) & (
    IdempotencyKey.key == bindparam("key_value")
)
_FIND = select(
    IdempotencyKey.request_hash,
    IdempotencyKey.state,
    IdempotencyKey.response_status,
    IdempotencyKey.response_body,
).where(_THIS_KEY)
_COMPLETE = (
    update(IdempotencyKey)
    .where(_THIS_KEY)
    .values(
        state=COMPLETED,
        response_status=bindparam("status"),
        response_body=bindparam("body"),
    )
)


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


@dataclass(frozen=True)
class StoredResponse:
    """An answer to a keyed request: the first one, or its replay."""

    status: int
    body: dict[str, Any]
    replayed: bool = False

    def to_response(self, headers: Mapping[str, str] | None = None) -> Response:
        """The HTTP response; a replay says so in ``Idempotent-Replayed: true``."""
        response = Response(
            current_app.json.dumps(self.body), self.status, mimetype="application/json"
        )
        response.headers.update(headers or {})
        if self.replayed:
            response.headers[REPLAYED_HEADER] = "true"
        return response


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


def replay(*, user_id: int, key: str, hash_: str) -> StoredResponse:
    """The answer for a key an earlier request took: its stored answer, else 422 or 409.

    A key that is gone again (its request failed and deleted it) is a 409 too: the client
    retries, and its retry will find the key free.
    """
    with db.read_connection() as connection:
        record = connection.execute(_FIND, {"key_user_id": user_id, "key_value": key}).one_or_none()
    if record is None:
        raise RequestInProgress(
            "A request with this Idempotency-Key was being processed; retry.",
            headers={"Retry-After": str(RETRY_IN_PROGRESS_AFTER)},
        )
    if record.request_hash != hash_:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request; use a new key."
        )
    if record.state != COMPLETED or record.response_status is None:
        raise RequestInProgress(
            "A request with this Idempotency-Key is still being processed.",
            headers={"Retry-After": str(RETRY_IN_PROGRESS_AFTER)},
        )
    return StoredResponse(record.response_status, dict(record.response_body or {}), replayed=True)


def insert_key(
    connection: Connection, *, user_id: int, key: str, hash_: str, order_id: int
) -> None:
    """Record a key whose request starts now, for the order it creates; ``IntegrityError``
    when the customer has used the key before."""
    connection.execute(
        _INSERT,
        {
            "user_id": user_id,
            "key": key,
            "request_hash": hash_,
            "state": IN_PROGRESS,
            "order_id": order_id,
            "created_at": utc_now(),
        },
    )


def complete(connection: Connection, *, user_id: int, key: str, answer: StoredResponse) -> None:
    """Store ``answer`` as what every repetition of the key's request gets back.

    One UPDATE, not a read and a write: the key row was written in an earlier transaction.
    """
    stored = connection.execute(
        _COMPLETE,
        {
            "key_user_id": user_id,
            "key_value": key,
            "status": answer.status,
            "body": answer.body,
        },
    )
    if stored.rowcount != 1:  # deleted by recovery meanwhile
        raise LookupError(f"idempotency key of user {user_id} vanished")


def prune_completed(session: Session, *, created_before: datetime) -> int:
    """Delete completed keys created before ``created_before``; return how many."""
    result = session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.state == COMPLETED, IdempotencyKey.created_at < created_before
        )
    )
    deleted: int = result.rowcount  # type: ignore[attr-defined]
    return deleted
