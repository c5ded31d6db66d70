"""The compose stack for real: compose.yml with compose.local.yml's images, under podman.

One stack for the module, brought up as ``scripts/compose_stack.py`` does (podman-compose
creates it, each service starts once its ``depends_on`` conditions hold), under a project name
of its own, published on 127.0.0.1 only, and removed at the end, volumes and network included. The
time from ``up`` to every service ready (health checks passing, one-shots done, background
processes logging that they started) is reported. Then, through the nginx container only:
the check a Docker Compose user runs (``scripts/compose_check.py``); and each kind of container
stopped as compose stops it (its stop signal, SIGKILL after its ``stop_grace_period``) while
two clients place orders: it exits 0 well before the deadline, and once it is started again
every order a client sent is placed exactly once — those answered 201 at once, the others
when sent again with their Idempotency-Key — readable, and confirmed by e-mail, so no
accepted request and no event was lost.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests

import compose_check
import containers
import system
from compose_stack import Stack, podman, write_env_file
from flotilla.testing import wait_until

WEB = ("users", "catalog", "orders")
"""The web services an order passes through: each is stopped under the order load."""
BACKGROUND = tuple(name for name, *_ in system.BACKGROUND_PROGRAMS)
MIGRATIONS = tuple(
    f"{service.name}-migrate" for service in system.SYSTEM.services if service.database
)
LOAD_CLIENTS = 2
LOAD_PAUSE = 0.1  # seconds between two orders of one client: about 10 orders a second in all
STOCK = 100_000


@dataclass(frozen=True)
class Shop:
    """The running stack and who uses it: its front door, a customer, an administrator."""

    stack: Stack
    url: str
    customer: compose_check.Checked
    admin_token: str

    def call(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        """One request through the front door."""
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=15, **kwargs)


def started_line(stack: Stack, service: str) -> str:
    """The log line that says ``service``'s background process is up (scripts/system.py's)."""
    command = stack.command(service)
    app, arguments = command[2], tuple(command[3:])
    return next(
        line
        for _, program_service, program, line in system.BACKGROUND_PROGRAMS
        if (program_service, program) == (app, arguments)
    )


def wait_started(stack: Stack, service: str, seen_before: int = 0) -> None:
    """Until ``service``'s start line appears one more time than ``seen_before``."""
    line = started_line(stack, service)
    wait_until(
        lambda: stack.logs(service).count(line) > seen_before, timeout=90, what=f"{service} up"
    )


def in_users(stack: Stack) -> compose_check.AdminCommand:
    """Runs a command line in the users container, as ``podman exec`` (compose exec) does."""

    def run(command: Sequence[str], stdin: str) -> str:
        return stack.run("users", *command, stdin=stdin)

    return run


LOG_TAIL_LINES = 30


def log_tails(stack: Stack, services: Sequence[str]) -> str:
    """The last lines each of ``services`` logged: what a failed check shows beside its error.

    The stack is removed when the fixture ends, its logs with it; an answer such as nginx's
    504 says which hop failed only together with nginx's error line and the service's own.
    """
    tails = []
    for service in services:
        lines = stack.logs(service).splitlines()[-LOG_TAIL_LINES:]
        tails.append("\n".join([f"--- the last {len(lines)} lines of {service}'s log", *lines]))
    return "\n".join(tails)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, measured: list[str]) -> Iterator[Shop]:
    """The stack, up, checked once as a Docker Compose user would; removed afterwards."""
    containers.build_all(quiet=True)
    containers.build_all_infrastructure(quiet=True)
    env_file = write_env_file(tmp_path_factory.mktemp("stack") / "env")
    stack = Stack(f"flotilla-test-{uuid.uuid4().hex[:8]}", env_file)
    try:
        started = time.monotonic()
        ready = stack.up()
        for service in BACKGROUND:
            wait_started(stack, service)
        cold_start = time.monotonic() - started
        slowest = sorted(ready, key=ready.__getitem__)[-3:]
        measured.append(
            f"compose stack: {len(ready)} services, every one ready {cold_start:.1f} s after up "
            f"(create included; last: {', '.join(f'{s} {ready[s]:.1f} s' for s in slowest)})"
        )
        url = f"http://127.0.0.1:{stack.published_port('nginx', 8080)}"
        try:
            customer = compose_check.check(url, in_users(stack), stack.caught_mail)
        except Exception as error:
            error.add_note(log_tails(stack, ("nginx", "users", "catalog", "orders")))
            raise
        admin = f"admin_{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(12)
        in_users(stack)(["flask", "--app", "users", "users", "create-admin", admin,
                         "--password-stdin", "--email", f"{admin}@example.com"],
                        password + "\n")  # fmt: skip
        tokens = requests.post(
            f"{url}/api/v1/tokens", json={"login": admin, "password": password}, timeout=15
        )
        tokens.raise_for_status()
        yield Shop(stack, url, customer, str(tokens.json()["access_token"]))
    finally:
        stack.down()


