"""The task dead letters of the services in ``DEAD_LETTER_SERVICES``, read and replayed.

The console reaches each service's queues on the broker itself, through the chassis'
:class:`flotilla.DeadLetters` (the same code as ``flask tasks replay-dead-letters``): the
services that run tasks are workers with no HTTP API to ask. A broker that cannot be reached
makes the page say so, not fail.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field

from console.config import ConsoleSettings
from flotilla import DeadLetter, DeadLetters

log = logging.getLogger(__name__)

SHOWN = 100
"""Dead letters listed per service; the rest wait their turn."""


@dataclass
class DeadLetterQueue:
    """One service's dead letters, as read now."""

    service: str
    queue: DeadLetters = field(repr=False)
    letters: list[DeadLetter] = field(default_factory=list)
    error: str | None = None

    def replay(self, task_ids: Collection[str] | None) -> list[DeadLetter]:
        """Send back the letters of ``task_ids`` (all with None); return those moved."""
        return self.queue.replay(task_ids=task_ids)


def dead_letter_queues(settings: ConsoleSettings, *, read: bool = True) -> list[DeadLetterQueue]:
    """Every shown service's queue; with ``read``, its letters (or why they could not be)."""
    queues = []
    for service in settings.DEAD_LETTER_SERVICES:
        queue = DeadLetterQueue(service, DeadLetters.of_service(service, settings))
        if read:
            try:
                queue.letters = queue.queue.read(limit=SHOWN)
            except Exception as error:  # kombu's errors vary by transport
                log.warning(
                    "dead letters not read", extra={"service": service, "error": repr(error)}
                )
                queue.error = "The broker did not answer; try again in a moment."
        queues.append(queue)
    return queues
