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

import contextlib
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
from flotilla.testing import free_base_port as free_base_port_of
from flotilla.testing import postgres_database, postgres_server_url, wait_until
from system import Layout, service_env

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"


SERVICES = ("USERS", "CATALOG", "ORDERS", "NOTIFICATIONS")
FRONT_DOOR_OFFSET = 80


def free_base_port() -> int:
    """A base port whose service ports (+1 to +3) and front door (+80) are free."""
    return free_base_port_of((1, 2, 3, FRONT_DOOR_OFFSET))


def embedded_environment() -> dict[str, str]:
    """The caller's environment without anything that would leave the embedded default."""
    cleared = {"DATABASE_URL", "REDIS_URL", "BROKER_URL", "SMTP_HOST", "VAR_DIR"}
    return {
        name: value
        for name, value in os.environ.items()
        if name not in cleared and not name.startswith(tuple(f"{s}_" for s in SERVICES))
    }


def start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot); None if there is none or it
    is a zombie (it has ended and waits for its parent to read its exit code)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    fields = stat.rpartition(")")[2].split()
    return None if fields[0] == "Z" else fields[19]


def still_running(processes: dict[int, str]) -> set[int]:
    """Which of ``processes`` (from :func:`descendants`) still run, the same process."""
    return {pid for pid, started in processes.items() if start_time(pid) == started}


def command_line(pid: int) -> bytes:
    """The command line of process ``pid``, its arguments separated by NUL bytes."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started directly."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.extend(map(int, (task / "children").read_text().split()))
    return found


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``, with its start time (to tell a reused PID apart)."""
    found: dict[int, str] = {}
    pending = [pid]
    while pending:
        for child in children_of(pending.pop()):
            started = start_time(child)
            if started is not None:
                found[child] = started
                pending.append(child)
    return found


class Runner:
    """``scripts/run.py`` as a child process, its output in a file."""

    def __init__(self, var_dir: Path, base_port: int) -> None:
        self.var_dir = var_dir
        self.base_port = base_port
        self.output = var_dir.parent / "run.out"
        command = [sys.executable, str(SCRIPTS / "run.py"), "--var-dir", str(var_dir)]
        with self.output.open("wb") as output:
            self.process = subprocess.Popen(
                [*command, "--base-port", str(base_port)],
                env=embedded_environment(),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        """What the runner printed so far."""
        return self.output.read_text(errors="replace")

    def wait_for_banner(self) -> None:
        """Wait until the runner printed where the shop answers; fail if it exits first."""

        def printed() -> bool:
            assert self.process.poll() is None, f"the runner exited:\n{self.text()}"
            return "Stop:" in self.text()

        wait_until(printed, timeout=90, what="the runner's banner")

    def interrupt(self) -> int:
        """Ctrl-C; the runner's exit code once it is done."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=90)

    def kill(self) -> None:
        """Stop what a failed test left running: the runner (Ctrl-C), then anything below it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
        for pid in descendants(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


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
