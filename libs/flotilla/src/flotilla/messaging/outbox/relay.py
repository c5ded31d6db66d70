"""The relay: publish pending outbox events in creation order, mark them after the confirm.

Each batch is one database transaction. The relay claims up to ``OUTBOX_BATCH_SIZE``
pending rows, publishes them all in order, then waits once for RabbitMQ's publisher
confirms of the whole batch (it confirms with one ``multiple`` ack where it can), marks
the confirmed ones published and commits. Only the confirmed events up to the first that
was not confirmed (nacked, or no answer within ``BROKER_CONNECT_TIMEOUT``) are marked;
the rest stay pending for the next try, so an event is never marked before the broker
has it, and a retry goes on in creation order (republishing any later event that was
confirmed: at least once). Waiting once per batch instead of once per event saves a round
trip per event, and RabbitMQ writes a batch of persistent messages with one sync instead
of one each. On the embedded file transport each publish is a synchronous file write.
A crash between the confirm and the commit publishes an event again later, which is why
consumers deduplicate on the event id (:mod:`flotilla.messaging.outbox.idempotency`): delivery is
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from amqp.exceptions import MessageNacked  # type: ignore[import-untyped]
from flask import Flask
from kombu.connection import Connection
from kombu.messaging import Producer
from sqlalchemy import Engine, Row, Table, delete, select, update

from flotilla.config import ServiceSettings
from flotilla.messaging.broker import broker_connection, events_exchange
from flotilla.messaging.outbox.envelope import Event, event_message
from flotilla.messaging.outbox.metrics import relay_instruments
from flotilla.messaging.outbox.state import outbox_state
from flotilla.observability import tracing
from flotilla.resilience.backoff import backoff_delay

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


Outcome = tuple[list[int], Exception | None]
"""The positions confirmed, in order, up to the first event that was not; and why not."""


@runtime_checkable
class BatchPublisher(Publisher, Protocol):
    """A publisher that can send many events and wait for the broker's confirms once."""

    def publish_all(self, events: Sequence[PendingEvent]) -> Outcome:
        """Publish ``events`` in order, wait for their confirms; see :data:`Outcome`."""


class _ConfirmedChannel:
    """An AMQP channel in publisher-confirm mode that tracks the broker's acks and nacks.

    The broker numbers the messages of a confirm-mode channel 1, 2, 3 ... and answers each
    with an ack or a nack, possibly several at once (``multiple``: every one up to it).
    """

    def __init__(self, channel: Any, timeout: float) -> None:
        self.channel = channel
        self.timeout = timeout
        self.sent = 0
        self.waits = 0
        """Times the channel waited for confirms (once per batch)."""
        self._first = 1
        self._answers: dict[int, bool] = {}
        channel.confirm_select()
        channel.events["basic_ack"].add(lambda tag, multiple: self._answer(tag, multiple, True))
        channel.events["basic_nack"].add(lambda tag, multiple: self._answer(tag, multiple, False))

    def _answer(self, tag: int, multiple: bool, acked: bool) -> None:
        """Record the broker's answer for ``tag`` (and all before it, if ``multiple``)."""
        for number in range(self._first, tag + 1) if multiple else (tag,):
            if number >= self._first:  # a late answer for an earlier batch is not this one's
                self._answers.setdefault(number, acked)

    def publish_all(self, events: Sequence[PendingEvent], exchange: str) -> Outcome:
        """Publish every event, then wait once until the broker has answered for each."""
        if not events:
            return [], None
        self._first, self._answers = self.sent + 1, {}
        error: Exception | None = None
        try:
            for pending in events:
                self._publish(pending, exchange)
            self._wait_for_answers()
        except Exception as failure:  # the connection broke or the broker went quiet
            error = failure
        return self._confirmed(events, error)

    def _publish(self, pending: PendingEvent, exchange: str) -> None:
        with _publishing(pending) as headers:
            message = event_message(pending.event, headers)
            prepared = self.channel.prepare_message(
                message.body, 0, "application/json", "utf-8", message.headers, message.properties
            )
            self.channel.basic_publish(prepared, exchange=exchange, routing_key=pending.event.type)
        self.sent += 1

    def _wait_for_answers(self) -> None:
        self.waits += 1
        deadline = time.monotonic() + self.timeout
        while len(self._answers) < self.sent - self._first + 1:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the broker did not confirm the batch in time")
            self.channel.connection.drain_events(timeout=remaining)

    def _confirmed(self, events: Sequence[PendingEvent], error: Exception | None) -> Outcome:
        confirmed: list[int] = []
        for number, pending in enumerate(events, start=self._first):
            answer = self._answers.get(number)
            if answer is None:
                return confirmed, error or TimeoutError("the broker did not confirm in time")
            if not answer:
                return confirmed, MessageNacked()
            confirmed.append(pending.position)
        return confirmed, error


