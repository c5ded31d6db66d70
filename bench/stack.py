"""The system under test, started as ``make run`` starts it, and stopped as Ctrl-C stops it.

``scripts/run.py`` of the shop's checkout (this one, or ``--shop-root DIR`` to measure another
commit with today's benchmark), run by that checkout's own ``.venv`` Python, with:

* ``DATABASE_URL``, ``REDIS_URL`` and ``BROKER_URL`` pointing at this machine's PostgreSQL,
  Redis and RabbitMQ, isolated for the run (``isolation``);
* ``--base-port`` and ``--var-dir`` of the run, and ``--no-rate-limits``: nginx's
  per-address request limits off, because the load comes from one address and would be all
  429s otherwise. That is the only difference from what a user gets: every service runs with
  its defaults, whatever server and worker settings the checkout's ``make run`` chooses.

The rest of the caller's environment passes through (so a variable the lead sets, such as a
server choice, reaches the services as it would under ``make run``), except what would move
the system elsewhere: other URLs, ``VAR_DIR``, ``SMTP_HOST`` (e-mails must land as ``.eml``
files in the run's directory) and per-service overrides (``USERS_…``). The system is up when
the runner has written ``run.json``; it is stopped with SIGINT to the runner, which stops
everything in order, and waited for by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from isolation import Isolation

START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 150.0
CLEARED = ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "SMTP_HOST", "VAR_DIR")
SERVICE_PREFIXES = ("USERS_", "CATALOG_", "ORDERS_", "NOTIFICATIONS_")
RUN_FLAGS = ("--no-rate-limits",)


@dataclass(frozen=True)
class Stack:
    """The running system: its runner process, checkout, URLs and files."""

    root: Path
    python: Path
    isolation: Isolation
    process: subprocess.Popen[bytes]
    state: Mapping[str, Any]
    """``run.json``, as the runner wrote it once everything was up."""
    env: Mapping[str, str]

    @property
    def front_door(self) -> str:
        """nginx's URL."""
        return str(self.state["front_door"])

    @property
    def mail_dir(self) -> Path:
        """Where the notifications worker writes e-mails as ``.eml`` files."""
        return Path(self.state["mail_dir"])

    def database_url(self, service: str) -> str:
        """``service``'s database, named as ``make run`` names it: ``<name>_<service>``."""
        url = make_url(self.isolation.database_url)
        named = url.set(database=f"{self.isolation.name}_{service}")
        return named.render_as_string(hide_password=False)

    def processes(self) -> Mapping[str, int]:
        """The runner's children by name (from ``run.json``)."""
        return dict(self.state["processes"])


@contextlib.contextmanager
def running_stack(root: Path, isolation: Isolation) -> Iterator[Stack]:
    """Start the system of checkout ``root``; yield it once up; stop it and wait by PID."""
    python = root / ".venv" / "bin" / "python"
    check_checkout(root, python)
    env = system_env(os.environ, isolation)
    output = isolation.var_dir / "runner.out"
    command = [str(python), "scripts/run.py", "--var-dir", str(isolation.var_dir / "var")]
    command += ["--base-port", str(isolation.base_port), *RUN_FLAGS]
    with output.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        state = wait_until_up(process, isolation.var_dir / "var" / "run.json", output)
        if not state.get("front_door"):
            raise RuntimeError("make run started no nginx: is nginx on PATH?")
        yield Stack(root, python, isolation, process, state, env)
    finally:
        stop(process, output)


def check_checkout(root: Path, python: Path) -> None:
    """The checkout must have its environment and a runner that can turn nginx's limits off."""
    if not python.exists():
        raise RuntimeError(f"{python} is missing: run `make sync` in {root} first")
    shown = subprocess.run(
        [str(python), "scripts/run.py", "--help"],
        check=False,
        cwd=root,
        capture_output=True,
        text=True,
    )
    missing = [flag for flag in RUN_FLAGS if flag not in shown.stdout]
    if missing:
        raise RuntimeError(
            f"{root}/scripts/run.py has no {', '.join(missing)}; see bench/RESULTS.md"
        )


def system_env(environ: Mapping[str, str], isolation: Isolation) -> dict[str, str]:
    """The caller's environment, without what would move the system, plus the run's URLs."""
    env = {
        name: value
        for name, value in environ.items()
        if name not in CLEARED and not name.startswith(SERVICE_PREFIXES)
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env | {
        "DATABASE_URL": isolation.database_url,
        "REDIS_URL": isolation.redis_url,
        "BROKER_URL": isolation.broker_url,
    }


def wait_until_up(process: subprocess.Popen[bytes], state_file: Path, output: Path) -> Any:
    """``run.json`` once the runner wrote it; the runner's output if it ends or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            said = output.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"make run did not come up (exit {process.returncode}):\n{said}")
        time.sleep(0.5)
    time.sleep(0.2)  # written in one call, but read it complete
    return json.loads(state_file.read_text())


def stop(process: subprocess.Popen[bytes], output: Path) -> None:
    """SIGINT (Ctrl-C) to the runner and wait for it; if it hangs, kill what it started."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        code = process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for pid in descendants(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.kill()
        code = process.wait()
    if code != 0:
        print(f"make run exited with {code}:\n{output.read_text(errors='replace')[-2000:]}")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` now."""
    found, pending = [], [pid]
    while pending:
        parent = pending.pop()
        with contextlib.suppress(FileNotFoundError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                children = [int(child) for child in (task / "children").read_text().split()]
                found += children
                pending += children
    return found


def checkout_version(root: Path) -> str:
    """The checkout's commit, and whether it has changes not committed."""
    git = ["git", "-C", str(root)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True
    )
    status = subprocess.run(
        [*git, "status", "--porcelain"], check=False, capture_output=True, text=True
    )
    dirty = " with uncommitted changes" if status.stdout.strip() else ""
    return f"{commit.stdout.strip() or '?'}{dirty}"
