"""Alembic environment of the console service; the chassis supplies the connection."""

from console.models import Base
from flotilla import run_migrations

run_migrations(Base.metadata)
