"""``Outbox``: write events in the caller's transaction; serve their metrics; add the CLI.

An event written with :meth:`Outbox.add_event` exists exactly when the business change it
describes was committed: a rolled-back request leaves neither. Publishing is the relay's
job (:mod:`flotilla.messaging.outbox.relay`), in its own process, so a broker outage never fails or
slows a request.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import Flask
from opentelemetry.trace import SpanKind
from sqlalchemy import Connection, FromClause, Insert, MetaData, bindparam, insert, select
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

_COLUMNS = ("event_id", "type", "version", "payload", "headers", "created_at")
_BOUND_AS = "outbox_"
"""Each column's parameter is named ``outbox_<column>``: no clash with the statement it joins."""


class Outbox:
    """The outbox of one service: declare it next to the models, bind it with ``init_app``."""

    def __init__(self, metadata: MetaData, *, table_name: str = "outbox_events") -> None:
        self.table = outbox_table(metadata, table_name)
        self.insert_statement = insert(self.table).values(
            {name: bindparam(_BOUND_AS + name, type_=self.table.c[name].type) for name in _COLUMNS}
        )
        """The INSERT of one event, built once: execute it with :meth:`creating`'s parameters."""

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
        with self.creating(event_type, payload, version=version) as (event, parameters):
            session.execute(self.insert_statement, parameters)
        return event

    @contextlib.contextmanager
    def creating(
        self, event_type: str, payload: Mapping[str, Any], *, version: int = 1
    ) -> Iterator[tuple[Event, dict[str, Any]]]:
        """A new event and its row's parameters, for :attr:`insert_statement` or
        :meth:`insert_from`.

        Execute the statement that writes the row inside the block: the row's ``traceparent``
        names the block's span, so the relay's publish becomes its child. Raises as
        :meth:`add_event` does for a malformed event.
        """
        event = new_event(event_type, payload, version=version)
        with tracing.span(f"create {event_type}", kind=SpanKind.PRODUCER, event_id=str(event.id)):
            row = {
                "event_id": event.id,
                "type": event.type,
                "version": event.version,
                "payload": event.payload,
                "headers": outgoing_headers(),
                "created_at": event.occurred_at,
            }
            yield event, {_BOUND_AS + name: value for name, value in row.items()}

    def insert_from(self, source: FromClause) -> Insert:
        """``INSERT … SELECT``: the event of :meth:`creating`'s parameters if ``source`` has a
        row (it may have one at most: an event's id is unique), none if it has none.

        For a statement that writes the event together with its change, so the two take one
        round trip: on PostgreSQL ``source`` may be a data-modifying CTE (``UPDATE …
        RETURNING``), and the event is written exactly when the change happened. Build it
        once; each execution binds :meth:`creating`'s parameters.
        """
        values = [bindparam(_BOUND_AS + name, type_=self.table.c[name].type) for name in _COLUMNS]
        return insert(self.table).from_select(list(_COLUMNS), select(*values).select_from(source))


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
