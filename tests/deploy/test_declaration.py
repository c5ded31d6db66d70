"""The hand-written deployment files say what ``system.toml`` declares, and nothing else.

Compose, the Kubernetes base, the init SQL, the Dockerfile, Prometheus' targets and
``pyproject.toml`` each name the services again in their own language. Each test reads one
of them as data and compares it with the declaration, so adding a service (or a program, a
peer, a secret) to one and not the other fails here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from flotilla.declaration import Service

from .conftest import DOCKERFILE, ROOT, SYSTEM, load_yaml, load_yaml_documents

COMPOSE = ROOT / "deploy" / "compose" / "compose.yml"
K8S_BASE = ROOT / "deploy" / "k8s" / "base"
IMAGE_SERVICE = re.compile(r"flotilla/(?P<service>[a-z0-9]+):")


def compose_services() -> dict[str, Any]:
    """compose.yml's services, merge keys resolved."""
    services: dict[str, Any] = load_yaml(COMPOSE)["services"]
    return services


def compose_processes() -> dict[str, str]:
    """Each compose service that runs one of our images, with the service it belongs to."""
    found = {}
    for name, entry in compose_services().items():
        match = IMAGE_SERVICE.match(str(entry.get("image", "")))
        if match:
            found[name] = match["service"]
    return found


def process_names(service: Service) -> set[str]:
    """Every process a deployment runs for ``service``: web, migration, jobs, background."""
    names = {f"{service.name}-migrate"} if service.database else set()
    names |= {service.name} if service.is_web else set()
    return names | {program.name for program in service.commands}


def flask(service: Service, command: tuple[str, ...]) -> list[str]:
    """The container command of a declared job or program."""
    return ["flask", "--app", service.name, *command]


