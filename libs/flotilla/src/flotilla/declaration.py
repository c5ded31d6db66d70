"""The system's shape, declared once in ``system.toml``: services, routes, data, calls, programs.

A system built on the chassis keeps one declaration at its repository's root. Each service
names the port it answers on under ``make run`` (none for a worker-only service), the path
prefixes the front door routes to it and those it must never route, its database, whether
it uses Redis and the broker, the peers it calls, its background programs and one-shot jobs,
and the settings that are secrets. Whatever runs, renders or deploys the system reads this
instead of its own list, and the deployment tests compare the hand-written files (compose,
Kubernetes) with it. :func:`load` parses and checks it; ``flotilla new`` appends an entry.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_NAME = "system.toml"
NAME = re.compile(r"[a-z][a-z0-9]*\Z")
"""A service's name is its Python package, its URL's host and its database: one lowercase word."""
LIMITS = frozenset({"api", "tokens"})
"""The front door's rate zones: ``api`` for every route, ``tokens`` for logins."""


class DeclarationError(ValueError):
    """``system.toml`` is not a valid declaration; the message names the entry."""


@dataclass(frozen=True)
class Route:
    """A path prefix the front door sends to a service, and the rate zone it counts in."""

    path: str
    limit: str = "api"


@dataclass(frozen=True)
class Program:
    """A long-running ``flask --app <service>`` command: a relay, a loop, a worker."""

    name: str
    command: tuple[str, ...]
    ready: str
    """The end of the JSON log line's message that says it is up."""


@dataclass(frozen=True)
class Job:
    """A one-shot ``flask --app <service>`` command that runs at deploy time, after migrations."""

    name: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class Service:
    """One service of the system, as declared."""

    name: str
    summary: str
    port: int | None = None
    """Where it answers under ``make run`` with the default base port; None: no web server."""
    database: str | None = None
    redis: bool = False
    broker: bool = False
    routes: tuple[Route, ...] = ()
    internal_routes: tuple[str, ...] = ()
    """Paths it serves to other services only: the front door answers them 404."""
    calls: tuple[str, ...] = ()
    """Peers it calls by URL (``<PEER>_URL``); every web service fetches the issuer's keys."""
    client: bool = False
    """It calls peers with a token of its own, from the issuer, for its client secret."""
    secrets: tuple[str, ...] = ()
    """Settings that come from a secret store, besides the connection URLs."""
    jobs: tuple[Job, ...] = ()
    background: tuple[Program, ...] = ()

    @property
    def is_web(self) -> bool:
        """Whether it runs a web server (and so has a port and an upstream)."""
        return self.port is not None

    @property
    def commands(self) -> tuple[Job | Program, ...]:
        """Its one-shot jobs, then its background programs."""
        found: tuple[Job | Program, ...] = (*self.jobs, *self.background)
        return found

    @property
    def url_setting(self) -> str:
        """The setting by which its callers find it: ``CATALOG_URL``."""
        return f"{self.name.upper()}_URL"


