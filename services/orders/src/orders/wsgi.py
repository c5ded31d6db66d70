"""WSGI entry point: ``gunicorn -c python:flotilla.serving.gunicorn orders.wsgi:app``."""

from orders import create_app

app = create_app()
