"""``make bench``: the shop as ``make run`` starts it, against baselines, per component.

Why this shape:

* The question is whether the production stack is fast where it counts, as a user runs it:
  so the system is started by ``scripts/run.py`` itself (``stack``) on this machine's
  PostgreSQL, Redis and RabbitMQ, nginx in front, every service at its defaults, and loaded
  through the front door. The only change is nginx's per-address rate limit, off because
  the load comes from one address.
* Every comparison is made in the same run, on the same shared, noisy 2-core machine:
  baselines on the same database in alternating rounds with the shop's reads (``reads``);
  absolute numbers from another run or machine do not compare.
* Throughput alone hides where the time goes, so every measured run also counts the CPU of
  every process of the machine that is the run's, per component (``sampler``,
  ``accounting``), and how each server's workers shared it.
* Orders are measured with everything running and end with proof that nothing was lost
  (``ordering``, ``consistency``); the seeds' latency claim is tested at a fixed arrival
  rate, as stated (``rates``, with k6); memory is read after the load (``memory``).
* Logins and token verification need no system and run first, on their own (``logins``,
  ``in_process``).

This module only orchestrates; each concern has its module. Nothing here asserts on time:
the script measures and reports; readers judge.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from components import Classifier
from credentials import generate_signing_key
from database import prepare_database
from figures import render_before_after, save
from flotilla import load_settings
from flotilla.testing import postgres_database
from in_process import run_token_verification, time_password_hash
from isolation import isolated
from loads import Wrk
from logins import measure_logins
from memory import web_servers
from options import ROOT, Options, parse_options
from ordering import measure_orders
from procfs import read_argv
from rates import measure_rates
from reads import measure_reads
from report import describe_command, describe_machine, render_section, write_results
from results import Report, SystemDescription
from seeding import place_orders, seed
from stack import Stack, checkout_version, running_stack
from targets import chassis_env, users_env, users_under_gunicorn
from under_test import SystemUnderTest
from users.config import UsersSettings
from wrk import ensure_wrk

RUN_COMMAND = "scripts/run.py --no-rate-limits"


def main(argv: Sequence[str] | None = None) -> None:
    """Measure what the options ask for; print it; write RESULTS.md and the figures."""
    signal.signal(signal.SIGTERM, _terminate)  # stop the system and clean up, as on Ctrl-C
    options = parse_options(argv)
    started = time.monotonic()
    wrk_path = ensure_wrk()
    report = Report(options, describe_command(argv), datetime.now(UTC), describe_machine(wrk_path))
    if "tokens" in options.sections:
        print("timing token verification in process", flush=True)
        report.token_verification = run_token_verification()
    if "logins" in options.sections:
        measure_login_section(options, wrk_path, report)
    wrk = measure_system(options, wrk_path, report) if options.system else None
    report.elapsed_s = time.monotonic() - started
    publish(report, wrk)


def measure_login_section(options: Options, wrk: str, report: Report) -> None:
    """One password hash in process, then logins over HTTP, on a users service of its own."""
    with postgres_database() as database_url, tempfile.TemporaryDirectory() as logs:
        env = users_env(database_url, generate_signing_key())
        settings = load_settings(UsersSettings, **env)
        id_range = prepare_database(settings, options.users)
        print("timing Argon2id hashes in process", flush=True)
        report.password_hash = time_password_hash(settings)
        users = users_under_gunicorn(chassis_env(env))
        report.logins = measure_logins(
            users, wrk=wrk, options=options, id_range=id_range, logs=Path(logs)
        )


def measure_system(options: Options, wrk_path: str, report: Report) -> Wrk:
    """Start the system, seed it, measure its sections, read memory; stop it, clean up."""
    print(f"starting {RUN_COMMAND} in {options.shop_root} ...", flush=True)
    with (
        isolated() as isolation,
        timed("the system, started to stopped"),
        running_stack(options.shop_root, isolation) as stack,
    ):
        report.system = describe_system(stack)
        classifier = Classifier({stack.process.pid: None}, isolation.database_prefix, read_argv)
        wrk = Wrk(wrk_path, options.threads, classifier)
        logs = isolation.var_dir / "bench"
        logs.mkdir()
        system = SystemUnderTest(stack, seed(stack), wrk, options, logs)
        order_ids = (0, 0)
        if "reads" in options.sections or "rates" in options.sections:
            token = system.customer_token()
            order_ids = place_orders(stack, token, system.seeded, options.read_orders)
        if "reads" in options.sections:
            with timed("reads"):
                report.reads = measure_reads(system, order_ids)
        if "orders" in options.sections:
            with timed("orders"):
                report.orders = measure_orders(system)
        if "rates" in options.sections:
            with timed("rates"):
                report.rates = measure_rates(system, order_ids)
        report.memory = web_servers(stack.process.pid)
        print("stopping the system (Ctrl-C to make run) ...", flush=True)
    return wrk


@contextlib.contextmanager
def timed(section: str) -> Iterator[None]:
    """Print how long ``section`` took, for whoever keeps the run within its budget."""
    started = time.monotonic()
    yield
    print(f"[{section}] took {time.monotonic() - started:.0f} s", flush=True)


def describe_system(stack: Stack) -> SystemDescription:
    """The checkout and each web service's server, as they run now."""
    servers = tuple(
        (
            web.component,
            f"{web.server} {package_version(stack, web.server)}, "
            f"{len(web.workers)} worker processes",
            web.command,
        )
        for web in web_servers(stack.process.pid)
    )
    # Named, not pathed: a path would only say where one machine keeps the checkout.
    checkout = "this checkout" if stack.root == ROOT else "another checkout (`--shop-root`)"
    return SystemDescription(checkout, checkout_version(stack.root), RUN_COMMAND, servers)


def package_version(stack: Stack, name: str) -> str:
    """The version of package ``name`` in the checkout's environment."""
    code = "import importlib.metadata, sys; print(importlib.metadata.version(sys.argv[1]))"
    command = [str(stack.python), "-c", code, name]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    return done.stdout.strip() or "?"


def publish(report: Report, wrk: Wrk | None) -> None:
    """Print the section; write RESULTS.md, the saved figures, the before/after table."""
    options = report.options
    section = render_section(report, wrk)
    checkout = report.system.version if report.system else checkout_version(ROOT)
    if options.before is not None:
        before = json.loads(options.before.read_text())
        section += "\n\n### Before and after\n\n" + render_before_after(before, report, checkout)
    print(f"\n{section}")
    if options.results is not None:
        write_results(options.results, section)
        print(f"\nwrote {options.results.relative_to(ROOT)}")
    if options.save is not None:
        save(report, options.save, checkout)
        print(f"wrote {options.save}")


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    main()