def kubernetes() -> Iterator[dict[str, Any]]:
    """Every manifest of the Kubernetes base."""
    for path in sorted(K8S_BASE.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            yield from load_yaml_documents(path)


def workloads(kind: str) -> dict[str, dict[str, Any]]:
    """The base's manifests of ``kind`` by name."""
    return {m["metadata"]["name"]: m for m in kubernetes() if m["kind"] == kind}


def pod_command(workload: dict[str, Any]) -> list[str]:
    """The first container's command of a Deployment or a Job."""
    command: list[str] = workload["spec"]["template"]["spec"]["containers"][0].get("command", [])
    return command


def config_env(service: str) -> dict[str, str]:
    """``config/<service>.env`` of the Kubernetes base as a mapping."""
    text = (K8S_BASE / "config" / f"{service}.env").read_text()
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return dict(pairs)


@pytest.mark.parametrize("service", SYSTEM.services, ids=SYSTEM.names)
def test_compose_runs_every_process_of_each_declared_service(service: Service) -> None:
    processes = compose_processes()
    assert {name for name, owner in processes.items() if owner == service.name} == (
        process_names(service)
    )
    services = compose_services()
    for job in service.jobs:
        assert services[job.name]["command"] == flask(service, job.command)
    for program in service.background:
        # The worker runs its image's command (the Dockerfile's stage), the rest their own.
        assert services[program.name].get("command", flask(service, program.command)) == (
            flask(service, program.command)
        )


def test_compose_runs_no_process_of_an_undeclared_service() -> None:
    assert set(compose_processes().values()) <= set(SYSTEM.names)


@pytest.mark.parametrize("service", SYSTEM.services, ids=SYSTEM.names)
def test_compose_gives_each_service_its_database_peers_and_secrets(service: Service) -> None:
    services = compose_services()
    for name in process_names(service):
        environment = services[name]["environment"]
        if service.database:
            assert environment["DATABASE_URL"].endswith(f"/{service.database}")
        for peer in service.calls:
            assert environment[SYSTEM[peer].url_setting].startswith(f"http://{peer}:")
        if service.is_web and service.name != SYSTEM.issuer:
            assert environment.get("AUTH_JWKS_URL", "").startswith(f"http://{SYSTEM.issuer}:")
        # The mail catcher compose runs takes no login, so the SMTP credentials stay unset.
        for secret in service.secrets:
            assert secret in environment or secret.startswith("SMTP_"), (name, secret)
    if service.is_web:
        waits_for = set(services[service.name]["depends_on"])
        assert set(service.calls) <= waits_for
        assert service.name == SYSTEM.issuer or SYSTEM.issuer in waits_for


@pytest.mark.parametrize("service", SYSTEM.services, ids=SYSTEM.names)
def test_kubernetes_runs_every_process_of_each_declared_service(service: Service) -> None:
    deployments, jobs = workloads("Deployment"), workloads("Job")
    assert (service.name in deployments) == service.is_web
    assert (f"{service.name}-migrate" in jobs) == bool(service.database)
    for job in service.jobs:
        assert pod_command(jobs[job.name]) == flask(service, job.command)
    for program in service.background:
        assert pod_command(deployments[program.name]) == flask(service, program.command)


def test_kubernetes_runs_no_workload_of_an_undeclared_service() -> None:
    declared = set().union(*(process_names(service) for service in SYSTEM.services))
    assert set(workloads("Deployment")) | set(workloads("Job")) == declared


@pytest.mark.parametrize("service", SYSTEM.services, ids=SYSTEM.names)
def test_each_kubernetes_secret_holds_what_its_service_declares(service: Service) -> None:
    documents = load_yaml_documents(K8S_BASE / "example-secrets" / "secrets.yaml")
    secrets = {document["metadata"]["name"]: document for document in documents}
    assert set(secrets[service.name]["stringData"]) == set(service.secrets) | connections(service)


def connections(service: Service) -> set[str]:
    """The connection URLs ``service`` needs: they carry passwords, so they are secrets too."""
    uses = {
        "DATABASE_URL": service.database,
        "REDIS_URL": service.redis,
        "BROKER_URL": service.broker,
    }
    return {name for name, used in uses.items() if used}


@pytest.mark.parametrize("service", SYSTEM.services, ids=SYSTEM.names)
def test_kubernetes_config_finds_each_peer_by_its_service_name(service: Service) -> None:
    config = config_env(service.name)
    for peer in service.calls:
        assert config[SYSTEM[peer].url_setting] == f"http://{peer}"
    if service.is_web and service.name != SYSTEM.issuer:
        assert config["AUTH_JWKS_URL"] == f"http://{SYSTEM.issuer}/.well-known/jwks.json"
    assert ("SERVICE_TOKEN_URL" in config) == service.client


def test_the_init_script_creates_exactly_the_declared_databases() -> None:
    text = (ROOT / "deploy" / "compose" / "postgres" / "databases.sql").read_text()
    assert re.findall(r"CREATE DATABASE (\w+);", text) == list(SYSTEM.databases)


def test_the_dockerfile_builds_an_image_for_each_declared_service() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM runtime AS service-(\w+)$", text, re.MULTILINE)
    copied = re.findall(r"^COPY services/(\w+)/pyproject.toml", text, re.MULTILINE)
    assert sorted(stages) == sorted(copied) == sorted(SYSTEM.names)
    for service in SYSTEM.web:
        assert f'CMD ["flotilla", "serve", "{service.name}.wsgi:app"]' in text


def test_prometheus_scrapes_every_declared_process() -> None:
    text = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    targets = set(re.findall(r'targets: \["([a-z-]+):\d+"\]', text))
    programs = {program.name for service in SYSTEM.services for program in service.background}
    assert targets == {service.name for service in SYSTEM.web} | programs


def test_the_workspace_installs_checks_and_tests_every_declared_service() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [f"flotilla-{name}" for name in SYSTEM.names]
    assert set(packages) <= set(project["project"]["dependencies"])
    assert set(packages) <= set(project["tool"]["uv"]["sources"])
    tested = project["tool"]["pytest"]["ini_options"]["testpaths"]
    checked = project["tool"]["mypy"]["files"]
    for name in SYSTEM.names:
        assert f"services/{name}/tests" in tested
        assert {f"services/{name}/{part}" for part in ("src", "migrations", "tests")} <= set(
            checked
        )
        assert (ROOT / "services" / name / "src" / name / "__init__.py").is_file()


def test_every_service_directory_is_declared() -> None:
    directories = {path.name for path in (ROOT / "services").iterdir() if path.is_dir()}
    assert directories == set(SYSTEM.names)
