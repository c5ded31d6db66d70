"""Alembic environment of the orders service; the chassis supplies the connection."""

from flotilla import run_migrations
from orders.models import Base

run_migrations(Base.metadata)
