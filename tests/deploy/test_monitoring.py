"""Scraping in Kubernetes and Compose: every long-running process is a target at the port
it serves, only the monitoring namespace's Prometheus may reach it, and Compose mounts the
rules, the scrape configuration and the dashboards it ships.

Read as data, like the other deployment tests (no cluster or container engine here); the
Kubernetes scrape configuration is run by a real Prometheus in ``tests/monitoring``.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml

import prometheus
import system

from ..monitoring.rules import executable
from .conftest import ROOT, WEB_SERVICES, web_server_setting
from .test_compose import COMPOSE_FILE, command_of, compose, flotilla_services, service_environment
from .test_compose import example_secrets as example_compose_secrets
from .test_kubernetes import (
    OVERLAYS,
    Manifest,
    _pod,
    allowed,
    container,
    effective_environment,
    is_web,
    manifests,
    of_kind,
)

COMPOSE_SCRAPE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus"}


def metrics_port(overlay: str, deployment: Manifest) -> int:
    """The port the pod's process serves /metrics on, from its settings."""
    env = effective_environment(overlay, deployment)
    if is_web(deployment):
        bind = web_server_setting(env, "BIND")
    else:
        bind = env.get("METRICS_BIND", "")
        assert bind, f"{deployment['metadata']['name']} serves no metrics: METRICS_BIND unset"
    return int(bind.rpartition(":")[2])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_long_running_pod_is_annotated_with_the_port_its_process_serves(
    overlay: str,
) -> None:
    for name, deployment in of_kind(overlay, "Deployment").items():
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        port = metrics_port(overlay, deployment)

        assert annotations.get("prometheus.io/scrape") == "true", name
        assert annotations.get("prometheus.io/port") == str(port), name
        assert annotations.get("prometheus.io/path") == "/metrics", name
        declared = {item["containerPort"] for item in container(deployment).get("ports", [])}
        assert port in declared, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_prometheus_in_the_monitoring_namespace_reaches_the_metrics_ports(
    overlay: str,
) -> None:
    here = next(item for item in manifests(overlay) if item["kind"] == "Namespace")
    for name, deployment in of_kind(overlay, "Deployment").items():
        port = metrics_port(overlay, deployment)

        assert allowed(overlay, PROMETHEUS_POD, "monitoring", name, port), name
        assert not allowed(overlay, PROMETHEUS_POD, "elsewhere", name, port), name
        assert not allowed(overlay, {"app.kubernetes.io/name": "grafana"}, "monitoring", name, port)
        assert not allowed(overlay, PROMETHEUS_POD, "monitoring", name, 5432), name
    # the shop's own pods gain nothing: the worker still cannot call a relay's port
    worker = _pod("notifications", "worker")
    assert not allowed(overlay, worker, here["metadata"]["name"], "users-relay", 9100)


# -- Compose -----------------------------------------------------------------------------------


def test_compose_prometheus_scrapes_every_long_running_process_where_it_listens() -> None:
    services = compose()["services"]
    config = yaml.safe_load(COMPOSE_SCRAPE_CONFIG.read_text())
    (job,) = config["scrape_configs"]
    scraped = {
        tuple(group["targets"]): (group["labels"]["service"], group["labels"]["component"])
        for group in job["static_configs"]
    }
    expected = {}
    for name, service in flotilla_services().items():
        if services[name].get("restart") == "no":
            continue  # migrations and queue declarations run once and exit
        env = service_environment(name, example_compose_secrets())
        if name in WEB_SERVICES:
            port, component = int(web_server_setting(env, "BIND").rpartition(":")[2]), "web"
        else:
            port = int(env["METRICS_BIND"].rpartition(":")[2])
            component = next(
                program.removeprefix(f"{owner}-")
                for program, owner, arguments, _ in system.BACKGROUND_PROGRAMS
                if ("flask", "--app", owner, *arguments) == tuple(command_of(name))
            )
        expected[(f"{name}:{port}",)] = (service, component)

    assert scraped == expected
    layout = system.Layout(ROOT)
    labels = {(target.service, target.component) for target in prometheus.targets(layout)}
    assert set(scraped.values()) == labels  # the same labels as make run's and Kubernetes'


def test_compose_mounts_the_rules_the_configuration_and_the_dashboards() -> None:
    services = compose()["services"]
    checked = subprocess.run(
        [executable("promtool"), "check", "config", str(COMPOSE_SCRAPE_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    mounts = {
        volume.split(":")[1]: (COMPOSE_FILE.parent / volume.split(":")[0]).resolve()
        for name in ("prometheus", "grafana")
        for volume in services[name]["volumes"]
        if volume.startswith("..")
    }
    assert mounts["/etc/prometheus/prometheus.yml"] == COMPOSE_SCRAPE_CONFIG
    assert mounts["/etc/prometheus/rules.yml"] == COMPOSE_SCRAPE_CONFIG.parent / "rules.yml"
    dashboards = mounts["/var/lib/grafana/dashboards"]
    assert sorted(dashboards.glob("*.json")), "no dashboard is shipped"
    provisioning = mounts["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "flotilla.yml").read_text())[
        "providers"
    ]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    for dashboard in dashboards.glob("*.json"):
        text = dashboard.read_text()
        assert '"uid": "flotilla-prometheus"' in text  # every panel asks that data source
        assert source["uid"] == "flotilla-prometheus"
