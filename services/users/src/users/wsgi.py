"""WSGI entry point: ``gunicorn -c python:flotilla.serving.gunicorn users.wsgi:app``."""

from users import create_app

app = create_app()
