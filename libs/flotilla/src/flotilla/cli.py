"""The ``flotilla`` command: ``flotilla serve APP`` runs a service's web server.

Also ``python -m flotilla serve APP``. Settings come from the environment, as everywhere
(``WEB_SERVER``, ``GRANIAN_*``, ``GUNICORN_*``); the command line only names the app.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from flotilla.serve import serve


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command."""
    parser = argparse.ArgumentParser(prog="flotilla", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser(
        "serve", help="run a WSGI app under WEB_SERVER (gunicorn or granian)"
    )
    serving.add_argument("app", help="the app as module:attribute, e.g. users.wsgi:app")
    arguments = parser.parse_args(argv)
    serve(arguments.app)
    return 0