class BrokerPublisher:
    """Publishes to the events exchange over one kept-open connection, with confirms.

    On AMQP a batch is published whole and its confirms waited for once
    (:meth:`publish_all`); on other transports (the embedded file broker) one by one.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._confirming: _ConfirmedChannel | None = None

    @property
    def waits(self) -> int:
        """Times this connection waited for a batch's confirms."""
        return self._confirming.waits if self._confirming is not None else 0

    def open(self) -> None:
        """Connect (if not connected) and declare the events exchange."""
        if self._connection is not None:
            return
        connection = broker_connection(self.settings, confirm_each=False)
        try:
            connection.ensure_connection(max_retries=0)  # fail now; the relay loop retries
            exchange = events_exchange(self.settings)
            channel = connection.channel()
            exchange.declare(channel=channel)
            if connection.transport.driver_type == "amqp":
                timeout = self.settings.BROKER_CONNECT_TIMEOUT
                self._confirming = _ConfirmedChannel(channel, timeout)
            else:
                self._producer = Producer(channel, exchange=exchange)
        except BaseException:
            connection.release()
            self._confirming = self._producer = None
            raise
        self._connection = connection

    def publish(self, pending: PendingEvent) -> None:
        """Publish one event and wait for its confirm; raise unless the broker has it."""
        _confirmed, error = self.publish_all([pending])
        if error is not None:
            raise error

    def publish_all(self, events: Sequence[PendingEvent]) -> Outcome:
        """Publish ``events`` in order and wait for the broker; see :data:`Outcome`."""
        self.open()
        if self._confirming is not None:
            return self._confirming.publish_all(events, self.settings.EVENTS_EXCHANGE)
        return _publish_one_by_one(events, self._publish_to_producer)

    def _publish_to_producer(self, pending: PendingEvent) -> None:
        assert self._producer is not None
        with _publishing(pending) as headers:
            message = event_message(pending.event, headers)
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
        connection, self._connection = self._connection, None
        self._producer = self._confirming = None
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


@contextmanager
def _publishing(pending: PendingEvent) -> Iterator[dict[str, str]]:
    """The headers to send ``pending`` with, inside the span of its publishing."""
    with tracing.publishing(pending.event.type, pending.headers) as headers:
        yield headers
        log.debug(
            "event sent",
            extra={"event_id": str(pending.event.id), "event_type": pending.event.type},
        )


def _pending(row: Row[Any]) -> PendingEvent:
    event = Event(row.event_id, row.type, row.version, row.created_at, dict(row.payload))
    return PendingEvent(row.position, event, dict(row.headers or {}))


def _publish_in_order(events: Sequence[PendingEvent], publisher: Publisher) -> Outcome:
    """Publish until the first failure; the positions confirmed and that failure, if any."""
    if isinstance(publisher, BatchPublisher):
        return publisher.publish_all(events)
    return _publish_one_by_one(events, publisher.publish)


def _publish_one_by_one(
    events: Sequence[PendingEvent], publish: Callable[[PendingEvent], None]
) -> Outcome:
    confirmed: list[int] = []
    for pending in events:
        try:
            publish(pending)
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
        if not events:
            return 0
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
    tracing.start()  # the relay is one process, the SDK starts with it
    log.info("outbox relay started", extra={"exchange": state.settings.EVENTS_EXCHANGE})
    try:
        with app.app_context():
            while not stop.is_set():
                stop.wait(loop.step(state.engine, state.table))
    finally:
        loop.publisher.close()
        log.info("outbox relay stopped", extra={"published": loop.published})
        tracing.shutdown()


class _RelayLoop:
    """One step of the relay loop and the little state it keeps between steps."""

    def __init__(self, settings: ServiceSettings, publisher: BrokerPublisher) -> None:
        self.settings = settings
        self.publisher = publisher
        self.published = 0
        self.failures = 0
        self.pruned_at = 0.0
        self.metrics = relay_instruments()

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
            self.metrics.failures.inc()
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
        self.metrics.published.inc(count)
        return 0.0 if count == settings.OUTBOX_BATCH_SIZE else settings.OUTBOX_POLL_INTERVAL

    def _prune_when_due(self, engine: Engine, table: Table) -> None:
        if time.monotonic() - self.pruned_at < PRUNE_EVERY_SECONDS:
            return
        retention = timedelta(seconds=self.settings.OUTBOX_RETENTION_SECONDS)
        prune_published(engine, table, retention)
        self.pruned_at = time.monotonic()
