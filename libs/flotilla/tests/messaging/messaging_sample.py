"""The sample service of the messaging tests; also the app a real worker process imports.

A worker started by a test runs ``flask --app messaging_sample:app tasks worker`` with
this directory on ``PYTHONPATH`` and its settings in the environment. The tasks report
what happened by appending lines to files under ``VAR_DIR``, which the test polls.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Column, Connection, MetaData, String, Table, Uuid, insert

from flotilla import Database, ServiceSettings, create_service, load_settings
from flotilla.messaging.outbox import Event, Outbox, ProcessedEvents
from flotilla.messaging.tasks import Tasks
from flotilla.testing.messaging import amqp_server_url

log = logging.getLogger(__name__)

metadata = MetaData()
notes = Table("notes", metadata, Column("text", String(100), nullable=False))
effects = Table("effects", metadata, Column("event_id", Uuid(), nullable=False))
db = Database(metadata)
outbox = Outbox(metadata)
processed = ProcessedEvents(metadata)
tasks = Tasks()

RELEASE_WAIT_SECONDS = 30.0

AppFactory = Callable[..., Flask]
"""The ``make_app`` fixture: settings overrides in, a sample app with its tables out."""


def report(name: str, line: str) -> None:
    """Append ``line`` to ``VAR_DIR/<name>``; the test reads it back."""
    settings: ServiceSettings = current_app.extensions["flotilla.settings"]
    with (settings.VAR_DIR / name).open("a") as file:
        file.write(line + "\n")


@tasks.task(name="sample.record")
def record(label: str) -> None:
    """Log from inside the app context and report the label."""
    log.info("sample task ran", extra={"label": label, "app": current_app.name})
    report("done.txt", label)


@tasks.task(name="sample.slow")
def slow(label: str) -> None:
    """Report the start, wait for the test's release file, report the end."""
    report("started.txt", f"{label} {os.getpid()}")
    release = Path(current_app.extensions["flotilla.settings"].VAR_DIR) / "release"
    deadline = time.monotonic() + RELEASE_WAIT_SECONDS
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    report("done.txt", label)


@tasks.task(name="sample.poison", max_retries=2)
def poison(label: str) -> None:
    """Always fail, after reporting the attempt."""
    report("attempts.txt", label)
    raise RuntimeError(f"poison {label}")


@tasks.on_event("sample.happened")
@processed.once(db, consumer="sample")
def on_happened(event: Event, connection: Connection) -> None:
    """Apply the event's effect; fail the first delivery when the payload asks to."""
    connection.execute(insert(effects).values(event_id=event.id))
    report("handled.txt", str(event.id))
    if event.payload.get("fail_once") and not (_var_dir() / f"failed-{event.id}").exists():
        (_var_dir() / f"failed-{event.id}").touch()
        raise RuntimeError("first delivery fails")


def _var_dir() -> Path:
    settings: ServiceSettings = current_app.extensions["flotilla.settings"]
    return settings.VAR_DIR


def create_app(settings: ServiceSettings) -> Flask:
    """The sample service with database, outbox and tasks."""
    app = create_service("sample", settings)
    db.init_app(app, settings)
    outbox.init_app(app, settings)
    tasks.init_app(app, settings)

    @app.post("/notes")
    def add_note() -> Any:
        outbox.add_event(db.session, "sample.happened", {"text": "hi"})
        db.session.execute(insert(notes).values(text="hi"))
        db.session.commit()
        return {"ok": True}

    return app


@dataclass(frozen=True)
class Names:
    """Broker names private to one test."""

    service: str
    exchange: str

    @property
    def work_queue(self) -> str:
        """The sample service's task queue."""
        return f"{self.service}.tasks"

    @property
    def dead_queue(self) -> str:
        """The sample service's dead-letter queue."""
        return f"{self.service}.tasks.dead"


def sample_settings(names: Names, tmp_path: Path, **overrides: Any) -> ServiceSettings:
    """Settings of the sample service, on RabbitMQ unless ``BROKER_URL`` is overridden."""
    values: dict[str, Any] = {
        "SERVICE_NAME": names.service,
        "EVENTS_EXCHANGE": names.exchange,
        "BROKER_URL": amqp_server_url(),
        "VAR_DIR": tmp_path,
        "ENVIRONMENT": "test",
        "TASK_RETRY_BACKOFF": 0.05,
        "TASK_RETRY_BACKOFF_MAX": 0.2,
        **overrides,
    }
    return ServiceSettings(**values)


def sample_app(settings: ServiceSettings) -> Flask:
    """The sample app with its tables created."""
    app = create_app(settings)
    with app.app_context():
        metadata.create_all(db.engine)
    return app


def _worker_app() -> Flask | None:
    if "SAMPLE_WORKER" not in os.environ:
        return None
    return create_app(load_settings(ServiceSettings))


app = _worker_app()
