"""What ``make run`` runs, where it answers and with which environment.

Shared by ``scripts/run.py``, which starts the processes, and ``scripts/demo.py``, which
talks to them. Nothing here starts anything.

What runs comes from the declaration, ``system.toml``. Ports come from one base port B
(default 8000): each web service at its declared port shifted by B - 8000 (users B+1,
catalog B+2, orders B+3), the metrics of the background processes B+11 on (in the order of
``BACKGROUND_PROGRAMS``) and the nginx front door B+80, so a second copy of the system (a
test) can run beside a developer's.
The services call each other on their own ports; only clients go through the front door.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from databases import masked, service_database_url
from flotilla import declaration

ROOT = Path(__file__).resolve().parents[1]

SYSTEM = declaration.load(ROOT / declaration.FILE_NAME)
"""The declaration every list below comes from: ``system.toml``."""
DEFAULT_BASE_PORT = 8000
"""The base port the declared ports assume; ``--base-port`` shifts them all alike."""
WEB_SERVICES = tuple(service.name for service in SYSTEM.web)
"""In start order: users issues the keys the others verify, orders calls users and catalog."""
ROUTES = {route.path: service.name for route, service in SYSTEM.routes()}
"""Which service answers a path prefix, as the front door routes it."""
FRONT_DOOR_OFFSET = 80
METRICS_OFFSET = 11
"""The first background process serves its metrics on B+11, the next on B+12, and so on."""
BACKGROUND, WEB, FRONT_DOOR = 0, 1, 2
"""Tiers: the relays outlive the web services, publishing what the last requests wrote."""
BACKGROUND_PROGRAMS = tuple(
    (program.name, service.name, program.command, program.ready)
    for service in SYSTEM.services
    for program in service.background
)
"""Name, service, ``flask`` command and the end of the log line that says it is up."""
BACKGROUND_LOG_LEVELS = ("DEBUG", "INFO")
"""Levels at which background processes log the start line their readiness is read from."""


@dataclass(frozen=True)
class Layout:
    """Where the running system keeps its state and which ports it answers on."""

    var_dir: Path
    base_port: int = DEFAULT_BASE_PORT
    front_door: bool = True

    def port(self, service: str) -> int:
        """The port ``service`` listens on."""
        declared = SYSTEM[service].port
        if declared is None:
            raise ValueError(f"{service} runs no web server")
        return self.base_port + declared - DEFAULT_BASE_PORT

    def url(self, service: str) -> str:
        """Where ``service`` answers directly."""
        return f"http://127.0.0.1:{self.port(service)}"

    def metrics_port(self, program: str) -> int:
        """The port background process ``program`` (``users-relay``) serves /metrics on."""
        names = [name for name, *_ in BACKGROUND_PROGRAMS]
        return self.base_port + METRICS_OFFSET + names.index(program)

    @property
    def front_door_port(self) -> int:
        """The port nginx listens on."""
        return self.base_port + FRONT_DOOR_OFFSET

    @property
    def front_door_url(self) -> str:
        """Where nginx answers."""
        return f"http://127.0.0.1:{self.front_door_port}"

    @property
    def log_dir(self) -> Path:
        """One ``<process>.log`` per process."""
        return self.var_dir / "log"

    @property
    def state_file(self) -> Path:
        """``run.json``: what runs where, written once everything is ready (for the demo)."""
        return self.var_dir / "run.json"


@dataclass(frozen=True)
class Program:
    """A long-running process of the system and how to tell that it is up."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str] = field(repr=False)
    ready_url: str = ""
    """Up once this answers 200."""
    ready_message: str = ""
    """Up once a JSON log line's message ends with this."""
    tier: int = BACKGROUND
    """Tiers stop from the highest down: the front door, web services, then background work."""
    stop_signal: int = signal.SIGTERM


