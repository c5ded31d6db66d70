"""The operator console in a real browser, against the whole system running.

An administrator signs in and sees every process ready; catalog is frozen and the status
page shows it not ready within seconds; orders, products and dead letters are worked
through their pages; forged and stale form posts are refused and change nothing; two more
console processes (Gunicorn) serve the same session; a session past its timeout is sent
back to sign-in; and every page passes axe-core's accessibility rules and works by keyboard.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, expect

from flotilla.messaging.outbox.envelope import EVENT_TASK, Event
from flotilla.messaging.tasks import DEAD_LETTER_ERROR_HEADER, tasks_state
from flotilla.testing import wait_until
from notifications import create_app as create_notifications
from notifications.config import NotificationsSettings
from system import BACKGROUND_PROGRAMS, service_env

from ..running import descendants, embedded_environment
from .conftest import ADMIN, PASSWORD, Shop, screenshot, sign_in

pytestmark = pytest.mark.process

PROCESSES = ("users", "catalog", "orders", *(name for name, *_ in BACKGROUND_PROGRAMS))


def row(page: Page, process: str) -> Any:
    """The status table's row of ``process``."""
    return page.locator(f'tr[data-process="{process}"]')


def products(shop: Shop, *, active: bool = True) -> list[dict[str, Any]]:
    """The catalog's products, as its API answers."""
    flag = "true" if active else "false"
    page, _ = shop.api.call("GET", f"/api/v1/products?limit=100&active={flag}")
    items: list[dict[str, Any]] = page["items"]
    return items


def test_an_administrator_signs_in_and_sees_every_process_ready(
    shop: Shop, admin: Page, admin_context: BrowserContext, screenshots: Path
) -> None:
    page, context = admin, admin_context
    for process in PROCESSES:
        expect(row(page, process)).to_have_attribute("data-state", "ready")
    screenshot(page, screenshots, "status")

    (cookie,) = context.cookies()
    assert cookie["name"] == "console"  # plain HTTP under make run: no __Host- prefix
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"
    assert "eyJ" not in cookie["value"]  # a session id, no token
    assert page.evaluate("JSON.stringify(window.localStorage) + document.cookie") == "{}"

    # Through nginx: the page keeps its own policy; its files come from nginx, for a year.
    answer = page.request.get(shop.console)
    assert answer.headers["content-security-policy"].startswith("default-src 'self';")
    assert answer.headers["referrer-policy"] == "same-origin"
    stylesheet = page.locator('link[rel="stylesheet"]').first.get_attribute("href")
    assert stylesheet is not None
    assert re.fullmatch(r"/static/css/console\.[0-9a-f]{12}\.css", stylesheet)
    served = page.request.get(f"{shop.front_door}{stylesheet}")
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"