@dataclass(frozen=True)
class System:
    """Every service, in declaration order, which is also the order they start in."""

    issuer: str
    services: tuple[Service, ...]
    source: Path | None = field(default=None, compare=False)

    def __getitem__(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        """Every service's name."""
        return tuple(service.name for service in self.services)

    @property
    def web(self) -> tuple[Service, ...]:
        """The services with a web server, in start order."""
        return tuple(service for service in self.services if service.is_web)

    @property
    def databases(self) -> tuple[str, ...]:
        """Every service database, one per service that keeps data."""
        return tuple(service.database for service in self.services if service.database)

    @property
    def clients(self) -> tuple[Service, ...]:
        """The services the issuer gives tokens of their own."""
        return tuple(service for service in self.services if service.client)

    def routes(self) -> list[tuple[Route, Service]]:
        """Every public route with the service that answers it."""
        return [(route, service) for service in self.services for route in service.routes]

    def owner(self, path: str) -> Service:
        """The service whose route prefix ``path`` starts with."""
        for route, service in self.routes():
            if path.startswith(route.path):
                return service
        raise KeyError(path)


def find(start: Path | None = None) -> Path:
    """``system.toml`` in ``start`` (default: the working directory) or the nearest parent."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / FILE_NAME).is_file():
            return directory / FILE_NAME
    raise DeclarationError(f"no {FILE_NAME} in {here} or any directory above it")


def load(path: Path | None = None) -> System:
    """The declaration in ``path`` (default: :func:`find`), parsed and checked."""
    path = path or find()
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise DeclarationError(f"{path.name}: {error}") from None
    return parse(data, source=path)


def parse(data: Mapping[str, Any], *, source: Path | None = None) -> System:
    """A :class:`System` from the TOML document ``data``; :class:`DeclarationError` if wrong."""
    _only(data, {"system", "services"}, "the document")
    issuer = str(data.get("system", {}).get("issuer", ""))
    services = tuple(
        _service(name, entry) for name, entry in dict(data.get("services", {})).items()
    )
    system = System(issuer, services, source)
    _check(system)
    return system


_SERVICE_KEYS = {
    "summary", "port", "database", "redis", "broker", "routes", "internal_routes", "calls",
    "client", "secrets", "jobs", "background",
}  # fmt: skip


def _service(name: str, entry: Mapping[str, Any]) -> Service:
    where = f"services.{name}"
    if not NAME.match(name):
        raise DeclarationError(f"{where}: a service's name is one lowercase word, a-z then 0-9")
    _only(entry, _SERVICE_KEYS, where)
    try:
        return Service(
            name=name,
            summary=str(entry["summary"]),
            port=_optional_int(entry.get("port")),
            database=entry.get("database"),
            redis=bool(entry.get("redis", False)),
            broker=bool(entry.get("broker", False)),
            routes=tuple(_route(item) for item in entry.get("routes", ())),
            internal_routes=tuple(str(path) for path in entry.get("internal_routes", ())),
            calls=tuple(str(peer) for peer in entry.get("calls", ())),
            client=bool(entry.get("client", False)),
            secrets=tuple(str(secret) for secret in entry.get("secrets", ())),
            jobs=tuple(Job(item["name"], tuple(item["command"])) for item in entry.get("jobs", ())),
            background=tuple(_program(item) for item in entry.get("background", ())),
        )
    except (KeyError, TypeError) as error:
        raise DeclarationError(f"{where}: missing or malformed {error.args[0]}") from None


def _route(item: str | Mapping[str, str]) -> Route:
    if isinstance(item, str):
        return Route(item)
    return Route(item["path"], item.get("limit", "api"))


def _program(item: Mapping[str, Any]) -> Program:
    return Program(item["name"], tuple(item["command"]), item["ready"])


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("port")
    return value


def _only(entry: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise DeclarationError(f"{where}: unknown keys {', '.join(unknown)}")


def _check(system: System) -> None:
    names = system.names
    if not names:
        raise DeclarationError("no services declared")
    if system.issuer not in names or not system[system.issuer].is_web:
        raise DeclarationError(f"system.issuer {system.issuer!r} is not a declared web service")
    _unique("port", [service.port for service in system.web])
    _unique("database", list(system.databases))
    _unique("program or job", [p.name for s in system.services for p in s.commands])
    _unique("route", [route.path for route, _ in system.routes()])
    for service in system.services:
        _check_service(service, system)


def _check_service(service: Service, system: System) -> None:
    where = f"services.{service.name}"
    for peer in service.calls:
        if peer not in system.names or not system[peer].is_web or peer == service.name:
            raise DeclarationError(f"{where}.calls: {peer!r} is not another web service")
    for route in service.routes:
        if not route.path.startswith("/") or route.limit not in LIMITS:
            raise DeclarationError(f"{where}.routes: {route.path!r} ({route.limit})")
    if (service.routes or service.internal_routes) and not service.is_web:
        raise DeclarationError(f"{where}: routes need a port")
    for program in service.commands:
        if not program.name.startswith(f"{service.name}-") or not program.command:
            raise DeclarationError(f"{where}: {program.name!r} is named <service>-<what>")


def _unique(what: str, values: Sequence[object]) -> None:
    seen = [value for index, value in enumerate(values) if value in values[:index]]
    if seen:
        raise DeclarationError(f"the same {what} twice: {seen[0]!r}")
