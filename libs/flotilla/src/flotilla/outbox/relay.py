"""The relay: publish pending outbox events in creation order, mark them after the confirm.

Each batch is one database transaction. The relay claims up to ``OUTBOX_BATCH_SIZE``
pending rows, publishes them one by one (each publish returns only after the broker
confirmed it), marks the confirmed ones published and commits. A publish that fails ends
the batch: the events confirmed so far are marked, the rest stay pending for the next try.
A crash between the confirm and the commit publishes an event again later, which is why
consumers deduplicate on the event id (:mod:`flotilla.outbox.idempotency`): delivery is
at least once, never zero.

Several relays may run at once. On PostgreSQL each claims its rows with ``FOR UPDATE SKIP
LOCKED`` and the relays share the backlog; on SQLite ``BEGIN IMMEDIATE`` takes the
database's single write lock up front, so relays take turns and the second one sees what
the first marked. Either way no event is published twice concurrently. Events are in
creation order within a batch and from one relay; two relays on PostgreSQL may interleave
neighbouring batches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from flask import Flask
from kombu.connection import Connection
from kombu.messaging import Producer
from sqlalchemy import Engine, Row, Table, delete, select, update

from flotilla.backoff import backoff_delay
from flotilla.broker import broker_connection, events_exchange
from flotilla.config import ServiceSettings
from flotilla.outbox.envelope import Event, event_message
from flotilla.outbox.state import outbox_state

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 60.0
PRUNE_BATCH = 10_000


@dataclass(frozen=True)
class PendingEvent:
    """An outbox row ready to publish: its position, the event and its request headers."""

    position: int
    event: Event
    headers: dict[str, str]


class Publisher(Protocol):
    """Sends one event to the broker; returns only once the broker has it, else raises."""

    def publish(self, pending: PendingEvent) -> None:
        """Publish ``pending`` and wait for the broker's confirm."""


