"""One closed-loop load of the system with wrk and ``shop.lua``, and what it cost the machine.

wrk keeps every connection busy (closed loop): a request leaves as soon as the previous
answer arrived. Each run is wrapped in a :class:`~sampler.CpuSampler`, so a run carries its
rate and latencies, every status it got, and the CPU each component of the machine spent
meanwhile, wrk's own included (``loadgen``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from components import Classifier
from loadgen import run_measured
from sampler import CpuSampler, CpuWindow
from wrk import BENCH_DIR, script_result, wrk_command

SHOP_SCRIPT = BENCH_DIR / "shop.lua"
WRK = "load generator (wrk)"


@dataclass(frozen=True)
class LoadRun:
    """What wrk reported for one run, and the status every answer should have had."""

    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    socket_errors: tuple[int, int, int, int]
    """connect, read, write, timeout."""
    statuses: Mapping[int, int]
    expected: int

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def unexpected(self) -> int:
        """Answers of another status than :attr:`expected`."""
        return sum(n for status, n in self.statuses.items() if status != self.expected)

    @property
    def errors(self) -> int:
        """Socket errors and unexpected answers."""
        return sum(self.socket_errors) + self.unexpected


@dataclass(frozen=True)
class Measured:
    """One run: the load, its CPU window, and the units (requests, orders) it is divided by."""

    load: LoadRun
    cpu: CpuWindow
    units: int

    def per_unit_ms(self, seconds: float) -> float:
        """``seconds`` of CPU per unit, in milliseconds."""
        return 1000 * seconds / self.units if self.units else 0.0


@dataclass(frozen=True)
class Wrk:
    """How every closed-loop run is made: wrk's path, threads, and the CPU classifier."""

    path: str
    threads: int
    classifier: Classifier

    def run(
        self,
        base_url: str,
        arguments: Sequence[str],
        *,
        seconds: int,
        connections: int,
        expected: int,
        token: str = "",
        then: Callable[[], object] | None = None,
    ) -> tuple[LoadRun, CpuWindow]:
        """Load ``base_url`` with ``shop.lua`` ``arguments``; the run and its CPU window.

        ``then`` runs after wrk inside the window: work the load left behind (e-mails to
        send) is then counted with it.
        """
        command = [
            *self.command(seconds=seconds, connections=connections),
            base_url,
            "--",
            *arguments,
        ]
        with CpuSampler(self.classifier) as sampler:
            finished = run_measured(command, {"BENCH_ACCESS_TOKEN": token})
            if then is not None:
                then()
        window = sampler.result().with_component(WRK, finished.cpu_s)
        return parse(finished.stdout, expected), window

    def warm(
        self, base_url: str, arguments: Sequence[str], *, seconds: int, connections: int, token: str
    ) -> None:
        """A run that is not measured: caches, pools and kept-alive connections fill up."""
        command = [*self.command(seconds=seconds, connections=connections), base_url, "--"]
        run_measured([*command, *arguments], {"BENCH_ACCESS_TOKEN": token})

    def command(self, *, seconds: int, connections: int) -> list[str]:
        """wrk and its flags, up to the URL."""
        return wrk_command(
            self.path,
            seconds=seconds,
            threads=min(self.threads, connections),
            connections=connections,
            script=SHOP_SCRIPT,
        )

    def shown(self, *, seconds: int, connections: int) -> str:
        """The command as RESULTS.md shows it."""
        return " ".join(["wrk", *self.command(seconds=seconds, connections=connections)[1:]])


def parse(output: str, expected: int) -> LoadRun:
    """The ``BENCH_RESULT`` line ``shop.lua`` printed."""
    data = script_result(output, "BENCH_RESULT")
    return LoadRun(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        socket_errors=(data["connect"], data["read"], data["write"], data["timeout"]),
        statuses={int(status): count for status, count in data["statuses"].items()},
        expected=expected,
    )
