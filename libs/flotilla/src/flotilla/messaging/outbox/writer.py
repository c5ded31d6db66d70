"""``Outbox``: write events in the caller's transaction; serve their metrics; add the CLI.

An event written with :meth:`Outbox.add_event` exists exactly when the business change it
describes was committed: a rolled-back request leaves neither. Publishing is the relay's
job (:mod:`flotilla.messaging.outbox.relay`), in its own process, so a broker outage never fails or
slows a request.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask
from opentelemetry.trace import SpanKind
from sqlalchemy import Connection, MetaData, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, scoped_session

from flotilla.config import ServiceSettings
from flotilla.messaging.outbox.cli import cli
from flotilla.messaging.outbox.envelope import Event
from flotilla.messaging.outbox.metrics import refresh_gauges
from flotilla.messaging.outbox.state import OutboxState, outbox_state
from flotilla.messaging.outbox.tables import outbox_table
from flotilla.observability import tracing
from flotilla.observability.metrics import METRICS_BLUEPRINT
from flotilla.observability.propagation import outgoing_headers

log = logging.getLogger(__name__)

_EVENT_TYPE = re.compile(r"[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)+")
"""``noun.verb`` and deeper, lower case: a literal topic routing key, no wildcards."""

SessionLike = Session | scoped_session[Session] | Connection
"""Where an event is written: an ORM session's transaction, or a Core connection's."""


class Outbox:
    """The outbox of one service: declare it next to the models, bind it with ``init_app``."""

    def __init__(self, metadata: MetaData, *, table_name: str = "outbox_events") -> None:
        self.table = outbox_table(metadata, table_name)
        self._insert = insert(self.table)  # built once: each event only binds its values

    def init_app(self, app: Flask, settings: ServiceSettings) -> None:
        """Add ``flask outbox relay`` and the pending-events gauges; needs the Database first."""
        if "flotilla.db" not in app.extensions:
            raise RuntimeError("call Database.init_app before Outbox.init_app")
        app.extensions["flotilla.outbox"] = OutboxState(self.table, settings)
        app.cli.add_command(cli)
        # Only before a scrape of /metrics, not before every request of the service.
        app.before_request_funcs.setdefault(METRICS_BLUEPRINT, []).append(_refresh_before_scrape)

    def add_event(
        self,
        session: SessionLike,
        event_type: str,
        payload: Mapping[str, Any],
        *,
        version: int = 1,
    ) -> Event:
        """Write an event in ``session``'s transaction; it is published after the commit.

        Raises ``ValueError`` for a malformed type or version and ``TypeError`` for a payload
        that is not JSON, at the call, so a bad event never reaches the table.
        """
        event = new_event(event_type, payload, version=version)
        # The row's traceparent names this span: the relay's publish becomes its child.
        with tracing.span(f"create {event_type}", kind=SpanKind.PRODUCER, event_id=str(event.id)):
            session.execute(
                self._insert,
                {
                    "event_id": event.id,
                    "type": event.type,
                    "version": event.version,
                    "payload": event.payload,
                    "headers": outgoing_headers(),
                    "created_at": event.occurred_at,
                },
            )
        return event


def new_event(event_type: str, payload: Mapping[str, Any], *, version: int = 1) -> Event:
    """A validated event with a fresh id, occurring now."""
    if not _EVENT_TYPE.fullmatch(event_type) or len(event_type) > 200:
        raise ValueError(f"event type {event_type!r} is not of the form 'noun.verb'")
    if version < 1:
        raise ValueError("an event version starts at 1")
    try:
        data = orjson.loads(orjson.dumps(payload))
    except TypeError as error:
        raise TypeError(f"the payload of {event_type!r} is not JSON: {error}") from error
    return Event(uuid.uuid4(), event_type, version, datetime.now(UTC), data)


def _refresh_before_scrape() -> None:
    state = outbox_state()
    try:
        refresh_gauges(state.engine, state.table)
    except SQLAlchemyError as error:  # the scrape still answers, with the last known values
        log.warning("outbox gauges not refreshed", extra={"error": repr(error)[:500]})
