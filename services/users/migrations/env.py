"""Alembic environment of the users service; the chassis supplies the connection."""

from flotilla import run_migrations
from users.models import Base

run_migrations(Base.metadata)