@contextmanager
def frozen(pids: list[int]) -> Iterator[None]:
    """``pids`` stopped (SIGSTOP) for the block: alive, but answering nothing."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def test_a_frozen_catalog_turns_not_ready_within_seconds_and_back(
    shop: Shop, admin: Page, screenshots: Path
) -> None:
    page = admin
    catalog = shop.state["processes"]["catalog"]
    expect(row(page, "catalog")).to_have_attribute("data-state", "ready")
    with frozen([catalog, *descendants(catalog)]):
        # No reload: the page refreshes its panel by itself.
        expect(row(page, "catalog")).to_have_attribute("data-state", "unreachable")
        expect(row(page, "users")).to_have_attribute("data-state", "ready")
        screenshot(page, screenshots, "status-catalog-down")
    expect(row(page, "catalog")).to_have_attribute("data-state", "ready")


def test_an_order_is_found_with_its_state_history(admin: Page, screenshots: Path) -> None:
    page = admin
    page.get_by_role("link", name="Orders").click()
    page.get_by_label("Order id").fill("1")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("heading", name="Order #1")).to_be_visible()
    history = page.locator("ol.history strong")
    expect(history).to_have_text(["pending", "placed", "cancelling", "cancelled"])
    screenshot(page, screenshots, "order")
    page.locator("main p a").first.click()  # the customer: their orders
    expect(page.get_by_role("link", name="#1")).to_be_visible()


def test_stock_is_changed_and_a_product_taken_off_sale_through_the_forms(
    shop: Shop, admin: Page, screenshots: Path
) -> None:
    page = admin
    page.get_by_role("link", name="Products").click()
    target = products(shop)[0]
    sku, product_id = target["sku"], target["id"]
    expect(page.get_by_label(f"New stock for {sku}")).to_be_visible()
    screenshot(page, screenshots, "products")

    page.get_by_label(f"New stock for {sku}").fill("42")
    page.locator(f'tr[data-product="{product_id}"]').get_by_role("button", name="Set").click()
    expect(page.get_by_role("status")).to_contain_text(f"Stock of {sku} is now 42.")
    read, _ = shop.api.call("GET", f"/api/v1/products/{product_id}")
    assert read["stock"] == 42

    page.get_by_role("button", name=f"Take {sku} off sale").click()
    expect(page.get_by_role("status")).to_contain_text(f"Product {product_id} is off sale.")
    assert product_id in {product["id"] for product in products(shop, active=False)}


FORGED = """<!doctype html><title>Win a prize</title>
<form method="post" action="{action}">
  <input type="hidden" name="csrf_token" value="guessed">
  <button type="submit">Claim</button>
</form>"""


def test_a_forged_form_post_is_refused_and_changes_nothing(
    shop: Shop, admin: Page, admin_context: BrowserContext
) -> None:
    page, context = admin, admin_context
    product_id = products(shop)[0]["id"]
    action = f"{shop.front_door}/console/products/{product_id}/deactivate"

    # Another site's page, posting to the console in the signed-in browser.
    context.route(
        "http://attacker.test/**",
        lambda route: route.fulfill(content_type="text/html", body=FORGED.format(action=action)),
    )
    attacker = context.new_page()
    attacker.goto("http://attacker.test/prize")
    attacker.get_by_role("button", name="Claim").click()
    expect(attacker.get_by_role("heading", name="Form not accepted")).to_be_visible()
    expect(attacker.locator("main")).to_contain_text("came from another site")

    # The console's own origin, with a token that is not the session's.
    status = page.evaluate(
        """async (action) => (await fetch(action, {method: "POST",
               body: new URLSearchParams({csrf_token: "stale"})})).status""",
        action,
    )
    assert status == 400

    assert product_id in {product["id"] for product in products(shop)}  # still on sale


def dead_letter(shop: Shop, email: str) -> str:
    """A user.registered event whose e-mail failed every retry, in notifications' dead letters."""
    env = service_env("notifications", shop.layout, embedded_environment())
    app = create_notifications(NotificationsSettings.model_validate(env))
    event = Event(
        uuid.uuid4(),
        "user.registered",
        1,
        datetime.now(UTC),
        {
            "user_id": 999_001,
            "username": "replayed",
            "email": email,
            "registered_at": datetime.now(UTC).isoformat(),
        },
    )
    state = tasks_state(app)
    with app.app_context():
        sent = state.celery.tasks[EVENT_TASK].apply_async(
            (event.to_dict(),),
            queue=state.dead_letter_queue,
            headers={DEAD_LETTER_ERROR_HEADER: "SMTPServerDisconnected: the relay went away"},
        )
    return str(sent.id)


def mail_to(mail_dir: Path, address: str) -> list[Path]:
    return [path for path in mail_dir.glob("*.eml") if address in path.read_text(errors="replace")]


