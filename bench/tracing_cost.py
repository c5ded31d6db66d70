"""What tracing costs a request: off (the default), on but not sampled, on and sampled.

``.venv/bin/python bench/tracing_cost.py [--rounds 15] [--requests 400]``

Three catalog servers run side by side on one PostgreSQL database, each under granian with
one worker, identical but for their ``OTEL_*`` settings:

* **off**: no ``OTEL_*`` setting, the default: the packages are installed, nothing is
  instrumented;
* **unsampled**: ``OTEL_EXPORTER_OTLP_ENDPOINT`` set and ``OTEL_TRACES_SAMPLER=always_off``:
  every instrumentation runs, no span is recorded or exported;
* **sampled**: the same with ``always_on``: every request's spans are recorded and exported
  (batched, every 5 s by default) to a real OTLP/HTTP receiver in this process, which counts
  them, so the figures are known to include the export.

Two reads, sequential on a kept-alive connection: ``GET /api/v1/products?limit=1`` (a
one-row page: one SQL statement, so a server span and a statement span when sampled) and
``GET /api/v1/products/<id>`` (answered from the worker's cache: the server span alone).
Each round hits every server with ``--requests`` requests of each read, the servers in turn,
every second round in reverse order, so a drift of the machine's load favours none. Per
round and server: the client's median latency, and the worker's CPU per request from
``/proc/<pid>/stat`` (10 ms ticks, hence many requests per round). The median round is
reported, and each variant's difference to **off** taken within each round.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import urllib3

from catalog import create_app as create_catalog
from catalog.config import CatalogSettings
from flotilla.auth import SigningKey
from flotilla.auth.keys import public_pem
from flotilla.auth.tokens import issue_access_token
from flotilla.config import AuthSettings
from flotilla.testing import GranianServer, migrate, postgres_database
from flotilla.testing.telemetry import OtlpReceiver
from procfs import read_stat

VARIANTS = ("off", "unsampled", "sampled")
READS = ("page", "cached")


@dataclass
class Variant:
    """One server and what was measured on it, per read."""

    name: str
    server: GranianServer
    pool: urllib3.HTTPConnectionPool
    latency_us: dict[str, list[float]] = field(default_factory=dict)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)


def main() -> None:
    """Start the servers, measure in interleaved rounds, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=400)
    options = parser.parse_args()
    with running_variants() as (variants, receiver, paths):
        for variant in variants:  # warm up: caches, the SDK started, pools opened
            for path in paths.values():
                measure(variant, path, 100)
        for round_number in range(options.rounds):
            ordered = variants if round_number % 2 == 0 else variants[::-1]
            for read, path in paths.items():
                for variant in ordered:
                    latency, cpu = measure(variant, path, options.requests)
                    variant.latency_us.setdefault(read, []).append(latency)
                    variant.cpu_us.setdefault(read, []).append(cpu)
        time.sleep(6)  # one more export interval: every sampled span has arrived
        report(variants, receiver.spans(), options)


@contextlib.contextmanager
def running_variants() -> Iterator[tuple[list[Variant], OtlpReceiver, dict[str, str]]]:
    """The three servers on one seeded database, the receiver, the two read paths."""
    key = SigningKey.generate()
    with (
        TemporaryDirectory() as directory,
        postgres_database() as database,
        OtlpReceiver() as receiver,
    ):
        var = Path(directory)
        env = {
            "DATABASE_URL": database,
            "VAR_DIR": str(var),
            "ENVIRONMENT": "test",
            "RATE_LIMITS_ENABLED": "false",
            "AUTH_PUBLIC_KEYS": public_pem(key.public_key),
            "GRANIAN_WORKERS": "1",
        }
        product_id = seed(env, key)
        tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
        extra = {
            "off": {},
            "unsampled": {**tracing, "OTEL_TRACES_SAMPLER": "always_off"},
            "sampled": {**tracing, "OTEL_TRACES_SAMPLER": "always_on"},
        }
        variants = []
        try:
            for name in VARIANTS:
                server = GranianServer(
                    "catalog.wsgi:app",
                    env={**env, **extra[name]},
                    log_path=var / f"{name}.log",
                    cwd=var,
                )
                server.start()
                pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, maxsize=1)
                variants.append(Variant(name, server, pool))
            paths = {"page": "/api/v1/products?limit=1", "cached": f"/api/v1/products/{product_id}"}
            yield variants, receiver, paths
        finally:
            for variant in variants:
                variant.server.stop()


def seed(env: dict[str, str], key: SigningKey) -> int:
    """Migrate the database and create one product; its id."""
    app = create_catalog(CatalogSettings.model_validate(env))
    migrate(app)
    fields = AuthSettings.model_fields
    token = issue_access_token(
        key,
        subject="1",
        roles=("admin",),
        issuer=fields["AUTH_ISSUER"].default,
        audience=fields["AUTH_AUDIENCE"].default,
        lifetime=timedelta(minutes=10),
    )
    response = app.test_client().post(
        "/api/v1/products",
        json={"sku": "MUG-1", "name": "Mug", "price": 1025, "currency": "EUR", "stock": 5},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    with app.app_context():
        app.extensions["flotilla.db"].engine.dispose()
    product_id: int = response.get_json()["id"]
    return product_id


def measure(variant: Variant, path: str, requests: int) -> tuple[float, float]:
    """``requests`` sequential GETs: median latency and the worker's CPU, µs per request."""
    (worker,) = variant.server.workers()
    before = read_stat(worker)
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        response = variant.pool.urlopen("GET", path, retries=False)
        latencies.append(time.perf_counter() - started)
        assert response.status == 200, response.data
    after = read_stat(worker)
    assert before is not None
    assert after is not None
    cpu = (after.own_s - before.own_s) / requests
    return statistics.median(latencies) * 1e6, cpu * 1e6


def report(variants: list[Variant], spans: Sequence[object], options: argparse.Namespace) -> None:
    """The Markdown table: medians of the rounds, differences to off within each round."""
    off = variants[0]
    print(f"{options.rounds} rounds x {options.requests} requests per read and variant; ")
    print(f"spans received from the sampled server: {len(spans)}\n")
    print(
        "| read | variant | latency µs (median round) | Δ latency vs off | "
        "worker CPU µs/request | Δ CPU vs off |"
    )
    print("|---|---|---|---|---|---|")
    for read in READS:
        for variant in variants:
            latency = variant.latency_us[read]
            cpu = variant.cpu_us[read]
            dl = [a - b for a, b in zip(latency, off.latency_us[read], strict=True)]
            dc = [a - b for a, b in zip(cpu, off.cpu_us[read], strict=True)]
            print(
                f"| {read} | {variant.name} | {statistics.median(latency):.0f} | "
                f"{statistics.median(dl):+.0f} | {statistics.median(cpu):.0f} | "
                f"{statistics.median(dc):+.0f} |"
            )


if __name__ == "__main__":
    main()
