"""The dead-letter queue: look at what failed, and send it back once the cause is fixed.

A dead letter is the task message as it was last run, plus a header naming the error
(:data:`flotilla.messaging.tasks.DEAD_LETTER_ERROR_HEADER`). Listing takes messages without
acknowledging them and gives them back when the channel closes, so it changes nothing.
Replaying publishes each message to the work queue (waiting for the broker's confirm)
before acknowledging it in the dead-letter queue: a crash in between leaves a copy in both,
never in neither, and handlers are idempotent. A replayed task starts with its full retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kombu.messaging import Producer

from flotilla.messaging.tasks.base import DEAD_LETTER_ERROR_HEADER
from flotilla.messaging.tasks.state import TasksState

_DROPPED_HEADERS = {DEAD_LETTER_ERROR_HEADER}


@dataclass(frozen=True)
class DeadLetter:
    """What an operator needs to decide about one dead letter."""

    task_id: str
    task: str
    error: str
    arguments: str


def _describe(message: Any) -> DeadLetter:
    headers = message.headers or {}
    return DeadLetter(
        task_id=str(headers.get("id", "")),
        task=str(headers.get("task", "")),
        error=str(headers.get(DEAD_LETTER_ERROR_HEADER, "")),
        arguments=str(headers.get("argsrepr", ""))[:200],
    )


def list_dead_letters(state: TasksState, *, limit: int = 100) -> list[DeadLetter]:
    """Up to ``limit`` dead letters, oldest first, left in the queue."""
    with state.celery.connection_for_write() as connection:
        channel = connection.channel()
        try:
            queue = state.dead_letter_queue(channel)
            found: list[DeadLetter] = []
            while len(found) < limit and (message := queue.get(no_ack=False)) is not None:
                found.append(_describe(message))
        finally:
            channel.close()  # unacknowledged messages return to the queue, in order
    return found


def replay_dead_letters(state: TasksState, *, limit: int | None = None) -> list[DeadLetter]:
    """Move up to ``limit`` (default: all) dead letters back to the work queue; return them."""
    moved: list[DeadLetter] = []
    with state.celery.connection_for_write() as connection:
        channel = connection.channel()
        try:
            queue = state.dead_letter_queue(channel)
            state.queue(channel).declare()  # a message to a missing queue would be dropped
            producer = Producer(channel)
            while limit is None or len(moved) < limit:
                message = queue.get(no_ack=False)
                if message is None:
                    break
                _republish(producer, message, state.queue.name)
                message.ack()
                moved.append(_describe(message))
        finally:
            channel.close()
    return moved


def _republish(producer: Producer, message: Any, queue_name: str) -> None:
    headers = {k: v for k, v in (message.headers or {}).items() if k not in _DROPPED_HEADERS}
    headers["retries"] = 0
    properties = message.properties or {}
    producer.publish(
        message.body,
        exchange="",
        routing_key=queue_name,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=2,
        correlation_id=properties.get("correlation_id"),
        retry=False,
    )
