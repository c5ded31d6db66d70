"""Alembic environment of the notes sample; the chassis supplies the connection."""

from sqlalchemy import MetaData

from flotilla.migrations import run_migrations

run_migrations(MetaData())
