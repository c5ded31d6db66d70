"""E-mail composition: a plain-text part and an HTML part from the package's Jinja2 templates.

Pure apart from reading templates: no app context, no network, so every e-mail can be
checked in a test by its text. Each kind of e-mail is a folder under ``templates/`` with
``subject.txt``, ``body.txt`` and ``body.html``; HTML is autoescaped (a display name is
data, never markup) and an undefined variable is an error, not an empty string.

The Message-ID is derived from the event and the kind of e-mail, so a redelivered event
makes the same message again: the ``.eml`` writer overwrites its file, and a mail system
that deduplicates on Message-ID can drop the rare second copy (see ``handlers``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from notifications.config import NotificationsSettings
from notifications.events import OrderCancelled, OrderPlaced, UserRegistered
from notifications.money import format_money

WELCOME, ORDER_PLACED, ORDER_CANCELLED = "welcome", "order_placed", "order_cancelled"


@dataclass(frozen=True)
class Recipient:
    """Who an e-mail goes to: an address and the name to greet."""

    email: str
    name: str

    def header(self) -> Address:
        """The To: header value: the name on one line, encoded by ``email`` as needed."""
        return Address(display_name=" ".join(self.name.split()), addr_spec=self.email)


def when(moment: datetime) -> str:
    """``21 November 2026, 14:05 UTC``."""
    return moment.astimezone(UTC).strftime("%d %B %Y, %H:%M UTC").lstrip("0")


@cache
def templates() -> Environment:
    """The template environment, built once per process."""
    environment = Environment(
        loader=PackageLoader("notifications", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["when"] = when
    environment.globals["money"] = format_money
    return environment


def message_id(event_id: uuid.UUID, kind: str, domain: str) -> str:
    """The Message-ID of the ``kind`` e-mail of ``event_id``: the same on every redelivery."""
    return f"<{event_id}.{kind}@{domain}>"


def compose(
    kind: str,
    *,
    event_id: uuid.UUID,
    to: Recipient,
    context: Mapping[str, Any],
    settings: NotificationsSettings,
    now: datetime | None = None,
) -> EmailMessage:
    """The ``kind`` e-mail to ``to``, rendered from its templates with ``context``."""
    values = {
        **context,
        "recipient": to,
        "shop_name": settings.SHOP_NAME,
        "shop_url": settings.SHOP_URL,
    }
    environment = templates()
    subject = environment.get_template(f"{kind}/subject.txt").render(values)
    message = EmailMessage()
    message["Subject"] = " ".join(subject.split())  # one line, whatever the template holds
    message["From"] = settings.MAIL_FROM
    message["To"] = to.header()
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = message_id(event_id, kind, settings.mail_domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message.set_content(environment.get_template(f"{kind}/body.txt").render(values))
    html = environment.get_template(f"{kind}/body.html").render(values)
    message.add_alternative(html, subtype="html")
    return message


def welcome_email(
    user: UserRegistered, *, event_id: uuid.UUID, settings: NotificationsSettings
) -> EmailMessage:
    """The welcome e-mail of a new account."""
    to = Recipient(user.email, user.display_name or user.username)
    return compose(WELCOME, event_id=event_id, to=to, context={"user": user}, settings=settings)


def order_confirmation(
    order: OrderPlaced, *, event_id: uuid.UUID, settings: NotificationsSettings
) -> EmailMessage:
    """The confirmation of a placed order, with its lines and total."""
    to = Recipient(order.email, order.display_name or "")
    context = {"order": order}
    return compose(ORDER_PLACED, event_id=event_id, to=to, context=context, settings=settings)


def cancellation_notice(
    order: OrderCancelled, *, event_id: uuid.UUID, settings: NotificationsSettings
) -> EmailMessage:
    """The notice that an order was cancelled."""
    to = Recipient(order.email, order.display_name or "")
    context = {"order": order}
    return compose(ORDER_CANCELLED, event_id=event_id, to=to, context=context, settings=settings)
