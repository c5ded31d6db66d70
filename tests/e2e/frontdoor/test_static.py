"""The front door's static files: content-hashed names only, a year's caching, br or gzip.

Each nginx here serves a directory of files the tests write, and no service at all: every
upstream points at a port nothing listens on, which a static answer must never need.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import nginx  # scripts/, on pytest's path
from flotilla.testing import free_port

from .checks import assert_nginx_problem, assert_security_headers, curl
from .conftest import Nginx, fetch, new_request_id, upstreams_of

pytestmark = pytest.mark.process

ONE_YEAR = "public, max-age=31536000, immutable"
RULES = "".join(
    f".panel-{number} {{ margin: {number}px; padding: 0.5rem; border: 1px solid #ccd; }}\n"
    for number in range(40)
)
FILES = {
    "css/console.css": RULES.encode(),
    "js/status.js": "".join(
        f"export function show{number}(node) {{ node.textContent = 'status {number}'; }}\n"
        for number in range(40)
    ).encode(),
    "img/mark.svg": (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
        + "".join(f'<circle cx="{n}" cy="{n}" r="{n % 7 + 1}"/>' for n in range(60))
        + "</svg>"
    ).encode(),
    "vendor/uplot/uPlot.iife.min.js": b"var uPlot=function(){'use strict';" + b"0;" * 600 + b"}();",
    "css/.hidden.css": b"body { color: red; }",
    "notes/readme.txt": b"Not a kind of file the front door serves.",
}
TYPES = {
    "css/console.css": "text/css; charset=utf-8",
    "js/status.js": "text/javascript; charset=utf-8",
    "img/mark.svg": "image/svg+xml; charset=utf-8",
    "vendor/uplot/uPlot.iife.min.js": "text/javascript; charset=utf-8",
}
"""The files a page may load, and the type each is served as."""


def hashed(name: str, content: bytes) -> str:
    """The URL a page names ``name`` by: its stem, 12 hex digits of its SHA-256, its type."""
    stem, _, extension = name.rpartition(".")
    return f"/static/{stem}.{hashlib.sha256(content).hexdigest()[:12]}.{extension}"


@dataclass(frozen=True)
class Doors:
    """Two front doors on the same files: with brotli where installed, and without."""

    brotli: Nginx
    gzip: Nginx


@pytest.fixture(scope="module")
def doors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doors]:
    """The test files written, and nginx serving them twice."""
    tmp_path = tmp_path_factory.mktemp("static")
    for name, content in FILES.items():
        (tmp_path / "files" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "files" / name).write_bytes(content)
    nowhere = f"127.0.0.1:{free_port()}"
    upstreams = upstreams_of([nowhere], others=nowhere)
    static = tmp_path / "files"
    with_brotli = Nginx.start(tmp_path / "brotli", upstreams, static=static)
    try:
        without = Nginx.start(tmp_path / "gzip", upstreams, static=static, brotli=False)
        try:
            yield Doors(with_brotli, without)
        finally:
            without.stop()
    finally:
        with_brotli.stop()


@pytest.mark.parametrize("name", list(TYPES))
def test_a_hashed_name_serves_the_plain_file_cached_for_a_year(doors: Doors, name: str) -> None:
    request_id = new_request_id()

    answer = fetch(
        doors.brotli.url + hashed(name, FILES[name]), headers={"X-Request-ID": request_id}
    )

    assert answer.status == 200, answer.body
    assert answer.body == FILES[name]
    assert answer.header("Content-Type") == TYPES[name]
    assert answer.all("Cache-Control") == [ONE_YEAR]
    assert answer.all("Expires") == []
    assert answer.all("Pragma") == []
    assert_security_headers(answer)
    assert doors.brotli.logged(request_id)["upstream_addr"] == ""  # no service was asked


@pytest.mark.parametrize(
    "path",
    [
        "/static/",
        "/static/css/",
        "/static/css/console.css",  # the plain name
        "/static/css/console.0123456789a.css",  # 11 hex digits
        "/static/css/console.0123456789abc.css",  # 13
        "/static/css/console.0123456789AB.css",  # upper case
        "/static/css/gone.0123456789ab.css",  # no such file
        "/static/css/.hidden.0123456789ab.css",  # a hidden file
        "/static/notes/readme.0123456789ab.txt",  # a kind of file not served
        "/static/css/console.0123456789ab.css/",
        "/static/css/console.0123456789ab.css.map",
    ],
)
def test_any_other_name_under_static_is_a_404_problem_not_cached(doors: Doors, path: str) -> None:
    answer = fetch(doors.brotli.url + path)

    assert_nginx_problem(answer, 404, "not-found")
    assert answer.all("Cache-Control") == []
    assert_security_headers(answer)


def test_static_files_answer_head_but_no_other_method(doors: Doors) -> None:
    url = doors.brotli.url + hashed("css/console.css", FILES["css/console.css"])

    head = fetch(url, "HEAD")
    post = fetch(url, "POST", body=b"{}")

    assert head.status == 200
    assert head.header("Content-Length") == str(len(FILES["css/console.css"]))
    assert head.all("Cache-Control") == [ONE_YEAR]
    assert_nginx_problem(post, 405, "method-not-allowed")
    assert post.header("Allow") == "GET, HEAD"
    assert_security_headers(post)


@pytest.mark.parametrize("name", ["css/console.css", "js/status.js", "img/mark.svg"])
def test_a_client_that_accepts_br_gets_br(doors: Doors, name: str) -> None:
    assert nginx.brotli_installed(), "install libnginx-mod-http-brotli-filter (.ci/run does)"
    url = doors.brotli.url + hashed(name, FILES[name])

    answer = fetch(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    decoded = curl(url, "--compressed", "--header", "Accept-Encoding: br")

    assert answer.status == 200
    assert answer.header("Content-Encoding") == "br"
    assert answer.header("Vary") == "Accept-Encoding"
    assert answer.all("Cache-Control") == [ONE_YEAR]
    assert len(answer.body) < len(FILES[name])
    assert decoded == FILES[name]


@pytest.mark.parametrize("door", ["brotli", "gzip"])
def test_a_client_that_accepts_only_gzip_gets_gzip(doors: Doors, door: str) -> None:
    url = getattr(doors, door).url + hashed("css/console.css", FILES["css/console.css"])

    answer = fetch(url, headers={"Accept-Encoding": "gzip"})

    assert answer.header("Content-Encoding") == "gzip"
    assert answer.header("Vary") == "Accept-Encoding"
    assert gzip.decompress(answer.body) == FILES["css/console.css"]


def test_without_the_brotli_module_a_br_client_gets_gzip(doors: Doors) -> None:
    url = doors.gzip.url + hashed("css/console.css", FILES["css/console.css"])

    answer = fetch(url, headers={"Accept-Encoding": "gzip, deflate, br"})

    assert answer.header("Content-Encoding") == "gzip"
    assert gzip.decompress(answer.body) == FILES["css/console.css"]
    assert answer.all("Cache-Control") == [ONE_YEAR]


def test_a_client_that_accepts_no_encoding_gets_the_bytes_as_they_are(doors: Doors) -> None:
    url = doors.brotli.url + hashed("js/status.js", FILES["js/status.js"])

    answer = fetch(url, headers={"Accept-Encoding": "identity"})

    assert answer.header("Content-Encoding") is None
    assert answer.body == FILES["js/status.js"]


def test_by_default_the_console_packages_static_files_are_served(tmp_path: Path) -> None:
    served = [
        path
        for path in sorted(nginx.static_root().rglob("*"))
        if path.is_file() and path.suffix in {".css", ".js", ".svg"}
    ]
    assert served, f"no CSS, JS or SVG file in {nginx.static_root()}"
    nowhere = f"127.0.0.1:{free_port()}"
    door = Nginx.start(tmp_path, upstreams_of([nowhere], others=nowhere))
    try:
        for path in served:
            content = path.read_bytes()
            url = door.url + hashed(str(path.relative_to(nginx.static_root())), content)

            answer = fetch(url)

            assert answer.status == 200, url
            assert answer.body == content
            assert answer.all("Cache-Control") == [ONE_YEAR]
    finally:
        door.stop()
