"""WSGI entry point: ``flotilla serve console.wsgi:app``."""

from console import create_app

app = create_app()
