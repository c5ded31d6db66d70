"""The message broker as the chassis uses it: RabbitMQ in production, files when embedded.

With ``BROKER_URL`` empty (the embedded default) kombu's filesystem transport stands in for
RabbitMQ: messages are files under ``VAR_DIR/broker``, shared by every process of every
service on the machine, with no server to install. It was chosen over kombu's SQLAlchemy
transport because it keeps exchange bindings in files too, so an event published by one
process (the relay) reaches the queues other processes (the workers) bound; the SQLAlchemy
transport keeps bindings in the memory of the process that declared them. What it cannot
do is redeliver a message whose worker was killed mid-task: that guarantee needs RabbitMQ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange

from flotilla.config import ServiceSettings

FILESYSTEM_BROKER = "filesystem://"


def broker_url(settings: ServiceSettings) -> str:
    """``BROKER_URL``, or kombu's filesystem transport when it is empty (the embedded default)."""
    return settings.BROKER_URL or FILESYSTEM_BROKER


def broker_directory(settings: ServiceSettings) -> Path:
    """Where the embedded broker keeps its messages: shared by every service under ``VAR_DIR``."""
    return settings.VAR_DIR / "broker"


def transport_options(settings: ServiceSettings, *, confirm_each: bool = True) -> dict[str, Any]:
    """Publisher confirms on AMQP; folders under ``VAR_DIR`` for the filesystem transport.

    ``confirm_each``: every publish waits for its own confirm (what Celery's publishing
    needs). The outbox relay turns it off and waits once per batch instead.

    The filesystem transport claims a message by renaming its file into ``processed``; a
    rename within one file system is atomic, so two workers never take the same message
    (a move to the system temporary directory, kombu's default, may be a copy and is not).
    """
    if settings.BROKER_URL:
        return {"confirm_publish": True} if confirm_each else {}
    directory = broker_directory(settings)
    folders = {name: directory / name for name in ("messages", "control", "processed")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["messages"]),
        "data_folder_out": str(folders["messages"]),
        "control_folder": str(folders["control"]),
        "store_processed": True,
        "processed_folder": str(folders["processed"]),
    }


def events_exchange(settings: ServiceSettings) -> Exchange:
    """The topic exchange every service publishes its events to, by event type."""
    return Exchange(settings.EVENTS_EXCHANGE, "topic", durable=True)


def broker_connection(settings: ServiceSettings, *, confirm_each: bool = True) -> Connection:
    """A kombu connection (not yet open) to the service's broker, with its timeouts."""
    return Connection(
        broker_url(settings),
        transport_options=transport_options(settings, confirm_each=confirm_each),
        connect_timeout=settings.BROKER_CONNECT_TIMEOUT,
    )
