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
from email.message import EmailMessage

from flask import current_app

from flotilla.outbox import Event
from flotilla.tasks import Tasks
from notifications.config import NotificationsSettings
from notifications.events import OrderCancelled, OrderPlaced, UserRegistered, parse_payload
from notifications.mail import (
    ORDER_CANCELLED,
    ORDER_PLACED,
    WELCOME,
    cancellation_notice,
    order_confirmation,
    welcome_email,
)
from notifications.models import SentEmail, db, processed
from notifications.sender import MailSender

log = logging.getLogger(__name__)

tasks = Tasks()


def settings() -> NotificationsSettings:
    """The current app's settings."""
    found: NotificationsSettings = current_app.extensions["flotilla.settings"]
    return found


def sender() -> MailSender:
    """The current app's mail sender (SMTP or ``.eml`` files)."""
    found: MailSender = current_app.extensions["notifications.sender"]
    return found


def deliver(event: Event, kind: str, message: EmailMessage) -> None:
    """Send ``message`` and record it in the handler's transaction (committed by ``once``)."""
    via = sender().send(message)
    message_id = str(message["Message-ID"])
    recipient = message["To"].addresses[0].addr_spec
    db.session.add(
        SentEmail(message_id=message_id, event_id=event.id, kind=kind, recipient=recipient)
    )
    log.info(
        "e-mail sent",
        extra={"event_id": str(event.id), "kind": kind, "message_id": message_id, "via": via},
    )


@tasks.on_event("user.registered")
@processed.once(db.session, consumer="notifications.welcome")
def send_welcome(event: Event) -> None:
    """Welcome a new account."""
    user = parse_payload(event, UserRegistered)
    deliver(event, WELCOME, welcome_email(user, event_id=event.id, settings=settings()))


@tasks.on_event("order.placed")
@processed.once(db.session, consumer="notifications.order-placed")
def send_order_confirmation(event: Event) -> None:
    """Confirm a placed order."""
    order = parse_payload(event, OrderPlaced)
    message = order_confirmation(order, event_id=event.id, settings=settings())
    deliver(event, ORDER_PLACED, message)


@tasks.on_event("order.cancelled")
@processed.once(db.session, consumer="notifications.order-cancelled")
def send_cancellation_notice(event: Event) -> None:
    """Tell the customer an order was cancelled."""
    order = parse_payload(event, OrderCancelled)
    message = cancellation_notice(order, event_id=event.id, settings=settings())
    deliver(event, ORDER_CANCELLED, message)
