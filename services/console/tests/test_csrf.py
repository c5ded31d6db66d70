"""Every state-changing request needs its form's CSRF token and the console's own origin.

The services are not running here, so a request that got past the checks would reach
catalog and come back "Service unavailable" (503); a refused one never gets that far.
"""

from __future__ import annotations

from flask.testing import FlaskClient

from .conftest import BASE_URL, csrf_token, sign_in

DEACTIVATE = "/console/products/7/deactivate"
REFUSED_PAGE = "Nothing was changed."


def post(client: FlaskClient, path: str, data: dict[str, str], **headers: str) -> tuple[int, str]:
    """POST a form as a browser does over HTTPS: with the page it was on as the Referer."""
    headers = {"Referer": f"{BASE_URL}/console/products", **headers}
    response = client.post(path, data=data, base_url=BASE_URL, headers=headers)
    return response.status_code, response.get_data(as_text=True)


def test_a_form_with_its_token_from_this_console_goes_through(client: FlaskClient) -> None:
    sign_in(client)
    token = csrf_token(client)
    status, page = post(client, DEACTIVATE, {"csrf_token": token}, Origin=BASE_URL)
    assert status == 503  # it reached catalog, which is down here
    assert "Service unavailable" in page


def test_a_post_without_a_token_is_refused_with_a_page(client: FlaskClient) -> None:
    sign_in(client)
    status, page = post(client, DEACTIVATE, {}, Origin=BASE_URL)
    assert status == 400
    assert "The CSRF token is missing." in page
    assert REFUSED_PAGE in page
    assert "<html" in page


def test_a_token_of_another_session_is_refused(client: FlaskClient) -> None:
    other = client.application.test_client()
    sign_in(other)
    stolen = csrf_token(other)
    sign_in(client)
    csrf_token(client)  # this session has a token of its own
    status, page = post(client, DEACTIVATE, {"csrf_token": stolen}, Origin=BASE_URL)
    assert status == 400
    assert REFUSED_PAGE in page


def test_a_tampered_token_is_refused(client: FlaskClient) -> None:
    sign_in(client)
    token = csrf_token(client)
    status, page = post(client, DEACTIVATE, {"csrf_token": token[:-2] + "xx"}, Origin=BASE_URL)
    assert status == 400
    assert REFUSED_PAGE in page


def test_a_post_from_another_origin_is_refused_even_with_a_token(client: FlaskClient) -> None:
    sign_in(client)
    token = csrf_token(client)
    for origin in ("https://evil.example", "null", "http://console.test"):
        status, page = post(client, DEACTIVATE, {"csrf_token": token}, Origin=origin)
        assert status == 403, origin
        assert "came from another site" in page


def test_without_an_origin_a_cross_site_fetch_is_refused(client: FlaskClient) -> None:
    sign_in(client)
    token = csrf_token(client)
    headers = {"Sec-Fetch-Site": "cross-site", "Referer": "https://evil.example/"}
    status, _page = post(client, DEACTIVATE, {"csrf_token": token}, **headers)
    assert status == 403


def test_over_https_a_form_from_elsewhere_without_an_origin_is_refused(
    client: FlaskClient,
) -> None:
    sign_in(client)
    token = csrf_token(client)
    status, page = post(client, DEACTIVATE, {"csrf_token": token}, Referer="https://evil.example/")
    assert status == 400
    assert "does not match" in page


def test_signing_in_needs_the_token_too(client: FlaskClient) -> None:
    status, page = post(client, "/console/sign-in", {"login": "ada", "password": "x" * 12})
    assert status == 400
    assert REFUSED_PAGE in page


def test_a_search_is_a_get_and_needs_no_token(client: FlaskClient) -> None:
    sign_in(client)
    response = client.get("/console/orders?customer=0", base_url=BASE_URL)
    assert response.status_code == 200
    assert "Number must be between" in response.get_data(as_text=True)
