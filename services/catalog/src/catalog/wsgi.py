"""WSGI entry point: ``gunicorn -c python:flotilla.serving.gunicorn catalog.wsgi:app``."""

from catalog import create_app

app = create_app()
