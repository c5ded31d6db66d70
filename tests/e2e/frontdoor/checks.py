"""What the front door's answers must show, shared by its tests: headers, its own problems."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence

from .conftest import ROOT, Answer

HEADERS_CONF = ROOT / "deploy" / "nginx" / "flotilla" / "headers.conf"


def permissions_policy() -> str:
    """The Permissions-Policy value headers.conf adds."""
    found = re.search(r'add_header Permissions-Policy "([^"]+)" always;', HEADERS_CONF.read_text())
    assert found is not None, "headers.conf adds no Permissions-Policy"
    return found[1]


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": permissions_policy(),
}
"""The headers nginx adds to every answer, each exactly once (HSTS: over HTTPS only)."""


def assert_security_headers(answer: Answer) -> None:
    """``answer`` carries each of :data:`SECURITY_HEADERS` once, with its value."""
    for name, value in SECURITY_HEADERS.items():
        assert answer.all(name) == [value], name


def assert_nginx_problem(answer: Answer, status: int, code: str) -> dict[str, object]:
    """``answer`` is a problem nginx made itself (a service's would carry ``instance``)."""
    assert answer.status == status, answer.body
    assert answer.header("Content-Type") == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == f"urn:flotilla:problem:{code}"
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    assert problem["request_id"] == answer.header("X-Request-ID")
    assert "instance" not in problem
    return problem


def curl(url: str, *options: str, cafile: str | None = None) -> bytes:
    """The output of curl for ``url`` with ``options`` (HTTP/2, brotli: no stdlib client's)."""
    argv: Sequence[str] = ["curl", "--silent", "--show-error", *options]
    if cafile:
        argv = [*argv, "--cacert", cafile]
    result = subprocess.run([*argv, url], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout
