"""How many messages wait in a service's task queues, read from the broker at scrape time.

The dead-letter queue is the one that matters most: a task that failed every retry waits
there for a person, and nothing else says so. The broker knows the depth, not any process,
so it is asked (a passive declare, which creates nothing) when the worker's metrics port is
scraped: the figure is as fresh as the scrape and costs nothing between scrapes. A broker
that does not answer leaves the series out of that scrape, so an alert on it goes quiet
rather than wrong, and ``up`` of the worker and the broker's own alerts say why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from flotilla.messaging.tasks.state import TasksState

log = logging.getLogger(__name__)

QUEUE_MESSAGES = "flotilla_task_queue_messages"


class QueueDepthCollector:
    """Yields ``flotilla_task_queue_messages{queue, kind}`` for the work and dead-letter queue."""

    def __init__(self, state: TasksState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        """Ask the broker for both queues' depth; yield nothing if it does not answer."""
        family = GaugeMetricFamily(
            QUEUE_MESSAGES,
            "Messages ready in the service's task queues, by queue and kind (work, dead_letter).",
            labels=("queue", "kind"),
        )
        queues = (("work", self.state.queue), ("dead_letter", self.state.dead_letter_queue))
        try:
            with self.state.celery.connection_for_read() as connection:
                channel = connection.default_channel
                for kind, queue in queues:
                    _name, messages, _consumers = queue(channel).queue_declare(passive=True)
                    family.add_metric((queue.name, kind), messages)
        except Exception as error:  # the scrape still answers, without these series
            log.warning("task queue depth not read", extra={"error": repr(error)[:500]})
            return
        yield family
