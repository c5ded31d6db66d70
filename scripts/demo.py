"""``make demo``: a minute with the shop, against the system ``make run`` started.

It reads ``VAR_DIR/run.json`` (written by ``make run`` once everything is up) to find the
front door, or without nginx each service's port, and then, printing every request's
method, path, status and a short body: registers a customer and logs in; creates an
administrator with ``flask --app users users create-admin`` (the way the first one is made,
on the same database) and logs in as them; creates two products; places an order with an
Idempotency-Key and sends it again (the same order comes back); reads the order, lists the
customer's orders, cancels it and shows the stock back where it was; and shows the e-mails
the notifications worker wrote for the customer. It stops with exit status 1 at the first
answer that is not the expected one. Only the standard library speaks HTTP here, so what
it sends is what any client would.

Run it with the environment ``make run`` got (``DATABASE_URL`` and the rest), since the
administrator is created straight in users' database.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

from databases import masked
from flotilla.config import load_dotenv
from system import ROOT, ROUTES, Layout, default_var_dir, flask, service_env

MAIL_TIMEOUT = 30.0
SHORT_BODY = 110
SECRETS = ("access_token", "refresh_token")
PRODUCTS = {"MUG": (1250, 10), "TEE": (1999, 5)}
"""Price in cents and initial stock of the two products, by SKU suffix."""


class DemoFailed(Exception):
    """An answer was not the one expected; the message says which."""


@dataclass(frozen=True)
class Shop:
    """Where the running system answers, from ``run.json``."""

    state: dict[str, Any]

    def url(self, path: str) -> str:
        """The front door's URL for ``path``, or the URL of the service that owns it."""
        if self.state["front_door"]:
            return f"{self.state['front_door']}{path}"
        owner = next(service for prefix, service in ROUTES.items() if path.startswith(prefix))
        return f"{self.state['services'][owner]}{path}"

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str = "",
        headers: dict[str, str] | None = None,
        expect: int = 200,
    ) -> tuple[Any, Message]:
        """Send one request, print it, and return its JSON body and headers.

        The headers stay a :class:`~email.message.Message`, whose lookups ignore case as
        HTTP's names do: granian sends them in lower case, Gunicorn capitalised.
        """
        sent = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            sent["Content-Type"] = "application/json"
        if token:
            sent["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url(path), data, sent, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - http only
                status, raw, answer = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            with error:
                status, raw, answer = error.code, error.read(), error.headers
        answer_body = json.loads(raw) if raw else None
        print(f"  {method} {path} -> {status}  {short(answer_body)}")
        if status != expect:
            raise DemoFailed(f"{method} {path} answered {status}, not {expect}")
        return answer_body, answer


def short(body: Any) -> str:
    """A one-line, shortened JSON body, with tokens cut to their start."""
    if isinstance(body, dict):
        body = {key: f"{value[:12]}…" if key in SECRETS else value for key, value in body.items()}
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False) if body is not None else ""
    return text if len(text) <= SHORT_BODY else f"{text[: SHORT_BODY - 1]}…"


def step(title: str) -> None:
    """Print the heading of the next step."""
    print(f"\n{title}")


def sign_in(shop: Shop, login: str, password: str) -> str:
    """Log in; the access token."""
    tokens, _ = shop.call("POST", "/api/v1/tokens", {"login": login, "password": password})
    return str(tokens["access_token"])


