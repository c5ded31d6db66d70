"""The whole system as ``make run`` starts it, a browser, and the console's own processes.

One system per module: the runner on free ports with the embedded defaults and nginx in
front, the demo's customer, products and order in it, and an administrator to sign in as.
The browser is Debian's Chromium, driven by Playwright. The tests take screenshots of the
main pages; ``make screenshots`` runs them with ``FLOTILLA_SCREENSHOTS=docs/screenshots``, where
the README shows them from, and otherwise they go to a temporary directory, so a test run
leaves the repository as it was.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

import demo
from flotilla.testing.servers import GunicornServer
from system import Layout, console_env, service_env

from ..running import Runner, embedded_environment, free_base_port

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS_VARIABLE = "FLOTILLA_SCREENSHOTS"
CHROMIUM = "/usr/bin/chromium"
ADMIN, PASSWORD = "ada", "correct-horse-battery-staple"
DEADLINE_MS = 15_000
"""How long a page may take to show what is awaited: the status refreshes every 5 s."""
expect.set_options(timeout=DEADLINE_MS)


@dataclass
class Shop:
    """The running system, as the tests reach it."""

    runner: Runner
    state: dict[str, Any]
    front_door: str
    layout: Layout
    api: demo.Shop = field(repr=False)

    @property
    def console(self) -> str:
        """The console's address at the front door."""
        return f"{self.front_door}/console/"

    def console_env(self, **overrides: str) -> dict[str, str]:
        """The environment of another console process beside the runner's, on its own port."""
        env = {
            **service_env("console", self.layout, embedded_environment()),
            **console_env(self.layout),
            "PROXY_HOPS": "0",  # browsers reach it directly, not through nginx
            "GUNICORN_WORKERS": "1",
            **overrides,
        }
        for bound in ("GRANIAN_BIND", "GUNICORN_BIND"):
            env.pop(bound, None)
        return env

    def console_server(self, log_path: Path, **overrides: str) -> GunicornServer:
        """Another replica of the console, under Gunicorn, sharing the runner's state."""
        return GunicornServer(
            "console.wsgi:app", env=self.console_env(**overrides), log_path=log_path, cwd=ROOT
        )

    def admin_token(self) -> str:
        """An access token of the administrator, for the API."""
        return demo.sign_in(self.api, ADMIN, PASSWORD)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The system, the demo's data in it, and an administrator; stopped after the module."""
    assert shutil.which("nginx"), "nginx is needed: the console's static files come from it"
    var_dir = tmp_path_factory.mktemp("console") / "var"
    runner = Runner(var_dir, free_base_port())
    try:
        runner.wait_for_banner()
        state = json.loads((var_dir / "run.json").read_text())
        api = demo.Shop(state)
        demo.demo(api)  # a customer, products, an order placed and cancelled
        demo.create_admin(state, ADMIN, PASSWORD)
        layout = Layout(var_dir, state["base_port"], front_door=True)
        yield Shop(runner, state, state["front_door"], layout, api)
    finally:
        runner.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    assert os.path.exists(CHROMIUM), "Debian's chromium package is needed"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def new_context(browser: Browser, storage_state: Path | None = None) -> BrowserContext:
    """A browser profile: empty, or with the cookies of ``storage_state``."""
    opened = browser.new_context(
        viewport={"width": 1280, "height": 800}, storage_state=storage_state
    )
    opened.set_default_timeout(DEADLINE_MS)
    return opened


@pytest.fixture(scope="module")
def signed_in_state(shop: Shop, browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The administrator's signed-in browser state (its session cookie), signed in once.

    users allows five sign-ins a minute per account: the tests share this one session, and
    only those that end a session sign in again.
    """
    context = new_context(browser)
    sign_in(context.new_page(), shop)
    path = tmp_path_factory.mktemp("browser") / "state.json"
    context.storage_state(path=path)
    context.close()
    return path


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile: no cookies."""
    opened = new_context(browser)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab of that profile."""
    return context.new_page()


@pytest.fixture
def admin_context(browser: Browser, signed_in_state: Path) -> Iterator[BrowserContext]:
    """A browser profile signed in as the administrator."""
    opened = new_context(browser, signed_in_state)
    yield opened
    opened.close()


@pytest.fixture
def admin(admin_context: BrowserContext, shop: Shop) -> Page:
    """A tab of the administrator's, on the status page."""
    tab = admin_context.new_page()
    tab.goto(shop.console)
    expect(tab.get_by_role("heading", name="System status")).to_be_visible()
    return tab


def sign_in(page: Page, shop: Shop) -> None:
    """Sign in as the administrator through the front door, as a person does."""
    page.goto(shop.console)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username or e-mail").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="System status")).to_be_visible()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``FLOTILLA_SCREENSHOTS`` (relative to the repository), or a
    temporary directory."""
    chosen = os.environ.get(SCREENSHOTS_VARIABLE)
    directory = ROOT / chosen if chosen else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def screenshot(page: Page, directory: Path, name: str) -> None:
    """The page as it is now, whole."""
    page.screenshot(path=directory / f"{name}.png", full_page=True)
