"""Nothing lost, nothing sent twice: registration to welcome e-mail through every failure
issue 5 names, with real Gunicorn, PostgreSQL, RabbitMQ, Celery and SMTP (see conftest)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
import requests
from sqlalchemy import text

from flotilla.config import ServiceSettings
from flotilla.messaging.outbox import BrokerPublisher, Event, PendingEvent
from flotilla.messaging.tasks import DEAD_LETTER_ERROR_HEADER
from flotilla.testing import wait_until
from flotilla.testing.messaging import amqp_server_url

from .conftest import MAX_RETRIES, Shop

pytestmark = [pytest.mark.process, pytest.mark.postgres]


def retries_of(shop: Shop, event_id: str) -> list[dict[str, object]]:
    """The worker's "will retry" log lines for the task of ``event_id``."""
    lines = shop.worker_records("task failed, will retry")
    return [line for line in lines if line.get("task_id") == event_id]


def test_a_registration_sends_exactly_one_welcome_email(shop: Shop) -> None:
    username = shop.new_username("welcome")
    response = shop.register(username, **{"X-Request-ID": f"req-{username}"})
    assert response.status_code == 201
    shop.wait_for_mail(username)
    shop.settle()
    (received,) = shop.mail.to(shop.email_of(username))
    assert received.message["Subject"] == "Welcome to Flotilla Shop"
    event_id = shop.event_id_of(username)
    assert received.message["Message-ID"].startswith(f"<{event_id}.welcome@")
    assert shop.sent_count(event_id) == 1
    (sent,) = [line for line in shop.worker_records("e-mail sent") if line["event_id"] == event_id]
    assert sent["request_id"] == f"req-{username}"  # the request's id, in the worker's log


def test_registrations_during_a_broker_outage_all_get_their_email_once_it_is_back(
    shop: Shop,
) -> None:
    usernames = [shop.new_username("outage") for _ in range(5)]
    shop.proxy.cut()
    try:
        statuses = [shop.register(name).status_code for name in usernames]
        assert statuses == [201] * 5
        ready = requests.get(f"{shop.users.url}/healthz/ready", timeout=10)
        assert (ready.status_code, ready.json()["status"]) == (200, "degraded")  # in rotation
        assert shop.pending_events() >= 5  # kept in the outbox, not lost, not failed
        assert all(not shop.mail.to(shop.email_of(name)) for name in usernames)
    finally:
        shop.proxy.restore()
    shop.wait_for_mail(*usernames, timeout=60)
    shop.settle()
    counts = {name: len(shop.mail.to(shop.email_of(name))) for name in usernames}
    assert counts == dict.fromkeys(usernames, 1)
    assert shop.pending_events() == 0


def test_a_worker_killed_mid_send_is_redelivered_and_sends_once(shop: Shop) -> None:
    username = shop.new_username("killed")
    shop.mail.hold(shop.email_of(username))
    try:
        assert shop.register(username).status_code == 201
        wait_until(lambda: shop.mail.holding, what="the worker in the middle of sending")
        assert shop.worker is not None
        shop.worker.kill()  # SIGKILL, the whole process group, as the OOM killer would
        wait_until(lambda: shop.mail.abandoned, what="the server seeing the sender gone")
    finally:
        shop.mail.release()
    assert shop.mail.to(shop.email_of(username)) == []  # the server never accepted it
    shop.start_worker()
    shop.wait_for_mail(username)
    shop.settle()
    assert len(shop.mail.to(shop.email_of(username))) == 1
    assert shop.sent_count(shop.event_id_of(username)) == 1


