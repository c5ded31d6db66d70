"""The pages: sign-in redirects, errors as pages, the CSP, hashed static files, no inline code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from console.assets import IMMUTABLE, STATIC_DIR, asset_url
from console.security import CONTENT_SECURITY_POLICY

from .conftest import BASE_URL, sign_in

TEMPLATES = Path(STATIC_DIR).parent / "templates"
PAGES = ["/console/", "/console/charts", "/console/orders", "/console/dead-letters"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_anyone_not_signed_in_to_sign_in_and_back(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path, base_url=BASE_URL)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/console/sign-in?next={path}"


@pytest.mark.parametrize("path", [*PAGES, "/console/sign-in", "/console/no-such-page"])
def test_every_page_has_the_strict_policy_and_is_not_cached(client: FlaskClient, path: str) -> None:
    sign_in(client)
    response = client.get(path, base_url=BASE_URL)
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_no_template_carries_inline_script_style_or_handlers() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert "<style" not in text, template.name
        assert not re.search(r"\sstyle=", text), template.name
        assert not re.search(r"\son[a-z]+=", text), template.name


def test_errors_under_the_console_are_pages(client: FlaskClient) -> None:
    sign_in(client)
    response = client.get("/console/no-such-page", base_url=BASE_URL)
    assert response.status_code == 404
    assert "<h1>Not Found</h1>" in response.get_data(as_text=True)
    unavailable = client.get("/console/orders/5", base_url=BASE_URL)
    assert unavailable.status_code == 503  # orders is not running here
    assert "A service this page needs is unavailable" in unavailable.get_data(as_text=True)


def test_the_probes_still_answer_json(client: FlaskClient) -> None:
    assert client.get("/healthz/ready").mimetype == "application/json"
    assert client.get("/healthz/nothing").mimetype == "application/problem+json"


def test_the_status_page_shows_unreachable_services_at_once(client: FlaskClient) -> None:
    sign_in(client)
    page = client.get("/console/", base_url=BASE_URL).get_data(as_text=True)
    for service in ("users", "catalog", "orders"):
        assert f'data-process="{service}" data-state="unreachable"' in page


def test_a_hashed_name_is_served_for_a_year(client: FlaskClient) -> None:
    url = asset_url("css/console.css")
    assert re.fullmatch(r"/static/css/console\.[0-9a-f]{12}\.css", url)
    with client.get(url) as response:
        assert response.status_code == 200
        assert response.mimetype == "text/css"
        assert response.headers["Cache-Control"] == IMMUTABLE
        assert response.get_data() == (STATIC_DIR / "css" / "console.css").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/static/css/console.css",  # unhashed: it would be cached for a year unchanged
        "/static/css/console.000000000000.css",  # a stale or made-up hash
        "/static/css/..%2f..%2fconfig.000000000000.py",
        "/static/nothing.0123456789ab.js",
    ],
)
def test_anything_else_under_static_is_not_found(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_pages_name_their_files_by_hash(client: FlaskClient) -> None:
    page = client.get("/console/sign-in", base_url=BASE_URL).get_data(as_text=True)
    assert asset_url("css/console.css") in page
    assert "/static/css/console.css" not in page


def test_amounts_are_shown_in_their_currencys_units(client: FlaskClient) -> None:
    money = client.application.jinja_env.filters["money"]
    assert money(324_999, "EUR") == "3,249.99 EUR"
    assert money(3150, "JPY") == "3,150 JPY"
    assert money(None, None) == "—"  # a pending order has no total yet
