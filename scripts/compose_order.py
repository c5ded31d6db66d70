"""The compose stack's start, in compose's order, where the engine cannot keep to it itself.

Each service is started once every ``depends_on`` condition of it holds: ``service_started``
once the dependency was started, ``service_healthy`` once the dependency's own health check
passes (run here, every second, since podman 4.3 runs none where no systemd runs),
``service_completed_successfully`` once it exited 0. Services whose conditions hold start in
parallel, as Compose starts them. A container that exits when it should not, or exits other
than 0 when it should, stops the whole start with its last log lines. Why:
docs/adr/0026-compose-with-podman.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

STARTED, HEALTHY, COMPLETED = (
    "service_started",
    "service_healthy",
    "service_completed_successfully",
)
CHECK_INTERVAL = 1.0
"""Seconds between two runs of a starting container's health check."""


class StackFailed(RuntimeError):
    """A service did not come up; the message says which and ends with its last log lines."""


class Containers(Protocol):
    """What the start needs of a stack: its services and their containers."""

    @property
    def services(self) -> dict[str, dict[str, Any]]: ...
    def start(self, service: str) -> None: ...
    def status(self, service: str) -> str: ...
    def exit_code(self, service: str) -> int: ...
    def has_health_check(self, service: str) -> bool: ...
    def healthy(self, service: str) -> bool: ...
    def last_lines(self, service: str, count: int = 15) -> str: ...


def start_in_order(stack: Containers, started: float, deadline: float) -> dict[str, float]:
    """Start every service of ``stack``; the seconds from ``started`` to each one's readiness."""
    return _Starter(stack, started, deadline).run()


class _Progress:
    """Which conditions each service has reached; the first failure stops every wait."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._reached: dict[str, set[str]] = {}
        self.failure: str | None = None

    def reach(self, service: str, condition: str) -> None:
        with self._condition:
            self._reached.setdefault(service, set()).add(condition)
            self._condition.notify_all()

    def fail(self, message: str) -> None:
        with self._condition:
            self.failure = self.failure or message
            self._condition.notify_all()

    def wait(self, service: str, condition: str, deadline: float) -> None:
        with self._condition:
            while condition not in self._reached.get(service, set()):
                if self.failure:
                    raise StackFailed(self.failure)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StackFailed(f"{service}: not {condition} in time")
                self._condition.wait(remaining)


@dataclass
class _Starter:
    """Starts every service of ``stack`` once its ``depends_on`` conditions hold."""

    stack: Containers
    started: float
    deadline: float
    progress: _Progress = field(default_factory=_Progress)
    ready_after: dict[str, float] = field(default_factory=dict)

    def run(self) -> dict[str, float]:
        services = self.stack.services
        with ThreadPoolExecutor(max_workers=len(services)) as pool:
            for service, definition in services.items():
                pool.submit(self._bring_up, service, definition.get("depends_on", {}))
        if self.progress.failure:
            raise StackFailed(self.progress.failure)
        return self.ready_after

    def _bring_up(self, service: str, depends_on: Mapping[str, Mapping[str, str]]) -> None:
        try:
            for dependency, how in depends_on.items():
                self.progress.wait(dependency, how.get("condition", STARTED), self.deadline)
            self.stack.start(service)
            self.progress.reach(service, STARTED)
            if self.stack.has_health_check(service):
                self._until(service, lambda: self.stack.healthy(service), "healthy")
                self.progress.reach(service, HEALTHY)
            if self.stack.services[service].get("restart") == "no":
                self._until(service, lambda: self.stack.status(service) == "exited", "done")
                self._exited_zero(service)
                self.progress.reach(service, COMPLETED)
            self.ready_after[service] = time.monotonic() - self.started
        except StackFailed as error:
            self.progress.fail(str(error))
        except Exception as error:  # any failure must end every other service's wait
            self.progress.fail(f"{service}: {error!r}")

    def _until(self, service: str, done: Callable[[], bool], what: str) -> None:
        while not done():
            if self.progress.failure:
                raise StackFailed(self.progress.failure)
            if what == "healthy" and self.stack.status(service) == "exited":
                raise StackFailed(f"{service} exited:\n{self.stack.last_lines(service)}")
            if time.monotonic() > self.deadline:
                raise StackFailed(
                    f"{service}: not {what} in time:\n{self.stack.last_lines(service)}"
                )
            time.sleep(CHECK_INTERVAL)

    def _exited_zero(self, service: str) -> None:
        code = self.stack.exit_code(service)
        if code != 0:
            raise StackFailed(f"{service} exited {code}:\n{self.stack.last_lines(service)}")