def service_env(service: str, layout: Layout, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of every process of ``service``.

    The caller's variables, then ``<SERVICE>_<NAME>`` as ``<NAME>`` for that service only
    (``USERS_DATABASE_URL``), then the system's topology, which the runner decides.
    """
    env = dict(environ)
    if env.get("DATABASE_URL") and f"{service.upper()}_DATABASE_URL" not in environ:
        env["DATABASE_URL"] = service_database_url(env["DATABASE_URL"], service)
    prefix = f"{service.upper()}_"
    env |= {
        name.removeprefix(prefix): value
        for name, value in environ.items()
        if name.startswith(prefix)
    }
    return env | _topology(service, layout)


def _topology(service: str, layout: Layout) -> dict[str, str]:
    """Where ``service`` keeps its files, listens, and finds the others (as declared)."""
    env = {"VAR_DIR": str(layout.var_dir), "PROXY_HOPS": "1" if layout.front_door else "0"}
    declared, issuer = SYSTEM[service], SYSTEM.issuer
    if declared.is_web:  # either server, so WEB_SERVER=gunicorn is all it takes
        address = f"127.0.0.1:{layout.port(service)}"
        env |= {"GRANIAN_BIND": address, "GUNICORN_BIND": address}
    if declared.is_web and service != issuer:  # a web service verifies the issuer's tokens
        env["AUTH_JWKS_URL"] = f"{layout.url(issuer)}/.well-known/jwks.json"
    env |= {SYSTEM[peer].url_setting: layout.url(peer) for peer in declared.calls}
    if declared.client:
        # Its own token for its peers' internal routes; the secret comes from VAR_DIR.
        env["SERVICE_TOKEN_URL"] = f"{layout.url(issuer)}/api/v1/service-tokens"
    return env


CONSOLE = "console"


def console_env(layout: Layout) -> dict[str, str]:
    """The console's view of the system: the background processes' metrics, plain HTTP.

    ``make run`` serves plain HTTP, where a browser refuses a Secure cookie: the session
    cookie goes without the flag (and without the ``__Host-`` prefix, which requires it).
    """
    programs = ",".join(
        f"{name}=http://127.0.0.1:{layout.metrics_port(name)}/metrics"
        for name, *_ in BACKGROUND_PROGRAMS
    )
    return {"STATUS_PROGRAMS": programs, "SESSION_COOKIE_SECURE": "false"}


def flask(service: str, *arguments: str) -> list[str]:
    """``flask --app <service> ...`` with this interpreter."""
    return [sys.executable, "-m", "flask", "--app", service, *arguments]


def migration(service: str) -> list[str]:
    """The command that migrates ``service``'s database to the latest revision."""
    return flask(service, "db", "upgrade")


WEB_WORKERS = "2"
"""Worker processes per web service, under either server: two on a laptop is plenty."""


def web(service: str, layout: Layout, environ: Mapping[str, str]) -> Program:
    """``service`` under ``flotilla serve``: granian, or Gunicorn with ``WEB_SERVER=gunicorn``."""
    env = {
        "GRANIAN_WORKERS": WEB_WORKERS,
        "GUNICORN_WORKERS": WEB_WORKERS,
        **(console_env(layout) if service == CONSOLE else {}),
        **service_env(service, layout, environ),
    }
    command = [sys.executable, "-m", "flotilla", "serve"]
    return Program(
        service,
        [*command, f"{service}.wsgi:app"],
        env,
        ready_url=f"{layout.url(service)}/healthz/ready",
        tier=WEB,
    )


def background(layout: Layout, environ: Mapping[str, str]) -> list[Program]:
    """The outbox relays, orders' recovery loop and the notifications worker."""
    programs = []
    for name, service, arguments, started in BACKGROUND_PROGRAMS:
        env = _background_env(service, layout, environ)
        if service == "notifications":
            env = notifications_env(layout, env)
        env["METRICS_BIND"] = f"127.0.0.1:{layout.metrics_port(name)}"
        programs.append(Program(name, flask(service, *arguments), env, ready_message=started))
    return programs


def notifications_env(layout: Layout, env: Mapping[str, str]) -> dict[str, str]:
    """The worker's ``env``, with e-mails linking to the front door (or the orders service)."""
    shop = layout.front_door_url if layout.front_door else layout.url("orders")
    return {"SHOP_URL": shop, **env}


def _background_env(service: str, layout: Layout, environ: Mapping[str, str]) -> dict[str, str]:
    """``service_env``, logging at INFO at least: the start line is how the runner sees it up."""
    env = service_env(service, layout, environ)
    if env.get("LOG_LEVEL", "INFO").upper() not in BACKGROUND_LOG_LEVELS:
        env["LOG_LEVEL"] = "INFO"
    return env


def mail_dir(layout: Layout, environ: Mapping[str, str]) -> Path | None:
    """Where e-mails are written as files, or None when they go to an SMTP server."""
    if service_env("notifications", layout, environ).get("SMTP_HOST"):
        return None
    return layout.var_dir / "mail"


def state(layout: Layout, pids: Mapping[str, int], environ: Mapping[str, str]) -> dict[str, Any]:
    """What ``run.json`` holds: URLs, directories, users' database (no password), process ids."""
    mail = mail_dir(layout, environ)
    users_database = service_env("users", layout, environ).get("DATABASE_URL", "")
    return {
        "front_door": layout.front_door_url if layout.front_door else None,
        "services": {service: layout.url(service) for service in WEB_SERVICES},
        "base_port": layout.base_port,
        "var_dir": str(layout.var_dir),
        "mail_dir": str(mail) if mail else None,
        "users_database": masked(users_database),
        "processes": dict(pids),
    }


def default_var_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``VAR_DIR`` if set, else ``var/`` at the repository's root."""
    return Path(environ.get("VAR_DIR") or ROOT / "var").resolve()
