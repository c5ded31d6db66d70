"""The e-mails written without ``EmailMessage`` read exactly as the ``email`` package's own.

``notifications.mail`` writes each message directly (see its docstring for why). These
tests compose the same e-mail both ways — with the module, and with ``EmailMessage`` and
the default policy as the service did before — parse both with the strict policy, and
compare what a mail program shows: every header, the display name and address, and each
part's type, charset and decoded text. Names and shop names are also drawn at random,
non-ASCII, quotes, control characters and line breaks included.

A long non-ASCII name takes several RFC 2047 encoded words, and RFC 2047 says the space
between two of them is not part of the text. The strict policy's address parser keeps it
(``"M anaging"`` for a name split after its "M"), for the ``email`` package's own output
too; mail programs do not. So names are read here as RFC 2047 says, with
``email.header.decode_header``, unless they are quoted strings, which are never decoded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from email import message_from_bytes, policy
from email.errors import NonPrintableDefect
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from notifications.config import NotificationsSettings
from notifications.events import (
    OrderCancelled,
    OrderPlaced,
    Payload,
    UserRegistered,
    parse_payload,
)
from notifications.mail import (
    ORDER_CANCELLED,
    ORDER_PLACED,
    WELCOME,
    Email,
    Recipient,
    compose,
    template,
)

from .conftest import cancelled_payload, make_event, order_payload, parsed, user_registered_payload

SETTINGS = NotificationsSettings(
    MAIL_FROM="Flotilla Shop <hello@shop.test>", SHOP_URL="https://shop.test"
)
SHOWN_HEADERS = ("Subject", "From", "To", "Message-ID", "Auto-Submitted")
EVENTS: dict[str, tuple[str, Callable[..., dict[str, Any]], type[Payload], str]] = {
    WELCOME: ("user.registered", user_registered_payload, UserRegistered, "user"),
    ORDER_PLACED: ("order.placed", order_payload, OrderPlaced, "order"),
    ORDER_CANCELLED: ("order.cancelled", cancelled_payload, OrderCancelled, "order"),
}
NAMES = [
    "Alice A.",
    "alice",
    "",
    "Zoë Ångström",
    'Bob "the builder" O\'Brien \\ Jr.',
    "José María de la Peña y Núñez-Fernández, Managing Director of Exports" * 2,
    "中文 名字",
    "Émile\r\nBcc: eve@evil.test",
]


def context_of(kind: str, name: str) -> dict[str, Any]:
    """The template values of a ``kind`` e-mail to a customer called ``name``."""
    event_type, payload, model, key = EVENTS[kind]
    event = make_event(event_type, payload(display_name=name or None))
    return {key: parse_payload(event, model)}


def values_of(
    context: dict[str, Any], to: Recipient, shop: NotificationsSettings
) -> dict[str, Any]:
    """Everything the templates of an e-mail are rendered with."""
    return {**context, "recipient": to, "shop_name": shop.SHOP_NAME, "shop_url": shop.SHOP_URL}


def subject_of(kind: str, values: dict[str, Any]) -> str:
    """The subject a ``kind`` e-mail should show: its template's text, whitespace collapsed."""
    return " ".join(template(f"{kind}/subject.txt").render(values).split())


def reference(
    kind: str, to: Recipient, context: dict[str, Any], email: Email, shop: NotificationsSettings
) -> EmailMessage:
    """The same e-mail as ``EmailMessage`` with the default policy makes it, parsed back."""
    values = values_of(context, to, shop)
    message = EmailMessage()
    message["Subject"] = subject_of(kind, values)
    message["From"] = shop.MAIL_FROM
    message["To"] = Address(display_name=" ".join(to.name.split()), addr_spec=to.email)
    message["Message-ID"] = email.message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(template(f"{kind}/body.txt").render(values))
    message.add_alternative(template(f"{kind}/body.html").render(values), subtype="html")
    again = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(again, EmailMessage)
    return again


def mailbox_shown(message: EmailMessage, header: str) -> tuple[str, str]:
    """The display name and address of a From: or To: header, decoded as RFC 2047 says."""
    raw = " ".join(_raw_header(message, header).split())  # unfolded
    quoted_name, address = parseaddr(raw)
    phrase = raw.rpartition("<")[0].strip()
    if not phrase or phrase.startswith('"'):
        return quoted_name, address
    return str(make_header(decode_header(phrase))), address


def _raw_header(message: EmailMessage, name: str) -> str:
    """The header's value as it was on the wire (before any decoding)."""
    (value,) = [raw for key, raw in message.raw_items() if key == name]
    return str(value)