def test_every_service_is_up_and_its_health_check_passes(shop: Shop) -> None:
    for service in shop.stack.services:
        if service in MIGRATIONS or service == "notifications-queues":
            assert shop.stack.status(service) == "exited"
        else:
            assert shop.stack.status(service) == "running", service
            if shop.stack.has_health_check(service):
                assert shop.stack.healthy(service), service


def test_the_check_docker_compose_users_run_passes_through_nginx(shop: Shop) -> None:
    # The fixture ran it; here what it left behind is read again, through the front door.
    order = shop.call("GET", f"/api/v1/orders/{shop.customer.order_id}", shop.customer.token)
    assert order.status_code == 200
    assert order.json()["state"] == "placed"
    subjects = shop.stack.caught_mail(shop.customer.address)
    assert any(f"#{shop.customer.order_id} " in subject for subject in subjects), subjects


@dataclass
class OrderLoad:
    """Clients placing one-unit orders through the front door, each with a key of its own."""

    shop: Shop
    product_id: int
    answers: dict[str, int] = field(default_factory=dict)
    """Idempotency-Key to status (0: no answer at all)."""
    placed: dict[str, int] = field(default_factory=dict)
    """Idempotency-Key to the order's id, for every 201."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> OrderLoad:
        self._threads = [threading.Thread(target=self._client) for _ in range(LOAD_CLIENTS)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _client(self) -> None:
        while not self._stop.is_set():
            key = secrets.token_hex(8)
            status = self.place(key)
            with self._lock:
                self.answers[key] = status
            self._stop.wait(LOAD_PAUSE)

    def place(self, key: str) -> int:
        """Send the order with ``key``; its status (0: none), its id kept on a 201."""
        try:
            answer = self.shop.call(
                "POST",
                "/api/v1/orders",
                self.shop.customer.token,
                json={"lines": [{"product_id": self.product_id, "quantity": 1}]},
                headers={"Idempotency-Key": key},
            )
        except requests.RequestException:
            return 0
        if answer.status_code == 201:
            with self._lock:
                self.placed[key] = int(answer.json()["id"])
        return answer.status_code

    def settle(self) -> None:
        """Send every order that got no 201 again, with its key, until it does."""
        for key in [key for key, status in self.answers.items() if status != 201]:
            wait_until(partial(self.accepted, key), timeout=60, what=f"order {key} placed")

    def accepted(self, key: str) -> bool:
        """Whether the order with ``key``, sent (again), is answered 201."""
        return self.place(key) == 201

    def wait_for(self, placed: int) -> None:
        """Until ``placed`` orders more than now were answered 201."""
        target = len(self.placed) + placed
        wait_until(lambda: len(self.placed) >= target, timeout=60, what=f"{placed} orders")


def new_product(shop: Shop) -> int:
    """A product of its own for one test, with stock enough for any load here."""
    product = {"sku": f"LOAD-{secrets.token_hex(4)}".upper(), "name": "Load mug", "price": 500}
    product |= {"currency": "EUR", "stock": STOCK}
    created = shop.call("POST", "/api/v1/products", shop.admin_token, json=product)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def orders_of_product(shop: Shop, product_id: int) -> list[int]:
    """The ids of the customer's orders of ``product_id``, every page."""
    ids: list[int] = []
    cursor = ""
    while True:
        page = shop.call("GET", f"/api/v1/orders?limit=100{cursor}", shop.customer.token).json()
        ids += [
            order["id"]
            for order in page["items"]
            if any(line["product_id"] == product_id for line in order["lines"])
        ]
        if not page.get("next_cursor"):
            return ids
        cursor = f"&cursor={page['next_cursor']}"


def back_up(stack: Stack, service: str, starts_before: int) -> None:
    """Start ``service`` again and wait until it is ready."""
    stack.start(service)
    if service in WEB:
        wait_until(lambda: stack.healthy(service), timeout=90, what=f"{service} healthy")
    else:
        wait_started(stack, service, starts_before)


