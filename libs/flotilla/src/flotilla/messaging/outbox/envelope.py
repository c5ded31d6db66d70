"""The event envelope and its wire format: a Celery task message any Flotilla worker runs.

An event is published as a Celery (protocol 2) message for the generic task
``flotilla.event`` whose one argument is the envelope. A consumer service binds its own task
queue to the events exchange for the types it handles (see
:meth:`flotilla.messaging.tasks.Tasks.on_event`), so events get the same guarantees as tasks: late
acks, retries with backoff, time limits, a dead-letter queue and the request id in the logs. The
producer never names a consumer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

EVENT_TASK = "flotilla.event"
"""The task name every event message carries; consumers register it through ``on_event``."""


@dataclass(frozen=True)
class Event:
    """One business fact, as stored in the outbox and delivered to consumers."""

    id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form consumers receive."""
        return {
            "id": str(self.id),
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "payload": self.payload,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Parse what :meth:`to_dict` wrote; raises ``KeyError``/``ValueError`` on anything else."""
        return cls(
            id=uuid.UUID(data["id"]),
            type=str(data["type"]),
            version=int(data["version"]),
            occurred_at=datetime.fromisoformat(data["occurred_at"]),
            payload=dict(data["payload"]),
        )


@dataclass(frozen=True)
class Message:
    """What goes to the broker: body bytes, headers and message properties."""

    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]


def event_message(event: Event, headers: Mapping[str, str]) -> Message:
    """The Celery protocol 2 message of ``event``, with the task id equal to the event id.

    Written by hand rather than through a Celery app so the relay needs no task
    configuration; the real-worker tests check that Celery runs what this produces.
    """
    task_id = str(event.id)
    envelope = event.to_dict()
    body = orjson.dumps([[envelope], {}, {"callbacks": None, "errbacks": None, "chain": None}])
    celery_headers = {
        "lang": "py",
        "task": EVENT_TASK,
        "id": task_id,
        "root_id": task_id,
        "parent_id": None,
        "group": None,
        "retries": 0,
        "eta": None,
        "expires": None,
        "timelimit": [None, None],
        "argsrepr": f"[{event.type} v{event.version} {task_id}]",
        "kwargsrepr": "{}",
        "ignore_result": True,
        **headers,
    }
    properties = {"correlation_id": task_id, "delivery_mode": 2, "message_id": task_id}
    return Message(body, celery_headers, properties)