class BrokerPublisher:
    """Publishes to the events exchange over one kept-open connection with confirms."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._connection: Connection | None = None
        self._producer: Producer | None = None

    def open(self) -> None:
        """Connect (if not connected) and declare the events exchange."""
        if self._producer is not None:
            return
        connection = broker_connection(self.settings)
        try:
            connection.ensure_connection(max_retries=0)  # fail now; the relay loop retries
            exchange = events_exchange(self.settings)
            self._producer = Producer(connection.channel(), exchange=exchange)
            exchange.declare(channel=self._producer.channel)
        except BaseException:
            connection.release()
            raise
        self._connection = connection

    def publish(self, pending: PendingEvent) -> None:
        """Publish with the routing key set to the event type; confirmed on AMQP."""
        self.open()
        assert self._producer is not None
        message = event_message(pending.event, pending.headers)
        self._producer.publish(
            message.body,
            routing_key=pending.event.type,
            content_type="application/json",
            content_encoding="utf-8",
            headers=message.headers,
            retry=False,
            timeout=self.settings.BROKER_CONNECT_TIMEOUT,
            **message.properties,
        )

    def close(self) -> None:
        """Drop the connection; the next publish opens a new one."""
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception as error:  # a dead socket may fail to close; it is gone anyway
                log.debug("closing the broker connection failed", extra={"error": repr(error)})


@contextmanager
def _claiming_transaction(engine: Engine) -> Iterator[Any]:
    """A transaction that already holds what it needs to claim rows safely.

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock before the SELECT, so a concurrent
    relay cannot read the same pending rows (the driver's own BEGIN is deferred and would
    let both read them). PostgreSQL: an ordinary transaction; the rows are locked by the
    ``FOR UPDATE SKIP LOCKED`` of the query.
    """
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            with connection.begin():
                yield connection
            return
        manual = connection.execution_options(isolation_level="AUTOCOMMIT")
        manual.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield manual
        except BaseException:
            manual.exec_driver_sql("ROLLBACK")
            raise
        manual.exec_driver_sql("COMMIT")


def _pending(row: Row[Any]) -> PendingEvent:
    event = Event(row.event_id, row.type, row.version, row.created_at, dict(row.payload))
    return PendingEvent(row.position, event, dict(row.headers or {}))


def _publish_in_order(
    events: Sequence[PendingEvent], publisher: Publisher
) -> tuple[list[int], Exception | None]:
    """Publish until the first failure; the positions confirmed and that failure, if any."""
    confirmed: list[int] = []
    for pending in events:
        try:
            publisher.publish(pending)
        except Exception as error:
            return confirmed, error
        confirmed.append(pending.position)
    return confirmed, None


def relay_batch(engine: Engine, table: Table, publisher: Publisher, *, batch_size: int) -> int:
    """Publish one batch of pending events; return how many were confirmed and marked.

    Raises the publish error after marking what was confirmed before it.
    """
    query = (
        select(table)
        .where(table.c.published_at.is_(None))
        .order_by(table.c.position)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    with _claiming_transaction(engine) as connection:
        events = [_pending(row) for row in connection.execute(query)]
        confirmed, error = _publish_in_order(events, publisher)
        if confirmed:
            marked = update(table).where(table.c.position.in_(confirmed))
            connection.execute(marked.values(published_at=datetime.now(UTC)))
    if error is not None:
        raise error
    return len(confirmed)


def prune_published(engine: Engine, table: Table, retention: timedelta) -> int:
    """Delete up to ``PRUNE_BATCH`` events published longer than ``retention`` ago."""
    cutoff = datetime.now(UTC) - retention
    old = (
        select(table.c.position)
        .where(table.c.published_at < cutoff)
        .order_by(table.c.position)
        .limit(PRUNE_BATCH)
    )
    with engine.begin() as connection:
        result = connection.execute(delete(table).where(table.c.position.in_(old)))
    deleted: int = result.rowcount
    if deleted:
        log.info("outbox pruned", extra={"deleted": deleted})
    return deleted


def relay_pending(app: Flask, publisher: Publisher | None = None) -> int:
    """Publish every pending event now, batch after batch; raise on the first failure."""
    state = outbox_state(app)
    own = publisher is None
    chosen = publisher or BrokerPublisher(state.settings)
    total = 0
    try:
        with app.app_context():
            while batch := relay_batch(
                state.engine, state.table, chosen, batch_size=state.settings.OUTBOX_BATCH_SIZE
            ):
                total += batch
    finally:
        if own and isinstance(chosen, BrokerPublisher):
            chosen.close()
    return total


def run_relay(app: Flask, *, stop: threading.Event | None = None) -> None:
    """Relay events until ``stop`` is set: the body of ``flask outbox relay``.

    Failures (broker or database unreachable) are logged and retried with backoff; the
    events they concern stay pending, nothing is lost. Published events older than
    ``OUTBOX_RETENTION_SECONDS`` are pruned about once a minute.
    """
    stop = stop or threading.Event()
    state = outbox_state(app)
    loop = _RelayLoop(state.settings, BrokerPublisher(state.settings))
    log.info("outbox relay started", extra={"exchange": state.settings.EVENTS_EXCHANGE})
    try:
        with app.app_context():
            while not stop.is_set():
                stop.wait(loop.step(state.engine, state.table))
    finally:
        loop.publisher.close()
        log.info("outbox relay stopped", extra={"published": loop.published})


class _RelayLoop:
    """One step of the relay loop and the little state it keeps between steps."""

    def __init__(self, settings: ServiceSettings, publisher: BrokerPublisher) -> None:
        self.settings = settings
        self.publisher = publisher
        self.published = 0
        self.failures = 0
        self.pruned_at = 0.0

    def step(self, engine: Engine, table: Table) -> float:
        """Relay one batch (and prune when due); return how long to wait before the next."""
        settings = self.settings
        try:
            count = relay_batch(
                engine, table, self.publisher, batch_size=settings.OUTBOX_BATCH_SIZE
            )
            self._prune_when_due(engine, table)
        except Exception as error:
            self.publisher.close()
            self.failures += 1
            delay = (
                backoff_delay(self.failures, base=settings.OUTBOX_POLL_INTERVAL, cap=30.0)
                + settings.OUTBOX_POLL_INTERVAL / 2
            )
            log.warning(
                "outbox relay failed, events stay pending",
                extra={"error": repr(error)[:500], "retry_in": round(delay, 3)},
            )
            return delay
        self.failures = 0
        self.published += count
        return 0.0 if count == settings.OUTBOX_BATCH_SIZE else settings.OUTBOX_POLL_INTERVAL

    def _prune_when_due(self, engine: Engine, table: Table) -> None:
        if time.monotonic() - self.pruned_at < PRUNE_EVERY_SECONDS:
            return
        retention = timedelta(seconds=self.settings.OUTBOX_RETENTION_SECONDS)
        prune_published(engine, table, retention)
        self.pruned_at = time.monotonic()
