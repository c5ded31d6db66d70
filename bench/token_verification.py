"""What verifying a bearer token costs: per call, and per request under ``require_auth``.

``.venv/bin/python bench/token_verification.py [--repeats 7] [--requests 2000] [--rounds 9]``

Two figures, both measured in this one run, in process, with no server or network:

* ``TokenVerifier.verify`` on a valid EdDSA access token (header checks, key lookup, Ed25519
  signature, claims), timed with ``timeit``: the best of several repeats is the least
  disturbed by the machine's other work, the median is what a request usually pays.
* The same trivial route called through Flask's test client with and without
  ``@require_auth()``; both requests carry the same ``Authorization`` header, so the
  difference is the decorator's work (parsing the header, verifying, setting ``g`` and the
  log context). The two routes are measured in alternating rounds, every second one in
  reverse order, so a drift of the machine's load favours neither; the median round is
  reported. The absolute µs include the test client and the whole chassis request cycle;
  read the difference and the ratio, not the totals, and only against this run.

Logging is at WARNING so the per-request access line does not write to the terminal;
nothing here asserts on time: the script measures and reports, readers judge.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import statistics
import tempfile
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from flotilla import ServiceSettings, create_service
from flotilla.auth import (
    SigningKey,
    StaticKeys,
    TokenVerifier,
    issue_access_token,
    public_pem,
    require_auth,
    verification_keys,
)

ISSUER = "urn:flotilla:users"
AUDIENCE = "flotilla"


@dataclass(frozen=True)
class Timing:
    """Microseconds per operation over several samples."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """The usual cost."""
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        """The least disturbed cost."""
        return min(self.samples)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure both figures and print them as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timeit repeats of verify")
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=9, help="rounds per route")
    args = parser.parse_args(argv)
    key = SigningKey.generate()
    token = issue_access_token(
        key,
        subject="user-1",
        roles=["customer"],
        issuer=ISSUER,
        audience=AUDIENCE,
        lifetime=timedelta(minutes=15),
    )
    verify = measure_verify(key, token, args.repeats)
    with tempfile.TemporaryDirectory() as var_dir:
        client = build_app(key, Path(var_dir)).test_client()
        open_route, protected = measure_routes(client, token, args.requests, args.rounds)
    print(render(verify, open_route, protected, args))


def measure_verify(key: SigningKey, token: str, repeats: int) -> Timing:
    """µs per ``TokenVerifier.verify`` call, one sample per timeit repeat."""
    verifier = TokenVerifier(
        StaticKeys(verification_keys([key.public_key])), issuer=ISSUER, audience=AUDIENCE
    )
    timer = timeit.Timer(lambda: verifier.verify(token))
    number, _ = timer.autorange()
    number *= 5  # autorange aims at 0.2 s; a second per repeat steadies the figure
    return Timing(tuple(total / number * 1e6 for total in timer.repeat(repeats, number)))


def build_app(key: SigningKey, var_dir: Path) -> Flask:
    """A chassis app with the same trivial route open and behind ``require_auth``."""
    settings = ServiceSettings(
        SERVICE_NAME="bench-auth",
        VAR_DIR=var_dir,
        LOG_LEVEL="WARNING",
        AUTH_PUBLIC_KEYS=public_pem(key.public_key),
    )
    app = create_service("bench_auth", settings)

    def trivial() -> dict[str, str]:
        return {"status": "ok"}

    app.add_url_rule("/open", "open", trivial)
    app.add_url_rule("/protected", "protected", require_auth()(trivial))
    return app


def measure_routes(
    client: FlaskClient, token: str, requests: int, rounds: int
) -> tuple[Timing, Timing]:
    """µs per request of ``/open`` and ``/protected``, measured in alternating rounds."""
    headers = {"Authorization": f"Bearer {token}"}
    calls: dict[str, Callable[[], object]] = {
        path: _caller(client, path, headers) for path in ("/open", "/protected")
    }
    for call in calls.values():
        _check(call)
        timeit.timeit(call, number=requests // 4)  # warm up
    samples: dict[str, list[float]] = {path: [] for path in calls}
    for round_number in range(rounds):
        order = list(calls) if round_number % 2 == 0 else list(reversed(calls))
        for path in order:
            elapsed = timeit.timeit(calls[path], number=requests)
            samples[path].append(elapsed / requests * 1e6)
    return Timing(tuple(samples["/open"])), Timing(tuple(samples["/protected"]))


def _caller(client: FlaskClient, path: str, headers: dict[str, str]) -> Callable[[], object]:
    def call() -> object:
        return client.get(path, headers=headers)

    return call


def _check(call: Callable[[], object]) -> None:
    """Refuse to time a route that does not answer 200 (e.g. a token the app rejects)."""
    status = getattr(call(), "status_code", None)
    if status != 200:
        raise SystemExit(f"the benchmark route answered {status}, not 200")


def render(verify: Timing, open_route: Timing, protected: Timing, args: argparse.Namespace) -> str:
    """The results as a Markdown table with the conditions of the run."""
    cost = protected.median - open_route.median
    rows = [
        ("`TokenVerifier.verify` (valid token)", verify, "per call"),
        ("trivial route, no auth", open_route, "per request"),
        ("trivial route, `@require_auth()`", protected, "per request"),
    ]
    lines = [
        "| measurement | median µs | best µs | unit |",
        "|---|---:|---:|---|",
        *(f"| {name} | {t.median:.1f} | {t.best:.1f} | {unit} |" for name, t, unit in rows),
        "",
        f"`require_auth` adds {cost:.1f} µs per request (median of rounds); "
        f"protected / open = {protected.median / open_route.median:.2f} times.",
        "",
        f"verify: {args.repeats} timeit repeats; routes: {args.rounds} interleaved rounds of "
        f"{args.requests} test-client requests each.",
        f"Python {platform.python_version()}, PyJWT {_version('pyjwt')}, cryptography "
        f"{_version('cryptography')}, Flask {_version('flask')}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}.",
    ]
    return "\n".join(lines)


def _version(distribution: str) -> str:
    return importlib.metadata.version(distribution)


if __name__ == "__main__":
    main()
