"""Every service's image, built from the Dockerfile and run the way compose.yml runs it.

Each container runs as compose and the Kubernetes manifests run it: a read-only root
filesystem with a tmpfs on ``/tmp``, every capability dropped, no new privileges. On the
embedded defaults (SQLite and the file broker under ``VAR_DIR``, a volume shared by the
processes of one service), so no other server is needed: the web images must answer their
liveness and readiness checks, each migration must run to its end, and every background
process of ``scripts/system.py`` (relays, recovery, the worker) must start; all as the
image's non-root user, with no write error anywhere in their logs, and each must stop on
SIGTERM well within its grace period with exit code 0 — PID 1 is the process itself, which
handles the signal.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import pytest
from sqlalchemy import make_url

import containers
import system
from flotilla.testing import TcpProxy, free_port, postgres_database, wait_until

WEB_SERVICES = system.WEB_SERVICES
UNPRIVILEGED = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"]
UNPRIVILEGED += ["--security-opt", "no-new-privileges"]
WRITE_ERRORS = ("read-only file system", "permission denied", "permissionerror", "traceback")
GRACE_SECONDS = 40  # compose.yml's stop_grace_period for the web services
VAR_DIR = "/tmp/flotilla"  # the image's VAR_DIR


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """Every service's image, built (or found up to date in podman's layer cache)."""
    return {built.service: built.image for built in containers.build_all(quiet=True)}


@dataclass
class Container:
    """A running container and what it takes to ask it and stop it."""

    name: str
    port: int

    def logs(self) -> str:
        """Everything it wrote, both streams."""
        result = subprocess.run(
            ["podman", "logs", self.name],
            env=containers.engine_environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout + result.stderr

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """``command`` inside the container, as its user."""
        return subprocess.run(
            ["podman", "exec", self.name, *command],
            env=containers.engine_environment(),
            capture_output=True,
            text=True,
            check=False,
        )

    def stop(self) -> tuple[int, float]:
        """SIGTERM, then SIGKILL after the grace period: the exit code and seconds taken."""
        started = time.monotonic()
        containers.podman("stop", "--time", str(GRACE_SECONDS), self.name, capture=True)
        seconds = time.monotonic() - started
        code = containers.podman(
            "inspect", "--format", "{{.State.ExitCode}}", self.name, capture=True
        )
        return int(code), seconds


Start = Callable[..., Container]


@pytest.fixture
def start() -> Iterator[Start]:
    """Start containers from images; each is removed when the test ends.

    ``var_dir`` names a volume to mount on the image's ``VAR_DIR``: the processes of one
    service share their SQLite database and file broker through it, as they share a server
    in production.
    """
    names: list[str] = []

    def started(
        image: str,
        *command: str,
        var_dir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Container:
        name = f"flotilla-test-{uuid.uuid4().hex[:10]}"
        port = free_port()
        volume = ["--volume", f"{var_dir}:{VAR_DIR}"] if var_dir else []
        for variable, value in (env or {}).items():
            volume += ["--env", f"{variable}={value}"]
        containers.podman(
            "run",
            "--detach",
            "--name",
            name,
            "--network",
            "host",
            *UNPRIVILEGED,
            *volume,
            "--env",
            f"GRANIAN_BIND=127.0.0.1:{port}",
            "--env",
            f"GUNICORN_BIND=127.0.0.1:{port}",
            image,
            *command,
            capture=True,
        )
        names.append(name)
        return Container(name, port)

    yield started
    for name in names:
        subprocess.run(
            ["podman", "rm", "--force", "--time", "0", name],
            env=containers.engine_environment(),
            capture_output=True,
            check=False,
        )


@pytest.fixture
def var_dir() -> Iterator[str]:
    """A volume of its own for a test's ``VAR_DIR``, removed afterwards."""
    name = f"flotilla-test-{uuid.uuid4().hex[:10]}"
    containers.podman("volume", "create", name, capture=True)
    yield name
    subprocess.run(
        ["podman", "volume", "rm", "--force", name],
        env=containers.engine_environment(),
        capture_output=True,
        check=False,
    )


