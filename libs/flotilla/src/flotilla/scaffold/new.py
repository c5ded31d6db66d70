"""``flotilla new NAME``: a new web service, registered everywhere, green without hand edits.

In order: check the name and the declaration (nothing is written if either is wrong), write
``services/<name>/`` from the templates (:mod:`flotilla.scaffold.service`), register the
service in the repository's shared files (:mod:`flotilla.scaffold.repository`), then bring
the derived files up to date: ``uv lock`` adds the new workspace member to the lock file,
and ``make generate`` rewrites nginx's routes and upstreams and the docs' tables from the
declaration. ``make run`` then starts the service behind nginx, ``make test`` runs its tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from flotilla import declaration
from flotilla.scaffold.repository import ScaffoldError, WebService, next_port, register
from flotilla.scaffold.service import Names, service_files


@dataclass(frozen=True)
class Request:
    """What ``flotilla new`` was asked for."""

    name: str
    resource: str = "item"
    resources: str = "items"
    port: int | None = None
    summary: str = ""


def create(root: Path, request: Request) -> list[Path]:
    """Write and register the service under ``root``; every file written, for the report."""
    system = declaration.load(root / declaration.FILE_NAME)
    service = _checked(root, request, system)
    try:
        files = service_files(Names(request.name, request.resource, request.resources))
    except ValueError as error:
        raise ScaffoldError(str(error)) from None
    directory = root / "services" / request.name
    written = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written + register(root, service, system)


def _checked(root: Path, request: Request, system: declaration.System) -> WebService:
    if not declaration.NAME.match(request.name):
        raise ScaffoldError(f"{request.name!r}: a service's name is one lowercase word")
    if request.name in system.names or (root / "services" / request.name).exists():
        raise ScaffoldError(f"{request.name} exists already")
    service = WebService(
        request.name,
        request.port or next_port(system),
        (f"/api/v1/{request.resources}",),
        request.summary or request.resources.replace("_", " "),
    )
    text = (root / declaration.FILE_NAME).read_text() + service.declaration()
    try:
        declaration.parse(tomllib.loads(text))
    except declaration.DeclarationError as error:
        raise ScaffoldError(f"the new entry would not fit the declaration: {error}") from None
    return service


def finish(root: Path) -> None:
    """Bring what derives from the new files up to date: the lock file, the generated parts."""
    uv = os.environ.get("UV") or shutil.which("uv") or str(root / ".tools" / "bin" / "uv")
    subprocess.run([uv, "lock", "--quiet"], cwd=root, check=True)  # noqa: S603
    if (root / "Makefile").is_file():
        subprocess.run(["make", "--no-print-directory", "generate"], cwd=root, check=True)  # noqa: S607