def shown(message: EmailMessage) -> dict[str, Any]:
    """What a mail program shows of ``message``: headers, sender and recipient, parts."""
    return {
        "headers": {
            name: str(message[name]) for name in SHOWN_HEADERS if name not in {"To", "From"}
        },
        "to": mailbox_shown(message, "To"),
        "from": mailbox_shown(message, "From"),
        "type": message.get_content_type(),
        "parts": [
            (part.get_content_type(), part.get_content_charset(), part.get_content())
            for part in message.iter_parts()
        ],
    }


def check_same_as_the_email_package(
    kind: str, name: str, shop: NotificationsSettings = SETTINGS
) -> tuple[EmailMessage, EmailMessage]:
    """Compose ``kind`` to ``name`` both ways and compare them; return both, parsed.

    The recipient's name and the subject are compared with the text itself: the ``email``
    package gets a few wrong (a name that looks like an encoded word; a space it put between
    two encoded words, which RFC 2047 drops when they are read back).
    """
    context = context_of(kind, name)
    event = next(iter(context.values()))
    to = Recipient(event.email, name or getattr(event, "username", ""))
    email = compose(kind, event_id=uuid.uuid4(), to=to, context=context, settings=shop)
    # A control character in a name is kept, as before; the parser remarks on it.
    ours = parsed(email, tolerate=(NonPrintableDefect,))
    assert mailbox_shown(ours, "To") == (" ".join(to.name.split()), to.email)
    assert ours["Subject"] == subject_of(kind, values_of(context, to, shop))
    before = reference(kind, to, context, email, shop)
    assert compared(ours) == compared(before)
    return ours, before


def compared(message: EmailMessage) -> dict[str, Any]:
    """What ``shown`` shows but the recipient and the subject, each checked against its text."""
    seen = shown(message)
    headers = {name: value for name, value in seen["headers"].items() if name != "Subject"}
    return {**seen, "headers": headers, "to": None}


@pytest.mark.parametrize("kind", [WELCOME, ORDER_PLACED, ORDER_CANCELLED])
@pytest.mark.parametrize("name", NAMES)
def test_every_e_mail_reads_as_the_email_package_writes_it(kind: str, name: str) -> None:
    ours, before = check_same_as_the_email_package(kind, name)
    assert mailbox_shown(before, "To") == mailbox_shown(ours, "To")  # these names it got right
    assert list(ours.keys()) == [
        "Subject",
        "From",
        "To",
        "Date",
        "Message-ID",
        "Auto-Submitted",
        "MIME-Version",
        "Content-Type",
    ]  # once each: a name never adds a header
    assert parsedate_to_datetime(ours["Date"]).tzinfo is not None


@pytest.mark.parametrize("name", NAMES)
def test_the_message_is_seven_bit_clean_with_short_lines(name: str) -> None:
    context = context_of(ORDER_PLACED, name)
    to = Recipient("alice@example.com", name)
    email = compose(ORDER_PLACED, event_id=uuid.uuid4(), to=to, context=context, settings=SETTINGS)
    assert max(email.data) < 128  # no 8BITMIME or SMTPUTF8 needed
    assert b"\r" not in email.data  # LF line ends; the SMTP sender sends CRLF
    assert max(len(line) for line in email.data.split(b"\n")) <= 998


def test_a_name_that_looks_encoded_is_shown_as_typed() -> None:
    # EmailMessage wrote this name as it is, so mail programs decoded it and showed "Admin"
    # (a customer could pose as anyone); it is now encoded, and shown as the customer typed.
    name = "=?utf-8?q?Admin?="
    context = context_of(WELCOME, name)
    to = Recipient("alice@example.com", name)
    email = compose(WELCOME, event_id=uuid.uuid4(), to=to, context=context, settings=SETTINGS)
    assert mailbox_shown(parsed(email), "To") == (name, "alice@example.com")
    shown_before = mailbox_shown(reference(WELCOME, to, context, email, SETTINGS), "To")
    assert shown_before == ("Admin", "alice@example.com")


names = st.text(st.characters(exclude_categories=["Cs"]), max_size=100)
"""Display names as a payload can carry them: any text but lone surrogates (not JSON)."""


@settings(max_examples=150)
@given(name=names, kind=st.sampled_from([WELCOME, ORDER_PLACED, ORDER_CANCELLED]))
def test_any_name_reads_as_the_email_package_writes_it(name: str, kind: str) -> None:
    check_same_as_the_email_package(kind, name)


@settings(max_examples=50)
@given(shop_name=names.filter(lambda value: value.strip() != ""), name=names)
# The email package drops this subject's last space.
@example(shop_name="0 0\x80" + "\U00010000" * 7 + " \x80", name="")
def test_any_shop_name_reads_as_the_email_package_writes_it(shop_name: str, name: str) -> None:
    shop = SETTINGS.model_copy(update={"SHOP_NAME": shop_name})
    ours, _ = check_same_as_the_email_package(WELCOME, name, shop)
    assert ours["Subject"] == " ".join(f"Welcome to {shop_name}".split())