@pytest.mark.parametrize("service", [*WEB, *BACKGROUND])
def test_a_container_stops_on_sigterm_under_load_and_nothing_is_lost(
    shop: Shop, measured: list[str], service: str
) -> None:
    stack = shop.stack
    starts_before = 0 if service in WEB else stack.logs(service).count(started_line(stack, service))
    product_id = new_product(shop)
    with OrderLoad(shop, product_id) as load:
        load.wait_for(5)
        stopped = stack.stop(service)
        time.sleep(1)  # orders sent while it is down
    back_up(stack, service, starts_before)
    load.settle()

    assert stopped.exit_code == 0, stack.last_lines(service)
    assert stopped.seconds < stopped.grace / 2  # its own stop, not SIGKILL at the deadline
    assert len(set(load.placed.values())) == len(load.answers)  # one order per key
    assert sorted(orders_of_product(shop, product_id)) == sorted(load.placed.values())
    confirmed = {f"#{order_id} " for order_id in load.placed.values()}
    wait_until(
        lambda: confirmed <= confirmed_subjects(shop),
        timeout=120,
        what=f"{len(confirmed)} confirmation e-mails",
    )
    refused = sum(1 for status in load.answers.values() if status != 201)
    measured.append(
        f"SIGTERM to {service} under load: exit {stopped.exit_code} after "
        f"{stopped.seconds:.1f} s (grace {stopped.grace:.0f} s); {len(load.answers)} orders "
        f"sent, {refused} refused while it was down and placed when sent again; "
        f"every one confirmed by e-mail"
    )


def confirmed_subjects(shop: Shop) -> set[str]:
    """``#<id> `` of every order confirmation the customer was sent."""
    subjects = shop.stack.caught_mail(shop.customer.address)
    return {subject.split()[2] + " " for subject in subjects if subject.endswith("is confirmed")}


@pytest.mark.parametrize("service", MIGRATIONS)
def test_a_migration_stopped_while_it_runs_exits_0(
    shop: Shop, measured: list[str], service: str
) -> None:
    # Run again (the schema is at head, so it finds nothing to do), then SIGTERM at once.
    shop.stack.start(service)
    stopped = shop.stack.stop(service)
    assert stopped.exit_code == 0, shop.stack.last_lines(service)
    assert stopped.seconds < stopped.grace / 2
    measured.append(
        f"SIGTERM to {service} as it starts: exit {stopped.exit_code} after "
        f"{stopped.seconds:.1f} s (grace {stopped.grace:.0f} s)"
    )


def ready(stack: Stack, service: str) -> bool:
    """Whether ``service`` answers its readiness check (asked inside its container)."""
    probe = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz/ready')"
    return stack.succeeds(service, "python", "-c", probe)


def test_a_web_service_started_while_the_database_is_down_waits_then_serves(
    shop: Shop,
) -> None:
    # Containers start in any order (a host reboots, someone runs `up catalog` alone): a web
    # service whose database is not up yet stays up, not ready, and serves once it answers,
    # without a restart; the rest of the stack comes back on its own too.
    stack = shop.stack
    stack.stop("postgres")
    stack.stop("catalog")
    stack.start("catalog")
    wait_until(lambda: stack.healthy("catalog"), timeout=90, what="catalog live")
    assert not ready(stack, "catalog")
    time.sleep(3)  # some failed readiness checks later, it is still the same process
    assert not ready(stack, "catalog")
    inspected = podman("inspect", "--format", "{{.State.Status}} {{.RestartCount}}",
                       stack.container("catalog"))  # fmt: skip
    assert inspected.split() == ["running", "0"]

    stack.start("postgres")
    for service in WEB:
        wait_until(partial(ready, stack, service), timeout=60, what=f"{service} ready")

    compose_check.check(shop.url, in_users(stack), stack.caught_mail)


def test_nothing_is_published_beyond_127_0_0_1(shop: Shop) -> None:
    for service in shop.stack.services:
        if shop.stack.status(service) != "running":
            continue
        name = shop.stack.container(service)
        published = containers.podman("port", name, capture=True).split()
        addresses = [item.rpartition(":")[0] for item in published if ":" in item]
        assert all(address == "127.0.0.1" for address in addresses), (service, published)


def test_the_env_file_holds_every_secret_compose_asks_for(tmp_path: Path) -> None:
    text = write_env_file(tmp_path / "env").read_text()
    for name in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "ORDERS_CLIENT_SECRET"):
        assert f"{name}=" in text
    assert "BEGIN PRIVATE KEY" in text
