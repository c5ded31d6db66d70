"""Alembic environment of the notifications service; the chassis supplies the connection."""

from flotilla import run_migrations
from notifications.models import Base

run_migrations(Base.metadata)
