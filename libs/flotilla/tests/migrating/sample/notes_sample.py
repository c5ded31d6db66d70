"""A one-table service in three releases, for the migration tests: notes renamed to body.

Release 1 stores a note's text in ``notes.note``; release 2 writes both ``note`` and
``body`` and reads ``body`` falling back to ``note``; release 3 uses ``body`` only. Its
migrations (``notes_migrations``) expand the table (0002), backfill ``body`` (0003) and drop
``note`` (0004), so each release runs beside the next on one database, as in a rolling
update. A runner started by a test runs ``flask --app notes_sample:create_app db upgrade``
with this directory on ``PYTHONPATH``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, abort, request
from sqlalchemy import MetaData, text

from flotilla import Database, ServiceSettings, create_service, load_settings

MIGRATIONS = Path(__file__).parent / "notes_migrations"
RELEASES = (1, 2, 3)

_WRITE = {
    1: "INSERT INTO notes (note) VALUES (:text) RETURNING id",
    2: "INSERT INTO notes (note, body) VALUES (:text, :text) RETURNING id",
    3: "INSERT INTO notes (body) VALUES (:text) RETURNING id",
}
_READ = {
    1: "SELECT note FROM notes WHERE id = :id",
    2: "SELECT coalesce(body, note) FROM notes WHERE id = :id",
    3: "SELECT body FROM notes WHERE id = :id",
}

db = Database(MetaData(), migrations=MIGRATIONS)


def create_app(settings: ServiceSettings | None = None, *, release: int = 1) -> Flask:
    """The notes service as ``release`` (1, 2 or 3) runs it."""
    settings = settings or load_settings(ServiceSettings, SERVICE_NAME="notes")
    app = create_service("notes_sample", settings)
    db.init_app(app, settings)

    @app.post("/notes")
    def write_note() -> tuple[dict[str, Any], int]:
        with db.engine.begin() as connection:
            found = connection.execute(text(_WRITE[release]), {"text": request.json["text"]})
            return {"id": found.scalar_one(), "release": release}, 201

    @app.get("/notes/<int:note_id>")
    def read_note(note_id: int) -> dict[str, Any]:
        with db.autocommit() as connection:
            found = connection.execute(text(_READ[release]), {"id": note_id}).one_or_none()
        if found is None:
            abort(404)
        return {"id": note_id, "text": found[0], "release": release}

    return app
