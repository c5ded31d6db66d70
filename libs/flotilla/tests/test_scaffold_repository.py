"""Registering a new web service in the shared files: each edit lands beside its kind."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
import yaml

from flotilla import declaration
from flotilla.scaffold.repository import (
    ScaffoldError,
    WebService,
    after_last,
    next_port,
    register,
)

ROOT = Path(__file__).resolve().parents[3]
SHARED = [
    "system.toml",
    "pyproject.toml",
    "Dockerfile",
    "deploy/compose/compose.yml",
    "deploy/compose/postgres/databases.sql",
    "deploy/prometheus/prometheus.yml",
    "deploy/k8s/base/kustomization.yaml",
    "deploy/k8s/base/example-secrets/secrets.yaml",
    "deploy/k8s/base/migrations.yaml",
    "deploy/k8s/base/network-policies.yaml",
    "deploy/k8s/base/ingress.yaml",
    "deploy/k8s/overlays/dev/kustomization.yaml",
    "deploy/k8s/overlays/prod/kustomization.yaml",
]


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """The shared files of this repository, copied into ``tmp_path``."""
    for relative in SHARED:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    (tmp_path / "deploy/k8s/base/config").mkdir()
    return tmp_path


def registered(root: Path) -> declaration.System:
    """Register ``inventory`` in ``root``; the declaration afterwards."""
    system = declaration.load(root / "system.toml")
    service = WebService("inventory", next_port(system), ("/api/v1/items",), "items")
    register(root, service, system)
    return declaration.load(root / "system.toml")


def test_the_declaration_gains_the_service_on_the_next_port(repository: Path) -> None:
    before = declaration.load(repository / "system.toml")
    system = registered(repository)
    assert system["inventory"].port == next_port(before)
    assert system.owner("/api/v1/items/1").name == "inventory"


def test_the_workspace_installs_checks_and_tests_it(repository: Path) -> None:
    registered(repository)
    project = tomllib.loads((repository / "pyproject.toml").read_text())
    assert "flotilla-inventory" in project["project"]["dependencies"]
    assert "flotilla-inventory" in project["tool"]["uv"]["sources"]
    assert "services/inventory/migrations" in project["tool"]["mypy"]["files"]
    assert "services/inventory/tests" in project["tool"]["pytest"]["ini_options"]["testpaths"]


def test_compose_runs_it_behind_nginx_at_a_free_fixed_address(repository: Path) -> None:
    registered(repository)
    services = yaml.safe_load((repository / "deploy/compose/compose.yml").read_text())["services"]
    assert services["inventory-migrate"]["command"][-2:] == ["db", "upgrade"]
    address = services["inventory"]["networks"]["default"]["ipv4_address"]
    others = [
        s["networks"]["default"]["ipv4_address"] for s in services.values() if "networks" in s
    ]
    assert others.count(address) == 1
    assert services["nginx"]["environment"]["FLOTILLA_INVENTORY_UPSTREAM"] == "inventory:8000"
    assert "inventory" in services["nginx"]["depends_on"]


def test_kubernetes_gets_its_manifest_config_and_route(repository: Path) -> None:
    registered(repository)
    base = repository / "deploy/k8s/base"
    kinds = [d["kind"] for d in yaml.safe_load_all((base / "inventory.yaml").read_text())]
    assert kinds == ["ServiceAccount", "Deployment", "Service", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget"]  # fmt: skip
    assert "AUTH_JWKS_URL=http://users/" in (base / "config/inventory.env").read_text()
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    assert "inventory.yaml" in kustomization["resources"]
    ingress = next(yaml.safe_load_all((base / "ingress.yaml").read_text()))
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert {"path": "/api/v1/items", "backend": "inventory"} in [
        {"path": p["path"], "backend": p["backend"]["service"]["name"]} for p in paths
    ]
    jobs = [
        d["metadata"]["name"]
        for d in yaml.safe_load_all((base / "migrations.yaml").read_text())
        if d
    ]
    assert "inventory-migrate" in jobs


def test_a_second_service_takes_the_next_port_and_address(repository: Path) -> None:
    first = registered(repository)
    second = WebService("billing", next_port(first), ("/api/v1/invoices",), "invoices")
    register(repository, second, first)
    services = yaml.safe_load((repository / "deploy/compose/compose.yml").read_text())["services"]
    addresses = {
        services[n]["networks"]["default"]["ipv4_address"] for n in ("inventory", "billing")
    }
    assert len(addresses) == 2
    assert declaration.load(repository / "system.toml")["billing"].port == next_port(first)


def test_a_file_without_the_expected_lines_stops_everything(repository: Path) -> None:
    dockerfile = repository / "Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    before = (repository / "system.toml").read_text()
    with pytest.raises(ScaffoldError, match="Dockerfile"):
        registered(repository)
    assert (repository / "system.toml").read_text() == before  # nothing was written


def test_after_last_adds_after_the_last_match_within_its_list() -> None:
    text = 'a = [\n    "x",\n    "y",\n]\nb = [\n    "z",\n]\n'
    assert after_last(r'^    "\w",\n', '    "new",\n', within=r"^a = \[")(text) == (
        'a = [\n    "x",\n    "y",\n    "new",\n]\nb = [\n    "z",\n]\n'
    )
    with pytest.raises(ScaffoldError, match="no line like"):
        after_last(r"^nothing\n", "x\n")(text)
