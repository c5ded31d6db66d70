"""The ``flotilla`` command: ``serve APP`` runs a service's web server, ``new NAME`` makes one.

Also ``python -m flotilla serve APP``. Settings come from the environment, as everywhere
(``WEB_SERVER``, ``GRANIAN_*``, ``GUNICORN_*``); the command line only names the app.
``flotilla new NAME`` scaffolds a web service in the repository whose ``system.toml`` is in
the working directory or above it (:mod:`flotilla.scaffold.new`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flotilla.serving.serve import serve


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command."""
    parser = argparse.ArgumentParser(prog="flotilla", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser(
        "serve", help="run a WSGI app under WEB_SERVER (gunicorn or granian)"
    )
    serving.add_argument("app", help="the app as module:attribute, e.g. users.wsgi:app")
    _add_new(commands)
    arguments = parser.parse_args(argv)
    if arguments.command == "new":
        return _new(arguments)
    serve(arguments.app)
    return 0


def _add_new(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    making = commands.add_parser("new", help="scaffold a web service and register it everywhere")
    making.add_argument("name", help="one lowercase word: the package, database and host name")
    making.add_argument("--resource", default="item", help="its resource, singular (item)")
    making.add_argument("--resources", default="items", help="plural: route and table (items)")
    making.add_argument("--port", type=int, help="its make run port (default: the next free)")
    making.add_argument("--summary", default="", help="one line on what it does, for the docs")
    making.add_argument(
        "--no-finish", action="store_true", help="skip `uv lock` and `make generate` afterwards"
    )


def _new(arguments: argparse.Namespace) -> int:
    from flotilla import declaration  # noqa: PLC0415 - only this command needs them
    from flotilla.scaffold.new import Request, create, finish  # noqa: PLC0415
    from flotilla.scaffold.repository import ScaffoldError  # noqa: PLC0415

    try:
        root = declaration.find().parent
        request = Request(
            arguments.name, arguments.resource, arguments.resources, arguments.port,
            arguments.summary,
        )  # fmt: skip
        written = create(root, request)
    except (ScaffoldError, declaration.DeclarationError) as error:
        print(f"flotilla new: {error}", file=sys.stderr)  # noqa: T201
        return 2
    for path in written:
        print(f"  wrote {path.relative_to(root)}")  # noqa: T201
    if not arguments.no_finish:
        finish(root)
    print(f"{arguments.name} is ready: make run serves /api/v1/{arguments.resources}")  # noqa: T201
    return 0
