"""Alembic environment of the notes sample; the chassis supplies the connection."""

from sqlalchemy import MetaData

from flotilla.data.migrations import run_migrations

run_migrations(MetaData())
