"""Where an app keeps its outbox: ``app.extensions["flotilla.outbox"]``."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import Engine, Table

from flotilla.config import ServiceSettings
from flotilla.data.db_state import engine_of


@dataclass(frozen=True)
class OutboxState:
    """What the relay and the metrics need at run time."""

    table: Table
    settings: ServiceSettings

    @property
    def engine(self) -> Engine:
        """The service's database engine (from :class:`flotilla.Database`)."""
        return engine_of(current_app)


def outbox_state(app: Flask | None = None) -> OutboxState:
    """The outbox state of ``app`` (default: the current app)."""
    state: OutboxState = (app or current_app).extensions["flotilla.outbox"]
    return state
