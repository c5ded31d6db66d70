"""What verifying a bearer token costs: per call, and per request under ``require_auth``.

``.venv/bin/python bench/token_verification.py [--repeats 7] [--tokens 5000] [--requests 2000]
[--rounds 9]``

Every figure comes twice, because the verifier remembers the tokens it has verified
(``AUTH_TOKEN_CACHE_SIZE``, default 4096): *cold*, a token the verifier has not seen (header
checks, key lookup, Ed25519 signature, claims, and storing the result), and *warm*, a token it
verified before (a dictionary lookup, the expiry and the key re-checked). A client reuses its
access token until it expires, so most requests are warm; the first request with each new
token is cold. All measured in this one run, in process, with no server or network:

* ``TokenVerifier.verify``, configured as the chassis configures it, timed with ``timeit``:
  cold on a fresh batch of ``--tokens`` tokens per repeat, each verified once; warm on one
  token verified again and again. The best of several repeats is the least disturbed by the
  machine's other work, the median is what a request usually pays.
* The same trivial route called through Flask's test client without auth, and with
  ``@require_auth()`` given a new token on every request (cold) or the same one (warm). Every
  request carries an ``Authorization`` header, so the difference to the open route is the
  decorator's work (parsing the header, verifying, setting ``g`` and the log context). The
  three are measured in alternating rounds, every second one in reverse order, so a drift of
  the machine's load favours none; the median round is reported. The absolute µs include the
  test client and the whole chassis request cycle; read the differences and the ratios, not
  the totals, and only against this run.

Logging is at WARNING so the per-request access line does not write to the terminal;
nothing here asserts on time: the script measures and reports, readers judge.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import os
import platform
import tempfile
import timeit
from collections.abc import Callable, Iterator, Sequence
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
from flotilla.config import AuthSettings
from timing import Timing

ISSUER = "urn:flotilla:users"
AUDIENCE = "flotilla"
CACHE_SIZE: int = AuthSettings.model_fields["AUTH_TOKEN_CACHE_SIZE"].default
"""The chassis' default, used by both the verifier and the app measured here."""
ROUTES = ("open", "cold", "warm")
"""The open route; the protected one with a new token each request, and with the same one."""


