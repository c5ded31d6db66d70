"""The running shop under a real Prometheus: every process scraped, every name the rules
and dashboards use present, and an alert that fires for real.

``scripts/run.py`` starts the whole system (the embedded default: SQLite, the file broker,
mail as files) on free ports; Debian's ``prometheus`` is started beside it with the
configuration ``scripts/prometheus.py`` renders, scraping and evaluating every second. The
rules it loads are the shipped ones, with one change: the outbox alert's threshold and
``for`` shortened so that it fires within seconds (the shipped values are what promtool's
unit tests hold). ``scripts/demo.py`` walks through the shop first, so that every series the
dashboards chart has been written at least once. Then the users relay is frozen (SIGSTOP),
a customer registers, and the welcome event waits in the outbox until ``FlotillaOutboxLag``
fires; thawed, the relay publishes it and the alert resolves.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import prometheus
from console.charts import grid, prometheus_series
from flotilla.testing import wait_until
from system import BACKGROUND_PROGRAMS, WEB_SERVICES, Layout

from ..e2e.calls import call
from ..e2e.running import SCRIPTS, Runner, embedded_environment, free_base_port
from .rules import RULES, load_rules, series_names
from .server import Prometheus

GRAFANA_DASHBOARDS = RULES.parents[1] / "grafana" / "dashboards"
TEST_THRESHOLD_SECONDS = 2


def fast_rules(directory: Path) -> Path:
    """The shipped rules, the outbox alert firing after ``TEST_THRESHOLD_SECONDS``."""
    document = yaml.safe_load(RULES.read_text())
    (lag,) = [
        rule
        for group in document["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "FlotillaOutboxLag"
    ]
    shipped = lag["expr"]
    lag["expr"] = shipped.replace("> 120", f"> {TEST_THRESHOLD_SECONDS}")
    assert lag["expr"] != shipped, "the outbox alert's threshold moved: update this test"
    lag["for"] = "1s"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "rules.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def monitored(tmp_path: Path) -> Iterator[tuple[Runner, Prometheus]]:
    """The shop started by ``scripts/run.py``, and Prometheus scraping it."""
    runner = Runner(tmp_path / "var", free_base_port())
    server: Prometheus | None = None
    try:
        directory, layout = tmp_path / "prometheus", Layout(runner.var_dir, runner.base_port)
        config = prometheus.render(directory, layout, rules=[fast_rules(directory)], interval="1s")
        server = Prometheus(directory, config)
        runner.wait_for_banner()
        wait_until(server.ready, timeout=30, what="Prometheus ready")
        yield runner, server
    finally:
        if server is not None:
            server.stop()
        runner.kill()


def all_targets_up(server: Prometheus) -> bool:
    """Every target scraped, and answering."""
    active = server.api("targets")["activeTargets"]
    return len(active) == len(prometheus.targets(Layout(Path(), 0))) and all(
        target["health"] == "up" for target in active
    )


def expressions() -> list[str]:
    """Every PromQL expression the rules and the dashboards hold."""
    found = [str(rule["expr"]) for rule in load_rules()]
    for dashboard in GRAFANA_DASHBOARDS.glob("*.json"):
        found += dashboard_expressions(json.loads(dashboard.read_text()))
    return found


def dashboard_expressions(node: Any) -> list[str]:
    """The ``expr`` of every target of every panel, at any depth of a dashboard."""
    if isinstance(node, dict):
        own = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return own + [expr for value in node.values() for expr in dashboard_expressions(value)]
    if isinstance(node, list):
        return [expr for value in node for expr in dashboard_expressions(value)]
    return []


def register_customer(runner: Runner) -> None:
    """A new customer, straight at users: its ``user.registered`` event enters the outbox."""
    name = f"watcher{uuid.uuid4().hex[:8]}"
    body = {"username": name, "email": f"{name}@example.com", "password": "correct horse battery"}
    users = json.loads((runner.var_dir / "run.json").read_text())["services"]["users"]
    status, answer, _ = call("POST", f"{users}/api/v1/users", body)
    assert status == 201, answer


def process_id(runner: Runner, name: str) -> int:
    """The process id of ``name`` (``users-relay``), from ``run.json``."""
    pid: int = json.loads((runner.var_dir / "run.json").read_text())["processes"][name]
    return pid


def check_the_consoles_charts(runner: Runner, server: Prometheus) -> None:
    """The console's chart queries, on this Prometheus: each service's traffic, charted.

    A counter's first scrape is its baseline, so the requests are sent while polling: their
    rate shows once two scrapes have seen them.
    """
    services = json.loads((runner.var_dir / "run.json").read_text())["services"]
    paths = {"users": "/.well-known/jwks.json", "catalog": "/api/v1/products"}
    paths["orders"] = "/api/v1/orders"  # a 401 without a token: traffic all the same

    def charted() -> bool:
        for service, path in paths.items():
            call("GET", f"{services[service]}{path}")
        series = prometheus_series(server.url, grid())["requests"]
        return all((series.get(service) or [None])[-1] for service in paths)

    wait_until(charted, timeout=30, what="each service's requests in the console's charts")
    series = prometheus_series(server.url, grid())
    assert set(series) == {"requests", "errors", "latency_ms"}
    assert set(paths) <= set(series["latency_ms"])
    assert all(len(values) == len(grid()) for values in series["requests"].values())


@pytest.mark.process
def test_prometheus_scrapes_every_process_and_the_outbox_alert_fires_for_real(
    monitored: tuple[Runner, Prometheus],
) -> None:
    runner, server = monitored
    assert len(prometheus.targets(Layout(Path(), 0))) == len(WEB_SERVICES) + len(
        BACKGROUND_PROGRAMS
    )
    wait_until(lambda: all_targets_up(server), timeout=60, what="every target up")
    demo = subprocess.run(  # every kind of request, calls between services, events, e-mails
        [sys.executable, str(SCRIPTS / "demo.py"), "--var-dir", str(runner.var_dir)],
        env=embedded_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr

    recorded = {str(rule["record"]) for rule in load_rules() if "record" in rule}
    used = {name for expression in expressions() for name in series_names(expression)}
    with contextlib.suppress(TimeoutError):  # the assertion below names what is missing
        wait_until(  # the demo's last calls are in the next scrape, a second or so later
            lambda: used <= server.metric_names() | recorded,
            timeout=30,
            what="every name in a scrape",
        )
    assert used - (server.metric_names() | recorded) == set(), "names no scrape has"
    rules = [rule for group in server.api("rules")["groups"] for rule in group["rules"]]
    assert len(rules) == len(load_rules())
    assert {rule["health"] for rule in rules} == {"ok"}, [r for r in rules if r["health"] != "ok"]
    assert server.alert_states("FlotillaOutboxLag") == {}
    check_the_consoles_charts(runner, server)

    relay = process_id(runner, "users-relay")
    os.kill(relay, signal.SIGSTOP)  # stuck: neither publishing nor answering scrapes
    try:
        register_customer(runner)
        wait_until(
            lambda: server.alert_states("FlotillaOutboxLag").get("users") == "firing",
            timeout=60,
            what="FlotillaOutboxLag firing for users",
        )
        assert server.alert_states("FlotillaOutboxLag") == {"users": "firing"}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(relay, signal.SIGCONT)
    wait_until(
        lambda: server.alert_states("FlotillaOutboxLag") == {},
        timeout=60,
        what="FlotillaOutboxLag resolved once the relay runs again",
    )
