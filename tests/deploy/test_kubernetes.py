"""The Kubernetes manifests (``deploy/k8s``) agree with the code they run.

Each overlay is rendered with ``kubectl kustomize`` and checked against the Kubernetes schema
(``kubernetes-validate --strict``) and yamllint; then the rendered objects are read beside the
code: commands against ``scripts/system.py``, probes against the apps' routes, every variable
against the settings classes, the grace periods against the web server's and Celery's, the
Ingress against deploy/nginx's routes. A drift between the files and the code fails here.

Kubernetes 1.30 is the oldest version validated: the first whose kubelet runs the ``sleep``
preStop action by default (beta; GA in 1.34, also validated), which the web pods use because
a slim image has no ``sleep`` to exec.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from flask import Flask
from pydantic import ValidationError

import system
from flotilla import ServiceSettings
from flotilla.config import MessagingSettings

from .conftest import (
    IMAGE_VARIABLES,
    SERVICES,
    image_environment,
    server_variable_names,
    settings_class,
    tool,
    variable_names,
    web_server_setting,
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
NGINX_ROUTES = ROOT / "deploy" / "nginx" / "flotilla" / "api.conf"
OVERLAYS = ("dev", "prod")
INGRESS_UPSTREAM_KEEPALIVE_TIMEOUT = 60
"""Ingress-NGINX's ``upstream-keepalive-timeout`` default, in seconds (its ConfigMap docs)."""
PROPAGATION_SECONDS = 10
"""How long a terminating pod's endpoint removal may take to reach every proxy on a busy
cluster (10 to 15 s): the preStop sleep covers at least that."""
KUBERNETES_VERSIONS = ("1.30.0", "1.34.0")
SETTINGS: dict[str, type[ServiceSettings]] = {
    service: settings_class(service) for service in SERVICES
}
PRODUCTION_SECRETS = {
    "DATABASE_URL": "postgresql+psycopg://service:password@postgres:5432/shop_service",
    "REDIS_URL": "redis://redis:6379/0",
    "BROKER_URL": "amqp://service:password@rabbitmq:5672/",
    "AUTH_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n",
    "SMTP_USERNAME": "shop",
    "SMTP_PASSWORD": "password",
    "SERVICE_CLIENT_SECRET": "c" * 48,
    "SECRET_KEY": "k" * 48,
    "SERVICE_CLIENT_SECRETS": "orders=" + "c" * 48,
}
"""Stand-ins for what production's Secrets hold, one for every key the example Secrets name."""
Manifest = dict[str, Any]


