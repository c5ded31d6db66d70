"""Reload, drain, crash and slow clients under load: what a client of the front door sees.

Each scenario loads the shop for a few seconds (wrk, or a Python loop where wrk cannot say
which request failed), signals a real process in the middle, and counts the requests that
failed: non-2xx answers plus socket errors. Figures are logged (``-o log_cli=true
--log-cli-level=INFO`` shows them); ``docs/operations.md`` quotes them. The scenarios that
stop or kill a catalog replica come last: nginx takes a restarted replica back only after
its ``fail_timeout``, which the tests before them then need not wait for.
"""

from __future__ import annotations

import logging
import signal
import statistics
import time

import pytest

from flotilla.testing import wait_until

from .conftest import INITIAL_STOCK, PENDING_ORDER_TIMEOUT, THREADS, WORKERS, FrontDoor, workers
from .load import Attempt, OrderLoad, SlowClients, WrkLoad, place_order, probe

pytestmark = [pytest.mark.process, pytest.mark.postgres]

log = logging.getLogger(__name__)

SIGNAL_AFTER = 1.5
"""Seconds of steady load before the signal."""
WRK_CONNECTIONS = 8


RELOAD_SECONDS = 9
"""Load long enough to cover a whole reload: granian replaces workers one at a time."""


def test_sighup_replaces_every_worker_and_no_request_fails(shop: FrontDoor) -> None:
    shop.ensure_serving("catalog")
    replica = shop.servers["catalog-b"]
    before = set(workers(replica.pid))

    # Straight to the replica: no proxy in between that could retry a failed request.
    url = f"{replica.url}{shop.product_path()}"
    with WrkLoad(url, connections=WRK_CONNECTIONS, seconds=RELOAD_SECONDS) as load:
        time.sleep(SIGNAL_AFTER)
        replica.signal(signal.SIGHUP)

    log.info("SIGHUP to %s under load: %s", shop.server, load.result)
    assert load.result.requests > 100
    assert load.result.failed == 0, load.result
    wait_until(
        lambda: before.isdisjoint(now := workers(replica.pid)) and len(now) == WORKERS["catalog"],
        what="the old workers to exit",
    )


def test_nginx_reload_under_load_answers_every_request_it_reads(shop: FrontDoor) -> None:
    """A reload closes idle kept-alive connections: at most one request each is lost.

    An old worker closes the client connections it holds idle; a request the client wrote
    into one as it closed gets no answer (wrk counts a read error and does not retry). No
    request nginx read goes unanswered or fails.
    """
    shop.ensure_serving("catalog")
    nginx = shop.nginx
    assert nginx is not None
    before = set(workers(nginx.pid))

    with WrkLoad(f"{shop.url}{shop.product_path()}", connections=WRK_CONNECTIONS) as load:
        time.sleep(SIGNAL_AFTER)
        nginx.send_signal(signal.SIGHUP)

    log.info("SIGHUP to nginx under load: %s", load.result)
    assert load.result.requests > 100
    assert load.result.non_2xx == 0, load.result
    assert load.result.socket_errors["read"] <= WRK_CONNECTIONS, load.result
    assert load.result.failed == load.result.socket_errors["read"], load.result
    wait_until(lambda: before.isdisjoint(workers(nginx.pid)), what="nginx's workers replaced")


SLOW_SECONDS = 3.0
"""How long each slow client takes to send its body."""


