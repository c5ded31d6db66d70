"""Tasks on a real worker process: app context, request id in logs, redelivery after a
SIGKILL, dead letters after the last retry, and events end to end on the embedded broker."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import orjson
import pytest
from flask import Flask
from messaging_sample import AppFactory, Names, db, effects, outbox, poison, record, slow
from sqlalchemy import select

from flotilla.messaging.outbox import (
    BrokerPublisher,
    Event,
    PendingEvent,
    outbox_state,
    relay_pending,
)
from flotilla.messaging.tasks import DEAD_LETTER_ERROR_HEADER, tasks_state
from flotilla.messaging.tasks.dead_letters import DeadLetters
from flotilla.observability.propagation import child_traceparent, parse_traceparent
from flotilla.resilience.backoff import backoff_delay
from flotilla.testing import wait_until
from flotilla.testing.messaging import Rabbit, WorkerProcess

HERE = Path(__file__).resolve().parent
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def lines(path: Path) -> list[str]:
    """The lines a sample task reported so far."""
    return path.read_text().splitlines() if path.exists() else []


POOLS = ["prefork", "threads", "solo"]
"""Every execution pool ``TASK_POOL`` offers: each must keep the delivery guarantees."""


def as_variable(value: object) -> str:
    """A setting's value as the environment gives it: lists comma-separated."""
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def worker(
    app: Flask, tmp_path: Path, name: str = "worker", pool: str = "prefork"
) -> WorkerProcess:
    """A worker process for ``app``'s settings (same broker, database and VAR_DIR)."""
    settings = app.extensions["flotilla.settings"]
    env = {
        "SAMPLE_WORKER": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        **{
            key: as_variable(value) for key, value in settings.model_dump().items() if key.isupper()
        },
        "TASK_CONCURRENCY": "1",
        "TASK_POOL": pool,
    }
    return WorkerProcess(
        "messaging_sample:app", env=env, log_path=tmp_path / f"{name}.log", cwd=tmp_path
    )


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    assert backoff_delay(0, base=1.0, cap=60.0, random=lambda: 0.999) == pytest.approx(0.999)
    assert backoff_delay(3, base=1.0, cap=60.0, random=lambda: 0.5) == 4.0
    assert backoff_delay(10, base=1.0, cap=60.0, random=lambda: 0.5) == 30.0
    assert backoff_delay(10_000, base=1.0, cap=60.0, random=lambda: 0.0) == 0.0


def test_a_trace_continues_with_a_new_span_and_bad_ones_are_replaced() -> None:
    parent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    child = child_traceparent(parent)
    assert parse_traceparent(child) == (TRACE_ID, "01")
    assert child != parent
    replaced = child_traceparent("00-" + "0" * 32 + "-00f067aa0ba902b7-01")
    assert parse_traceparent(replaced) is not None
    assert TRACE_ID not in replaced


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_celery_is_configured_to_lose_nothing(app: Flask, names: Names) -> None:
    conf = tasks_state(app).celery.conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost) == (True, True)
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"]
    assert conf.broker_transport_options == {"confirm_publish": True}
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.task_default_queue == names.work_queue
    assert conf.worker_pool == "prefork"  # the chassis default; TASK_POOL chooses another


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_declared_queues_keep_events_published_before_any_worker_starts(
    app: Flask, names: Names, rabbit: Rabbit
) -> None:
    result = app.test_cli_runner().invoke(args=["tasks", "declare-queues"])
    assert result.exit_code == 0, result.output
    assert names.work_queue in result.output
    with app.app_context():
        outbox.add_event(db.session, "sample.happened", {})
        outbox.add_event(db.session, "sample.unbound", {})  # no queue is bound for it
        db.session.commit()
    assert relay_pending(app) == 2
    assert rabbit.count(names.work_queue) == 1
    assert rabbit.count(names.dead_queue) == 0