def create_admin(state: dict[str, Any], username: str, password: str) -> None:
    """``flask --app users users create-admin`` on the running system's users database."""
    layout = Layout(Path(state["var_dir"]), state["base_port"], bool(state["front_door"]))
    env = service_env("users", layout, os.environ)
    if masked(env.get("DATABASE_URL", "")) != state["users_database"]:
        raise DemoFailed("run make demo with the DATABASE_URL make run was started with")
    command = flask("users", "users", "create-admin", username, "--password-stdin")
    command += ["--email", f"{username}@example.com"]
    done = subprocess.run(
        command,
        input=f"{password}\n",
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    said = (done.stdout.strip() or done.stderr.strip()).splitlines()
    print(f"  {' '.join(['flask', *command[3:]])}\n  {said[-1] if said else done.returncode}")
    if done.returncode != 0:
        raise DemoFailed("create-admin failed")


def demo(shop: Shop) -> None:
    """The whole walk through the shop, under names of its own so it can run again."""
    run, password = secrets.token_hex(3), secrets.token_urlsafe(12)
    customer = f"demo_{run}"
    token, admin_token = sign_up(shop, customer, f"admin_{run}", password)
    search = f"DEMO-{run}"
    ids = create_products(shop, admin_token, search)
    initial = {f"{search.upper()}-{suffix}": units for suffix, (_, units) in PRODUCTS.items()}
    expect_stock(shop, search, initial)
    order_id = place_order(shop, token, ids)
    step("6. Read the order, list the customer's orders, see the stock taken")
    shop.call("GET", f"/api/v1/orders/{order_id}", token=token)
    orders, _ = shop.call("GET", "/api/v1/orders", token=token)
    if [order["id"] for order in orders["items"]] != [order_id]:
        raise DemoFailed(f"the customer's orders are not just #{order_id}")
    expect_stock(shop, search, {sku: units - 1 for sku, units in initial.items()})
    step("7. Cancel the order: its stock goes back")
    path, reason = f"/api/v1/orders/{order_id}/cancel", {"reason": "just a demo"}
    cancelled, _ = shop.call("POST", path, reason, token=token)
    if cancelled["state"] != "cancelled":
        raise DemoFailed(f"order #{order_id} is {cancelled['state']}")
    expect_stock(shop, search, initial)
    step("8. The e-mails the notifications worker wrote for the customer")
    show_mail(shop.state["mail_dir"], f"{customer}@example.com")


def sign_up(shop: Shop, customer: str, admin: str, password: str) -> tuple[str, str]:
    """Register and log in a customer, create and log in an administrator; their tokens."""
    step("1. Register a customer (the welcome e-mail goes through the outbox)")
    body = {"username": customer, "email": f"{customer}@example.com", "password": password}
    shop.call("POST", "/api/v1/users", body, expect=201)
    step("2. Log in")
    token = sign_in(shop, customer, password)
    step("3. Create an administrator on the command line, and log in as them")
    create_admin(shop.state, admin, password)
    return token, sign_in(shop, admin, password)


def create_products(shop: Shop, admin_token: str, search: str) -> dict[str, int]:
    """Create the :data:`PRODUCTS` with SKUs starting with ``search``; their ids by SKU."""
    step("4. Create two products (administrators only)")
    ids = {}
    for suffix, (price, units) in PRODUCTS.items():
        product = {
            "sku": f"{search}-{suffix}",
            "name": f"Demo {suffix.lower()}",
            "price": price,
            "currency": "EUR",
            "stock": units,
        }
        created, _ = shop.call("POST", "/api/v1/products", product, token=admin_token, expect=201)
        ids[created["sku"]] = int(created["id"])
    return ids


def expect_stock(shop: Shop, search: str, wanted: dict[str, int]) -> None:
    """Read the stock from the product list (never cached); stop unless it is ``wanted``."""
    page, _ = shop.call("GET", f"/api/v1/products?q={search}")
    found = {item["sku"]: item["stock"] for item in page["items"]}
    print(f"  stock: {found}")
    if found != wanted:
        raise DemoFailed(f"stock is {found}, expected {wanted}")


def place_order(shop: Shop, token: str, ids: dict[str, int]) -> int:
    """Order one of each product, then send the same request again; the order's id."""
    key = secrets.token_hex(8)
    step(f"5. Place an order (Idempotency-Key: {key}), then send it again")
    lines = {"lines": [{"product_id": product_id, "quantity": 1} for product_id in ids.values()]}
    headers = {"Idempotency-Key": key}
    order, _ = shop.call("POST", "/api/v1/orders", lines, token=token, headers=headers, expect=201)
    again, answer = shop.call(
        "POST", "/api/v1/orders", lines, token=token, headers=headers, expect=201
    )
    replayed = answer.get("Idempotent-Replayed")
    print(f"  the same order #{again['id']} came back (Idempotent-Replayed: {replayed})")
    if again["id"] != order["id"]:
        raise DemoFailed("the repeated request placed a second order")
    return int(order["id"])


def show_mail(directory: str | None, address: str) -> None:
    """Wait for the welcome, order and cancellation e-mails to ``address``; print them."""
    if directory is None:
        print("  sent through SMTP_HOST: see var/log/notifications-worker.log")
        return
    deadline = time.monotonic() + MAIL_TIMEOUT
    while len(found := mail_to(Path(directory), address)) < 3:
        if time.monotonic() > deadline:
            raise DemoFailed(f"{len(found)} of 3 e-mails to {address} in {directory}")
        time.sleep(0.5)
    for path, subject in sorted(found.items()):
        print(f"  {path}\n    Subject: {subject}")


def mail_to(directory: Path, address: str) -> dict[Path, str]:
    """Subject by file of the ``.eml`` files in ``directory`` addressed to ``address``."""
    found = {}
    for path in directory.glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if address in str(message["To"]):
            found[path] = str(message["Subject"])
    return found


def main(argv: list[str] | None = None) -> int:
    """Run the demo against the system running with ``--var-dir``."""
    load_dotenv()  # the variables make run was started with, .env included
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--var-dir", type=Path, default=default_var_dir(), help="make run's")
    options = parser.parse_args(argv)
    state_file = options.var_dir.resolve() / "run.json"
    if not state_file.exists():
        print(f"flotilla: nothing is running ({state_file} is missing); start make run first")
        return 1
    shop = Shop(json.loads(state_file.read_text()))
    print(f"The shop at {shop.state['front_door'] or ', '.join(shop.state['services'].values())}")
    try:
        demo(shop)
    except (DemoFailed, OSError) as error:
        print(f"\nflotilla demo: {error}", file=sys.stderr)
        return 1
    print("\nDone: an account, an order placed, replayed, read, cancelled; stock and e-mail.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
