"""The outbox on SQLite and PostgreSQL with a real RabbitMQ: written with the change, relayed
in order once each, marked only after the broker's confirm, and kept through outages."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from messaging_sample import AppFactory, Names, db, notes, outbox, processed
from sqlalchemy import Connection, false, func, insert, select, update

from flotilla.messaging.outbox import (
    BrokerPublisher,
    Event,
    PendingEvent,
    Publisher,
    pending_stats,
    prune_published,
    relay_pending,
    run_relay,
)
from flotilla.testing import TcpProxy, capture_logs, wait_until
from flotilla.testing.messaging import Rabbit, event_bodies

table = outbox.table


def add_events(app: Flask, count: int, event_type: str = "sample.happened") -> list[uuid.UUID]:
    """Commit ``count`` events, one transaction each, and return their ids in order."""
    ids = []
    with app.app_context():
        for number in range(count):
            ids.append(outbox.add_event(db.session, event_type, {"number": number}).id)
            db.session.commit()
    return ids


def pending_ids(app: Flask) -> list[uuid.UUID]:
    """Ids of the events not yet marked published."""
    with app.app_context(), db.engine.connect() as connection:
        query = select(table.c.event_id).where(table.c.published_at.is_(None))
        return list(connection.execute(query.order_by(table.c.position)).scalars())


def test_an_event_exists_only_if_its_transaction_commits(app: Flask) -> None:
    with app.app_context():
        outbox.add_event(db.session, "sample.happened", {"n": 1})
        db.session.execute(insert(notes).values(text="rolled back"))
        db.session.rollback()
        kept = outbox.add_event(db.session, "sample.happened", {"n": 2}, version=3)
        db.session.commit()
        rows = db.session.execute(select(table)).all()
    assert [(row.event_id, row.version, row.payload) for row in rows] == [(kept.id, 3, {"n": 2})]


def test_a_request_writes_its_event_with_its_request_id(app: Flask) -> None:
    response = app.test_client().post("/notes", headers={"X-Request-ID": "req-outbox-1"})
    assert response.status_code == 200
    with app.app_context():
        row = db.session.execute(select(table)).one()
    assert row.headers["flotilla_request_id"] == "req-outbox-1"
    assert row.type == "sample.happened"


def test_an_event_inserted_from_a_statement_exists_only_where_its_source_has_a_row(
    app: Flask,
) -> None:
    # The event rides in the statement that makes the change (placing's CTE, on PostgreSQL):
    # a change that did not happen writes no event.
    written = notes.select().where(notes.c.text == "written").subquery()
    insert_event = outbox.insert_from(written)
    with app.app_context(), db.engine.connect() as connection:
        connection.execute(insert(notes).values(text="written"))
        with outbox.creating("sample.happened", {"n": 1}, version=2) as (event, parameters):
            connection.execute(insert_event, parameters)
        with outbox.creating("sample.happened", {"n": 2}) as (_unwritten, parameters):
            connection.execute(
                outbox.insert_from(written.select().where(false()).subquery()), parameters
            )
        connection.commit()
        rows = connection.execute(select(table)).all()
    assert [(row.event_id, row.type, row.version, row.payload) for row in rows] == [
        (event.id, "sample.happened", 2, {"n": 1})
    ]
    assert rows[0].headers["traceparent"]


@pytest.mark.parametrize(
    ("event_type", "payload", "error"),
    [
        ("Sample Happened", {}, ValueError),
        ("sample.*", {}, ValueError),
        ("sample", {}, ValueError),
        ("sample.happened", {"when": object()}, TypeError),
    ],
)
def test_bad_events_are_refused_before_anything_is_written(
    app: Flask, event_type: str, payload: dict[str, object], error: type[Exception]
) -> None:
    with app.app_context():
        with pytest.raises(error):
            outbox.add_event(db.session, event_type, payload)
        db.session.commit()
        assert db.session.execute(select(func.count()).select_from(table)).scalar() == 0


def test_the_relay_publishes_in_creation_order_and_marks_them(
    app: Flask, names: Names, rabbit: Rabbit
) -> None:
    probe = rabbit.bind_queue(f"{names.service}.probe", names.exchange).name
    ids = add_events(app, 5)
    assert relay_pending(app) == 5
    bodies = event_bodies(rabbit.take_all(probe))
    assert [uuid.UUID(body["id"]) for body in bodies] == ids
    assert [body["payload"]["number"] for body in bodies] == list(range(5))
    assert pending_ids(app) == []


def test_a_batch_is_published_whole_and_its_confirms_waited_for_once(
    make_app: AppFactory, names: Names, rabbit: Rabbit
) -> None:
    app = make_app(OUTBOX_BATCH_SIZE=20)
    probe = rabbit.bind_queue(f"{names.service}.probe", names.exchange).name
    ids = add_events(app, 50)
    publisher = BrokerPublisher(app.extensions["flotilla.settings"])
    try:
        assert relay_pending(app, publisher) == 50
        assert publisher.waits == 3  # 20 + 20 + 10, one wait each, not one per event
    finally:
        publisher.close()
    messages = rabbit.take_all(probe)
    assert [uuid.UUID(body["id"]) for body in event_bodies(messages)] == ids
    assert {message.properties["delivery_mode"] for message in messages} == {2}
    assert pending_ids(app) == []


def test_events_are_marked_published_only_once_the_broker_confirms(
    app: Flask, names: Names, rabbit: Rabbit
) -> None:
    # A queue that holds two messages and nacks the rest: the third publish is refused.
    full = rabbit.bind_queue(
        f"{names.service}.full",
        names.exchange,
        arguments={"x-max-length": 2, "x-overflow": "reject-publish"},
    ).name
    ids = add_events(app, 4)
    with pytest.raises(Exception) as refused:  # noqa: PT011 - checked just below
        relay_pending(app)
    assert refused.typename == "MessageNacked"
    assert pending_ids(app) == ids[2:]
    assert len(rabbit.take_all(full)) == 2


class _SlowPublisher:
    """A real broker publisher that pauses after each event, so two relays overlap."""

    def __init__(self, inner: BrokerPublisher) -> None:
        self.inner = inner
        self.positions: list[int] = []

    def publish(self, pending: PendingEvent) -> None:
        self.inner.publish(pending)
        self.positions.append(pending.position)
        time.sleep(0.002)


def test_two_relays_at_once_publish_each_event_exactly_once(
    make_app: AppFactory, names: Names, rabbit: Rabbit
) -> None:
    app = make_app(OUTBOX_BATCH_SIZE=5)
    settings = app.extensions["flotilla.settings"]
    probe = rabbit.bind_queue(f"{names.service}.probe", names.exchange).name
    ids = add_events(app, 60)
    publishers = [_SlowPublisher(BrokerPublisher(settings)) for _ in range(2)]
    errors: list[BaseException] = []

    def relay(publisher: Publisher) -> None:
        try:
            relay_pending(app, publisher)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=relay, args=(publisher,)) for publisher in publishers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for publisher in publishers:
        publisher.inner.close()
    assert errors == []
    published = [uuid.UUID(body["id"]) for body in event_bodies(rabbit.take_all(probe))]
    assert sorted(published) == sorted(ids)  # each once: no duplicates, none missing
    assert pending_ids(app) == []
    for publisher in publishers:  # each relay went in creation order
        assert publisher.positions == sorted(publisher.positions)


def test_an_unreachable_broker_leaves_events_pending_until_it_is_back(
    make_app: AppFactory, names: Names, rabbit: Rabbit, proxy: TcpProxy
) -> None:
    app = make_app(BROKER_URL=proxy.url(), OUTBOX_POLL_INTERVAL=0.05, BROKER_CONNECT_TIMEOUT=1.0)
    probe = rabbit.bind_queue(f"{names.service}.probe", names.exchange).name
    proxy.cut()
    ids = add_events(app, 3)
    with pytest.raises(Exception):  # noqa: B017, PT011 - any connection error will do
        relay_pending(app)
    assert pending_ids(app) == ids
    stop = threading.Event()
    relay = threading.Thread(target=run_relay, args=(app,), kwargs={"stop": stop})
    relay.start()
    try:
        more = add_events(app, 2)
        proxy.restore()
        wait_until(lambda: pending_ids(app) == [], what="events published after restore")
    finally:
        stop.set()
        relay.join(10)
    published = [uuid.UUID(body["id"]) for body in event_bodies(rabbit.take_all(probe))]
    assert published == ids + more


def test_published_events_are_pruned_after_the_retention(app: Flask) -> None:
    old, recent, pending = add_events(app, 3)
    long_ago = datetime.now(UTC) - timedelta(days=8)
    with app.app_context(), db.engine.begin() as connection:
        stamp = update(table).where(table.c.event_id == old).values(published_at=long_ago)
        connection.execute(stamp)
        mark = update(table).where(table.c.event_id == recent)
        connection.execute(mark.values(published_at=datetime.now(UTC)))
    with app.app_context():
        assert prune_published(db.engine, table, timedelta(days=7)) == 1
    with app.app_context(), db.engine.connect() as connection:
        left = set(connection.execute(select(table.c.event_id)).scalars())
    assert left == {recent, pending}


def test_metrics_report_the_backlog_and_its_age(app: Flask) -> None:
    add_events(app, 2)
    with app.app_context(), db.engine.begin() as connection:
        backdated = datetime.now(UTC) - timedelta(minutes=5)
        connection.execute(update(table).values(created_at=backdated))
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert "flotilla_outbox_pending_events 2.0" in text
    age = next(
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("flotilla_outbox_oldest_pending_age_seconds ")
    )
    assert 300 <= age < 3600
    with app.app_context():
        assert pending_stats(db.engine, table).count == 2


def test_metrics_still_answer_when_the_gauges_cannot_be_refreshed(app: Flask) -> None:
    with app.app_context():
        table.drop(db.engine)  # every query for the gauges now fails in the database
    with capture_logs() as logs:
        response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert "http_requests_total" in response.get_data(as_text=True)
    assert [r["message"] for r in logs if r["level"] == "WARNING"] == [
        "outbox gauges not refreshed"
    ]


def test_a_redelivered_event_has_no_second_effect(app: Flask) -> None:
    applied: list[uuid.UUID] = []

    @processed.once(db, consumer="test")
    def handle(event: Event, connection: Connection) -> None:
        applied.append(event.id)
        connection.execute(insert(notes).values(text=str(event.id)[:30]))

    event = Event(uuid.uuid4(), "sample.happened", 1, datetime.now(UTC), {})
    with app.app_context():
        handle(event)
        handle(event)
        count = db.session.execute(select(func.count()).select_from(notes)).scalar()
    assert applied == [event.id]
    assert count == 1


def test_a_failed_handler_leaves_the_event_to_its_redelivery(app: Flask) -> None:
    attempts: list[int] = []

    @processed.once(db, consumer="test")
    def handle(event: Event, connection: Connection) -> None:
        attempts.append(1)
        connection.execute(insert(notes).values(text="effect"))
        if len(attempts) == 1:
            raise RuntimeError("the effect failed")

    event = Event(uuid.uuid4(), "sample.happened", 1, datetime.now(UTC), {})
    with app.app_context():
        with pytest.raises(RuntimeError):
            handle(event)
        handle(event)
        handle(event)
        count = db.session.execute(select(func.count()).select_from(notes)).scalar()
    assert (len(attempts), count) == (2, 1)
