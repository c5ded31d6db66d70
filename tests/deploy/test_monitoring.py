"""Kubernetes scraping: every long-running pod says where its metrics are, the metrics port
is the one its process serves, and only the monitoring namespace's Prometheus may reach it.

Read as data, like the other manifests' tests (no cluster here); the scrape configuration
that reads the annotations is run by a real Prometheus in ``tests/monitoring``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import web_server_setting
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

ROOT = Path(__file__).resolve().parents[2]
SCRAPE_CONFIG = ROOT / "deploy" / "prometheus" / "kubernetes.yml"
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
