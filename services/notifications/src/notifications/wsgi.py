"""WSGI entry point of the health probes and metrics.

``gunicorn -c python:flotilla.serving.gunicorn notifications.wsgi:app``; the work itself is done by
``flask --app notifications tasks worker``.
"""

from notifications import create_app

app = create_app()
