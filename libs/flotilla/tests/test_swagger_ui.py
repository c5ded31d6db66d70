"""/docs loads Swagger UI from the service itself: nothing from another host."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from flotilla.web.swagger_ui import BUNDLE, FILES


class _Links(HTMLParser):
    """Every ``src`` and ``href`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]


def links_of(client: FlaskClient, path: str) -> list[str]:
    """The URLs the page at ``path`` loads."""
    page = client.get(path)
    assert page.status_code == 200
    parser = _Links()
    parser.feed(page.get_data(as_text=True))
    return parser.urls


def test_the_docs_page_loads_nothing_from_another_host(client: FlaskClient) -> None:
    urls = links_of(client, "/docs")

    assert {urlsplit(url).path.rpartition("/")[2] for url in urls} == FILES
    assert [url for url in urls if urlsplit(url).scheme or urlsplit(url).netloc] == []


def test_each_file_the_docs_page_loads_is_served_for_a_year(client: FlaskClient) -> None:
    for url in links_of(client, "/docs"):
        with client.get(url) as answer:  # closes the file it streams
            assert answer.status_code == 200, url
            assert answer.get_data() == (BUNDLE / url.rpartition("/")[2]).read_bytes()
            assert answer.mimetype in {"text/css", "text/javascript", "application/javascript"}
            assert answer.cache_control.max_age == 31_536_000
            assert answer.cache_control.immutable


def test_the_files_path_names_the_bundles_version(client: FlaskClient) -> None:
    urls = links_of(client, "/docs")

    assert BUNDLE.name.startswith("swagger-ui-")
    assert all(url.startswith(f"/docs/assets/{BUNDLE.name}/") for url in urls)


@pytest.mark.parametrize("name", ["index.html", "swagger-ui-bundle.js.map", "oauth2-redirect.html"])
def test_no_other_file_of_the_bundle_is_served(client: FlaskClient, name: str) -> None:
    assert (BUNDLE / name).is_file()

    answer = client.get(f"/docs/assets/{BUNDLE.name}/{name}")

    assert answer.status_code == 404
    assert answer.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "path", ["..%2F__init__.py", "%2E%2E/%2E%2E/__init__.py", "../swagger-ui.css"]
)
def test_no_path_leads_out_of_the_bundle(client: FlaskClient, path: str) -> None:
    answer = client.get(f"/docs/assets/{BUNDLE.name}/{path}")

    assert answer.status_code == 404
    assert answer.mimetype == "application/problem+json"
