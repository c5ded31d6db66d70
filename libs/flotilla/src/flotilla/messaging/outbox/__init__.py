"""The transactional outbox: events written with the business change, published by a relay.

A service adds the tables to its metadata (``Outbox(metadata)``, ``ProcessedEvents(metadata)``)
so its migrations create them, writes events with :meth:`Outbox.add_event` in the request's
transaction, and runs ``flask outbox relay`` as its own process. Consumers bind handlers with
:meth:`flotilla.messaging.tasks.Tasks.on_event` and apply each event once with
:meth:`ProcessedEvents.once`.
"""

from flotilla.messaging.outbox.envelope import EVENT_TASK, Event, event_message
from flotilla.messaging.outbox.idempotency import ProcessedEvents
from flotilla.messaging.outbox.metrics import PendingStats, pending_stats, refresh_gauges
from flotilla.messaging.outbox.relay import (
    BatchPublisher,
    BrokerPublisher,
    PendingEvent,
    Publisher,
    prune_published,
    relay_batch,
    relay_pending,
    run_relay,
)
from flotilla.messaging.outbox.state import OutboxState, outbox_state
from flotilla.messaging.outbox.tables import outbox_table, processed_events_table
from flotilla.messaging.outbox.writer import Outbox, new_event

__all__ = [
    "EVENT_TASK",
    "BatchPublisher",
    "BrokerPublisher",
    "Event",
    "Outbox",
    "OutboxState",
    "PendingEvent",
    "PendingStats",
    "ProcessedEvents",
    "Publisher",
    "event_message",
    "new_event",
    "outbox_state",
    "outbox_table",
    "pending_stats",
    "processed_events_table",
    "prune_published",
    "refresh_gauges",
    "relay_batch",
    "relay_pending",
    "run_relay",
]
