"""Event handlers: one e-mail per event, delivered at least once, recorded exactly once.

Each handler runs in one database transaction (:meth:`flotilla.ProcessedEvents.once`):

1. insert the event id into ``processed_events`` — a redelivered event finds it and stops
   here; on PostgreSQL a concurrent duplicate waits on the row lock until this one ends;
2. compose and send the e-mail — a failure raises, the transaction rolls back, and the task
   retries with backoff until the server takes it (or the message is dead-lettered);
3. add the ``sent_emails`` row and commit.

An e-mail cannot join a database transaction, so one window is left: the server accepted
the e-mail and the commit then failed (the worker was killed, the database went away). The
event is redelivered and the e-mail sent again. That is the choice made here — *at least
once, deduplicated* — over recording before sending (*at most once*), because a lost order
confirmation costs more than a rare second copy, and the second copy carries the same
Message-ID, which the ``.eml`` writer and many mail systems deduplicate on. The window is
the few milliseconds between the server's reply and the commit; killing a worker anywhere
else (mid-send included) sends the e-mail once. See docs/adr/0012-outbox-and-celery.md.
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import Connection, insert

from flotilla import Event, Tasks, current_settings, tracing
from notifications.config import NotificationsSettings
from notifications.events import OrderCancelled, OrderPlaced, UserRegistered, parse_payload
from notifications.mail import Email, cancellation_notice, order_confirmation, welcome_email
from notifications.models import Base, SentEmail, db, processed
from notifications.sender import MailSender

log = logging.getLogger(__name__)

tasks = Tasks()


def sender() -> MailSender:
    """The current app's mail sender (SMTP or ``.eml`` files)."""
    found: MailSender = current_app.extensions["notifications.sender"]
    return found


_RECORD_SENT = insert(Base.metadata.tables[SentEmail.__tablename__])
"""One Core INSERT: no unit of work to flush for a row nothing reads back."""


def deliver(event: Event, email: Email, connection: Connection) -> None:
    """Send ``email`` and record it in the handler's transaction (committed by ``once``)."""
    with tracing.span("send email", kind=tracing.SpanKind.CLIENT, **{"email.kind": email.kind}):
        via = sender().send(email)
    connection.execute(
        _RECORD_SENT,
        {
            "message_id": email.message_id,
            "event_id": event.id,
            "kind": email.kind,
            "recipient": email.recipient,
        },
    )
    log.info(
        "e-mail sent",
        extra={
            "event_id": str(event.id),
            "kind": email.kind,
            "message_id": email.message_id,
            "via": via,
        },
    )


@tasks.on_event("user.registered")
@processed.once(db, consumer="notifications.welcome")
def send_welcome(event: Event, connection: Connection) -> None:
    """Welcome a new account."""
    user = parse_payload(event, UserRegistered)
    deliver(
        event,
        welcome_email(user, event_id=event.id, settings=current_settings(NotificationsSettings)),
        connection,
    )


@tasks.on_event("order.placed")
@processed.once(db, consumer="notifications.order-placed")
def send_order_confirmation(event: Event, connection: Connection) -> None:
    """Confirm a placed order."""
    order = parse_payload(event, OrderPlaced)
    deliver(
        event,
        order_confirmation(
            order, event_id=event.id, settings=current_settings(NotificationsSettings)
        ),
        connection,
    )


@tasks.on_event("order.cancelled")
@processed.once(db, consumer="notifications.order-cancelled")
def send_cancellation_notice(event: Event, connection: Connection) -> None:
    """Tell the customer an order was cancelled."""
    order = parse_payload(event, OrderCancelled)
    deliver(
        event,
        cancellation_notice(
            order, event_id=event.id, settings=current_settings(NotificationsSettings)
        ),
        connection,
    )
