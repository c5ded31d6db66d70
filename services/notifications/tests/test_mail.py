"""E-mails are composed from the templates: text and HTML, escaped, one per event."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest
from pydantic import ValidationError

from notifications.config import NotificationsSettings
from notifications.events import (
    OrderCancelled,
    OrderPlaced,
    UnsupportedEvent,
    UserRegistered,
    parse_payload,
)
from notifications.mail import cancellation_notice, order_confirmation, welcome_email

from .conftest import (
    cancelled_payload,
    make_event,
    order_line,
    order_payload,
    parsed,
    user_registered_payload,
)

SETTINGS = NotificationsSettings(
    MAIL_FROM="Flotilla Shop <hello@shop.test>",
    SHOP_NAME="Flotilla Shop",
    SHOP_URL="https://shop.test",
)


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and the HTML body of ``message``."""
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


def welcome(**changes: object) -> EmailMessage:
    """The welcome e-mail of a ``user.registered`` event with ``changes`` to its payload."""
    event = make_event("user.registered", user_registered_payload(**changes))
    user = parse_payload(event, UserRegistered)
    return parsed(welcome_email(user, event_id=event.id, settings=SETTINGS))


def test_the_welcome_email_greets_by_display_name_in_text_and_html() -> None:
    message = welcome()
    assert message["Subject"] == "Welcome to Flotilla Shop"
    assert message["From"] == "Flotilla Shop <hello@shop.test>"
    assert message["To"] == '"Alice A." <alice@example.com>'
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert text.startswith("Hello Alice A.,\n")
    assert '"alice"' in text
    assert "https://shop.test" in text
    assert "<h1" in html
    assert "Welcome, Alice A.!" in html


def test_without_a_display_name_the_username_is_used() -> None:
    message = welcome(display_name=None)
    assert message["To"] == "alice <alice@example.com>"
    assert parts(message)[0].startswith("Hello alice,\n")


def test_a_display_name_is_data_never_markup_or_a_header() -> None:
    message = welcome(display_name='<script>alert("x")</script>\r\nBcc: eve@evil.test')
    text, html = parts(message)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "Bcc" not in message.keys()  # noqa: SIM118 - keys() lists the headers
    assert message["To"].addresses[0].addr_spec == "alice@example.com"
    assert "<script>" in text  # plain text needs no escaping


def test_the_message_id_is_the_same_for_every_delivery_of_an_event() -> None:
    event = make_event("user.registered", user_registered_payload())
    user = parse_payload(event, UserRegistered)
    first = parsed(welcome_email(user, event_id=event.id, settings=SETTINGS))
    again = parsed(welcome_email(user, event_id=event.id, settings=SETTINGS))
    assert first["Message-ID"] == again["Message-ID"] == f"<{event.id}.welcome@shop.test>"
    assert welcome()["Message-ID"] != first["Message-ID"]
    sent = parsedate_to_datetime(first["Date"])
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 60


def test_the_order_confirmation_lists_every_line_and_the_total() -> None:
    event = make_event("order.placed", order_payload())
    order = parse_payload(event, OrderPlaced)
    message = parsed(order_confirmation(order, event_id=event.id, settings=SETTINGS))
    assert message["Subject"] == "Your order #1001 at Flotilla Shop is confirmed"
    assert message["Message-ID"] == f"<{event.id}.order_placed@shop.test>"
    text, html = parts(message)
    assert "2 \u00d7 Mug at 10.25 EUR: 20.50 EUR" in text  # the multiplication sign
    assert "1 \u00d7 Tea <Earl Grey> at 11.00 EUR: 11.00 EUR" in text
    assert "Total: 31.50 EUR" in text
    assert "21 November 2026, 10:00 UTC" in text
    assert "<td>Mug</td>" in html
    assert "<td>Tea &lt;Earl Grey&gt;</td>" in html


