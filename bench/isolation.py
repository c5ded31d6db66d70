"""Everything one benchmark run owns on the shared servers, made for it and removed after it.

Other engineers' tests use the same PostgreSQL, Redis and RabbitMQ at the same time, so the
run gets, under one random name ``bench_<hex>``:

* PostgreSQL: ``DATABASE_URL`` naming database ``bench_<hex>``, which ``make run`` turns into
  one database per service (``bench_<hex>_users`` …, created by the runner); afterwards every
  database starting with ``bench_<hex>_`` is dropped.
* Redis: a database number (1 to 15) that was empty when the run claimed it with a key of its
  own; afterwards every key in it is deleted (the tests use database 0).
* RabbitMQ: a virtual host of its own (``rabbitmqctl add_vhost``), so exchanges and queues
  keep their production names without meeting anyone else's; deleted afterwards.
* ports: a block whose service ports (base + 1 to 3) and front door (base + 80) are free,
  below Linux's ephemeral range, and a temporary ``--var-dir`` for logs, state and e-mails
  (kept, and named, when the run fails).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql
from sqlalchemy import make_url

from flotilla.testing import DEFAULT_REDIS_URL, free_base_port, postgres_server_url
from flotilla.testing.messaging import amqp_server_url

PORT_OFFSETS = (1, 2, 3, 80)
CLAIM_KEY = "flotilla-bench:claimed-by"
CLAIM_SECONDS = 6 * 3600
REDIS_DATABASES = range(15, 0, -1)


@dataclass(frozen=True)
class Isolation:
    """The run's name, its URLs for ``make run``, its var directory and ports."""

    name: str
    database_url: str
    redis_url: str
    broker_url: str
    var_dir: Path
    base_port: int

    @property
    def database_prefix(self) -> str:
        """What every database of the run's services starts with."""
        return f"{self.name}_"


@contextlib.contextmanager
def isolated() -> Iterator[Isolation]:
    """Make the run's databases' name, Redis database, vhost, ports and directory; remove
    them all afterwards, whatever happened in between.

    The servers are the ones the tests use: ``FLOTILLA_TEST_POSTGRES_URL``, ``REDIS_URL``,
    ``FLOTILLA_TEST_AMQP_URL``, or this machine's defaults.
    """
    name = f"bench_{secrets.token_hex(4)}"
    postgres = make_url(postgres_server_url())
    database_url = postgres.set(database=name).render_as_string(hide_password=False)
    with contextlib.ExitStack() as stack:
        stack.callback(drop_databases, f"{name}_")
        redis_server = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
        redis_url = stack.enter_context(claimed_redis_database(redis_server, name))
        broker_url = stack.enter_context(virtual_host(amqp_server_url(), name))
        var_dir = stack.enter_context(kept_on_failure(Path(tempfile.mkdtemp(prefix=f"{name}-"))))
        yield Isolation(
            name, database_url, redis_url, broker_url, var_dir, free_base_port(PORT_OFFSETS)
        )


@contextlib.contextmanager
def kept_on_failure(directory: Path) -> Iterator[Path]:
    """``directory``, removed afterwards unless the run failed: then its logs are evidence."""
    try:
        yield directory
    except BaseException:
        print(f"the run failed; its logs stay in {directory}", flush=True)
        raise
    shutil.rmtree(directory, ignore_errors=True)


def drop_databases(prefix: str) -> None:
    """Drop every database whose name starts with ``prefix``, even with connections open."""
    admin = make_url(postgres_server_url()).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as db:
        pattern = prefix.replace("_", r"\_") + "%"
        rows = db.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,))
        for (database,) in rows.fetchall():
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            db.execute(drop.format(sql.Identifier(database)))


@contextlib.contextmanager
def claimed_redis_database(server: str, name: str) -> Iterator[str]:
    """The URL of a Redis database that was empty and is now the run's; emptied afterwards."""
    for number in REDIS_DATABASES:
        url = with_path(server, str(number))
        with redis.Redis.from_url(url) as connection:
            if connection.dbsize() == 0 and connection.set(
                CLAIM_KEY, name, nx=True, ex=CLAIM_SECONDS
            ):
                break
    else:
        raise RuntimeError(f"no empty Redis database among {list(REDIS_DATABASES)} on {server}")
    try:
        yield url
    finally:
        with redis.Redis.from_url(url) as connection:
            for key in connection.scan_iter(count=1000):
                connection.delete(key)


@contextlib.contextmanager
def virtual_host(server: str, name: str) -> Iterator[str]:
    """A RabbitMQ virtual host ``name`` the server's user may use; deleted afterwards."""
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        raise RuntimeError("rabbitmqctl is not on PATH: the run needs a RabbitMQ vhost of its own")
    user = urlsplit(server).username or "guest"
    _run([rabbitmqctl, "add_vhost", name])
    try:
        _run([rabbitmqctl, "set_permissions", "-p", name, user, ".*", ".*", ".*"])
        yield with_path(server, name)
    finally:
        _run([rabbitmqctl, "delete_vhost", name])


def with_path(url: str, path: str) -> str:
    """``url`` with its path (a Redis database number, a RabbitMQ vhost) replaced."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{path}"))


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=120)
