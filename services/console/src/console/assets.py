"""Static files under content-hashed names: ``css/console.css`` as ``css/console.<hash>.css``.

The hash is the first 12 hex digits of the file's SHA-256, so a changed file gets a new
address and any address can be cached for a year (``immutable``): nginx serves ``/static/``
itself, mapping a hashed name back to the file (deploy/nginx/flotilla/static.conf). Pages
name their files with :func:`asset_url`. Where no nginx runs in front (tests, a run without
the front door), :func:`serve_asset` answers the same addresses with the same headers, and
also refuses a hash that is not the file's (nginx checks only the name's form).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from functools import cache
from pathlib import Path

from flask import Blueprint, abort, send_file
from werkzeug.wrappers import Response

STATIC_DIR = Path(__file__).parent / "static"
HASH_LENGTH = 12
IMMUTABLE = "public, max-age=31536000, immutable"
_HASHED = re.compile(rf"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{{{HASH_LENGTH}}})(?P<suffix>\.[a-z0-9]+)$")

assets = Blueprint("assets", __name__)


@cache
def digest(relative: str) -> str:
    """The first :data:`HASH_LENGTH` hex digits of the SHA-256 of ``static/<relative>``."""
    return hashlib.sha256((STATIC_DIR / relative).read_bytes()).hexdigest()[:HASH_LENGTH]


def asset_url(relative: str) -> str:
    """The hashed address of ``static/<relative>``: ``/static/<dir>/<stem>.<hash><suffix>``."""
    path = Path(relative)
    return f"/static/{path.parent / path.stem}.{digest(relative)}{path.suffix}".replace("/./", "/")


@assets.get("/static/<path:name>")
def serve_asset(name: str) -> Response:
    """A hashed name whose hash is the file's own, with a year's caching; else 404."""
    match = _HASHED.match(name)
    if match is None:
        abort(404)
    relative = f"{match['stem']}{match['suffix']}"
    file = (STATIC_DIR / relative).resolve()
    if not file.is_relative_to(STATIC_DIR.resolve()) or not file.is_file():
        abort(404)
    if digest(relative) != match["hash"]:
        abort(404)
    mimetype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    response = send_file(file, mimetype=mimetype, conditional=True, max_age=None)
    response.headers["Cache-Control"] = IMMUTABLE
    return response
