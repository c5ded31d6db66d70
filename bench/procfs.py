"""What the kernel says about processes and CPUs: ``/proc/<pid>/stat``, ``cmdline``, memory.

Only reads, nothing else: the accounting that uses them is in ``sampler`` and ``accounting``.
Times come in clock ticks (``SC_CLK_TCK``) and are returned in seconds. A process can end
between listing ``/proc`` and reading its files, so every reader here tolerates a missing
process and says so by returning nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")
ProcessKey = tuple[int, int]
"""(pid, start time in ticks since boot): a pid alone is reused once its process ends."""


@dataclass(frozen=True)
class ProcessStat:
    """One line of ``/proc/<pid>/stat``, the fields the accounting needs."""

    pid: int
    ppid: int
    comm: str
    state: str
    own_s: float
    """utime + stime: CPU spent by the process itself, every thread included."""
    children_s: float
    """cutime + cstime: CPU of the children it has reaped (waited for), theirs included."""
    started: int
    """Start time in ticks since boot."""

    @property
    def key(self) -> ProcessKey:
        """The process's identity over time."""
        return (self.pid, self.started)

    @property
    def total_s(self) -> float:
        """Its own CPU and that of every descendant it (or they) reaped."""
        return self.own_s + self.children_s


def parse_stat(text: str) -> ProcessStat:
    """One ``/proc/<pid>/stat`` line; ``comm`` may hold spaces and parentheses, so split at
    the last ``)``."""
    head, _, tail = text.rpartition(")")
    pid_text, _, comm = head.partition(" (")
    fields = tail.split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ProcessStat(
        pid=int(pid_text),
        ppid=int(fields[1]),
        comm=comm,
        state=fields[0],
        own_s=(utime + stime) / TICKS_PER_SECOND,
        children_s=(cutime + cstime) / TICKS_PER_SECOND,
        started=int(fields[19]),
    )


def read_stats() -> dict[int, ProcessStat]:
    """Every process now, by pid."""
    stats = {}
    for entry in os.listdir(PROC):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None:
                stats[stat.pid] = stat
    return stats


def read_stat(pid: int) -> ProcessStat | None:
    """``pid``'s stat, or None if it has gone."""
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None


def read_argv(pid: int) -> list[str]:
    """``pid``'s command line as its arguments (empty for a kernel thread or a gone process)."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def uptime_ticks() -> int:
    """Ticks since boot now, comparable with :attr:`ProcessStat.started`."""
    seconds = float((PROC / "uptime").read_text().split()[0])
    return int(seconds * TICKS_PER_SECOND)


def machine_busy_s() -> float:
    """CPU seconds every core has spent busy since boot (``/proc/stat``: all but idle, iowait).

    Whoever spent them: the differences over a window include other work on the machine.
    """
    fields = (PROC / "stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND


def memory_kib(pid: int) -> tuple[int, int] | None:
    """``pid``'s resident set and proportional set size in KiB, or None if it has gone.

    RSS counts every page the process maps, shared ones in full; PSS divides each shared page
    among its sharers, so forked workers that share the preloaded app add up correctly.
    """
    try:
        status = (PROC / str(pid) / "status").read_text()
        rollup = (PROC / str(pid) / "smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return _field_kib(status, "VmRSS:"), _field_kib(rollup, "Pss:")


def _field_kib(text: str, name: str) -> int:
    for line in text.splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0
