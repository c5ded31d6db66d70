"""The front door, measured: a product read through nginx or straight to Gunicorn.

``.venv/bin/python bench/frontdoor.py [--rounds 5] [--duration 5] [--connections 16]
[--threads 2] [--products 100]``

One catalog under the chassis' Gunicorn config (2 workers x 4 threads, access log off, worker
recycling off so no restart lands in one target's round), on a throw-away PostgreSQL database
with ``--products`` products, and nginx in front of it configured by ``scripts/nginx.py``
exactly as ``make run`` configures it (one upstream server, kept-alive connections, request
and response buffering, its JSON access log) but for its per-address rate limits, off
because wrk is one address. wrk loads ``GET /api/v1/products/{id}`` with ids drawn uniformly
(``frontdoor.lua``) through nginx and straight to Gunicorn, with the same parameters, in
rounds: every second round measures nginx first, so drift in the machine's other load
favours neither. Reported: each path's median round (rate, p50), the median of its rounds'
p99, and nginx's rate over Gunicorn's taken within each round, with the median of those. A
warm-up run through each path first fills every worker's product cache, so the rounds
measure the HTTP path (parsing, the proxy hop, the chassis) rather than the database.

wrk, nginx and Gunicorn share the machine's cores, so through nginx the same CPUs also run
the proxy: the ratio is what the hop costs on one machine, not on a separate proxy host. A
socket error or an answer outside 2xx in any run stops the benchmark: such a comparison is
void. Nothing here asserts on time; the figures go to ``bench/RESULTS.md`` ("Front door").
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from catalog import create_app as create_catalog
from catalog.config import CatalogSettings
from catalog.service import create_product
from flotilla.serving.processes import stop_process, wait_for_http
from flotilla.testing import GunicornServer, free_port, migrate, postgres_database
from wrk import BENCH_DIR, ROOT, WrkRun, ensure_wrk, parse_wrk, run_script, wrk_version

sys.path.insert(0, str(ROOT / "scripts"))  # scripts/nginx.py, which renders the config

from nginx import Tuning, Upstreams, command, render

SCRIPT = BENCH_DIR / "frontdoor.lua"
NO_RATE_LIMITS = Tuning(rate_limits=False)
"""nginx's per-address rate limits (20 r/s in production) off: wrk is one address."""
DIRECT, NGINX = "straight to Gunicorn", "through nginx"
CATALOG_ENV = {
    "ENVIRONMENT": "test",
    "LOG_LEVEL": "WARNING",
    "GUNICORN_WORKERS": "2",
    "GUNICORN_THREADS": "4",
    "GUNICORN_ACCESSLOG": "",
    "GUNICORN_MAX_REQUESTS": "0",
    "PROXY_HOPS": "1",
}


@dataclass(frozen=True)
class Options:
    """How long and how hard each round loads each path."""

    rounds: int
    duration: int
    connections: int
    threads: int
    products: int


def parse_options(argv: Sequence[str] | None) -> Options:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per path")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--products", type=int, default=100, help="products the ids span")
    args = parser.parse_args(argv)
    return Options(args.rounds, args.duration, args.connections, args.threads, args.products)


def main(argv: Sequence[str] | None = None) -> None:
    """Start catalog and nginx, measure both paths in alternating rounds, print Markdown."""
    options = parse_options(argv)
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as directory, running(Path(directory), options) as urls:
        for url in urls.values():  # warm-up: caches, kept-alive upstream connections
            measure(wrk, url, options, seconds=1)
        runs: dict[str, list[WrkRun]] = {DIRECT: [], NGINX: []}
        for number in range(options.rounds):
            order = [DIRECT, NGINX] if number % 2 == 0 else [NGINX, DIRECT]
            for path in order:
                runs[path].append(measure(wrk, urls[path], options, seconds=options.duration))
                print(f"round {number + 1}, {path}: {describe(runs[path][-1])}", flush=True)
    print(render_markdown(runs, options, wrk_version(wrk)))


