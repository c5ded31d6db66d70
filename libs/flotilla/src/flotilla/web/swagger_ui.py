"""Swagger UI's files, served by the service itself: ``/docs`` works without a network.

flask-smorest's ``/docs`` page loads Swagger UI's script and stylesheet from
``OPENAPI_SWAGGER_UI_URL``. A CDN there leaves the page blank wherever the internet is out
of reach (a laptop offline, a cluster without egress) and tells a third party whenever
someone reads the docs. The ``swagger-ui-bundle`` package ships the same files with the
code; this blueprint serves the ones the page loads, under a path naming the bundle's
version. A new version is a new path, so a browser may keep each file for a year without
asking again.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import NotFound

BUNDLE = Path(str(swagger_ui_path))
"""The bundle's files, in a directory named after Swagger UI's version (``swagger-ui-4.15.5``)."""
SWAGGER_UI_URL = f"/docs/assets/{BUNDLE.name}/"
"""Where ``/docs`` loads Swagger UI from (flask-smorest's ``OPENAPI_SWAGGER_UI_URL``)."""
FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"})
"""The files flask-smorest's page names; the rest of the bundle is not served."""
ONE_YEAR = 31_536_000

swagger_ui = Blueprint("flotilla_swagger_ui", __name__)


@swagger_ui.get(f"{SWAGGER_UI_URL}<name>")
def swagger_ui_file(name: str) -> Response:
    """One of Swagger UI's files, cached for a year."""
    if name not in FILES:
        raise NotFound()
    response = send_from_directory(BUNDLE, name, max_age=ONE_YEAR)
    response.cache_control.immutable = True
    return response
