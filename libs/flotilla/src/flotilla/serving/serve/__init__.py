"""``flotilla serve APP``: one way to start a web service, whichever server ``WEB_SERVER`` names.

* ``gunicorn``: the process becomes ``gunicorn -c python:flotilla.serving.gunicorn APP`` (``exec``:
  the same pid, so signals reach Gunicorn's master directly); ``GUNICORN_*`` configure it.
* ``granian``: the app runs under granian in this process (:mod:`flotilla.serving.serve.granian`);
  ``GRANIAN_*`` configure it.

Either way the app gets the same metrics across workers, readiness that fails before a
worker drains, JSON logs with the request id, and graceful reloads and stops; the tests hold
both servers to the same checks. Why two servers, and which is the default:
``docs/adr/0018-granian-by-default.md``.
"""

from __future__ import annotations

import os
import sys

from flotilla.config import ServeSettings, load_settings

GUNICORN_CONFIG = "python:flotilla.serving.gunicorn"


def gunicorn_command(app_uri: str) -> list[str]:
    """Gunicorn with the chassis configuration, run by this interpreter."""
    return [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONFIG, app_uri]


def serve(app_uri: str) -> None:
    """Serve ``app_uri`` (``users.wsgi:app``) under the configured server until it stops."""
    server = load_settings(ServeSettings).WEB_SERVER
    if server == "gunicorn":
        command = gunicorn_command(app_uri)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(command[0], command)  # noqa: S606 - a fixed command line; replaces this process
    from flotilla.serving.serve.granian import serve as serve_with_granian  # noqa: PLC0415 - granian only

    serve_with_granian(app_uri)