def test_slow_clients_hold_the_servers_threads_but_not_behind_nginx(shop: FrontDoor) -> None:
    shop.ensure_serving("users")
    users = shop.servers["users"]
    slow_count = 2 * THREADS * WORKERS["users"]
    path = f"/api/v1/users/{shop.customer_id}"
    headers = {"Authorization": f"Bearer {shop.token}"}

    def latencies(base: str, port: int, *, slow: bool) -> list[float]:
        count = slow_count if slow else 0
        with SlowClients(("127.0.0.1", port), "/api/v1/users", count, SLOW_SECONDS) as clients:
            time.sleep(0.5)
            seconds = probe(f"{base}{path}", count=8, interval=0.25, headers=headers)
        assert clients.statuses == [422] * count, "a slow client's body never arrived"
        log.info("%s, %d slow clients: %s", base, count, [round(s, 3) for s in seconds])
        return seconds

    quiet = latencies(shop.url, shop.nginx_port, slow=False)
    behind_nginx = latencies(shop.url, shop.nginx_port, slow=True)
    direct = latencies(users.url, users.port, slow=True)

    medians = [statistics.median(seconds) for seconds in (quiet, behind_nginx, direct)]
    log.info("median seconds: quiet %.3f, behind nginx %.3f, direct %.3f", *medians)
    assert max(behind_nginx) < 1.0, "slow clients delayed requests behind nginx"
    assert medians[2] > 0.5, "slow clients straight to the server did not hold its threads"
    assert medians[2] > 5 * medians[1]


def test_a_replica_drained_out_of_nginx_then_stopped_fails_no_order(shop: FrontDoor) -> None:
    """The drain procedure: out of nginx's upstream first, then SIGTERM; POSTs included.

    Each order goes on a new connection: what a reload of nginx does to idle kept-alive
    client connections is the nginx-reload test's subject; here only the drain counts.
    """
    shop.ensure_serving("orders")
    leaving = shop.servers["orders-b"]
    assert leaving.process is not None
    served = shop.served("orders-b", "/api/v1/orders")

    with OrderLoad(
        shop.url, token=shop.token, product_id=shop.product_id, keep_alive=False
    ) as orders:
        time.sleep(SIGNAL_AFTER)
        shop.route("orders", ("orders-a",))
        drained_at = shop.served("orders-b", "/api/v1/orders")
        leaving.signal(signal.SIGTERM)
        exit_code = leaving.process.wait(timeout=40)

    failed = [attempt for attempt in orders.attempts if attempt.status != 201]
    log.info("drained, then stopped: %d orders, %d failed", len(orders.attempts), len(failed))
    assert exit_code == 0
    assert drained_at > served, "orders-b served nothing before it was drained"
    assert len(orders.attempts) > 10
    assert failed == []
    check_each_key_placed_once(shop, [attempt.key for attempt in orders.attempts])


def test_sigkill_fails_some_orders_and_their_retries_place_each_exactly_once(
    shop: FrontDoor,
) -> None:
    shop.ensure_serving("orders")
    clients = 4
    with OrderLoad(
        shop.url, token=shop.token, product_id=shop.product_id, clients=clients
    ) as orders:
        time.sleep(SIGNAL_AFTER)
        shop.kill("orders-b")
        killed_at = time.monotonic()

    failed = [attempt for attempt in orders.attempts if attempt.status != 201]
    log.info(
        "SIGKILL to one of two orders replicas under load: %d orders, %d failed (%s)",
        len(orders.attempts),
        len(failed),
        sorted(str(attempt.status) for attempt in failed),
    )
    assert len(orders.attempts) > 10
    assert len(failed) <= clients, "more failures than requests in flight at the kill"
    # 502: the replica died before answering; None: while its answer was on the way.
    assert {attempt.status for attempt in failed} <= {502, None}

    retried = retry_orders(shop, failed, not_before=killed_at + PENDING_ORDER_TIMEOUT)
    assert {attempt.status for attempt in retried} <= {201}
    check_each_key_placed_once(shop, [attempt.key for attempt in orders.attempts])


def retry_orders(shop: FrontDoor, failed: list[Attempt], *, not_before: float) -> list[Attempt]:
    """What a client does: send each failed order again with its key until it is placed.

    A request killed half-way leaves its key ``in_progress`` (409); recovery releases such an
    order once it is older than ``PENDING_ORDER_TIMEOUT`` and frees the key.
    """
    retried = [retry(shop, attempt.key) for attempt in failed]
    in_progress = [attempt for attempt in retried if attempt.status == 409]
    if in_progress:
        time.sleep(max(0.0, not_before - time.monotonic()))
        log.info("recovery: %s", shop.recover_orders().strip().splitlines()[-1])
        retried = [
            retry(shop, attempt.key) if attempt.status == 409 else attempt for attempt in retried
        ]
    log.info(
        "retried %d failed orders: %d needed recovery first, answers %s",
        len(failed),
        len(in_progress),
        sorted(str(attempt.status) for attempt in retried),
    )
    return retried


