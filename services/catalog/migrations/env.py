"""Alembic environment of the catalog service; the chassis supplies the connection."""

from catalog.models import Base
from flotilla import run_migrations

run_migrations(Base.metadata)
