"""Faults injected into real processes: orders answers fast and loses or doubles nothing.

Every test ends with :meth:`Shop.assert_consistent`: no order left pending, catalog holds a
reservation for exactly the placed orders, and the stock is the initial stock minus what
they ordered.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from flotilla.testing import wait_until

from .conftest import Shop, children


def timed_order(
    shop: Shop, token: str | None = None, **headers: str
) -> tuple[int, dict[str, str], float]:
    """Place an order; its status, body and seconds taken."""
    started = time.perf_counter()
    status, body = shop.place_order(token=token, **headers)
    return status, body, time.perf_counter() - started


def breaker_state(shop: Shop, target: str) -> float:
    """orders' breaker gauge for ``target`` (0 closed, 1 half-open, 2 open), from /metrics."""
    with urllib.request.urlopen(f"{shop.orders_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    prefix = f'flotilla_http_client_breaker_state{{target="{target}"}}'
    values = [line.split()[-1] for line in text.splitlines() if line.startswith(prefix)]
    return float(values[0]) if values else 0.0


def open_catalog_breaker(shop: Shop) -> None:
    """Place orders until orders' breaker for catalog is open, and its workers know it."""
    wait_until(
        lambda: shop.place_order()[0] == 503 and breaker_state(shop, "catalog") == 2,
        timeout=30,
        what="the catalog breaker to open",
    )
    time.sleep(0.6)  # the other worker reads the shared verdict every 0.5 s


def test_catalog_killed_orders_answer_503_fast_and_write_nothing(shop: Shop) -> None:
    before = shop.assert_consistent()
    shop.kill_catalog()

    open_catalog_breaker(shop)
    answers = [timed_order(shop) for _ in range(10)]

    assert {status for status, _, _ in answers} == {503}
    assert all(body["type"].endswith("dependency-unavailable") for _, body, _ in answers)
    assert statistics.median(seconds for _, _, seconds in answers) < 0.1
    assert shop.assert_consistent() == before


def test_catalog_back_the_breaker_half_opens_closes_and_orders_succeed(shop: Shop) -> None:
    before = shop.assert_consistent()
    shop.kill_catalog()
    open_catalog_breaker(shop)

    shop.start_catalog()

    # Each worker closes its breaker with a trial call of its own once it gets an order.
    wait_until(
        lambda: shop.place_order()[0] == 201 and breaker_state(shop, "catalog") == 0,
        timeout=30,
        what="orders to succeed with every breaker closed",
    )
    states = [
        record["to_state"]
        for record in shop.servers["orders"].log_records()
        if record.get("target") == "catalog" and "to_state" in record
    ]
    opened = states.index("open")
    half_opened = states.index("half_open", opened)
    assert "closed" in states[half_opened:]
    after = shop.assert_consistent()
    assert len(after.placed) > len(before.placed)


def test_catalog_frozen_is_a_504_within_the_deadline_then_recovers(shop: Shop) -> None:
    before = shop.assert_consistent()
    shop.freeze_catalog()

    status, body, seconds = timed_order(shop, **{"X-Deadline-Ms": "2500"})

    assert status == 504, body
    assert seconds < 2.5 + 1.0
    shop.thaw_catalog()
    # The reservation sent while catalog was frozen may be processed now, after orders gave
    # up: recovery releases it once the pending order is older than PENDING_ORDER_TIMEOUT.
    wait_until(lambda: shop.place_order()[0] == 201, timeout=30, what="catalog to answer again")

    def recovered() -> bool:
        shop.recover_orders()
        return shop.ledger().pending == 0

    wait_until(recovered, timeout=60, what="the pending order to be recovered")
    after = shop.assert_consistent()
    assert len(after.placed) == len(before.placed) + 1


def test_a_key_whose_request_gave_up_is_free_for_the_retry_at_once(shop: Shop) -> None:
    # The reservation times out in a frozen catalog and the release cannot reach it either:
    # the order is left to recovery, and the client's retry with the key is a new attempt.
    before = shop.assert_consistent()
    key = uuid.uuid4().hex
    shop.freeze_catalog()

    first, _ = shop.place_order(key, **{"X-Deadline-Ms": "1500"})
    retry, body = shop.place_order(key, **{"X-Deadline-Ms": "1500"})

    assert first == 504
    assert retry in {503, 504}, body  # catalog's fault again, not request-in-progress
    shop.thaw_catalog()
    wait_until(lambda: shop.place_order(key)[0] == 201, timeout=30, what="the retry to succeed")
    assert shop.ledger().pending == 0
    shop.recover_orders()  # releases what the abandoned attempts may hold
    assert len(shop.assert_consistent().placed) == len(before.placed) + 1


def test_a_key_whose_worker_died_is_free_once_its_deadline_has_passed(shop: Shop) -> None:
    # The worker placing the order is killed while catalog holds its reservation call: no
    # request will ever finish that order. The retry with its key takes it over once it is
    # older than any request can run (REQUEST_DEADLINE and the compensation's grace),
    # without waiting for recovery, which releases the orphan afterwards.
    before = shop.assert_consistent()
    key = uuid.uuid4().hex
    shop.freeze_catalog()
    with ThreadPoolExecutor(1) as pool:
        placing = pool.submit(shop.place_order, key)
        wait_until(lambda: shop.ledger().pending == 1, timeout=10, what="the order to be pending")
        for worker in children(shop.servers["orders"].pid):
            os.kill(worker, signal.SIGKILL)
        with pytest.raises(ConnectionResetError):  # the connection died with its worker
            placing.result(timeout=30)
    shop.thaw_catalog()

    wait_until(lambda: shop.place_order(key)[0] == 201, timeout=30, what="the retry to succeed")
    assert shop.ledger().pending == 0  # taken over by the retry, recovery has not run
    shop.recover_orders()
    assert len(shop.assert_consistent().placed) == len(before.placed) + 1


def test_users_slowed_down_the_deadline_is_respected(shop: Shop) -> None:
    # Only a token without the customer's profile makes orders ask users (see clients.py).
    before = shop.assert_consistent()
    shop.users_proxy.delay = 3.0

    status, body, seconds = timed_order(
        shop, token=shop.profileless_token, **{"X-Deadline-Ms": "1000"}
    )

    assert status == 504, body
    assert seconds < 1.0 + 0.5
    assert shop.assert_consistent() == before
    status, body, seconds = timed_order(shop, **{"X-Deadline-Ms": "1000"})
    shop.users_proxy.delay = 0.0
    assert status == 201, body  # a login's token carries the profile: users is not asked
    assert len(shop.assert_consistent().placed) == len(before.placed) + 1
