"""user.registered: written with the account in one transaction, published by the relay."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kombu.exceptions import OperationalError
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from flotilla.data.migrations import upgrade
from flotilla.messaging.outbox import relay_pending
from flotilla.testing import free_port
from flotilla.testing.messaging import Rabbit, amqp_server_url, event_bodies
from users import create_app
from users.models import User, db, outbox

from .conftest import make_settings

ALICE = {"username": "alice", "email": "Alice@Example.com", "password": "correct horse"}


def events(app: Flask) -> list[Any]:
    """Every outbox row, oldest first."""
    with app.app_context():
        return list(db.session.execute(select(outbox.table).order_by(outbox.table.c.position)))


def count_users(app: Flask) -> int:
    """How many accounts exist."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User)) or 0


def test_a_registration_writes_one_versioned_user_registered_event(
    app: Flask, client: FlaskClient
) -> None:
    response = client.post(
        "/api/v1/users", json={**ALICE, "display_name": "Alice A."}, headers={"X-Request-ID": "r-1"}
    )
    assert response.status_code == 201
    body = response.json
    assert body is not None
    (row,) = events(app)
    assert (row.type, row.version, row.published_at) == ("user.registered", 1, None)
    assert row.payload == {
        "user_id": body["id"],
        "username": "alice",
        "email": "alice@example.com",
        "display_name": "Alice A.",
        "registered_at": body["created_at"],
    }
    assert row.headers["flotilla_request_id"] == "r-1"


def test_a_refused_registration_writes_no_event(app: Flask, client: FlaskClient) -> None:
    assert client.post("/api/v1/users", json=ALICE).status_code == 201
    assert client.post("/api/v1/users", json=ALICE).status_code == 409
    assert len(events(app)) == 1


@pytest.fixture
def failing_commit() -> Iterator[None]:
    """Make every commit fail after the flush: the event row was written, then rolled back."""

    def refuse(_session: Session) -> None:
        raise RuntimeError("the commit failed")

    event.listen(Session, "before_commit", refuse)
    yield
    event.remove(Session, "before_commit", refuse)


@pytest.mark.usefixtures("failing_commit")
def test_a_registration_whose_transaction_rolls_back_emits_nothing(
    app: Flask, client: FlaskClient
) -> None:
    response = client.post("/api/v1/users", json=ALICE)
    assert response.status_code == 500
    assert (events(app), count_users(app)) == ([], 0)


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """Users apps on a migrated SQLite file, each with its own events exchange name."""
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        exchange = f"t{uuid.uuid4().hex[:10]}.events"
        directory = tmp_path / str(len(made))
        url = f"sqlite:///{directory / 'users.db'}"
        app = create_app(make_settings(url, directory, EVENTS_EXCHANGE=exchange, **overrides))
        upgrade(app)
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()


def test_registration_answers_201_while_the_broker_is_unreachable(make_app: AppFactory) -> None:
    app = make_app(BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    response = app.test_client().post("/api/v1/users", json=ALICE)
    assert response.status_code == 201
    with pytest.raises(OperationalError, match="Connection refused"):
        relay_pending(app)
    assert [row.published_at for row in events(app)] == [None]  # kept for later


def test_the_relay_publishes_the_event_by_its_type(make_app: AppFactory) -> None:
    app = make_app(BROKER_URL=amqp_server_url())
    exchange = app.extensions["flotilla.settings"].EVENTS_EXCHANGE
    rabbit = Rabbit()
    try:
        probe = rabbit.bind_queue(f"{exchange}.probe", exchange, "user.registered").name
        other = rabbit.bind_queue(f"{exchange}.other", exchange, "order.*").name
        assert app.test_client().post("/api/v1/users", json=ALICE).status_code == 201
        assert relay_pending(app) == 1
        (body,) = event_bodies(rabbit.take_all(probe))
        assert rabbit.count(other) == 0
    finally:
        rabbit.close()
    (row,) = events(app)
    assert (body["id"], body["type"], body["version"]) == (str(row.event_id), "user.registered", 1)
    assert body["payload"]["username"] == "alice"
    assert row.published_at is not None
