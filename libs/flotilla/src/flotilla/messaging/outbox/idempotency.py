"""Consumers that apply each event once, however often it is delivered.

Delivery is at least once (a relay may republish after a crash; a worker killed mid-task
gets the message again). A consumer therefore records the event id in the same database
transaction as the event's effect: the primary key of ``processed_events`` lets only one
transaction insert it, so a redelivered event finds it and does nothing. On PostgreSQL a
concurrent duplicate waits for the first transaction and then skips; if the first rolls
back, the duplicate applies the effect instead. Nothing is applied twice, nothing lost.

An effect outside the database (an e-mail) cannot join the transaction: send it before the
commit, so a failure rolls the record back and the retry sends again. The remaining window
(sent, then the commit fails) is why such effects are at least once.

The record is one Core statement, ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (PostgreSQL
and SQLite both have it), built once per dialect: one round trip, and the duplicate check is
the insert itself. The transaction is a Core connection's, handed to the handler for its own
writes: no ORM session around it, whose bookkeeping (its transaction object, the connection
it looks up, its commit) cost about a fifth of this process's CPU for an e-mail's record.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Insert, MetaData, bindparam
from sqlalchemy.dialects import postgresql, sqlite

from flotilla.messaging.outbox.envelope import Event
from flotilla.messaging.outbox.tables import processed_events_table

log = logging.getLogger(__name__)

Handler = Callable[[Event], None]
"""What a task calls with each event it receives."""
Effect = Callable[[Event, Connection], None]
"""An event's effect: its database writes go to the connection, in the record's transaction."""


class HasEngine(Protocol):
    """Where the engine comes from: a :class:`flotilla.Database`, bound to the current app."""

    @property
    def engine(self) -> Engine: ...


class ProcessedEvents:
    """The processed-events table of one service and the checks that use it."""

    def __init__(self, metadata: MetaData, *, table_name: str = "processed_events") -> None:
        self.table = processed_events_table(metadata, table_name)
        self._records: dict[str, Insert] = {}

    def first_delivery(self, connection: Connection, event_id: uuid.UUID, *, consumer: str) -> bool:
        """Record ``event_id`` for ``consumer`` in ``connection``'s transaction.

        True the first time: apply the effect, then commit. False when it was recorded
        before: skip the effect.
        """
        values = {"consumer": consumer, "event_id": event_id, "processed_at": datetime.now(UTC)}
        record = self._record(connection.dialect.name)
        return connection.execute(record, values).first() is not None

    def _record(self, dialect: str) -> Insert:
        """The insert-unless-recorded statement for ``dialect``, built on first use."""
        record = self._records.get(dialect)
        if record is None:
            insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
            columns = ("consumer", "event_id", "processed_at")
            record = (
                insert(self.table)
                .values({name: bindparam(name) for name in columns})
                .on_conflict_do_nothing()
                .returning(self.table.c.event_id)
            )
            self._records[dialect] = record
        return record

    def once(self, database: HasEngine, *, consumer: str) -> Callable[[Effect], Handler]:
        """Decorate an event's effect: skip duplicates, commit the record with the effect.

        The effect gets the event and the transaction's connection; an exception it raises
        rolls the record back with its writes, so the event's redelivery applies it again.
        """

        def decorate(effect: Effect) -> Handler:
            @functools.wraps(effect)
            def apply_once(event: Event) -> None:
                with database.engine.connect() as connection:  # closing uncommitted rolls back
                    if not self.first_delivery(connection, event.id, consumer=consumer):
                        log.info("duplicate event skipped", extra={"event_id": str(event.id)})
                        return
                    effect(event, connection)
                    connection.commit()

            return apply_once

        return decorate
