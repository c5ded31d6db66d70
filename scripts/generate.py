"""Write (``--write``) or verify the parts of files derived from the declaration, ``system.toml``.

Each part sits between two marker lines in a file that is otherwise written by hand:

* ``deploy/nginx/templates/flotilla.conf.template``: one upstream per web service;
* ``deploy/nginx/flotilla/api.conf``: one location per route, a 404 per internal route;
* ``docs/architecture.md``: the table of services.

Without ``--write`` it exits non-zero, naming each stale file, when a part differs from what
the declaration gives (a test runs it, so a hand edit or a forgotten ``make generate`` fails
CI). The settings tables of README.md are ``scripts/settings_doc.py``'s.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from flotilla.declaration import Service, System
from system import ROOT, SYSTEM

BURSTS = {"api": 50, "tokens": 10}
"""Requests a client address may send at once above its zone's rate, per zone."""


@dataclass(frozen=True)
class Part:
    """A generated stretch of ``path``, between a begin and an end marker line."""

    path: Path
    comment: str
    """How the file's comments start: ``#`` or ``<!--``."""
    text: Callable[[System], str]

    @property
    def begin(self) -> str:
        """The line before the part."""
        return self._marker("begin: generated from system.toml by `make generate`; do not edit")

    @property
    def end(self) -> str:
        """The line after the part."""
        return self._marker("end: generated")

    def _marker(self, words: str) -> str:
        return f"<!-- {words} -->" if self.comment == "<!--" else f"# {words}"

    def rewrite(self, text: str, system: System) -> str:
        """``text`` with the part between its markers made anew."""
        head, found, rest = text.partition(f"{self.begin}\n")
        _, found_end, tail = rest.partition(f"{self.end}\n")
        if not found or not found_end:
            raise SystemExit(f"{self.path.relative_to(ROOT)} lacks the generated part's markers")
        return f"{head}{self.begin}\n{self.text(system)}{self.end}\n{tail}"


def upstreams(system: System) -> str:
    """nginx's upstream blocks: one per web service, its replicas from a placeholder."""
    return "\n".join(_upstream(service) for service in system.web)


def _upstream(service: Service) -> str:
    name, placeholder = f"flotilla_{service.name}", f"${{FLOTILLA_{service.name.upper()}_UPSTREAM}}"
    return (
        f"upstream {name} {{\n"
        f"    zone {name} 64k;\n"
        f"    server {placeholder} max_fails=1 fail_timeout=10s;\n"
        f"    server {placeholder} backup max_fails=0;\n"
        f"    include flotilla/upstream.conf;\n"
        f"}}\n"
    )


def routes(system: System) -> str:
    """nginx's locations: each public route to its service, each internal route a 404."""
    blocks = [
        f"location {route.path} {{\n"
        f"    limit_req zone=flotilla_{route.limit} burst={BURSTS[route.limit]} nodelay;\n"
        f"    proxy_pass http://flotilla_{service.name};\n"
        f"}}\n"
        for route, service in system.routes()
    ]
    blocks += [
        f"location {path} {{  # {service.name} serves it to other services only\n"
        f"    return 404;\n}}\n"
        for service in system.services
        for path in service.internal_routes
    ]
    return "\n".join(blocks)


def services_table(system: System) -> str:
    """The Markdown table of services for docs/architecture.md."""
    rows = [
        "| service | what it does | `make run` port | public routes | internal routes | "
        "database | calls | background programs |",
        "|---|---|--:|---|---|---|---|---|",
    ]
    for service in system.services:
        cells = [
            f"`{service.name}`",
            service.summary,
            str(service.port) if service.port else "—",
            _codes(route.path for route in service.routes),
            _codes(service.internal_routes),
            f"`{service.database}`" if service.database else "—",
            _codes(service.calls),
            _codes(program.name for program in service.background),
        ]
        rows.append(f"| {' | '.join(cells)} |")
    return "\n".join(rows) + "\n"


def _codes(items: Iterable[str]) -> str:
    return ", ".join(f"`{item}`" for item in items) or "—"


PARTS = (
    Part(ROOT / "deploy/nginx/templates/flotilla.conf.template", "#", upstreams),
    Part(ROOT / "deploy/nginx/flotilla/api.conf", "#", routes),
    Part(ROOT / "docs/architecture.md", "<!--", services_table),
)


def stale(system: System = SYSTEM) -> list[Path]:
    """The files whose generated part differs from what ``system`` gives."""
    found = []
    for part in PARTS:
        text = part.path.read_text()
        if part.rewrite(text, system) != text:
            found.append(part.path)
    return found


def write(system: System = SYSTEM) -> None:
    """Rewrite every generated part from ``system``."""
    for part in PARTS:
        part.path.write_text(part.rewrite(part.path.read_text(), system))


def main() -> int:
    """Check or rewrite the generated parts."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the generated parts")
    if parser.parse_args().write:
        write()
        return 0
    found = stale()
    for path in found:
        print(f"{path.relative_to(ROOT)} is stale: run `make generate`", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
