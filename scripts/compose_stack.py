"""The compose stack, run for real with podman: compose.yml, with compose.local.yml's images.

podman-compose reads the compose files as Compose does (anchors and merges, ``!reset`` and
``!override``, ``${...}`` from an env file, profiles) and creates the network, the volumes and
every container from them (``up --no-start``). ``compose_order`` starts them in compose's
order, which podman 4.3 cannot keep to where no systemd runs its health checks. A
:class:`Stack` also asks, stops and removes them, for the tests and for whoever runs it::

    python scripts/compose_stack.py up [--project NAME] [--env-file FILE]   # prints the front door
    python scripts/compose_stack.py down --project NAME
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import subprocess
import sys
import sysconfig
import tarfile
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

import containers
from compose_order import StackFailed, start_in_order
from flotilla.auth.keys import SigningKey

COMPOSE_FILES = (
    containers.ROOT / "deploy" / "compose" / "compose.yml",
    containers.CONTAINERS / "compose.local.yml",
)
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
START_TIMEOUT = 300.0
"""Seconds the whole stack gets to be up."""
DEFAULT_GRACE = 10.0
"""Compose's stop grace period where a service sets none."""
CAUGHT_MAIL = "/var/mail/caught"
"""The Maildir compose.local.yml's SMTP catcher keeps every e-mail in."""

NAMES_ANSWERED = """\
import socket, sys, time
name, deadline, quick = "postgres", time.monotonic() + float(sys.argv[1]), 0
while quick < 4:
    if time.monotonic() > deadline:
        sys.exit(f"the network's DNS did not answer {name!r} promptly")
    asked = time.monotonic()
    try:
        socket.getaddrinfo(name, 5432)
        answered = time.monotonic() - asked < 0.5
    except OSError:
        answered = False
    quick = quick + 1 if answered else 0
    time.sleep(1)
"""
"""Run in a container: returns once four name lookups a second apart were answered at once."""


@dataclass(frozen=True)
class Stopped:
    """How one container stopped: its exit code, the seconds it took and those it had."""

    service: str
    exit_code: int
    seconds: float
    grace: float


def podman(*arguments: str, stdin: str | None = None) -> str:
    """``podman arguments`` with the project's engine settings; its standard output."""
    done = podman_run(*arguments, stdin=stdin)
    if done.returncode != 0:
        raise StackFailed(f"podman {' '.join(arguments[:3])}: {done.stderr.strip()}")
    return done.stdout


