"""The Celery configuration of a service, derived from its settings and nothing else.

Every choice here is one the classic recipe gets wrong by default: late acks and
``reject_on_worker_lost`` so a task whose worker dies is delivered again; prefetch 1 so a
long task does not hold messages other workers could run; publisher confirms so a publish
returns only once RabbitMQ has the message; JSON only so a message can never run code.
The execution pool is ``TASK_POOL``: prefork by default, threads for short I/O-bound tasks
such as sending e-mail (docs/adr/0019-task-pools.md).
"""

from __future__ import annotations

from typing import Any

from kombu.entity import Queue, binding

from flotilla.config import ServiceSettings
from flotilla.messaging.broker import broker_url, events_exchange, transport_options


def work_queue(settings: ServiceSettings, event_types: list[str]) -> Queue:
    """The service's task queue, also bound to the events exchange for the types it handles."""
    events = events_exchange(settings)
    bindings = [binding(events, routing_key=event_type) for event_type in event_types]
    # Tasks reach the queue through the default exchange, by its name; events by binding.
    return Queue(work_queue_name(settings.SERVICE_NAME), bindings=bindings, durable=True)


def dead_letter_queue(settings: ServiceSettings) -> Queue:
    """Where tasks go after their last retry; no worker consumes it (inspect, fix, replay)."""
    return Queue(dead_letter_queue_name(settings.SERVICE_NAME), durable=True)


def work_queue_name(service: str) -> str:
    """The name of ``service``'s task queue."""
    return f"{service}.tasks"


def dead_letter_queue_name(service: str) -> str:
    """The name of ``service``'s dead-letter queue."""
    return f"{service}.tasks.dead"


def celery_config(settings: ServiceSettings, queue: Queue) -> dict[str, Any]:
    """Settings for ``Celery.conf``; see the module docstring for why each one."""
    return {
        "broker_url": broker_url(settings),
        "broker_transport_options": transport_options(settings),
        "broker_connection_timeout": settings.BROKER_CONNECT_TIMEOUT,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_pool": settings.TASK_POOL,
        "worker_concurrency": settings.TASK_CONCURRENCY,
        "task_soft_time_limit": settings.TASK_SOFT_TIME_LIMIT,
        "task_time_limit": settings.TASK_TIME_LIMIT,
        "task_ignore_result": True,
        "task_queues": [queue],
        "task_default_queue": queue.name,
        "task_create_missing_queues": False,
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0.2},
        # A lost connection means RabbitMQ redelivers unacked tasks: running them on would
        # do the work twice at once.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # Logging belongs to the chassis: JSON lines, configured by create_service.
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
    }
