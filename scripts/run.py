"""``make run``: migrate and start every service under Gunicorn, print where they answer.

Each service runs in its own process group so that Ctrl-C reaches only this runner, which
then sends SIGTERM: Gunicorn's graceful shutdown, letting in-flight requests finish. Output
of each service goes to ``var/log/<service>.log``.

Per-service overrides: ``USERS_DATABASE_URL`` (and so on) sets ``DATABASE_URL`` for that
service only; plain ``DATABASE_URL``, ``REDIS_URL``, ``BROKER_URL`` apply to all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from flotilla.processes import ProcessExited, log_tail, stop_process, wait_for_http

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Service:
    """A service of the shop and the port it answers on in development."""

    name: str
    port: int

    @property
    def url(self) -> str:
        """Where the service answers."""
        return f"http://127.0.0.1:{self.port}"


SERVICES = [Service("users", 8001), Service("catalog", 8002), Service("orders", 8003)]
"""In start order: users issues the keys the others verify, orders calls users and catalog."""
USERS, CATALOG = SERVICES[0], SERVICES[1]


def peer_env(service: Service) -> dict[str, str]:
    """Where ``service`` finds the others: users' key set and, for orders, its peers' URLs."""
    if service is USERS:
        return {}
    env = {"AUTH_JWKS_URL": f"{USERS.url}/.well-known/jwks.json"}
    if service.name == "orders":
        env |= {"USERS_URL": USERS.url, "CATALOG_URL": CATALOG.url}
    return env


def service_env(service: Service) -> dict[str, str]:
    """The environment of ``service``: the caller's, plus per-service overrides."""
    env = {
        **peer_env(service),
        **os.environ,
        "VAR_DIR": str(VAR),
        "GUNICORN_BIND": f"127.0.0.1:{service.port}",
        "GUNICORN_WORKERS": os.environ.get("GUNICORN_WORKERS", "2"),
    }
    prefix = f"{service.name.upper()}_"
    for name, value in os.environ.items():
        if name.startswith(prefix):
            env[name.removeprefix(prefix)] = value
    return env


def migrate(service: Service, log: Path) -> None:
    """Run the service's migrations to head; stop with the log's tail if they fail."""
    with log.open("ab") as output:
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", service.name, "db", "upgrade"],
            env=service_env(service),
            stdout=output,
            stderr=output,
            check=False,
        )
    if result.returncode != 0:
        fail(f"migrating {service.name} failed", log)


def start(service: Service, log: Path) -> subprocess.Popen[bytes]:
    """Start the service under Gunicorn with the chassis configuration."""
    command = [sys.executable, "-m", "gunicorn", "-c", "python:flotilla.gunicorn"]
    with log.open("ab") as output:
        return subprocess.Popen(
            [*command, f"{service.name}.wsgi:app"],
            env=service_env(service),
            stdout=output,
            stderr=output,
            start_new_session=True,
        )


def wait_until_ready(service: Service, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``/healthz/ready`` answers 200; stop with the log if the service cannot."""
    try:
        wait_for_http(f"{service.url}/healthz/ready", timeout=READY_TIMEOUT, process=process)
    except (ProcessExited, TimeoutError) as error:
        fail(f"{service.name} did not become ready: {error}", log)


def fail(message: str, log: Path) -> None:
    """Print what went wrong and the end of the service's log, then exit 1."""
    print(f"\nflotilla: {message}; last lines of {log.relative_to(ROOT)}:", file=sys.stderr)
    print(log_tail(log), file=sys.stderr)
    raise SystemExit(1)


def stop(processes: list[subprocess.Popen[bytes]]) -> int:
    """SIGTERM every service (graceful), wait for all, return the worst exit code."""
    for process in processes:  # all drain at once rather than one after another
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = [stop_process(process, timeout=40) for process in processes]
    return max((abs(code) for code in codes), default=0)


def banner() -> str:
    """Where everything answers."""
    lines = ["", "Flotilla is running:"]
    for service in SERVICES:
        lines.append(f"  {service.name:<10} {service.url}   (API docs: {service.url}/docs)")
    lines += ["", "Logs: var/log/<service>.log    Stop: Ctrl-C", ""]
    return "\n".join(lines)


def main() -> int:
    """Migrate, start, wait until ready, print the URLs, then wait for Ctrl-C."""
    (VAR / "log").mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    stopping = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        for service in SERVICES:
            log = VAR / "log" / f"{service.name}.log"
            print(f"flotilla: migrating and starting {service.name} ...", flush=True)
            migrate(service, log)
            processes.append(start(service, log))
            wait_until_ready(service, processes[-1], log)
        print(banner(), flush=True)
        while not stopping and all(process.poll() is None for process in processes):
            time.sleep(0.5)
    finally:
        print("flotilla: stopping (waiting for in-flight requests) ...", flush=True)
        code = stop(processes)
    print("flotilla: stopped.", flush=True)
    return 0 if stopping else code or 1


if __name__ == "__main__":
    raise SystemExit(main())
