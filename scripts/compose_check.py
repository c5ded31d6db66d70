"""The compose stack's end-to-end check: an order placed through the front door, e-mail and all.

Against a running ``compose.yml`` stack, through nginx only, printing each request: registers
a customer and logs in; makes an administrator with the users image's command line, in the
users container (``flask --app users users create-admin``, as the README says the first one
is made) and logs in as them; creates a product; places an order with an Idempotency-Key and
reads it back; then waits for the order's confirmation e-mail in the SMTP catcher. It exits 1
at the first answer that is not the expected one.

With Docker Compose (mailpit catches the e-mail and answers on port 8025)::

    docker compose -f deploy/compose/compose.yml up --build --wait
    python scripts/compose_check.py --url http://localhost:8080 --mailpit http://localhost:8025 \\
        --exec "docker compose -f deploy/compose/compose.yml exec -T users"

``make containers`` runs the same check on the podman stack (tests/containers/test_stack.py).
"""

from __future__ import annotations

import argparse
import json
import secrets
import shlex
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from demo import DemoFailed, Shop, sign_in, step

MAIL_TIMEOUT = 60.0
Mailbox = Callable[[str], list[str]]
"""The subjects of the e-mails the catcher holds for one address."""
AdminCommand = Callable[[Sequence[str], str], str]
"""Runs a command line in the users container with standard input; its output."""


@dataclass(frozen=True)
class Checked:
    """What the check made: the customer's address and token, and the order placed."""

    address: str
    token: str
    order_id: int


def check(url: str, run_in_users: AdminCommand, mailbox: Mailbox) -> Checked:
    """The whole check against the front door at ``url``; raises :class:`DemoFailed`."""
    shop = Shop({"front_door": url.rstrip("/")})
    run, password = secrets.token_hex(4), secrets.token_urlsafe(12)
    customer, admin = f"check_{run}", f"admin_{run}"
    step("1. Register a customer and log in")
    body = {"username": customer, "email": f"{customer}@example.com", "password": password}
    shop.call("POST", "/api/v1/users", body, expect=201)
    token = sign_in(shop, customer, password)
    step("2. Make an administrator in the users container, and log in as them")
    command = ["flask", "--app", "users", "users", "create-admin", admin, "--password-stdin"]
    command += ["--email", f"{admin}@example.com"]
    said = run_in_users(command, password + "\n").strip()
    print(f"  {shlex.join(command)}\n  {said}")
    admin_token = sign_in(shop, admin, password)
    step("3. Create a product")
    product = {"sku": f"CHECK-{run}".upper(), "name": "Check mug", "price": 1250}
    product |= {"currency": "EUR", "stock": 5}
    created, _ = shop.call("POST", "/api/v1/products", product, token=admin_token, expect=201)
    step("4. Place an order and read it")
    order_id = place_order(shop, token, int(created["id"]))
    step("5. The confirmation e-mail in the SMTP catcher")
    subject = wait_for_mail(mailbox, f"{customer}@example.com", f"#{order_id} ")
    print(f"  Subject: {subject}")
    return Checked(f"{customer}@example.com", token, order_id)


def place_order(shop: Shop, token: str, product_id: int) -> int:
    """One unit of ``product_id``, placed and read back; the order's id."""
    lines = {"lines": [{"product_id": product_id, "quantity": 1}]}
    headers = {"Idempotency-Key": secrets.token_hex(8)}
    order, _ = shop.call("POST", "/api/v1/orders", lines, token=token, headers=headers, expect=201)
    read, _ = shop.call("GET", f"/api/v1/orders/{order['id']}", token=token)
    if read["id"] != order["id"] or read["total"] != order["total"]:
        raise DemoFailed(f"order #{order['id']} reads back as {read}")
    return int(order["id"])


def wait_for_mail(mailbox: Mailbox, address: str, wanted: str) -> str:
    """The subject of the first e-mail to ``address`` whose subject holds ``wanted``."""
    deadline = time.monotonic() + MAIL_TIMEOUT
    while time.monotonic() < deadline:
        found = [subject for subject in mailbox(address) if wanted in subject]
        if found:
            return found[0]
        time.sleep(0.5)
    raise DemoFailed(f"no e-mail to {address} with {wanted!r} within {MAIL_TIMEOUT:.0f} s")


def mailpit(url: str) -> Mailbox:
    """The e-mails mailpit at ``url`` caught, through its API."""

    def subjects(address: str) -> list[str]:
        query = urllib.parse.urlencode({"query": f'to:"{address}"'})
        with urllib.request.urlopen(f"{url}/api/v1/search?{query}", timeout=10) as answer:  # noqa: S310
            found = json.load(answer)
        return [str(message["Subject"]) for message in found["messages"]]

    return subjects


def command_in(prefix: str) -> AdminCommand:
    """Runs a command after ``prefix`` (``docker compose ... exec -T users``)."""

    def run(command: Sequence[str], stdin: str) -> str:
        done = subprocess.run(
            [*shlex.split(prefix), *command],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise DemoFailed(f"{shlex.join(command)} failed: {done.stderr.strip()[-500:]}")
        return done.stdout

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://localhost:8080", help="the front door")
    parser.add_argument("--mailpit", default="http://localhost:8025", help="mailpit's address")
    parser.add_argument(
        "--exec",
        default="docker compose -f deploy/compose/compose.yml exec -T users",
        help="what runs a command in the users container",
    )
    arguments = parser.parse_args(argv)
    try:
        checked = check(arguments.url, command_in(arguments.exec), mailpit(arguments.mailpit))
    except (DemoFailed, OSError) as error:
        print(f"\nflotilla stack check: {error}", file=sys.stderr)
        return 1
    print(f"\nDone: order #{checked.order_id} placed, read and confirmed by e-mail.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