def podman_run(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``podman arguments``, whatever its exit status."""
    return subprocess.run(
        ["podman", *arguments],
        env=containers.engine_environment(),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def seconds_of(duration: str | float | None, default: float) -> float:
    """Compose's duration (``1m40s``, ``40s``, ``15``) in seconds."""
    if duration is None:
        return default
    if isinstance(duration, int | float):
        return float(duration)
    minutes, _, rest = duration.rpartition("m")
    return float(minutes or 0) * 60 + float(rest.removesuffix("s") or 0)


def write_env_file(path: Path) -> Path:
    """An env file with every secret compose.yml asks for, made up for this stack alone."""
    values = {
        "POSTGRES_USER": "flotilla",
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "RABBITMQ_USER": "flotilla",
        "RABBITMQ_PASSWORD": secrets.token_urlsafe(24),
        "ORDERS_CLIENT_SECRET": secrets.token_urlsafe(36),
        "CONSOLE_SECRET_KEY": secrets.token_urlsafe(36),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(24),
    }
    lines = [f"{name}={value}" for name, value in values.items()]
    lines.append(f'USERS_AUTH_SIGNING_KEY="{SigningKey.generate().private_pem().strip()}"')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


@dataclass
class Stack:
    """One project of the compose files: create, start, ask, stop and remove its containers."""

    project: str
    env_file: Path
    files: tuple[Path, ...] = COMPOSE_FILES
    ready_after: dict[str, float] = field(default_factory=dict)
    """Seconds from the start of :meth:`up` to each service's readiness."""

    def compose(self, *arguments: str) -> str:
        """``podman-compose arguments`` on this project's files; its standard output."""
        command = [podman_compose(), "--env-file", str(self.env_file), "-p", self.project]
        for file in self.files:
            command += ["-f", str(file)]
        done = subprocess.run(
            [*command, *arguments],
            env=containers.engine_environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise StackFailed(f"podman-compose {arguments[0]}: {done.stderr.strip()[-2000:]}")
        return done.stdout

    @cached_property
    def services(self) -> dict[str, dict[str, Any]]:
        """The services that run, as the merged files define them (profiles left out)."""
        merged = yaml.safe_load(self.compose("config"))
        return {
            name: definition
            for name, definition in merged["services"].items()
            if not definition.get("profiles")
        }

    def container(self, service: str) -> str:
        """The name of ``service``'s container."""
        names = podman(
            "ps", "--all", "--format", "{{.Names}}",
            "--filter", f"label={PROJECT_LABEL}={self.project}",
            "--filter", f"label={SERVICE_LABEL}={service}",
        ).split()  # fmt: skip
        if len(names) != 1:
            raise StackFailed(f"{service}: {len(names)} containers, not one")
        return names[0]

    def up(self, timeout: float = START_TIMEOUT) -> dict[str, float]:
        """Create every container, then start each in compose's order; seconds to each ready."""
        started = time.monotonic()
        self.compose("up", "--no-start", "--no-deps")
        deadline = time.monotonic() + timeout
        self.ready_after = start_in_order(self, started, deadline)
        self.wait_for_names(deadline)
        return self.ready_after

    def wait_for_names(self, deadline: float) -> None:
        """Return once the network's DNS answers again, after the last container joined.

        podman's DNS server (aardvark-dns) reloads each time a container joins the network,
        and the version Debian 12 ships (1.4) can then stop answering for 25 to 40 seconds:
        seen right after the last container (nginx) started, in about one start in three
        of the container tests. Every service is ready by then; only new lookups stall.
        A process's first connection in that window waited for glibc's timeouts (30 s), and
        its request with it: nginx answered the first registration 504. So the stack is up
        once a container gets four prompt answers in a row, a second apart.
        """
        seconds = max(deadline - time.monotonic(), 1.0)
        self.run("users", "python3", "-c", NAMES_ANSWERED, f"{seconds:.0f}")

    def down(self) -> None:
        """Remove the project's containers, volumes and network, whatever state they are in."""
        project = f"label={PROJECT_LABEL}={self.project}"
        for listing, removal in (
            (["ps", "--all"], ["rm", "--force", "--time", "0"]),
            (["volume", "ls"], ["volume", "rm", "--force"]),
            (["network", "ls"], ["network", "rm", "--force"]),
        ):
            found = podman_run(*listing, "--quiet", "--filter", project).stdout.split()
            if found:
                podman_run(*removal, *found)

    def published_port(self, service: str, port: int) -> int:
        """The host port ``service``'s container ``port`` is published on."""
        address = podman("port", self.container(service), f"{port}/tcp").split()[0]
        return int(address.rpartition(":")[2])

    def run(self, service: str, *command: str, stdin: str | None = None) -> str:
        """``command`` in ``service``'s running container, as its user; its output."""
        interactive = ["--interactive"] if stdin is not None else []
        return podman("exec", *interactive, self.container(service), *command, stdin=stdin)

    def succeeds(self, service: str, *command: str) -> bool:
        """Whether ``command`` exits 0 in ``service``'s running container."""
        return podman_run("exec", self.container(service), *command).returncode == 0

    def logs(self, service: str) -> str:
        """Everything ``service``'s container wrote, both streams."""
        done = podman_run("logs", self.container(service))
        return done.stdout + done.stderr

    def grace(self, service: str) -> float:
        """``service``'s stop grace period in seconds, as compose.yml sets it."""
        return seconds_of(self.services[service].get("stop_grace_period"), DEFAULT_GRACE)

    def stop(self, service: str) -> Stopped:
        """Stop ``service`` as ``compose stop`` does: its stop signal, SIGKILL after its grace."""
        name, grace = self.container(service), self.grace(service)
        started = time.monotonic()
        podman("stop", "--time", f"{grace:.0f}", name)
        return Stopped(service, self.exit_code(service), time.monotonic() - started, grace)

    def exit_code(self, service: str) -> int:
        """The exit code of ``service``'s container, once it has exited."""
        return int(podman("inspect", "--format", "{{.State.ExitCode}}", self.container(service)))

    def start(self, service: str) -> None:
        """Start ``service``'s container again."""
        podman("start", self.container(service))

    def status(self, service: str) -> str:
        """``running``, ``exited`` and so on."""
        return podman("inspect", "--format", "{{.State.Status}}", self.container(service)).strip()

    def healthy(self, service: str) -> bool:
        """Whether ``service``'s health check passes now (it is run to find out)."""
        return podman_run("healthcheck", "run", self.container(service)).returncode == 0

    def command(self, service: str) -> list[str]:
        """The command ``service``'s container runs: compose's, else its image's."""
        found = podman("inspect", "--format", "{{json .Config.Cmd}}", self.container(service))
        command: list[str] = json.loads(found)
        return command

    def has_health_check(self, service: str) -> bool:
        """Whether ``service``'s container has a health check (its own or its image's)."""
        test = podman(
            "inspect", "--format", "{{.Config.Healthcheck.Test}}", self.container(service)
        )
        return test.strip() not in ("", "[]", "[NONE]", "<no value>")

    def caught_mail(self, address: str) -> list[str]:
        """The subjects of the e-mails to ``address`` that the SMTP catcher holds."""
        copied = subprocess.run(
            ["podman", "cp", f"{self.container('mailpit')}:{CAUGHT_MAIL}", "-"],
            env=containers.engine_environment(),
            capture_output=True,
            check=True,
        )
        subjects = []
        with tarfile.open(fileobj=io.BytesIO(copied.stdout)) as maildir:
            for member in maildir:
                delivered = Path(member.name).parent.name in ("new", "cur")  # not tmp/ yet
                contents = maildir.extractfile(member) if delivered else None
                if contents is None:
                    continue
                message = message_from_bytes(contents.read(), policy=policy.default)
                if address in str(message["To"]):
                    subjects.append(str(message["Subject"]))
        return subjects

    def last_lines(self, service: str, count: int = 15) -> str:
        """The end of ``service``'s logs, for a failure message."""
        return "\n".join(self.logs(service).splitlines()[-count:])


def podman_compose() -> str:
    """podman-compose from this environment (a dev dependency), else from PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "podman-compose"
    return str(beside) if beside.exists() else "podman-compose"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--project", default=f"flotilla-{secrets.token_hex(3)}")
    parser.add_argument("--env-file", type=Path, help="made up (under var/) when not given")
    arguments = parser.parse_args(argv)
    env_file = arguments.env_file
    if env_file is None:
        env_file = containers.ROOT / "var" / f"{arguments.project}.env"
        if arguments.command == "up":
            env_file.parent.mkdir(parents=True, exist_ok=True)
            write_env_file(env_file)
    stack = Stack(arguments.project, env_file)
    if arguments.command == "down":
        stack.down()
        return 0
    try:
        ready = stack.up()
    except StackFailed as error:
        print(f"flotilla stack: {error}", file=sys.stderr)
        return 1
    for service, seconds in sorted(ready.items(), key=lambda item: item[1]):
        print(f"{seconds:6.1f} s  {service}")
    print(f"project {stack.project}: http://127.0.0.1:{stack.published_port('nginx', 8080)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
