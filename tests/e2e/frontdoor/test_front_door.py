"""The front door in front of the real shop: routes, ids, addresses, headers, limits, TLS."""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from .checks import SECURITY_HEADERS, assert_nginx_problem, curl
from .conftest import Answer, Shop, fetch, new_request_id

pytestmark = [pytest.mark.process, pytest.mark.postgres]

ONE_MIB = 1_048_576


def json_body_of_size(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes: a registration whose user name is too long."""
    head, tail = b'{"username":"', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


@pytest.mark.parametrize(
    ("method", "path", "service"),
    [
        ("GET", "/api/v1/users/me", "users"),
        ("POST", "/api/v1/tokens", "users"),
        ("GET", "/.well-known/jwks.json", "users"),
        ("GET", "/api/v1/products", "catalog"),
        ("GET", "/api/v1/orders", "orders"),
    ],
)
def test_each_prefix_is_served_by_its_service(
    shop: Shop, method: str, path: str, service: str
) -> None:
    request_id = new_request_id()
    body = {"login": "alice", "password": "correct horse battery"} if method == "POST" else None
    answer = fetch(
        f"{shop.url}{path}",
        method,
        body=body,
        token=shop.token,
        headers={"X-Request-ID": request_id},
    )

    assert answer.status == 200, answer.body
    assert shop.served_by(request_id) == [service]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/reservations",
        "/api/v1/reservations/1",
        "/api/v1/products/../reservations",
        "/api/v1/%72eservations/1",
        "/api/v1/service-tokens",
        "/api/v1/tokens/../service-tokens",
    ],
)
def test_reservations_are_not_served(shop: Shop, path: str) -> None:
    answer = fetch(f"{shop.url}{path}", token=shop.admin_token)

    problem = assert_nginx_problem(answer, 404, "not-found")
    log = shop.http.logged(str(problem["request_id"]))
    assert log["upstream_addr"] == ""  # no service was asked


@pytest.mark.parametrize("path", ["/", "/metrics", "/healthz/ready", "/openapi.json", "/docs"])
def test_other_paths_are_nginx_404_problems(shop: Shop, path: str) -> None:
    answer = fetch(f"{shop.url}{path}")

    assert_nginx_problem(answer, 404, "not-found")


def test_a_service_problem_passes_through_untouched(shop: Shop) -> None:
    direct = fetch(f"{shop.servers['catalog'].url}/api/v1/products/999999")
    answer = fetch(f"{shop.url}/api/v1/products/999999")

    assert answer.status == direct.status == 404
    assert answer.header("Content-Type") == direct.header("Content-Type")
    problem = answer.json()
    assert problem["instance"] == "/api/v1/products/999999"
    assert {**problem, "request_id": ""} == {**direct.json(), "request_id": ""}


def test_nginx_makes_the_request_id_when_the_client_sent_none(shop: Shop) -> None:
    answer = fetch(f"{shop.url}/api/v1/products")

    request_id = answer.header("X-Request-ID")
    assert request_id is not None
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert shop.served_by(request_id) == ["catalog"]
    assert shop.http.logged(request_id)["status"] == 200


def test_the_client_request_id_is_passed_on_and_returned(shop: Shop) -> None:
    request_id = new_request_id()

    answer = fetch(f"{shop.url}/api/v1/products", headers={"X-Request-ID": request_id})

    assert answer.header("X-Request-ID") == request_id
    assert shop.served_by(request_id) == ["catalog"]


def test_an_unsafe_client_request_id_is_replaced_everywhere(shop: Shop) -> None:
    answer = fetch(f"{shop.url}/api/v1/products", headers={"X-Request-ID": "<script>"})

    request_id = answer.header("X-Request-ID")
    assert request_id is not None
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert shop.served_by(request_id) == ["catalog"]
    assert shop.http.logged(request_id)["uri"] == "/api/v1/products"


def test_the_service_sees_the_client_address_not_a_forged_one(shop: Shop) -> None:
    request_id = new_request_id()

    answer = fetch(
        f"{shop.url}/api/v1/products",
        headers={"X-Request-ID": request_id, "X-Forwarded-For": "203.0.113.7"},
        source="127.0.0.2",
    )

    assert answer.status == 200
    shop.served_by(request_id)
    (line,) = shop.access_lines("catalog", request_id)
    assert line["remote_addr"] == "127.0.0.2"
    assert shop.http.logged(request_id)["remote_addr"] == "127.0.0.2"


def test_a_forged_forwarded_prefix_does_not_reach_the_service(shop: Shop) -> None:
    product = {"sku": "PREFIX-1", "name": "Prefix", "price": 100, "currency": "EUR", "stock": 1}

    answer = fetch(
        f"{shop.url}/api/v1/products",
        "POST",
        body=product,
        token=shop.admin_token,
        headers={"X-Forwarded-Prefix": "/elsewhere"},
    )

    assert answer.status == 201, answer.body
    assert answer.header("Location") == f"/api/v1/products/{answer.json()['id']}"


def test_json_is_gzipped_for_clients_that_accept_it(shop: Shop) -> None:
    url = f"{shop.url}/api/v1/products?limit=100"

    compressed = fetch(url, headers={"Accept-Encoding": "gzip"})
    plain = fetch(url)

    assert compressed.header("Content-Encoding") == "gzip"
    assert compressed.header("Vary") == "Accept-Encoding"
    assert len(compressed.body) < len(plain.body)
    assert plain.header("Content-Encoding") is None
    assert compressed.json() == plain.json()
    assert len(plain.json()["items"]) >= 12


@pytest.mark.parametrize(
    "path", ["/api/v1/products", "/api/v1/products/999999", "/nowhere", "/healthz"]
)
def test_security_headers_are_sent_exactly_once(shop: Shop, path: str) -> None:
    answer = fetch(f"{shop.url}{path}")

    for name, value in SECURITY_HEADERS.items():
        assert answer.all(name) == [value], name
    assert len(answer.all("X-Request-ID")) == 1
    assert answer.all("Strict-Transport-Security") == []  # plain HTTP
    assert answer.header("Server") == "nginx"  # no version


def test_a_body_over_one_mebibyte_is_refused_by_nginx(shop: Shop) -> None:
    request_id = new_request_id()

    answer = fetch(
        f"{shop.url}/api/v1/users",
        "POST",
        body=json_body_of_size(ONE_MIB + 1),
        headers={"Content-Type": "application/json", "X-Request-ID": request_id},
    )

    assert_nginx_problem(answer, 413, "payload-too-large")
    assert shop.http.logged(request_id)["upstream_addr"] == ""


def test_a_body_of_exactly_one_mebibyte_reaches_the_service(shop: Shop) -> None:
    request_id = new_request_id()

    answer = fetch(
        f"{shop.url}/api/v1/users",
        "POST",
        body=json_body_of_size(ONE_MIB),
        headers={"Content-Type": "application/json", "X-Request-ID": request_id},
    )

    assert answer.status == 422, answer.body  # the service's verdict on the user name
    assert "instance" in answer.json()
    assert shop.served_by(request_id) == ["users"]


def test_logins_are_limited_per_client_address_with_a_429_problem(shop: Shop) -> None:
    url = f"{shop.url}/api/v1/tokens"
    answers: list[Answer] = []
    while len(answers) < 40 and 429 not in {answer.status for answer in answers}:
        answers.append(fetch(url, "POST", body={}, source="127.0.0.3"))

    assert {answer.status for answer in answers} == {422, 429}  # the service's, then nginx's
    assert len(answers) > 10  # the burst got through first
    limited = answers[-1]
    assert_nginx_problem(limited, 429, "too-many-requests")
    assert limited.header("Retry-After") == "1"
    for name, value in SECURITY_HEADERS.items():
        assert limited.all(name) == [value], name
    assert fetch(url, "POST", body={}, source="127.0.0.4").status == 422  # another client


def test_the_api_limit_is_looser_than_the_login_limit(shop: Shop) -> None:
    url = f"{shop.url}/api/v1/products"

    first = [fetch(url, source="127.0.0.5").status for _ in range(15)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        flood = list(pool.map(lambda _: fetch(url, source="127.0.0.5").status, range(200)))

    assert set(first) == {200}  # 15 logins would have been limited
    assert set(flood) == {200, 429}


def test_healthz_is_answered_by_nginx_and_not_logged(shop: Shop) -> None:
    health = fetch(f"{shop.url}/healthz")
    request_id = new_request_id()
    fetch(f"{shop.url}/api/v1/users/me", token=shop.token, headers={"X-Request-ID": request_id})

    assert health.status == 200
    assert health.json() == {"status": "ok"}
    line = shop.http.logged(request_id)  # written after /healthz's would have been
    assert all(record["uri"] != "/healthz" for record in shop.http.access_log())
    assert line["method"] == "GET"
    assert line["uri"] == "/api/v1/users/me"
    assert line["status"] == 200
    assert line["bytes"] > 0
    assert line["upstream_addr"] == f"127.0.0.1:{shop.servers['users'].port}"
    assert line["upstream_status"] == "200"
    assert float(line["upstream_response_time"]) >= 0
    assert float(line["upstream_connect_time"]) >= 0
    assert line["request_time"] >= 0
    assert line["time"]


def test_https_serves_the_api_with_the_generated_certificate(shop: Shop) -> None:
    answer = fetch(f"{shop.https_url}/api/v1/products", tls=shop.tls_context())

    assert answer.status == 200
    assert answer.all("Strict-Transport-Security") == ["max-age=31536000; includeSubDomains"]
    for name, value in SECURITY_HEADERS.items():
        assert answer.all(name) == [value], name


def test_https_speaks_http2_to_clients_that_offer_it(shop: Shop) -> None:
    written = curl(
        f"{shop.https_url}/api/v1/products",
        "--http2",
        "--output",
        "/dev/null",
        "--write-out",
        "%{http_version} %{response_code}",
        cafile=str(shop.certificate),
    )

    assert written.decode() == "2 200"


def test_plain_http_stays_http_1_1_even_when_a_client_asks_to_upgrade(shop: Shop) -> None:
    # Browsers speak HTTP/2 over TLS only; cleartext h2 would be for other clients alone.
    written = curl(
        f"{shop.url}/api/v1/products",
        "--http2",
        "--output",
        "/dev/null",
        "--write-out",
        "%{http_version} %{response_code}",
    )

    assert written.decode() == "1.1 200"


def test_https_is_not_trusted_without_the_generated_certificate(shop: Shop) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        fetch(f"{shop.https_url}/healthz", tls=ssl.create_default_context())


def test_nginx_problems_over_https_carry_hsts(shop: Shop) -> None:
    answer = fetch(f"{shop.https_url}/api/v1/reservations", tls=shop.tls_context())

    assert_nginx_problem(answer, 404, "not-found")
    assert answer.all("Strict-Transport-Security") == ["max-age=31536000; includeSubDomains"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_plain_http_redirects_to_https_with_308(shop: Shop, method: str) -> None:
    answer = fetch(f"{shop.https.url}/api/v1/products?limit=5", method)

    assert answer.status == 308
    assert answer.header("Location") == f"{shop.https_url}/api/v1/products?limit=5"
    assert answer.all("Strict-Transport-Security") == []
    for name, value in SECURITY_HEADERS.items():
        assert answer.all(name) == [value], name


def test_healthz_answers_on_the_redirecting_port(shop: Shop) -> None:
    answer = fetch(f"{shop.https.url}/healthz")

    assert answer.status == 200
    assert answer.json() == {"status": "ok"}


def send_raw(url: str, raw: bytes) -> Answer:
    """Send ``raw`` bytes as they are, on a new connection, and read the one answer."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(raw)
        response = http.client.HTTPResponse(connection)
        response.begin()
        return Answer(response.status, response.getheaders(), response.read())


GUNICORN_REQUEST_LINE_LIMIT = 4094
"""The longest request line Gunicorn reads (its ``limit_request_line``); nginx's is lower."""


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad-request"),
        (b"GET /api/v1/products HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400, "bad-request"),
        (
            b"GET /api/v1/products?q=" + b"a" * GUNICORN_REQUEST_LINE_LIMIT + b" HTTP/1.1\r\n"
            b"Host: x\r\n\r\n",
            414,
            "uri-too-long",
        ),
        (
            b"GET /api/v1/products HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 6_000 + b"\r\n\r\n",
            400,
            "request-header-too-large",
        ),
    ],
    ids=["garbage", "bad-header-name", "long-uri", "long-header"],
)
def test_requests_nginx_cannot_read_are_its_own_problems_with_the_headers(
    shop: Shop, raw: bytes, status: int, code: str
) -> None:
    """Each is refused before any web server reads it, so none sees a server's own page."""
    answer = send_raw(shop.url, raw)

    assert_nginx_problem(answer, status, code)
    for name, value in SECURITY_HEADERS.items():
        assert answer.all(name) == [value], name


def test_more_header_fields_than_a_web_server_reads_get_its_431_with_the_headers(
    shop: Shop,
) -> None:
    """nginx cannot count header fields: the web server refuses over 100 (docs/adr/0021)."""
    fields = b"".join(b"X-Field-%d: 1\r\n" % index for index in range(150))
    answer = send_raw(shop.url, b"GET /api/v1/products HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")

    assert answer.status == 431
    for name, value in SECURITY_HEADERS.items():
        assert answer.all(name) == [value], name
