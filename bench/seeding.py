"""What the loads need in the running system: a customer, an administrator, products, orders.

Through the public API where it is cheap, as a user would: the customer registers and logs
in through the front door; the first administrator is made the documented way, ``flask --app
users users create-admin --password-stdin``, and creates the first product over the API. The
other products are copied from that one in one SQL statement in catalog's database (creating
1,000 over HTTP would take longer than some measurements), each with a stock no run can
exhaust, so no order is refused for stock. The orders the reads draw from are placed over
HTTP, one after another, so they get consecutive ids.

Access tokens live 15 minutes, so each section logs the customer in again (:func:`log_in`).
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass

import psycopg

from database import libpq_url
from shop_http import send
from stack import Stack

PRODUCTS = 1_000
STOCK = 1_000_000
"""Each product's initial stock: far beyond what a run orders."""
SKU_PREFIX = "BENCH-"


@dataclass(frozen=True)
class Customer:
    """The account every order of the run belongs to."""

    user_id: int
    username: str
    password: str


@dataclass(frozen=True)
class Seeded:
    """What the loads draw from."""

    customer: Customer
    product_ids: tuple[int, int]

    @property
    def check_product(self) -> int:
        """A product no seeded order touches: the body check compares it everywhere."""
        return self.product_ids[1]


def seed(stack: Stack) -> Seeded:
    """Register the customer, make the administrator, create the products."""
    password = secrets.token_urlsafe(16)
    customer = register(stack, f"{stack.isolation.name}_customer", password)
    admin = f"{stack.isolation.name}_admin"
    create_admin(stack, admin, password)
    first = create_product(stack, log_in(stack, admin, password))
    last = copy_products(stack, first, PRODUCTS)
    print(f"seeded a customer, an administrator and {PRODUCTS:,} products", flush=True)
    return Seeded(customer, (first, last))


def register(stack: Stack, username: str, password: str) -> Customer:
    """``POST /api/v1/users`` through the front door."""
    body = {"username": username, "email": f"{username}@example.com", "password": password}
    user = send(f"{stack.front_door}/api/v1/users", 201, body=body)
    return Customer(int(user["id"]), username, password)


def log_in(stack: Stack, login: str, password: str) -> str:
    """``POST /api/v1/tokens``; the access token (valid 15 minutes)."""
    body = {"login": login, "password": password}
    return str(send(f"{stack.front_door}/api/v1/tokens", 200, body=body)["access_token"])


def create_admin(stack: Stack, username: str, password: str) -> None:
    """The first administrator, made on the command line in users' database."""
    command = [str(stack.python), "-m", "flask", "--app", "users", "users", "create-admin"]
    command += [username, "--email", f"{username}@example.com", "--password-stdin"]
    env = {
        **stack.env,
        "DATABASE_URL": stack.database_url("users"),
        "VAR_DIR": str(stack.isolation.var_dir / "var"),
    }
    done = subprocess.run(
        command,
        check=False,
        input=f"{password}\n",
        env=env,
        cwd=stack.root,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"create-admin failed: {done.stderr or done.stdout}")


def create_product(stack: Stack, admin_token: str) -> int:
    """The first product, over the API as an administrator; its id."""
    body = {"sku": f"{SKU_PREFIX}1", "name": "Product 1", "price": 101, "currency": "EUR"}
    body["stock"] = STOCK
    product = send(f"{stack.front_door}/api/v1/products", 201, token=admin_token, body=body)
    return int(product["id"])


def copy_products(stack: Stack, first: int, count: int) -> int:
    """Products 2..``count``, each like the first but for SKU, name and price; the last id."""
    with psycopg.connect(libpq_url(stack.database_url("catalog")), autocommit=True) as db:
        db.execute(
            """
            INSERT INTO products (sku, name, description, price, currency, stock, active,
                                  created_at, updated_at)
            SELECT %(prefix)s || n, 'Product ' || n, p.description, 100 + n, p.currency,
                   p.stock, p.active, now(), now()
            FROM generate_series(2, %(count)s) AS n, products AS p
            WHERE p.id = %(first)s
            """,
            {"prefix": SKU_PREFIX, "count": count, "first": first},
        )
        db.execute("VACUUM ANALYZE products")
        row = db.execute("SELECT max(id) FROM products").fetchone()
    assert row is not None
    return int(row[0])


def place_orders(stack: Stack, token: str, seeded: Seeded, count: int) -> tuple[int, int]:
    """``count`` orders over HTTP, one after another; the lowest and highest id.

    Into an otherwise idle orders table they get consecutive ids, so the reads may draw any id
    between the two; anything else stops the run. None orders the :attr:`Seeded.check_product`.
    """
    low, high = seeded.product_ids
    ids = []
    for number in range(count):
        line = {"product_id": low + number % (high - low), "quantity": 1}
        headers = {"Idempotency-Key": f"seed-{secrets.token_hex(6)}"}
        url = f"{stack.front_door}/api/v1/orders"
        order = send(url, 201, token=token, body={"lines": [line]}, headers=headers)
        ids.append(int(order["id"]))
    if ids != list(range(ids[0], ids[0] + count)):
        raise RuntimeError(f"the seeded orders got ids {ids}, not consecutive ones")
    print(f"placed {count} orders to read (ids {ids[0]}..{ids[-1]})", flush=True)
    return ids[0], ids[-1]
