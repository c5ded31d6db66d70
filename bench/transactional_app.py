"""The users app plus one benchmark-only route that reads inside an ORM transaction.

``gunicorn -c python:flotilla.serving.gunicorn --pythonpath bench transactional_app:app``.

``GET /bench/users/<id>/transactional`` does what ``GET /api/v1/users/<id>`` does, behind
the same ``require_auth()``, through the same flask-smorest response schema and the same 404
problem, except that it reads with ``db.session`` (``BEGIN``, ``SELECT``, then ``ROLLBACK``
when the app context ends) instead of the autocommit ``db.reading()`` path. Served by the
same chassis in the same way, the two routes differ only in that, so their throughput
difference is the cost of the transaction. Nothing here ships: it exists so the saving
claimed in ``flotilla/data/db.py`` is measured.
"""

from __future__ import annotations

from flask_smorest import Blueprint

from flotilla import register_blueprints
from flotilla.auth import require_auth
from users import create_app
from users.models import User, db
from users.schemas import UserPublic
from users.service import UserNotFound

blp = Blueprint("bench", __name__, url_prefix="/bench", description="Benchmark-only routes.")


def get_user_transactional(user_id: int) -> User:
    """Read an account's public profile inside an ORM transaction."""
    user = db.session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"User {user_id} does not exist.")
    return user


# Decorated by call rather than with ``@``: flask-smorest has no type hints, and this keeps
# the view itself typed under ``mypy --strict`` without a blanket ignore.
blp.get("/users/<int:user_id>/transactional")(
    require_auth()(blp.response(200, UserPublic)(get_user_transactional))
)

app = create_app()
register_blueprints(app, blp)
