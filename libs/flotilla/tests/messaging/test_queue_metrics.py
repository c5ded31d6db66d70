"""The depth of a service's task queues, read from the broker when the worker is scraped."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from messaging_sample import AppFactory, Names

from flotilla.messaging.tasks import DEAD_LETTER_ERROR_HEADER, tasks_state
from flotilla.messaging.tasks.metrics import QUEUE_MESSAGES, QueueDepthCollector
from flotilla.testing.messaging import Rabbit


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_depth_of_the_work_and_dead_letter_queues_comes_from_rabbitmq(
    app: Flask, names: Names, rabbit: Rabbit
) -> None:
    state = tasks_state(app)
    state.declare_queues()
    with app.app_context():
        task = state.celery.tasks["sample.record"]
        dead = {DEAD_LETTER_ERROR_HEADER: "RuntimeError: failed every retry"}
        task.apply_async(("lost",), queue=state.dead_letter_queue, headers=dead)
    assert rabbit.count(names.dead_queue) == 1

    (family,) = QueueDepthCollector(state).collect()

    assert family.name == QUEUE_MESSAGES
    depth = {(s.labels["queue"], s.labels["kind"]): s.value for s in family.samples}
    assert depth == {(names.work_queue, "work"): 0, (names.dead_queue, "dead_letter"): 1}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unreachable_broker_leaves_the_series_out_and_says_why(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(BROKER_URL="amqp://guest:guest@127.0.0.1:1//", BROKER_CONNECT_TIMEOUT=0.5)

    with caplog.at_level(logging.WARNING, logger="flotilla.messaging.tasks.metrics"):
        assert list(QueueDepthCollector(tasks_state(app)).collect()) == []

    assert "task queue depth not read" in caplog.text