@contextmanager
def running(directory: Path, options: Options) -> Iterator[dict[str, str]]:
    """catalog under Gunicorn and nginx in front; the base URL of each path."""
    with postgres_database() as database:
        env = {**CATALOG_ENV, "DATABASE_URL": database, "VAR_DIR": str(directory)}
        seed(CatalogSettings.model_validate(env), options.products)
        log = directory / "catalog.log"
        catalog = GunicornServer("catalog.wsgi:app", env=env, log_path=log, cwd=directory)
        with catalog, nginx_in_front(directory, f"127.0.0.1:{catalog.port}") as front:
            yield {DIRECT: catalog.url, NGINX: front}


def seed(settings: CatalogSettings, products: int) -> None:
    """Migrate catalog's database and add ``products`` products."""
    app = create_catalog(settings)
    migrate(app)
    with app.app_context():
        for number in range(1, products + 1):
            name = f"Product {number}"
            create_product(sku=f"BENCH-{number}", name=name, price=100, currency="EUR", stock=1)
    app.extensions["flotilla.db"].engine.dispose()


@contextmanager
def nginx_in_front(directory: Path, catalog: str) -> Iterator[str]:
    """nginx routing to ``catalog`` (the other services' upstreams are never asked)."""
    port = free_port()
    config = render(
        directory / "nginx",
        Upstreams.partial(catalog=[catalog]),
        port=port,
        tuning=NO_RATE_LIMITS,
    )
    with (directory / "nginx.log").open("ab") as log:
        process = subprocess.Popen(command(config), stdout=log, stderr=log)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=30, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process, timeout=10)


def measure(wrk: str, url: str, options: Options, *, seconds: int) -> WrkRun:
    """One wrk run of ``frontdoor.lua`` against ``url``."""
    output = run_script(
        wrk,
        script=SCRIPT,
        base_url=url,
        seconds=seconds,
        threads=options.threads,
        connections=options.connections,
        script_args=["1", str(options.products)],
    )
    run = parse_wrk(output)
    if errors(run):
        raise RuntimeError(f"{url}: {errors(run)} errors or non-2xx answers; the run is void")
    return run


def rate(run: WrkRun) -> float:
    """Completed requests per second."""
    return run.requests / run.duration_s if run.duration_s else 0.0


def errors(run: WrkRun) -> int:
    """Socket errors plus answers outside 2xx."""
    return sum(run.socket_errors) + run.non_2xx


def describe(run: WrkRun) -> str:
    """One run on one line."""
    return f"{rate(run):,.0f} req/s, p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms"


def median_run(runs: list[WrkRun]) -> WrkRun:
    """The run with the median rate (the slower middle one for an even count)."""
    ordered = sorted(runs, key=rate)
    return ordered[(len(ordered) - 1) // 2]


def round_ratios(runs: dict[str, list[WrkRun]]) -> list[float]:
    """nginx's rate over Gunicorn's, within each round (rounds minutes apart see another load)."""
    return [
        rate(front) / rate(direct) for direct, front in zip(runs[DIRECT], runs[NGINX], strict=True)
    ]


def render_markdown(runs: dict[str, list[WrkRun]], options: Options, version: str) -> str:
    """The table for bench/RESULTS.md, with the command and the machine."""
    ratios = round_ratios(runs)
    lines = [
        f"`.venv/bin/python bench/frontdoor.py --rounds {options.rounds} "
        f"--duration {options.duration} --connections {options.connections} "
        f"--threads {options.threads} --products {options.products}` "
        f"(wrk {version}, Python {platform.python_version()}, {platform.machine()})",
        "",
        "| path | req/s (rounds) | p50 ms | p99 ms (rounds) |",
        "|---|---|---|---|",
    ]
    for path in (DIRECT, NGINX):
        median = median_run(runs[path])
        every_rate = ", ".join(f"{rate(run):,.0f}" for run in runs[path])
        every_p99 = ", ".join(f"{run.p99_ms:.1f}" for run in runs[path])
        p99 = statistics.median(run.p99_ms for run in runs[path])
        lines.append(
            f"| {path} | {rate(median):,.0f} ({every_rate}) | {median.p50_ms:.2f} "
            f"| {p99:.1f} ({every_p99}) |"
        )
    every_ratio = ", ".join(f"{ratio:.2f}" for ratio in ratios)
    median_ratio = statistics.median(ratios)
    lines += ["", f"Through nginx / straight, per round: {every_ratio}; median {median_ratio:.2f}."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
