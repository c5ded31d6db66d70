"""Memory of the web servers after the load: every worker's resident set, and which server.

The issue's bar is a worker RSS of at most 90 MiB. RSS counts shared pages in full, so
forked workers that share a preloaded app look bigger than they cost together; PSS divides
each shared page among its sharers and is shown beside it. The web servers are found the way
the CPU accounting finds them: children of ``make run``'s runner whose command line names a
``<service>.wsgi`` module, whatever server runs it, and their child processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from components import name_from_argv, server_of
from procfs import memory_kib, read_argv, read_stats

LIMIT_MIB = 90.0


@dataclass(frozen=True)
class ProcessMemory:
    """One process's memory, in MiB."""

    pid: int
    rss_mib: float
    pss_mib: float


@dataclass(frozen=True)
class ServerMemory:
    """One web service's server: what runs it, its top process and its workers."""

    component: str
    server: str
    command: str
    top: ProcessMemory
    workers: tuple[ProcessMemory, ...]

    @property
    def largest_worker_mib(self) -> float:
        """The largest worker RSS (the top process's when it has no workers)."""
        return max((worker.rss_mib for worker in self.workers), default=self.top.rss_mib)


def web_servers(runner: int) -> list[ServerMemory]:
    """Every web server below ``runner``, with its workers' memory now."""
    stats = read_stats()
    servers = []
    for stat in stats.values():
        argv = read_argv(stat.pid) if stat.ppid == runner else []
        name = name_from_argv(argv) if argv else ""
        if not name.endswith("(web)"):
            continue
        workers = [other.pid for other in stats.values() if other.ppid == stat.pid]
        measured = [m for m in map(_memory, workers) if m is not None]
        top = _memory(stat.pid)
        if top is not None:
            command = " ".join([PurePath(argv[0]).name, *argv[1:]])
            servers.append(ServerMemory(name, server_of(argv), command, top, tuple(measured)))
    return sorted(servers, key=lambda server: server.component)


def _memory(pid: int) -> ProcessMemory | None:
    found = memory_kib(pid)
    if found is None:
        return None
    return ProcessMemory(pid, found[0] / 1024, found[1] / 1024)