def status_of(url: str) -> int:
    """The HTTP status ``url`` answers with, 0 while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code)
    except OSError:
        return 0


def assert_clean(container: Container) -> None:
    """No write error, no traceback in the container's logs."""
    logs = container.logs().lower()
    for error in WRITE_ERRORS:
        assert error not in logs, f"{error!r} in the logs of {container.name}:\n{logs[-3000:]}"


@pytest.mark.parametrize("service", WEB_SERVICES)
def test_a_web_image_serves_unprivileged_on_a_read_only_root_and_stops_cleanly(
    images: dict[str, str], start: Start, service: str
) -> None:
    web = start(images[service])
    base = f"http://127.0.0.1:{web.port}"
    wait_until(lambda: status_of(f"{base}/healthz/live") == 200, timeout=60, what="liveness")
    wait_until(lambda: status_of(f"{base}/healthz/ready") == 200, timeout=30, what="readiness")

    assert web.run("id", "-u").stdout.strip() == "10001"
    written = web.run("touch", "/app/written")
    assert written.returncode != 0
    assert "read-only file system" in written.stderr.lower()
    assert web.run("touch", "/tmp/written").returncode == 0
    code, seconds = web.stop()
    assert code == 0
    assert seconds < GRACE_SECONDS / 2  # stopped by SIGTERM, not killed at the deadline
    assert_clean(web)


@pytest.mark.parametrize("service", WEB_SERVICES)
def test_a_migration_runs_to_its_end_in_the_image(
    images: dict[str, str], start: Start, service: str
) -> None:
    migration = start(images[service], "flask", "--app", service, "db", "upgrade")
    code = containers.podman("wait", migration.name, capture=True)
    assert int(code) == 0, migration.logs()
    assert "Running upgrade" in migration.logs()
    assert_clean(migration)


@pytest.mark.parametrize(
    "program",
    system.BACKGROUND_PROGRAMS,
    ids=[program[0] for program in system.BACKGROUND_PROGRAMS],
)
def test_a_background_process_starts_and_stops_on_sigterm(
    images: dict[str, str],
    start: Start,
    var_dir: str,
    program: tuple[str, str, tuple[str, ...], str],
) -> None:
    name, service, command, started_line = program
    image = images[service]
    migration = start(image, "flask", "--app", service, "db", "upgrade", var_dir=var_dir)
    assert int(containers.podman("wait", migration.name, capture=True)) == 0, migration.logs()
    running = start(image, "flask", "--app", service, *command, var_dir=var_dir)
    wait_until(lambda: started_line in running.logs(), timeout=60, what=f"{name} to start")
    code, seconds = running.stop()
    assert code == 0, running.logs()
    assert seconds < GRACE_SECONDS / 2
    assert_clean(running)


def test_a_web_service_started_before_its_database_waits_and_becomes_ready(
    images: dict[str, str], start: Start
) -> None:
    # Containers start in any order: a service whose database is not up yet stays up, not
    # ready, and becomes ready once the database answers, without a restart.
    with postgres_database() as url:
        database = make_url(url)
        proxy = TcpProxy((database.host or "127.0.0.1", database.port or 5432))
        proxy.cut()
        try:
            through_proxy = database.set(host="127.0.0.1", port=proxy.port)
            env = {"DATABASE_URL": through_proxy.render_as_string(hide_password=False)}
            web = start(images["users"], env=env)
            base = f"http://127.0.0.1:{web.port}"
            wait_until(lambda: status_of(f"{base}/healthz/live") == 200, timeout=60, what="live")
            assert status_of(f"{base}/healthz/ready") == 503
            time.sleep(3)  # some failed readiness checks later, it is still the same process
            assert status_of(f"{base}/healthz/ready") == 503
            assert containers.podman(
                "inspect",
                "--format",
                "{{.State.Running}} {{.RestartCount}}",
                web.name,
                capture=True,
            ).split() == ["true", "0"]

            proxy.restore()
            wait_until(lambda: status_of(f"{base}/healthz/ready") == 200, timeout=30, what="ready")
        finally:
            proxy.close()
        code, _ = web.stop()
        assert code == 0
