"""WSGI entry point: ``gunicorn -c python:flotilla.gunicorn orders.wsgi:app``."""

from orders import create_app

app = create_app()