def test_the_cancellation_notice_gives_the_reason_when_there_is_one() -> None:
    event = make_event("order.cancelled", cancelled_payload())
    order = parse_payload(event, OrderCancelled)
    message = parsed(cancellation_notice(order, event_id=event.id, settings=SETTINGS))
    assert message["Subject"] == "Your order #1001 at Flotilla Shop was cancelled"
    assert message["To"] == "alice@example.com"
    text, html = parts(message)
    assert text.startswith("Hello,\n")
    assert "Reason: Out of stock" in text
    assert "31.50 EUR" in html
    silent = parse_payload(
        make_event("order.cancelled", cancelled_payload(reason=None)), OrderCancelled
    )
    notice = parsed(cancellation_notice(silent, event_id=event.id, settings=SETTINGS))
    assert "Reason" not in parts(notice)[0]


@pytest.mark.parametrize(
    "payload",
    [
        user_registered_payload(email="not an address"),
        user_registered_payload(email="a@b.c, eve@evil.test"),
        {key: value for key, value in user_registered_payload().items() if key != "email"},
        user_registered_payload(registered_at="yesterday"),
    ],
)
def test_a_malformed_payload_is_refused_before_anything_is_composed(
    payload: dict[str, object],
) -> None:
    with pytest.raises(ValidationError):
        parse_payload(make_event("user.registered", payload), UserRegistered)


@pytest.mark.parametrize(
    ("currency", "unit_price", "expected"),
    [
        ("EUR", 1050, "3 \u00d7 Mug at 10.50 EUR: 31.50 EUR"),
        ("JPY", 1050, "3 \u00d7 Mug at 1,050 JPY: 3,150 JPY"),
        ("KWD", 1050, "3 \u00d7 Mug at 1.050 KWD: 3.150 KWD"),
    ],
)
def test_amounts_are_shown_with_as_many_decimals_as_the_currency_has(
    currency: str, unit_price: int, expected: str
) -> None:
    line = order_line(quantity=3, unit_price=unit_price, line_total=3 * unit_price)
    payload = order_payload(currency=currency, lines=[line], total=3 * unit_price)
    event = make_event("order.placed", payload)
    message = order_confirmation(
        parse_payload(event, OrderPlaced), event_id=event.id, settings=SETTINGS
    )
    text, html = parts(parsed(message))
    assert expected in text
    assert expected.rsplit(": ", 1)[1] in html


@pytest.mark.parametrize(
    "payload",
    [
        order_payload(lines=[]),
        order_payload(currency="euro"),
        order_payload(total="31.50"),  # a decimal string, as before amounts were minor units
        order_payload(total="3150"),
        order_payload(total=3150.0),
        order_payload(lines=[order_line(unit_price=-1025, line_total=-2050)], total=-2050),
        order_payload(lines=[order_line(quantity=0, line_total=0)], total=0),
        order_payload(lines=[order_line(line_total=2049)], total=2049),  # 2 x 1025 is 2050
        order_payload(total=3151),  # the lines add up to 3150
    ],
)
def test_an_order_whose_lines_currency_or_amounts_are_wrong_is_refused(
    payload: dict[str, object],
) -> None:
    with pytest.raises(ValidationError):
        parse_payload(make_event("order.placed", payload), OrderPlaced)


@pytest.mark.parametrize("total", [-1, "31.50", 31.5, None])
def test_a_cancellation_with_a_bad_total_is_refused(total: object) -> None:
    with pytest.raises(ValidationError):
        parse_payload(make_event("order.cancelled", cancelled_payload(total=total)), OrderCancelled)


def test_free_lines_are_accepted() -> None:
    free = order_line(name="Sample", quantity=1, unit_price=0, line_total=0)
    payload = order_payload(lines=[*order_payload()["lines"], free])
    order = parse_payload(make_event("order.placed", payload), OrderPlaced)
    assert [line.line_total for line in order.lines] == [2050, 1100, 0]
    assert order.total == 3150


def test_unknown_versions_are_refused_and_unknown_fields_ignored() -> None:
    with pytest.raises(UnsupportedEvent, match=r"user\.registered v2"):
        parse_payload(make_event("user.registered", user_registered_payload(), 2), UserRegistered)
    extended = user_registered_payload(locale="fr-FR")
    assert parse_payload(make_event("user.registered", extended), UserRegistered).user_id == 42