def test_a_dead_letter_is_replayed_from_the_browser_and_its_e_mail_sent(
    shop: Shop, admin: Page, screenshots: Path
) -> None:
    page = admin
    address = f"replayed-{uuid.uuid4().hex[:8]}@example.com"
    task_id = dead_letter(shop, address)
    page.get_by_role("link", name="Dead letters").click()
    letter = page.locator(f'tr[data-task="{task_id}"]')
    expect(letter).to_contain_text("SMTPServerDisconnected")
    screenshot(page, screenshots, "dead-letters")

    letter.get_by_role("button", name=f"Replay task {task_id}").click()
    expect(page.get_by_role("status")).to_contain_text(
        "1 dead letter(s) of notifications sent back to work."
    )
    expect(page.locator(f'tr[data-task="{task_id}"]')).to_have_count(0)
    mail_dir = Path(shop.state["mail_dir"])
    wait_until(lambda: bool(mail_to(mail_dir, address)), timeout=30, what="the replayed e-mail")


def test_the_charts_draw_each_services_traffic(shop: Shop, admin: Page, screenshots: Path) -> None:
    page = admin
    panel = f"{shop.front_door}/console/status/panel"
    for _ in range(2):  # two samples of every service's counters, one interval apart
        assert page.request.get(panel).ok
        shop.api.call("GET", "/api/v1/products")
        time.sleep(10.5)
    page.get_by_role("link", name="Charts").click()
    expect(page.locator("#charts")).to_have_attribute("data-drawn-at", re.compile(".+"))
    expect(page.locator(".chart canvas")).to_have_count(3)
    screenshot(page, screenshots, "charts")


def test_two_more_gunicorn_processes_serve_the_same_session(
    shop: Shop, admin: Page, tmp_path: Path
) -> None:
    page = admin  # signed in at the runner's console, through nginx
    with (
        shop.console_server(tmp_path / "a.log") as first,
        shop.console_server(tmp_path / "b.log") as second,
    ):
        page.goto(f"{first.url}/console/")
        expect(page.get_by_role("heading", name="System status")).to_be_visible()
        page.goto(f"{second.url}/console/products")
        sku = products(shop)[0]["sku"]
        page.get_by_label(f"New stock for {sku}").fill("7")  # a form second rendered ...
        page.goto(f"{first.url}/console/products")
        page.get_by_label(f"New stock for {sku}").fill("7")
        form = page.locator("form", has=page.get_by_label(f"New stock for {sku}"))
        form.get_by_role("button", name="Set").click()  # ... and one first accepts
        expect(page.get_by_role("status")).to_contain_text(f"Stock of {sku} is now 7.")


def test_a_session_past_its_absolute_timeout_is_sent_back_to_sign_in(
    shop: Shop, page: Page, tmp_path: Path
) -> None:
    with shop.console_server(tmp_path / "short.log", SESSION_ABSOLUTE_TIMEOUT="3") as short:
        sign_in(page, shop)
        page.goto(f"{short.url}/console/")
        expect(page.get_by_role("heading", name="System status")).to_be_visible()
        time.sleep(3.5)
        page.goto(f"{short.url}/console/orders")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert page.url.endswith("/console/sign-in?next=/console/orders")
    page.goto(shop.console)  # ended everywhere: the session is gone from the shared store
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def axe_violations(page: Page) -> list[str]:
    """axe-core's findings on the page as it is, one line each."""
    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} "
        f"{[node['target'] for node in violation['nodes']]}"
        for violation in results.response["violations"]
    ]


def test_every_page_passes_axe_core(shop: Shop, page: Page, admin: Page) -> None:
    page.goto(shop.console)  # signed out
    assert axe_violations(page) == [], "sign-in"
    page = admin
    pages = ["", "charts", "orders", "orders/1", "products", "dead-letters", "no-such-page"]
    for path in pages:
        page.goto(f"{shop.console}{path}")
        page.wait_for_load_state("networkidle")
        assert axe_violations(page) == [], path


def test_signing_in_and_out_works_by_keyboard_alone(shop: Shop, page: Page) -> None:
    page.goto(shop.console)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Username or e-mail")).to_be_focused()
    page.keyboard.type(ADMIN)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="System status")).to_be_visible()
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(shop.console)  # signed out: the session and its tokens are gone
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
