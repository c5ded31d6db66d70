"""Which part of the system a process is: read from its command line and its ancestry.

The machine runs other work beside the benchmark (other test runs, their servers, their
databases), so a process counts only if it is provably the run's:

* below a *family root* the runner started: ``scripts/run.py`` (the system as ``make run``
  starts it) or a baseline server. Below ``run.py`` each direct child names a component by
  its command line, generically rather than by server name, so Gunicorn, granian or any
  other server is classified the same way (:func:`name_from_argv`); its descendants
  (workers, pool processes) belong to it. A baseline's whole tree gets the baseline's label.
* a PostgreSQL backend or autovacuum worker whose database starts with the run's prefix.
* the servers the run shares with the rest of the machine: PostgreSQL's own processes
  (postmaster, checkpointer, WAL writer ...), Redis and RabbitMQ. Their figures are marked
  *shared*: other work on the machine may have used them in the same seconds.

Family members are counted with the CPU of the children they reaped (``cutime``), so a
worker that is replaced during a window still counts (its parent reaps it); PostgreSQL's
processes are counted on their own, because the postmaster reaps every database's backends.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePath

from procfs import ProcessKey, ProcessStat

WSGI_MODULE = re.compile(r"\b([A-Za-z_]\w*)\.wsgi\b")
FLASK_APP = re.compile(r"--app[= ](\S+)")
POSTGRES_TITLE = re.compile(r"^postgres: (?:[^:]*: )?(.*)$")
BACKEND = re.compile(r"^\S+ (\S+) (?:\S+\(\d+\)|\[local\])")
AUTOVACUUM = re.compile(r"^autovacuum worker (\S+)")
RUNNER = "make run's runner (scripts/run.py)"
POSTGRES, POSTGRES_SERVER = "PostgreSQL", "PostgreSQL server processes"
REDIS, RABBITMQ = "Redis", "RabbitMQ"
RABBITMQ_HELPERS = ("epmd", "erl_child_setup", "inet_gethost")
SERVER_TITLES = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "logical replication",
    "archiver",
    "logger",
    "stats collector",
    "walsender",
    "walreceiver",
    "startup",
    "io worker",
    "walsummarizer",
)
"""How PostgreSQL titles its own processes (shared by every database)."""
HELPER = "multiprocessing.resource_tracker"
"""A child process of some servers (uvicorn) that serves no requests."""


@dataclass(frozen=True)
class Component:
    """A part of the system a process belongs to, and how to count its CPU."""

    name: str
    counts_children: bool
    """Count the CPU of the children it reaped: every process of its tree is the run's."""
    shared: bool = False
    """A server other work on the machine uses too."""


@dataclass(frozen=True)
class Membership:
    """One process's component, and its place in it."""

    component: Component
    top: int
    """The pid of the component's top process (a server's master, the worker's main)."""
    worker: bool
    """A direct child of the top process, or the top process when it has no children: what
    serves requests."""


def name_from_argv(argv: list[str]) -> str:
    """A component's name from its top process's command line, whatever server runs it.

    ``… users.wsgi:app`` is "users (web)"; ``flask --app orders outbox relay`` is "orders
    outbox relay"; ``… recover`` "orders recovery"; ``… tasks worker`` "notifications worker";
    anything else is named by its program ("nginx").
    """
    text = " ".join(argv)
    if match := WSGI_MODULE.search(text):
        return f"{match.group(1)} (web)"
    app = match.group(1) if (match := FLASK_APP.search(text)) else ""
    for words, label in (("outbox relay", "outbox relay"), (" recover", "recovery")):
        if words in text:
            return f"{app} {label}".strip()
    if "tasks worker" in text:
        return f"{app} worker".strip()
    program = argv[0].split(":")[0].split()[0] if argv else "?"
    return PurePath(program).name


def server_of(argv: list[str]) -> str:
    """The program serving a web component: ``python -m NAME`` gives NAME, else argv[0]'s name."""
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    return PurePath(argv[0]).name if argv else "?"