def main(argv: Sequence[str] | None = None) -> None:
    """Measure every figure and print them as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timeit repeats of verify")
    parser.add_argument("--tokens", type=int, default=5000, help="new tokens per cold repeat")
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=9, help="rounds per route")
    args = parser.parse_args(argv)
    key = SigningKey.generate()
    cold, warm = measure_verify(key, args.repeats, args.tokens)
    with tempfile.TemporaryDirectory() as var_dir:
        client = build_app(key, Path(var_dir)).test_client()
        routes = measure_routes(client, key, args.requests, args.rounds)
    print(render(cold, warm, routes, args))


def issue(key: SigningKey) -> str:
    """A new access token, valid for 15 minutes, that the benchmark app accepts."""
    return issue_access_token(
        key,
        subject="1",
        roles=["customer"],
        issuer=ISSUER,
        audience=AUDIENCE,
        lifetime=timedelta(minutes=15),
    )


def measure_verify(key: SigningKey, repeats: int, tokens: int) -> tuple[Timing, Timing]:
    """µs per ``TokenVerifier.verify`` call, cold and warm, one sample per timeit repeat."""
    verifier = TokenVerifier(
        StaticKeys(verification_keys([key.public_key])),
        issuer=ISSUER,
        audience=AUDIENCE,
        cache_size=CACHE_SIZE,
    )
    cold = tuple(_time_cold(verifier, [issue(key) for _ in range(tokens)]) for _ in range(repeats))
    token = issue(key)
    timer = timeit.Timer(lambda: verifier.verify(token))
    number, _ = timer.autorange()
    number *= 5  # autorange aims at 0.2 s; a second per repeat steadies the figure
    warm = tuple(total / number * 1e6 for total in timer.repeat(repeats, number))
    return Timing(cold), Timing(warm)


def _time_cold(verifier: TokenVerifier, tokens: list[str]) -> float:
    """µs per call verifying each of ``tokens``, none seen before, once."""
    fresh = iter(tokens)
    elapsed = timeit.timeit(lambda: verifier.verify(next(fresh)), number=len(tokens))
    return elapsed / len(tokens) * 1e6


def build_app(key: SigningKey, var_dir: Path) -> Flask:
    """A chassis app with the same trivial route open and behind ``require_auth``."""
    settings = ServiceSettings(
        SERVICE_NAME="bench-auth",
        VAR_DIR=var_dir,
        LOG_LEVEL="WARNING",
        AUTH_PUBLIC_KEYS=public_pem(key.public_key),
        AUTH_TOKEN_CACHE_SIZE=CACHE_SIZE,
    )
    app = create_service("bench_auth", settings)

    def trivial() -> dict[str, str]:
        return {"status": "ok"}

    app.add_url_rule("/open", "open", trivial)
    app.add_url_rule("/protected", "protected", require_auth()(trivial))
    return app


def measure_routes(
    client: FlaskClient, key: SigningKey, requests: int, rounds: int
) -> dict[str, Timing]:
    """µs per request of each of :data:`ROUTES`, measured in alternating rounds."""
    same = f"Bearer {issue(key)}"
    needed = 1 + requests // 4 + rounds * requests  # check, warm-up, rounds
    # Issued before timing, so a cold request pays for verifying its token, not for signing it.
    new = iter([f"Bearer {issue(key)}" for _ in range(needed)])
    calls = {
        "open": _caller(client, "/open", itertools.repeat(same)),
        "cold": _caller(client, "/protected", new),
        "warm": _caller(client, "/protected", itertools.repeat(same)),
    }
    for call in calls.values():
        _check(call)
        timeit.timeit(call, number=requests // 4)  # warm up
    samples: dict[str, list[float]] = {route: [] for route in ROUTES}
    for round_number in range(rounds):
        order = ROUTES if round_number % 2 == 0 else ROUTES[::-1]
        for route in order:
            elapsed = timeit.timeit(calls[route], number=requests)
            samples[route].append(elapsed / requests * 1e6)
    return {route: Timing(tuple(samples[route])) for route in ROUTES}


def _caller(client: FlaskClient, path: str, authorizations: Iterator[str]) -> Callable[[], object]:
    def call() -> object:
        return client.get(path, headers={"Authorization": next(authorizations)})

    return call


def _check(call: Callable[[], object]) -> None:
    """Refuse to time a route that does not answer 200 (e.g. a token the app rejects)."""
    status = getattr(call(), "status_code", None)
    if status != 200:
        raise SystemExit(f"the benchmark route answered {status}, not 200")


def render(cold: Timing, warm: Timing, routes: dict[str, Timing], args: argparse.Namespace) -> str:
    """The results as a Markdown table with the conditions of the run."""
    open_route = routes["open"]
    rows = [
        ("`TokenVerifier.verify`, a token not seen before (cold)", cold, "per call"),
        ("`TokenVerifier.verify`, a token verified before (warm)", warm, "per call"),
        ("trivial route, no auth", open_route, "per request"),
        (
            "trivial route, `@require_auth()`, a new token each request",
            routes["cold"],
            "per request",
        ),
        ("trivial route, `@require_auth()`, the same token", routes["warm"], "per request"),
    ]
    added = {name: routes[name].median - open_route.median for name in ("cold", "warm")}
    ratio = {name: routes[name].median / open_route.median for name in ("cold", "warm")}
    lines = [
        "| measurement | median µs | best µs | unit |",
        "|---|---:|---:|---|",
        *(f"| {name} | {t.median:.1f} | {t.best:.1f} | {unit} |" for name, t, unit in rows),
        "",
        f"`require_auth` adds {added['cold']:.1f} µs per request with a new token and "
        f"{added['warm']:.1f} µs with a token verified before (medians of rounds); "
        f"protected / open = {ratio['cold']:.2f} and {ratio['warm']:.2f} times.",
        "",
        f"verify: {args.repeats} timeit repeats, cold over {args.tokens} new tokens each; "
        f"routes: {args.rounds} interleaved rounds of {args.requests} test-client requests "
        f"each; token cache of {CACHE_SIZE} (the default).",
        f"Python {platform.python_version()}, PyJWT {_version('pyjwt')}, cryptography "
        f"{_version('cryptography')}, Flask {_version('flask')}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}.",
    ]
    return "\n".join(lines)


def _version(distribution: str) -> str:
    return importlib.metadata.version(distribution)


if __name__ == "__main__":
    main()
