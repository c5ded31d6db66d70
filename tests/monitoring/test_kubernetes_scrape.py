"""``deploy/prometheus/kubernetes.yml`` run by a real Prometheus, its discovery stood in for.

Debian's Prometheus is built without Kubernetes service discovery, and there is no cluster
here. So the test keeps the job's relabelling exactly as shipped and replaces only the
discovery with static targets carrying the ``__meta_kubernetes_*`` labels the pod role would
give: an annotated relay pod whose address is a metrics port served by this process, and a
pod that does not ask to be scraped. Prometheus must scrape the first, at the annotated
port and path, labelled with its ``service`` and ``component``, and drop the second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from flotilla.observability.metrics_server import MetricsServer, serve_metrics
from flotilla.testing import wait_until

from .rules import RULES
from .server import Prometheus

SCRAPE_CONFIG = RULES.parent / "kubernetes.yml"


def pod(port: int, *, scrape: str, name: str, component: str) -> dict[str, str]:
    """What Kubernetes discovery says of one pod of the shop."""
    return {
        "__meta_kubernetes_namespace": "flotilla",
        "__meta_kubernetes_pod_name": f"{name}-{component}-7d9f-x2x",
        "__meta_kubernetes_pod_ip": "127.0.0.1",
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": scrape,
        "__meta_kubernetes_pod_annotation_prometheus_io_port": str(port),
        "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": name,
        "__meta_kubernetes_pod_label_app_kubernetes_io_component": component,
    }


def without_discovery(directory: Path, pods: list[dict[str, str]]) -> Path:
    """The shipped configuration, its Kubernetes discovery replaced by ``pods``."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    (job,) = config["scrape_configs"]
    del job["kubernetes_sd_configs"]
    # The pod's container port Kubernetes would list first: not the metrics port.
    job["static_configs"] = [{"targets": ["127.0.0.1:1"], "labels": labels} for labels in pods]
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(RULES)]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def relay_metrics() -> Iterator[MetricsServer]:
    """A metrics port served by this process, as a relay serves METRICS_BIND."""
    server = serve_metrics("127.0.0.1:0")
    assert server is not None
    yield server
    server.stop()


@pytest.mark.process
def test_annotated_pods_are_scraped_at_their_port_with_service_and_component(
    tmp_path: Path, relay_metrics: MetricsServer
) -> None:
    pods = [
        pod(relay_metrics.port, scrape="true", name="users", component="relay"),
        pod(relay_metrics.port, scrape="false", name="postgres", component="database"),
    ]
    server = Prometheus(tmp_path, without_discovery(tmp_path, pods))
    try:
        wait_until(server.ready, timeout=30, what="Prometheus ready")

        def scraped() -> bool:
            active = server.api("targets")["activeTargets"]
            return bool(active) and all(target["health"] == "up" for target in active)

        wait_until(scraped, timeout=30, what="the annotated pod scraped")
        (target,) = server.api("targets")["activeTargets"]
    finally:
        server.stop()

    assert target["scrapeUrl"] == f"http://127.0.0.1:{relay_metrics.port}/metrics"
    assert target["labels"] == {
        "instance": f"127.0.0.1:{relay_metrics.port}",
        "job": "flotilla",
        "service": "users",
        "component": "relay",
        "namespace": "flotilla",
        "pod": "users-relay-7d9f-x2x",
    }