def retry(shop: FrontDoor, key: str) -> Attempt:
    """One retry of the order sent with ``key``, through the front door."""
    return place_order(shop.url, token=shop.token, product_id=shop.product_id, key=key)


def check_each_key_placed_once(shop: FrontDoor, keys: list[str]) -> None:
    """Every key names one placed order, every placed order one key; the stock agrees."""
    rows = shop.rows(
        "orders",
        "SELECT idempotency_key, id, state FROM orders WHERE idempotency_key IS NOT NULL",
    )
    by_key = {key: (order_id, state) for key, order_id, state in rows}
    assert set(keys) <= by_key.keys(), "a key has no order"
    assert {state for _, state in by_key.values()} == {"placed"}
    placed = [order_id for (order_id,) in shop.rows("orders", "SELECT id FROM orders")]
    assert sorted(placed) == sorted(order_id for order_id, _ in by_key.values()), (
        "an order without its key: written twice"
    )
    (stock,) = shop.rows("catalog", f"SELECT stock FROM products WHERE id = {shop.product_id}")
    assert stock[0] == INITIAL_STOCK - len(placed), "stock and placed orders disagree"


def test_sigterm_drains_a_replica_and_nginx_moves_to_the_other(shop: FrontDoor) -> None:
    shop.ensure_serving("catalog")
    leaving = shop.servers["catalog-b"]
    assert leaving.process is not None
    served = {name: shop.served(name, "/api/v1/products") for name in ("catalog-a", "catalog-b")}
    retried = shop.retried_away_from("catalog-b")

    with WrkLoad(f"{shop.url}{shop.product_path()}", connections=WRK_CONNECTIONS) as load:
        time.sleep(SIGNAL_AFTER)
        leaving.signal(signal.SIGTERM)
        exit_code = leaving.process.wait(timeout=40)

    retried = shop.retried_away_from("catalog-b") - retried
    log.info("SIGTERM to one of two replicas: %s, %d retried by nginx", load.result, retried)
    assert exit_code == 0
    assert load.result.failed == 0, load.result
    for name, count in served.items():
        assert shop.served(name, "/api/v1/products") > count + 100, f"{name} served no load"
    messages = [record.get("message") for record in leaving.log_records()]
    assert "shutdown begun, readiness now failing" in messages


def test_sigkill_nginx_retries_reads_on_the_surviving_replica(shop: FrontDoor) -> None:
    """Every GET the dead replica had not begun to answer is sent to the other one.

    A GET whose status line and headers had already reached nginx when the replica died is
    the exception: nginx has passed them on to the client and cannot start the answer again,
    so it closes the connection (wrk counts a read error). Gunicorn writes the headers and the
    body of an answer in two writes, so a kill can land between them: rare (one cut answer in
    two of nine runs of this test, none in the others), and at most one per connection.
    """
    shop.ensure_serving("catalog")
    retried = shop.retried_away_from("catalog-b")

    with WrkLoad(f"{shop.url}{shop.product_path()}", connections=WRK_CONNECTIONS) as load:
        time.sleep(SIGNAL_AFTER)
        shop.kill("catalog-b")

    retried = shop.retried_away_from("catalog-b") - retried
    log.info("SIGKILL to one of two replicas, GET: %s, %d retried by nginx", load.result, retried)
    assert retried > 0, "nginx never met the dead replica"
    assert load.result.non_2xx == 0, load.result
    cut = load.result.socket_errors["read"]
    assert load.result.failed == cut <= WRK_CONNECTIONS, load.result