@pytest.mark.process
@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_task_runs_in_app_context_with_the_request_id_in_its_logs(
    app: Flask, tmp_path: Path, pool: str
) -> None:
    headers = {"X-Request-ID": "req-task-1", "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    with app.test_request_context("/", headers=headers):
        app.preprocess_request()
        record.delay("first")
    with worker(app, tmp_path, pool=pool) as running:
        wait_until(lambda: lines(tmp_path / "done.txt") == ["first"], what="task ran")
        ran = next(r for r in running.log_records() if r.get("message") == "sample task ran")
    assert ran["request_id"] == "req-task-1"
    assert ran["trace_id"] == TRACE_ID
    assert ran["app"] == "sample"
    assert ran["path"] == "sample.record"


@pytest.mark.process
@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_task_whose_worker_is_killed_is_run_again(app: Flask, tmp_path: Path, pool: str) -> None:
    with app.app_context():
        slow.delay("only")
    first = worker(app, tmp_path, "first", pool=pool)
    first.start()
    try:
        wait_until(lambda: len(lines(tmp_path / "started.txt")) == 1, what="task started")
    finally:
        first.kill()
    (tmp_path / "release").touch()
    with worker(app, tmp_path, "second", pool=pool):
        wait_until(lambda: lines(tmp_path / "done.txt") == ["only"], what="task redelivered")
    assert len(lines(tmp_path / "started.txt")) == 2


@pytest.mark.process
@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_poison_task_is_dead_lettered_and_the_worker_goes_on(
    app: Flask, tmp_path: Path, names: Names, rabbit: Rabbit, pool: str
) -> None:
    with app.app_context():
        task_id = poison.delay("bad")
        record.delay("next")
    with worker(app, tmp_path, pool=pool):
        wait_until(lambda: lines(tmp_path / "done.txt") == ["next"], what="next task ran")
        wait_until(lambda: rabbit.count(names.dead_queue) == 1, what="dead letter")
    assert lines(tmp_path / "attempts.txt") == ["bad"] * 3  # the first run and two retries
    (dead,) = rabbit.take_all(names.dead_queue)
    assert dead.headers["id"] == task_id
    assert dead.headers[DEAD_LETTER_ERROR_HEADER] == "RuntimeError: poison bad"
    assert orjson.loads(dead.body)[0] == ["bad"]
    assert rabbit.count(names.work_queue) == 0


@pytest.mark.process
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_dead_letters_are_listed_unchanged_and_replayed_to_a_worker(
    app: Flask, tmp_path: Path, names: Names, rabbit: Rabbit
) -> None:
    state = tasks_state(app)
    dead = {DEAD_LETTER_ERROR_HEADER: "RuntimeError: the cause, since fixed"}
    with app.app_context():
        task = state.celery.tasks["sample.record"]
        task_id = task.apply_async(("replayed",), queue=state.dead_letter_queue, headers=dead).id
    runner = app.test_cli_runner()
    for _ in range(2):  # listing twice shows the same: nothing was taken
        listed = runner.invoke(args=["tasks", "dead-letters"])
        assert listed.exit_code == 0, listed.output
        assert f"{task_id}  sample.record" in listed.output
        assert "RuntimeError: the cause, since fixed" in listed.output
    assert rabbit.count(names.dead_queue) == 1
    replayed = runner.invoke(args=["tasks", "replay-dead-letters"])
    assert replayed.output.splitlines() == [
        f"replayed {task_id}  sample.record",
        "1 dead letter(s) replayed",
    ]
    assert rabbit.count(names.dead_queue) == 0
    assert rabbit.count(names.work_queue) == 1
    with worker(app, tmp_path):
        wait_until(lambda: lines(tmp_path / "done.txt") == ["replayed"], what="replayed task ran")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_another_process_reads_a_services_dead_letters_and_replays_the_one_chosen(
    app: Flask, names: Names, rabbit: Rabbit
) -> None:
    state = tasks_state(app)
    dead = {DEAD_LETTER_ERROR_HEADER: "RuntimeError: once"}
    with app.app_context():
        task = state.celery.tasks["sample.record"]
        first, second = (
            task.apply_async((name,), queue=state.dead_letter_queue, headers=dead).id
            for name in ("first", "second")
        )
    settings = app.extensions["flotilla.settings"]
    letters = DeadLetters.of_service(settings.SERVICE_NAME, settings)  # as an operator's tool
    assert [letter.task_id for letter in letters.read()] == [first, second]
    assert letters.depth() == 2

    (moved,) = letters.replay(task_ids=[second])

    assert moved.task_id == second
    assert [letter.task_id for letter in letters.read()] == [first]
    assert rabbit.count(names.work_queue) == 1
    assert letters.replay(task_ids=["no-such-task"]) == []
    assert letters.depth() == 1


@pytest.mark.process
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_events_reach_a_worker_on_the_embedded_broker_and_apply_once(
    make_app: AppFactory, tmp_path: Path
) -> None:
    app = make_app(BROKER_URL="")
    with app.app_context():
        tasks_state(app).declare_queues()  # bound before the relay publishes
        retried = outbox.add_event(db.session, "sample.happened", {"fail_once": True})
        plain = outbox.add_event(db.session, "sample.happened", {})
        db.session.commit()
    assert relay_pending(app) == 2
    with app.app_context():
        _publish_again(app, plain.id)  # a relay that crashed before its commit
    with worker(app, tmp_path):
        wait_until(lambda: _effects(app) == sorted([retried.id, plain.id]), what="events applied")
        wait_until(lambda: len(lines(tmp_path / "handled.txt")) == 3, what="redelivery seen")
    assert _effects(app) == sorted([retried.id, plain.id])


def _publish_again(app: Flask, event_id: uuid.UUID) -> None:
    state = outbox_state(app)
    row = db.session.execute(select(state.table).where(state.table.c.event_id == event_id)).one()
    event = Event(row.event_id, row.type, row.version, row.created_at, row.payload)
    publisher = BrokerPublisher(state.settings)
    publisher.publish(PendingEvent(row.position, event, row.headers))
    publisher.close()


def _effects(app: Flask) -> list[uuid.UUID]:
    with app.app_context(), db.engine.connect() as connection:
        return sorted(connection.execute(select(effects.c.event_id)).scalars())