@functools.cache
def rendered(overlay: str) -> str:
    """``kubectl kustomize deploy/k8s/overlays/<overlay>``, as YAML."""
    command = [tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


@functools.cache
def manifests(overlay: str) -> tuple[Manifest, ...]:
    """The objects of an overlay, as the cluster would receive them."""
    return tuple(item for item in yaml.safe_load_all(rendered(overlay)) if item)


def of_kind(overlay: str, kind: str) -> dict[str, Manifest]:
    """The objects of ``kind`` in ``overlay``, by name."""
    return {item["metadata"]["name"]: item for item in manifests(overlay) if item["kind"] == kind}


def workloads(overlay: str) -> Iterator[Manifest]:
    """Every Deployment and Job: whatever runs a container."""
    for item in manifests(overlay):
        if item["kind"] in ("Deployment", "Job"):
            yield item


def service_of(workload: Manifest) -> str:
    """The service whose code a workload runs (its ``app.kubernetes.io/name``)."""
    name: str = workload["metadata"]["labels"]["app.kubernetes.io/name"]
    return name


def container(workload: Manifest) -> Manifest:
    """The one container of a workload."""
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    result: Manifest = only
    return result


def environment(overlay: str, workload: Manifest) -> dict[str, str]:
    """The variables a workload sets: its ConfigMaps, its Secrets, then its own ``env``."""
    config_maps, secrets = of_kind(overlay, "ConfigMap"), example_secrets()
    env: dict[str, str] = {}
    for source in container(workload).get("envFrom", []):
        if "configMapRef" in source:
            env |= config_maps[source["configMapRef"]["name"]].get("data", {})
        else:
            env |= secrets[source["secretRef"]["name"]]
    env |= {item["name"]: item["value"] for item in container(workload).get("env", [])}
    return env


def effective_environment(overlay: str, workload: Manifest) -> dict[str, str]:
    """What the container's processes see: the image's ``ENV``, then the workload's."""
    return image_environment(service_of(workload)) | environment(overlay, workload)


@functools.cache
def example_secrets() -> dict[str, dict[str, str]]:
    """The example Secrets' values, by name: the keys every deployment's Secrets must have."""
    return {
        item["metadata"]["name"]: item["stringData"]
        for item in manifests("dev")
        if item["kind"] == "Secret"
    }


def declared_variables(service: str, *, web: bool) -> set[str]:
    """Every variable ``service``'s processes read; the web servers' only in a web pod."""
    names = variable_names(SETTINGS[service]) | set(IMAGE_VARIABLES)
    return names | server_variable_names() if web else names


def is_web(workload: Manifest) -> bool:
    """A web server's pod (users, catalog, orders behind their Services)."""
    return bool(workload["metadata"]["labels"]["app.kubernetes.io/component"] == "web")


def routes(service: str, var_dir: Path) -> set[str]:
    """The URL rules ``service``'s app serves, built from test settings (SQLite under var_dir)."""
    module = __import__(service)
    settings = SETTINGS[service](ENVIRONMENT="test", VAR_DIR=var_dir)
    app: Flask = module.create_app(settings)
    return {rule.rule for rule in app.url_map.iter_rules()}


def nginx_routes() -> dict[str, str]:
    """The public prefixes deploy/nginx routes to a service: ``{"/api/v1/users": "users"}``."""
    text = NGINX_ROUTES.read_text()
    blocks = re.findall(r"location\s+(\S+)\s*\{([^}]*)\}", text)
    return {
        prefix.rstrip("/"): upstream.group(1)
        for prefix, body in blocks
        if (upstream := re.search(r"proxy_pass\s+http://flotilla_(\w+)", body))
    }


def ingress_routes(overlay: str) -> dict[str, str]:
    """The prefixes the Ingresses route, and the Service each goes to."""
    routes = {}
    for ingress in of_kind(overlay, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                routes[path["path"]] = path["backend"]["service"]["name"]
    return routes


# -- the files are valid ---------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_is_valid_kubernetes(overlay: str, version: str, tmp_path: Path) -> None:
    rendered_file = tmp_path / f"{overlay}.yaml"
    rendered_file.write_text(rendered(overlay))
    command = [tool("kubernetes-validate"), "--strict", "--quiet", "-k", version]
    result = subprocess.run(
        [*command, str(rendered_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(manifests(overlay)) > 30  # every object, not an empty rendering


def test_strict_validation_catches_a_misspelt_field(tmp_path: Path) -> None:
    misspelt = rendered("prod").replace("readOnlyRootFilesystem", "readOnlyRootFileSystem", 1)
    rendered_file = tmp_path / "misspelt.yaml"
    rendered_file.write_text(misspelt)
    command = [tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSIONS[0]]
    result = subprocess.run(
        [*command, str(rendered_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "readOnlyRootFileSystem" in result.stdout


def test_manifests_pass_yamllint() -> None:
    command = [tool("yamllint"), "--strict", "-c", str(ROOT / "deploy" / ".yamllint"), str(K8S)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# -- commands, probes and ports ----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_process_of_the_runner_runs_with_its_command(overlay: str) -> None:
    layout = system.Layout(var_dir=Path("/nonexistent"))
    expected: dict[tuple[str, ...], Sequence[str]] = {
        ("web", service): system.web(service, layout, {}).command[2:]
        for service in system.WEB_SERVICES
    }
    for _, service, arguments, _ in system.BACKGROUND_PROGRAMS:
        expected[("background", service, *arguments)] = ["flask", "--app", service, *arguments]
    for service in SETTINGS:
        expected[("migration", service)] = ["flask", *system.migration(service)[3:]]
    found = {tuple(container(item)["command"]) for item in workloads(overlay)}
    missing = [command for command in expected.values() if tuple(command) not in found]
    assert not missing
    declare = ("flask", "--app", "notifications", "tasks", "declare-queues")
    assert declare in found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_process_runs_in_the_image_of_its_service(overlay: str) -> None:
    for workload in workloads(overlay):
        command, service = container(workload)["command"], service_of(workload)
        image = container(workload)["image"]
        assert image.partition(":")[0] == f"flotilla/{service}", workload["metadata"]["name"]
        runs = command[2] if command[0] == "flask" else command[-1].partition(".")[0]
        assert runs == service, workload["metadata"]["name"]


@pytest.mark.parametrize("service", system.WEB_SERVICES)
def test_probes_ask_routes_the_app_serves_on_the_port_the_server_binds(
    service: str, tmp_path: Path
) -> None:
    deployment = of_kind("prod", "Deployment")[service]
    web = container(deployment)
    served = routes(service, tmp_path)
    ports = {port["name"]: port["containerPort"] for port in web["ports"]}
    bind = web_server_setting(effective_environment("prod", deployment), "BIND")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        http = web[probe]["httpGet"]
        assert http["path"] in served, (probe, http["path"])
        assert ports[http["port"]] == int(bind.rpartition(":")[2])
    assert web["readinessProbe"]["httpGet"]["path"] == "/healthz/ready"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz/live"
    target = of_kind("prod", "Service")[service]["spec"]["ports"][0]["targetPort"]
    assert target in ports


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_call_each_other_where_the_cluster_answers(overlay: str, tmp_path: Path) -> None:
    services = of_kind(overlay, "Service")
    users_routes = routes("users", tmp_path)
    for workload in workloads(overlay):
        env = environment(overlay, workload)
        for name in ("USERS_URL", "CATALOG_URL", "AUTH_JWKS_URL"):
            if name not in env:
                continue
            url = urlsplit(env[name])
            assert url.hostname in services, (name, env[name])
            assert (url.port or 80) == services[url.hostname]["spec"]["ports"][0]["port"]
            if name == "AUTH_JWKS_URL":
                assert url.path in users_routes


# -- stopping without dropping requests --------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_outlasts_the_prestop_sleep_and_the_servers_drain(overlay: str) -> None:
    for service in system.WEB_SERVICES:
        deployment = of_kind(overlay, "Deployment")[service]
        sleep = container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"]
        env = effective_environment(overlay, deployment)
        drain = int(web_server_setting(env, "GRACEFUL_TIMEOUT"))
        switched = int(web_server_setting(env | {"WEB_SERVER": "gunicorn"}, "GRACEFUL_TIMEOUT"))
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert sleep >= PROPAGATION_SECONDS
        assert grace > sleep + max(drain, switched), service


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_servers_keep_idle_connections_longer_than_the_ingress_does(overlay: str) -> None:
    # A POST written into a kept-alive connection the server is closing fails as a 502 and
    # cannot be retried: the proxy must always be first to give up an idle connection.
    for service in system.WEB_SERVICES:
        env = effective_environment(overlay, of_kind(overlay, "Deployment")[service])
        for server in ("granian", "gunicorn"):
            keepalive = int(web_server_setting(env | {"WEB_SERVER": server}, "KEEPALIVE"))
            assert keepalive > INGRESS_UPSTREAM_KEEPALIVE_TIMEOUT, (service, server)


def test_worker_grace_period_outlasts_a_running_task() -> None:
    worker = of_kind("prod", "Deployment")["notifications-worker"]
    limit = environment("prod", worker).get("TASK_TIME_LIMIT")
    task_limit = float(limit) if limit else MessagingSettings().TASK_TIME_LIMIT
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > task_limit


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_set_is_a_setting_of_its_service(overlay: str) -> None:
    for workload in workloads(overlay):
        service = service_of(workload)
        unknown = set(environment(overlay, workload)) - declared_variables(
            service, web=is_web(workload)
        )
        assert not unknown, (workload["metadata"]["name"], sorted(unknown))


def test_every_secret_key_is_a_setting_of_its_service() -> None:
    for service, values in example_secrets().items():
        assert set(values) <= set(SETTINGS[service].model_fields), service
        assert set(values) <= set(PRODUCTION_SECRETS), service


def test_production_pods_start_with_their_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for workload in workloads("prod"):
        env = environment("prod", workload)
        env |= {name: PRODUCTION_SECRETS[name] for name in env if name in PRODUCTION_SECRETS}
        settings = _load(monkeypatch, SETTINGS[service_of(workload)], env)
        assert settings.is_production, workload["metadata"]["name"]


def test_the_example_secrets_never_start_a_production_pod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for workload in workloads("dev"):
        env = environment("dev", workload) | {"ENVIRONMENT": "production"}
        with pytest.raises(ValidationError, match="holds a placeholder password"):
            _load(monkeypatch, SETTINGS[service_of(workload)], env)


def test_development_pods_start_with_the_example_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for workload in workloads("dev"):
        settings = _load(monkeypatch, SETTINGS[service_of(workload)], environment("dev", workload))
        assert not settings.is_production


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_runners_topology_is_set_in_every_pod(overlay: str) -> None:
    layout = system.Layout(var_dir=Path("/nonexistent"))
    for workload in workloads(overlay):
        service = service_of(workload)
        needed = set(system.service_env(service, layout, {}))
        if not is_web(workload):
            needed -= {"GRANIAN_BIND", "GUNICORN_BIND"}
        missing = needed - set(environment(overlay, workload))
        assert not missing, (workload["metadata"]["name"], sorted(missing))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_web_server_is_given_a_metrics_directory(overlay: str) -> None:
    # The server creates its METRICS_DIR and hands it to its workers; a flask command given
    # PROMETHEUS_MULTIPROC_DIR would stop at its first metric, the directory not existing yet
    # on a fresh emptyDir.
    for workload in workloads(overlay):
        env = effective_environment(overlay, workload)
        assert not env.get("PROMETHEUS_MULTIPROC_DIR"), workload["metadata"]["name"]
        if is_web(workload):
            for server in ("granian", "gunicorn"):  # the one running, the one a setting away
                directory = web_server_setting(env | {"WEB_SERVER": server}, "METRICS_DIR")
                assert directory, (workload["metadata"]["name"], server)


def _load(
    monkeypatch: pytest.MonkeyPatch, settings_class: type[ServiceSettings], env: Mapping[str, str]
) -> ServiceSettings:
    """``settings_class`` read from exactly ``env``, as in the pod."""
    for name in settings_class.model_fields:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_class()


# -- security ----------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_unprivileged_on_a_read_only_root(overlay: str) -> None:
    for workload in workloads(overlay):
        pod = workload["spec"]["template"]["spec"]
        name = workload["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        security = container(workload)["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        assert container(workload)["resources"]["limits"]["memory"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_directory_a_process_writes_is_a_writable_volume(overlay: str) -> None:
    for workload in workloads(overlay):
        pod = workload["spec"]["template"]["spec"]
        empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
        writable = [
            Path(mount["mountPath"])
            for mount in container(workload)["volumeMounts"]
            if mount["name"] in empty_dirs
        ]
        env = effective_environment(overlay, workload)
        assert env.get("VAR_DIR"), workload["metadata"]["name"]
        for name in ("VAR_DIR", "GRANIAN_METRICS_DIR", "GUNICORN_METRICS_DIR"):
            if env.get(name):
                path = Path(env[name])
                assert any(path.is_relative_to(mount) for mount in writable), (name, path)


# -- the front door ----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_routes_what_nginx_routes(overlay: str) -> None:
    assert len(nginx_routes()) >= 5  # the parser read the routes
    assert ingress_routes(overlay) == nginx_routes()
    for ingress in of_kind(overlay, "Ingress").values():
        assert ingress["spec"]["ingressClassName"] == "nginx"
        hosts = {host for tls in ingress["spec"]["tls"] for host in tls["hosts"]}
        assert {rule["host"] for rule in ingress["spec"]["rules"]} <= hosts


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_reservations_and_service_tokens_are_never_routed(overlay: str) -> None:
    for internal in ("/api/v1/reservations", "/api/v1/service-tokens"):
        parts = PurePosixPath(internal).parts
        for prefix in ingress_routes(overlay):
            segments = PurePosixPath(prefix).parts
            assert parts[: len(segments)] != segments, (internal, prefix)


# -- network policies --------------------------------------------------------------------------


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a Kubernetes label selector matches ``labels``."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present = labels.get(expression["key"])
        if expression["operator"] == "In" and present not in expression["values"]:
            return False
        if expression["operator"] == "NotIn" and present in expression["values"]:
            return False
    return True


def allowed(
    overlay: str, source: Mapping[str, str], namespace: str, target: str, port: int
) -> bool:
    """Whether a pod labelled ``source`` in ``namespace`` may connect to ``target``'s web pods."""
    own = next(item for item in manifests(overlay) if item["kind"] == "Namespace")
    own_namespace = own["metadata"]["name"]
    target_labels = of_kind(overlay, "Deployment")[target]["spec"]["template"]["metadata"]
    policies = [
        policy
        for policy in of_kind(overlay, "NetworkPolicy").values()
        if _selects(policy["spec"]["podSelector"], target_labels["labels"])
    ]
    assert policies, f"no policy selects {target}: everything would be allowed"
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = {item["port"] for item in rule.get("ports", [])}
            if ports and port not in ports:
                continue
            for peer in rule.get("from", []):
                namespace_labels = {"kubernetes.io/metadata.name": namespace}
                if "namespaceSelector" in peer:
                    in_namespace = _selects(peer["namespaceSelector"], namespace_labels)
                else:
                    in_namespace = namespace == own_namespace
                pod_ok = "podSelector" not in peer or _selects(peer["podSelector"], source)
                if in_namespace and pod_ok:
                    return True
    return False


def _pod(service: str, component: str = "web") -> dict[str, str]:
    labels = {"app.kubernetes.io/name": service, "app.kubernetes.io/component": component}
    return labels | {"app.kubernetes.io/part-of": "flotilla"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_through_only_the_calls_the_shop_makes(overlay: str) -> None:
    namespace = next(item for item in manifests(overlay) if item["kind"] == "Namespace")
    here = namespace["metadata"]["name"]
    controller: dict[str, str] = {"app.kubernetes.io/name": "ingress-nginx"}
    for service in system.WEB_SERVICES:
        assert allowed(overlay, controller, "ingress-nginx", service, 8000)
        assert not allowed(overlay, controller, "elsewhere", service, 8000)
        assert not allowed(overlay, _pod("notifications", "worker"), here, service, 8000)
    assert allowed(overlay, _pod("orders"), here, "catalog", 8000)
    assert allowed(overlay, _pod("orders", "recovery"), here, "catalog", 8000)
    assert allowed(overlay, _pod("orders"), here, "users", 8000)
    assert allowed(overlay, _pod("catalog"), here, "users", 8000)  # the keys, for admin tokens
    assert not allowed(overlay, _pod("users"), here, "catalog", 8000)
    assert not allowed(overlay, _pod("catalog"), here, "orders", 8000)
    assert not allowed(overlay, _pod("orders"), here, "catalog", 9000)
    default_deny = of_kind(overlay, "NetworkPolicy")["default-deny-ingress"]["spec"]
    assert default_deny == {"podSelector": {}, "policyTypes": ["Ingress"]}


# -- the overlays ------------------------------------------------------------------------------


def test_production_keeps_two_pods_of_each_web_service_and_pins_its_images() -> None:
    autoscalers = of_kind("prod", "HorizontalPodAutoscaler")
    budgets = of_kind("prod", "PodDisruptionBudget")
    for service in system.WEB_SERVICES:
        assert autoscalers[service]["spec"]["minReplicas"] >= 2
        assert autoscalers[service]["spec"]["scaleTargetRef"]["name"] == service
        assert budgets[service]["spec"]["minAvailable"] == 1
        selector = budgets[service]["spec"]["selector"]
        labels = of_kind("prod", "Deployment")[service]["spec"]["template"]["metadata"]["labels"]
        assert _selects(selector, labels)
    for workload in workloads("prod"):
        image = container(workload)["image"]
        tag = image.partition(":")[2]
        assert tag, image
        assert tag != "latest", image
    assert not of_kind("prod", "Secret")  # production brings its own


def test_autoscalers_follow_cpu_and_memory_up_fast_and_down_slowly() -> None:
    for service, autoscaler in of_kind("prod", "HorizontalPodAutoscaler").items():
        spec = autoscaler["spec"]
        resources = {metric["resource"]["name"] for metric in spec["metrics"]}
        assert resources == {"cpu", "memory"}, service
        behavior = spec["behavior"]
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300, service
        assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0, service
        down = {policy["type"]: policy["value"] for policy in behavior["scaleDown"]["policies"]}
        assert down["Percent"] <= 50, service


def test_production_ingresses_get_their_certificate_from_cert_manager() -> None:
    for name, ingress in of_kind("prod", "Ingress").items():
        assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"], name
        assert [tls["secretName"] for tls in ingress["spec"]["tls"]] == ["flotilla-tls"], name
    for ingress in of_kind("dev", "Ingress").values():
        assert "cert-manager.io/cluster-issuer" not in ingress["metadata"]["annotations"]


def test_development_runs_one_pod_each_in_development_mode() -> None:
    assert not of_kind("dev", "HorizontalPodAutoscaler")
    assert not of_kind("dev", "PodDisruptionBudget")
    for workload in workloads("dev"):
        assert workload["spec"].get("replicas", 1) == 1, workload["metadata"]["name"]
        assert environment("dev", workload)["ENVIRONMENT"] == "development"
    assert set(example_secrets()) == set(SETTINGS)
