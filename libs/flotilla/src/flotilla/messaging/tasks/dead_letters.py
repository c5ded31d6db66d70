"""The dead-letter queue: look at what failed, and send it back once the cause is fixed.

A dead letter is the task message as it was last run, plus a header naming the error
(:data:`flotilla.messaging.tasks.DEAD_LETTER_ERROR_HEADER`). Listing takes messages without
acknowledging them and gives them back when the channel closes, so it changes nothing.
Replaying publishes each message to the work queue (waiting for the broker's confirm)
before acknowledging it in the dead-letter queue: a crash in between leaves a copy in both,
never in neither, and handlers are idempotent. A replayed task starts with its full retries.

:class:`DeadLetters` reaches a service's two queues from any process that knows the broker:
the service's own ``flask tasks`` commands, or an operator's console for another service.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kombu.connection import Connection
from kombu.entity import Queue
from kombu.messaging import Producer

from flotilla.config import ServiceSettings
from flotilla.messaging.broker import broker_url, transport_options
from flotilla.messaging.tasks.base import DEAD_LETTER_ERROR_HEADER
from flotilla.messaging.tasks.config import dead_letter_queue_name, work_queue_name
from flotilla.messaging.tasks.state import TasksState

_DROPPED_HEADERS = {DEAD_LETTER_ERROR_HEADER}


@dataclass(frozen=True)
class DeadLetter:
    """What an operator needs to decide about one dead letter."""

    task_id: str
    task: str
    error: str
    arguments: str


@dataclass(frozen=True)
class DeadLetters:
    """A service's work queue and its dead-letter queue, on a broker."""

    url: str
    transport_options: dict[str, Any]
    work_queue: Queue
    dead_letter_queue: Queue

    @classmethod
    def of(cls, state: TasksState) -> DeadLetters:
        """The queues of the app whose tasks ``state`` holds."""
        return cls(
            state.celery.conf.broker_url,
            dict(state.celery.conf.broker_transport_options),
            state.queue,
            state.dead_letter_queue,
        )

    @classmethod
    def of_service(cls, service: str, settings: ServiceSettings) -> DeadLetters:
        """The queues of ``service``, on the broker ``settings`` name (BROKER_URL)."""
        return cls(
            broker_url(settings),
            transport_options(settings),
            Queue(work_queue_name(service), durable=True),
            Queue(dead_letter_queue_name(service), durable=True),
        )

    def read(self, *, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first, left in the queue."""
        found: list[DeadLetter] = []
        with self._channel() as channel:
            queue = self.dead_letter_queue(channel)
            while len(found) < limit and (message := queue.get(no_ack=False)) is not None:
                found.append(_describe(message))
        return found  # the channel closed: unacknowledged messages return, in order

    def replay(
        self, *, limit: int | None = None, task_ids: Collection[str] | None = None
    ) -> list[DeadLetter]:
        """Move dead letters back to the work queue, oldest first, and return them.

        At most ``limit`` (default: all); with ``task_ids``, only those tasks', the others
        left in place.
        """
        moved: list[DeadLetter] = []
        with self._channel() as channel:
            queue = self.dead_letter_queue(channel)
            self.work_queue(channel).declare()  # a message to a missing queue would be dropped
            producer = Producer(channel)
            while limit is None or len(moved) < limit:
                message = queue.get(no_ack=False)
                if message is None:
                    break
                letter = _describe(message)
                if task_ids is not None and letter.task_id not in task_ids:
                    continue  # not acknowledged: back in the queue when the channel closes
                _republish(producer, message, self.work_queue.name)
                message.ack()
                moved.append(letter)
        return moved

    def depth(self) -> int:
        """Dead letters waiting now."""
        with self._channel() as channel:
            _name, messages, _consumers = self.dead_letter_queue(channel).queue_declare(
                passive=True
            )
        return int(messages)

    @contextmanager
    def _channel(self) -> Iterator[Any]:
        with Connection(self.url, transport_options=self.transport_options) as connection:
            channel = connection.channel()
            try:
                yield channel
            finally:
                channel.close()


def list_dead_letters(state: TasksState, *, limit: int = 100) -> list[DeadLetter]:
    """Up to ``limit`` dead letters of ``state``'s app, oldest first, left in the queue."""
    return DeadLetters.of(state).read(limit=limit)


def replay_dead_letters(state: TasksState, *, limit: int | None = None) -> list[DeadLetter]:
    """Move up to ``limit`` (default: all) dead letters back to the work queue; return them."""
    return DeadLetters.of(state).replay(limit=limit)


def _describe(message: Any) -> DeadLetter:
    headers = message.headers or {}
    return DeadLetter(
        task_id=str(headers.get("id", "")),
        task=str(headers.get("task", "")),
        error=str(headers.get(DEAD_LETTER_ERROR_HEADER, "")),
        arguments=str(headers.get("argsrepr", ""))[:200],
    )


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