@pytest.fixture
def commit_refusing_trigger(shop: Shop) -> Iterator[str]:
    """A trigger that fails the COMMIT of any account whose name starts with the prefix.

    Deferred to the commit, so the request has already written its outbox event when the
    transaction rolls back: the case the classic ``.delay()`` inside a request gets wrong.
    """
    prefix = f"doomed-{shop.run_id}"
    create = f"""
        CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.username LIKE '{prefix}%' THEN
                RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$;
        CREATE CONSTRAINT TRIGGER refuse_doomed AFTER INSERT ON users
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_doomed();
    """
    with shop.users_engine.begin() as connection:
        connection.execute(text(create))
    yield prefix
    with shop.users_engine.begin() as connection:
        connection.execute(text("DROP TRIGGER refuse_doomed ON users"))
        connection.execute(text("DROP FUNCTION refuse_doomed()"))


def test_a_registration_whose_transaction_rolls_back_emits_nothing(
    shop: Shop, commit_refusing_trigger: str
) -> None:
    doomed = f"{commit_refusing_trigger}-{uuid.uuid4().hex[:6]}"
    response = shop.register(doomed)
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/problem+json"
    shop.settle()  # later events were relayed and handled: this one would have been too
    assert shop.mail.to(shop.email_of(doomed)) == []
    query = text("SELECT count(*) FROM outbox_events WHERE payload->>'username' = :name")
    with shop.users_engine.connect() as connection:
        assert connection.execute(query, {"name": doomed}).scalar_one() == 0


def publish_event(shop: Shop, event_type: str, payload: dict[str, object]) -> str:
    """Publish an event straight to the events exchange, as a faulty producer might."""
    exchange = shop.worker_env["EVENTS_EXCHANGE"]
    settings = ServiceSettings(BROKER_URL=amqp_server_url(), EVENTS_EXCHANGE=exchange)
    event = Event(uuid.uuid4(), event_type, 1, datetime.now(UTC), payload)
    publisher = BrokerPublisher(settings)
    try:
        publisher.publish(PendingEvent(0, event, {}))
    finally:
        publisher.close()
    return str(event.id)


def test_a_poison_event_is_dead_lettered_after_the_retries_and_the_worker_goes_on(
    shop: Shop,
) -> None:
    poison = {"user_id": 1, "username": "poison", "registered_at": "2026-11-21T10:00:00+00:00"}
    event_id = publish_event(shop, "user.registered", poison)  # no e-mail address
    after = shop.new_username("after-poison")
    assert shop.register(after).status_code == 201
    shop.wait_for_mail(after)  # the next message is handled while the poison is retried
    wait_until(lambda: shop.rabbit.count(shop.dead_queue) == 1, timeout=30, what="dead letter")
    (dead,) = shop.rabbit.take_all(shop.dead_queue)
    assert dead.headers["id"] == event_id
    assert dead.headers[DEAD_LETTER_ERROR_HEADER].startswith("ValidationError")
    assert orjson.loads(dead.body)[0][0]["payload"] == poison
    assert len(retries_of(shop, event_id)) == MAX_RETRIES
    assert shop.sent_count(event_id) == 0


def test_an_smtp_outage_is_retried_with_backoff_and_delivered_when_it_is_back(
    shop: Shop,
) -> None:
    username = shop.new_username("smtp-down")
    shop.mail.down()
    try:
        assert shop.register(username).status_code == 201
        event_id = shop.event_id_of(username)
        wait_until(lambda: len(retries_of(shop, event_id)) >= 2, what="two retries")
    finally:
        shop.mail.up()
    shop.wait_for_mail(username)
    shop.settle()
    assert len(shop.mail.to(shop.email_of(username))) == 1
    retries = retries_of(shop, event_id)
    assert 2 <= len(retries) < MAX_RETRIES
    assert all("ConnectionRefusedError" in str(line["error"]) for line in retries)
    countdowns = [float(str(line["countdown"])) for line in retries]
    ceilings = [min(1.0, 0.2 * 2**attempt) for attempt in range(len(retries))]
    assert all(0 <= wait <= cap for wait, cap in zip(countdowns, ceilings, strict=True))
    assert shop.sent_count(event_id) == 1