class Classifier:
    """Components of processes, remembered per process (pid and start time)."""

    def __init__(
        self,
        families: Mapping[int, str | None],
        database_prefix: str,
        argv_of: Callable[[int], list[str]],
    ) -> None:
        """``families``: root pid → label of its whole tree, or None to name each child of
        the root by its command line (the runner). ``argv_of`` reads a command line."""
        self.families = dict(families)
        self.database_prefix = database_prefix
        self.argv_of = argv_of
        self._known: dict[ProcessKey, Membership | None] = {}

    @contextlib.contextmanager
    def counting(self, root: int, label: str) -> Iterator[None]:
        """Count ``root``'s tree as ``label`` within the block (a baseline server's life)."""
        self.families[root] = label
        try:
            yield
        finally:
            del self.families[root]  # its pid may be reused by anything afterwards

    def classify(self, stat: ProcessStat, stats: Mapping[int, ProcessStat]) -> Membership | None:
        """``stat``'s membership, None when the process is not the run's (or not yet known to
        be); ``stats`` is the same moment's table, for the ancestry."""
        if stat.key in self._known:
            return self._known[stat.key]
        found = self._family(stat, stats)
        settled = True
        if found is None:
            found, settled = self._server(stat, stats)
        if settled:
            self._known[stat.key] = found
        return found

    def _family(self, stat: ProcessStat, stats: Mapping[int, ProcessStat]) -> Membership | None:
        chain = [stat.pid]
        while chain[-1] not in self.families:
            parent = stats.get(chain[-1])
            if parent is None or parent.ppid <= 1:
                return None
            chain.append(parent.ppid)
        root, label = chain[-1], self.families[chain[-1]]
        if label is not None:
            return Membership(Component(label, True), root, self._is_worker(chain, stats))
        if len(chain) == 1:
            return Membership(Component(RUNNER, True), root, worker=False)
        top = chain[-2]
        component = Component(name_from_argv(self.argv_of(top)), True)
        return Membership(component, top, self._is_worker(chain[:-1], stats))

    def _is_worker(self, chain: list[int], stats: Mapping[int, ProcessStat]) -> bool:
        """``chain`` runs from a process up to its component's top: a worker is the top's
        child (but for multiprocessing's resource tracker, which serves nothing), or the top
        itself when nothing runs below it."""
        if len(chain) == 2:
            return HELPER not in " ".join(self.argv_of(chain[0]))
        if len(chain) == 1:
            top = chain[0]
            return not any(stat.ppid == top for stat in stats.values())
        return False

    def _server(
        self, stat: ProcessStat, stats: Mapping[int, ProcessStat]
    ) -> tuple[Membership | None, bool]:
        """A shared server's process, or None; and whether that is settled (see _postgres)."""
        if stat.comm == "postgres":
            return self._postgres(stat, stats)
        if stat.comm == "redis-server":
            return Membership(Component(REDIS, True, shared=True), stat.pid, worker=False), True
        rabbit = Membership(Component(RABBITMQ, True, shared=True), stat.pid, worker=False)
        if stat.comm == "beam.smp" and "rabbit boot" in " ".join(self.argv_of(stat.pid)):
            return rabbit, True
        if stat.comm in RABBITMQ_HELPERS and stat.state != "Z":
            parent = stats.get(stat.ppid)
            if stat.ppid <= 1 or (parent is not None and self.classify(parent, stats)):
                return rabbit, True
        return None, True

    def _postgres(
        self, stat: ProcessStat, stats: Mapping[int, ProcessStat]
    ) -> tuple[Membership | None, bool]:
        """A backend is the run's if its database is; a backend just forked still shows the
        postmaster's command line or an unfinished title, and is looked at again next time."""
        server = Membership(Component(POSTGRES_SERVER, False, shared=True), stat.pid, False)
        match = POSTGRES_TITLE.match(" ".join(self.argv_of(stat.pid)))
        if match is None:  # the postmaster keeps its real command line; its children change it
            parent = stats.get(stat.ppid)
            return (None, False) if parent and parent.comm == "postgres" else (server, True)
        body = match.group(1)
        if body.startswith(SERVER_TITLES):
            return server, True
        database = BACKEND.match(body) or AUTOVACUUM.match(body)
        if database is None:
            return None, False
        if database.group(1).startswith(self.database_prefix):
            return Membership(Component(POSTGRES, False), stat.pid, worker=False), True
        return None, True
