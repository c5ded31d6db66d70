"""What recording an event with its effect costs: on a Core connection against an ORM session.

``python bench/event_record.py`` migrates a throw-away notifications database on this
machine's PostgreSQL, then applies new events the two ways, through the notifications app's
own engine. Each event is what the worker's transaction holds for an e-mail, without the
e-mail: the ``processed_events`` record (``INSERT … ON CONFLICT DO NOTHING RETURNING``), the
``sent_emails`` row, the commit.

* *Core connection*: :meth:`flotilla.ProcessedEvents.once`, as the worker runs it: the
  statements on a connection from the engine, committed there.
* *ORM session*: the same two statements on the scoped session's connection, committed
  through the session and the session removed afterwards, as the app context's end does
  after each task: how ``once`` ran before the connection replaced the session.

The ways alternate over rounds, each applying ``--events`` events one after another; a
round's CPU per event is this process's and the database backends' (``write_cost``), and
the median round of each way is shown.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from sqlalchemy import Connection, insert

from flotilla import Event
from flotilla.data.migrations import upgrade
from flotilla.testing import postgres_database
from notifications import create_app
from notifications.config import NotificationsSettings
from notifications.models import Base, SentEmail, db, processed
from write_cost import Round, alternating, measure_round, render

CONSUMER = "bench.event-record"
_RECORD_SENT = insert(Base.metadata.tables[SentEmail.__tablename__])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each way")
    arguments = parser.parse_args()
    with postgres_database() as url, tempfile.TemporaryDirectory() as var_dir:
        settings = NotificationsSettings(DATABASE_URL=url, VAR_DIR=Path(var_dir))
        app = create_app(settings.model_copy(update={"LOG_LEVEL": "WARNING"}))
        upgrade(app)
        rounds = measure(app, url, arguments.events, arguments.rounds)
        with app.app_context():
            db.engine.dispose()
    title = (
        f"An event's record and effect, {arguments.events:,} events a round, "
        f"{arguments.rounds} rounds of each way (median round):"
    )
    print(render(title, rounds, "event"))


def measure(app: Flask, url: str, per_round: int, rounds: int) -> list[Round]:
    """Alternate the ways (the first way first in odd rounds) over new events."""
    ways: dict[str, Callable[[Event], None]] = {
        "Core connection": processed.once(db, consumer=CONSUMER)(record_sent),
        "ORM session": in_a_session,
    }
    measured = []
    with app.app_context():
        for way in alternating(list(ways), rounds):
            ways[way](new_event())  # a connection, warm
            calls = [lambda apply=ways[way]: apply(new_event()) for _ in range(per_round)]
            measured.append(measure_round(way, calls, url))
    return measured


def new_event() -> Event:
    """An ``order.placed`` event no way has seen."""
    return Event(uuid.uuid4(), "order.placed", 1, datetime.now(UTC), {})


def record_sent(event: Event, connection: Connection) -> None:
    """The effect's database write: the ``sent_emails`` row, as ``deliver`` writes it."""
    values = {"message_id": f"<{event.id}.order-placed@bench>", "event_id": event.id}
    connection.execute(_RECORD_SENT, values | {"kind": "order-placed", "recipient": "a@b.test"})


def in_a_session(event: Event) -> None:
    """The same record and effect through the scoped ORM session."""
    session = db.session
    try:
        if processed.first_delivery(session.connection(), event.id, consumer=CONSUMER):
            record_sent(event, session.connection())
            session.commit()
        else:
            session.rollback()
    finally:
        db.session.remove()


if __name__ == "__main__":
    main()
