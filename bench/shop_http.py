"""The benchmark as a client of the shop: one JSON request, its status checked.

Only the standard library speaks HTTP here, so what the benchmark sends while seeding and
checking is what any client sends. Load is made by wrk and k6, never through this module.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any


def send(
    url: str,
    status: int,
    *,
    token: str = "",
    body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """One GET, or POST of ``body``, to ``url``; its JSON answer, which must have ``status``."""
    request = urllib.request.Request(url, method="POST" if body is not None else "GET")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
        request.data = json.dumps(body).encode()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # a 127.0.0.1 URL
            answered, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        answered, text = error.code, error.read()
    if answered != status:
        raise RuntimeError(f"{url} answered {answered}, not {status}: {text[:500]!r}")
    return json.loads(text) if text else None
