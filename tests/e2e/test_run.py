"""``make run`` and ``make demo`` as a newcomer runs them, on ports and a var directory apart.

``scripts/run.py`` starts the whole system as a child of the test, in the embedded default
(SQLite, file broker, .eml files), behind nginx when it is installed; ``scripts/demo.py``
then walks through the shop against it. Ctrl-C (SIGINT) must stop every process the runner
started — checked by PID, the web servers' and Celery's own children included — with exit
status 0. A process that dies stops the rest with its log's end printed; a port in use stops
the start before anything runs. The last tests check how one ``DATABASE_URL`` becomes one
database per service, without starting anything.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from databases import ensure_database, service_database_url
from flotilla.testing import postgres_database, postgres_server_url, wait_until
from system import FRONT_DOOR_OFFSET, Layout, service_env

from .running import (
    SCRIPTS,
    Runner,
    children_of,
    command_line,
    descendants,
    embedded_environment,
    free_base_port,
    still_running,
)


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    """The runner, started on free ports with a fresh var directory; stopped afterwards."""
    started = Runner(tmp_path / "var", free_base_port())
    try:
        yield started
    finally:
        started.kill()


def subjects(mail: Path) -> list[str]:
    """The Subject of every .eml file in ``mail``."""
    return sorted(
        str(message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"])
        for path in mail.glob("*.eml")
    )


@pytest.mark.process
def test_run_starts_the_shop_the_demo_works_and_ctrl_c_stops_every_process(
    runner: Runner,
) -> None:
    runner.wait_for_banner()
    state = json.loads((runner.var_dir / "run.json").read_text())
    children = descendants(runner.process.pid)
    assert set(state["processes"].values()) <= set(children)
    front_door = f"http://127.0.0.1:{runner.base_port + FRONT_DOOR_OFFSET}"
    assert state["front_door"] == (front_door if shutil.which("nginx") else None)
    assert (front_door in runner.text()) == bool(shutil.which("nginx"))

    demo = subprocess.run(
        [sys.executable, str(SCRIPTS / "demo.py"), "--var-dir", str(runner.var_dir)],
        env=embedded_environment(),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )

    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert f"The shop at {state['front_door'] or state['services']['users']}" in demo.stdout
    assert "POST /api/v1/orders -> 201" in demo.stdout
    assert "Idempotent-Replayed: true" in demo.stdout
    written = subjects(runner.var_dir / "mail")
    assert "Your order #1 at Flotilla Shop is confirmed" in written
    assert "Your order #1 at Flotilla Shop was cancelled" in written

    assert runner.interrupt() == 0, runner.text()
    assert runner.text().rstrip().endswith("flotilla: stopped.")
    assert not (runner.var_dir / "run.json").exists()
    assert still_running(children) == set()


@pytest.mark.process
def test_a_process_that_dies_stops_the_system_with_the_end_of_its_log(runner: Runner) -> None:
    wait_until(
        lambda: "starting catalog" in runner.text() or runner.process.poll() is not None,
        timeout=90,
        what="users up, catalog starting",
    )
    children = descendants(runner.process.pid)
    direct = children_of(runner.process.pid)
    (users,) = [pid for pid in direct if b"users.wsgi:app" in command_line(pid)]  # main process

    os.kill(users, signal.SIGKILL)  # while the runner waits for catalog

    assert runner.process.wait(timeout=90) == 1, runner.text()
    output = runner.text()
    assert "flotilla: users exited with code -9" in output
    assert "worker started" in output.partition("users exited")[2]  # the end of users' log
    assert "flotilla: catalog exited" not in output  # stopped as asked, mid-start
    assert output.rstrip().endswith("flotilla: stopped.")
    # users' workers, orphaned, were killed by their group; a SIGKILL takes a moment to land
    wait_until(lambda: not still_running(children), timeout=10, what="users' workers gone")


@pytest.mark.process
def test_a_port_in_use_stops_the_start_before_anything_runs(tmp_path: Path) -> None:
    base_port = free_base_port()
    with socket.socket() as taken:  # catalog's port, held by someone else
        taken.bind(("127.0.0.1", base_port + 2))
        taken.listen()
        runner = Runner(tmp_path / "var", base_port)
        try:
            code = runner.process.wait(timeout=60)
        finally:
            runner.kill()
    output = runner.text()
    assert code == 1, output
    assert f"catalog cannot listen on port {base_port + 2}: it is in use" in output
    assert not (tmp_path / "var" / "log").exists()  # nothing was started


def test_one_database_url_gives_each_service_a_database_of_its_own(tmp_path: Path) -> None:
    layout = Layout(tmp_path, 9000)
    environ = {
        "DATABASE_URL": "postgresql+psycopg://shop:secret@db.example:5432/shop?sslmode=require",
        "ORDERS_DATABASE_URL": "postgresql+psycopg://orders@other.example/orders",
        "ORDERS_LOG_LEVEL": "DEBUG",
    }

    envs = {name: service_env(name, layout, environ) for name in ("users", "catalog", "orders")}

    assert envs["users"]["DATABASE_URL"] == (
        "postgresql+psycopg://shop:secret@db.example:5432/shop_users?sslmode=require"
    )
    assert envs["catalog"]["DATABASE_URL"].endswith("/shop_catalog?sslmode=require")
    assert envs["orders"]["DATABASE_URL"] == environ["ORDERS_DATABASE_URL"]
    assert envs["orders"]["LOG_LEVEL"] == "DEBUG"
    assert "LOG_LEVEL" not in envs["users"]
    assert envs["orders"]["CATALOG_URL"] == "http://127.0.0.1:9002"
    assert service_database_url("sqlite:///var/shop.db", "users") == "sqlite:///var/shop_users.db"


@pytest.mark.postgres
def test_a_derived_postgres_database_is_created_once() -> None:
    with postgres_database() as url:
        derived = service_database_url(url, "users")
        try:
            assert ensure_database(derived) is True
            assert ensure_database(derived) is False
            engine = create_engine(derived)
            with engine.connect() as connection:
                assert connection.execute(text("SELECT current_database()")).scalar() == (
                    f"{url.rpartition('/')[2]}_users"
                )
            engine.dispose()
        finally:
            server = create_engine(postgres_server_url(), isolation_level="AUTOCOMMIT")
            with server.connect() as connection:
                name = derived.rpartition("/")[2]
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            server.dispose()
