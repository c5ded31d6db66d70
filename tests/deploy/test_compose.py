"""deploy/compose: valid Compose, consistent with the code, and its commands really run.

The file is validated against the Compose Specification's JSON schema (check-jsonschema's
vendored copy; there is no Docker engine here). Then what it sets is checked against what the
code declares: every variable is a setting of the service it reaches, every setting the
service requires in production is there, nginx runs the same configuration files as
``make run``, and each process gets longer to stop than it needs.

The last test runs every Flotilla process of the file outside a container, with the same
command and environment (``${...}`` filled from a generated ``.env``), the container names
mapped to this machine's PostgreSQL, Redis and RabbitMQ, and names unique to the test.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import yaml
from pydantic import ValidationError
from sqlalchemy import make_url

import system
from flotilla.auth.keys import SigningKey
from flotilla.serving.processes import log_tail, stop_process, wait_for_http
from flotilla.testing import (
    DEFAULT_REDIS_URL,
    free_port,
    postgres_database,
    postgres_server_url,
    read_json_lines,
    wait_until,
)
from flotilla.testing.mail import MailServer
from flotilla.testing.messaging import Rabbit, amqp_server_url
from nginx import IMAGE_STATIC_ROOT, static_root

from .conftest import (
    IMAGE_VARIABLES,
    ROOT,
    SERVICES,
    WEB_SERVICES,
    MissingVariable,
    compose_environment,
    compose_service_of,
    duration_seconds,
    image_environment,
    image_setting,
    interpolate,
    interpolated_names,
    load_yaml,
    python_command,
    read_env_file,
    setting_names,
    settings_class,
    tool,
    web_server_setting,
)

COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
NGINX_DIR = ROOT / "deploy" / "nginx"
LOCAL_PORTS = {"postgres": 5432, "redis": 6379, "rabbitmq": 5672}


def compose() -> dict[str, Any]:
    """compose.yml, with its YAML anchors and merge keys resolved."""
    loaded: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return loaded


def flotilla_services() -> dict[str, str]:
    """Every Compose service running a Flotilla image, and the Flotilla service it runs."""
    found = {}
    for name, definition in compose()["services"].items():
        service = compose_service_of(definition)
        if service is not None:
            found[name] = service
    return found


def example_secrets() -> dict[str, str]:
    """``.env.example`` filled in as its comments say: generated keys, URL-safe passwords."""
    values = read_env_file(ENV_EXAMPLE)
    for name, value in values.items():
        if name.endswith("SIGNING_KEY"):
            values[name] = SigningKey.generate().private_pem()
        elif not value:
            values[name] = secrets.token_urlsafe(48)
    return values


def service_environment(name: str, variables: Mapping[str, str]) -> dict[str, str]:
    """What a container of Compose service ``name`` starts with: the image's ENV, then
    the file's ``environment`` with ``${...}`` filled from ``variables``."""
    definition = compose()["services"][name]
    image = image_environment(compose_service_of(definition) or "")
    given = {
        key: interpolate(value, variables) for key, value in compose_environment(definition).items()
    }
    return image | given


def command_of(name: str) -> list[str]:
    """The command a container of Compose service ``name`` runs: its own or the image's."""
    definition = compose()["services"][name]
    if "command" in definition:
        return [str(word) for word in definition["command"]]
    image = image_setting(compose_service_of(definition) or "", "CMD")
    assert image is not None
    return [str(word) for word in yaml.safe_load(image)]


def strings(document: Any) -> Iterator[str]:
    """Every string value in a loaded YAML ``document`` (what Compose interpolates)."""
    if isinstance(document, str):
        yield document
    elif isinstance(document, dict):
        for value in document.values():
            yield from strings(value)
    elif isinstance(document, list):
        for value in document:
            yield from strings(value)


def run_validator(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with its vendored Compose Specification schema, on ``path``."""
    command = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


# --- the file ------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    result = run_validator(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_refuses_what_compose_would_refuse(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["users"]["stop_grace_periods"] = "40s"  # a misspelt key
    path = tmp_path / "compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = run_validator(path)
    assert result.returncode != 0
    assert "stop_grace_periods" in result.stdout + result.stderr


def test_env_example_lists_exactly_the_variables_the_file_needs() -> None:
    needed = {name for text in strings(compose()) for name in interpolated_names(text)}
    assert set(read_env_file(ENV_EXAMPLE)) == needed
    with pytest.raises(MissingVariable, match="USERS_AUTH_SIGNING_KEY"):
        service_environment("users", example_secrets() | {"USERS_AUTH_SIGNING_KEY": ""})


def test_every_flotilla_process_of_make_run_has_its_compose_service() -> None:
    commands = {tuple(command_of(name)) for name in flotilla_services()}
    expected = {("flask", *system.migration(service)[3:]) for service in SERVICES}
    expected.add(("flask", "--app", "notifications", "tasks", "declare-queues"))
    for _name, service, arguments, _started in system.BACKGROUND_PROGRAMS:
        expected.add(("flask", "--app", service, *arguments))
    expected |= {tuple(system.web(s, system.Layout(ROOT), {}).command[2:]) for s in WEB_SERVICES}
    assert commands == expected


@pytest.mark.parametrize("name", sorted(flotilla_services()))
def test_every_variable_is_a_setting_of_the_service_it_reaches(name: str) -> None:
    service = flotilla_services()[name]
    environment = service_environment(name, example_secrets())
    assert set(environment) - setting_names(service) - set(IMAGE_VARIABLES) == set()


@pytest.mark.parametrize("name", sorted(flotilla_services()))
def test_every_setting_required_in_production_is_set(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = flotilla_services()[name]
    environment = service_environment(name, example_secrets())
    assert environment["ENVIRONMENT"] == "production"
    for variable in setting_names(service) | set(IMAGE_VARIABLES):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    settings = settings_class(service)()  # raises, naming the variable, if one is missing
    assert settings.is_production
    assert make_url(settings.DATABASE_URL).database == service
    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        settings_class(service)()


def test_each_service_database_is_created_by_the_postgres_init_script() -> None:
    postgres = compose()["services"]["postgres"]
    mounts = [volume.split(":") for volume in postgres["volumes"]]
    init = next(COMPOSE_DIR / source for source, target, *_ in mounts if "initdb" in target)
    created = re.findall(
        r"CREATE DATABASE (\w+);", "".join(p.read_text() for p in init.glob("*.sql"))
    )
    variables = example_secrets()
    named = [
        str(make_url(service_environment(name, variables)["DATABASE_URL"]).database)
        for name in flotilla_services()
    ]
    assert sorted(created) == sorted(set(named)) == sorted(SERVICES)


def test_nginx_runs_the_configuration_make_run_renders() -> None:
    nginx = compose()["services"]["nginx"]
    mounts = {
        target: COMPOSE_DIR / source
        for source, target, *_ in (v.split(":") for v in nginx["volumes"])
    }
    assert mounts["/etc/nginx/templates"].resolve() == NGINX_DIR / "templates"
    assert mounts["/etc/nginx/flotilla"].resolve() == NGINX_DIR / "flotilla"
    assert all(path.is_dir() for path in mounts.values())
    static = compose_environment(nginx)["FLOTILLA_STATIC_ROOT"]
    assert mounts[static].resolve() == static_root()  # the files make run serves
    assert static == IMAGE_STATIC_ROOT  # where `nginx.py check` puts them in the image
    placeholders = {
        found
        for template in (NGINX_DIR / "templates").glob("*.template")
        for found in re.findall(r"\$\{(FLOTILLA_\w+)\}", template.read_text())
    }
    environment = compose_environment(nginx)
    assert set(environment) == placeholders
    for service in WEB_SERVICES:
        port = web_server_setting(image_environment(service), "BIND").rpartition(":")[2]
        assert environment[f"FLOTILLA_{service.upper()}_UPSTREAM"] == f"{service}:{port}"
    assert nginx["ports"] == [f"8080:{environment['FLOTILLA_PORT']}"]
    assert "location = /healthz " in (NGINX_DIR / "flotilla" / "healthz.conf").read_text()
    assert "http://127.0.0.1:8080/healthz" in nginx["healthcheck"]["test"]


def test_every_dependency_waits_on_a_condition_compose_can_see() -> None:
    services = compose()["services"]
    for name, definition in services.items():
        for target, rule in (definition.get("depends_on") or {}).items():
            condition = rule["condition"]
            if condition == "service_healthy":
                own = services[target].get("healthcheck", {})
                image = image_setting(compose_service_of(services[target]) or "", "HEALTHCHECK")
                assert own.get("test") or (image and image != "NONE"), f"{name} -> {target}"
            else:
                assert condition == "service_completed_successfully", f"{name} -> {target}"
                assert services[target]["restart"] == "no"


def test_what_nginx_proxies_to_keeps_its_address_across_restarts() -> None:
    # nginx resolves upstream names once, at start: a web service started again must come
    # back at the address nginx holds, one no other container can be given meanwhile.
    # Its MAC address stays too, so no peer keeps a stale ARP entry for the address.
    definition = compose()
    pool = ipaddress.ip_network(definition["networks"]["default"]["ipam"]["config"][0]["ip_range"])
    nginx = definition["services"]["nginx"]
    for service in WEB_SERVICES:
        assert nginx["environment"][f"FLOTILLA_{service.upper()}_UPSTREAM"] == f"{service}:8000"
    fixed = {
        service: definition["services"][service]["networks"]["default"]
        for service in (*WEB_SERVICES, "nginx")
    }
    for service, network in fixed.items():
        address = ipaddress.ip_address(network["ipv4_address"])
        assert address not in pool, service
        assert network["mac_address"] == "02:42:" + ":".join(f"{b:02x}" for b in address.packed)
    assert len({network["ipv4_address"] for network in fixed.values()}) == len(fixed)


def test_web_services_start_after_their_migration_and_relays_after_the_queues() -> None:
    services = compose()["services"]
    for service in SERVICES:
        assert services[f"{service}-migrate"]["command"] == list(system.migration(service)[2:])
    for name, service in flotilla_services().items():
        if not name.endswith(("-migrate", "-queues")):
            assert f"{service}-migrate" in services[name]["depends_on"], name
    for relay in ("users-relay", "orders-relay"):
        assert "notifications-queues" in services[relay]["depends_on"]


def test_containers_get_longer_to_stop_than_their_processes_need() -> None:
    services = compose()["services"]
    for service in WEB_SERVICES:
        environment = service_environment(service, example_secrets())
        for server in ("granian", "gunicorn"):  # the one running, the one a setting away
            settings = environment | {"WEB_SERVER": server}
            graceful = int(web_server_setting(settings, "GRACEFUL_TIMEOUT"))
            assert duration_seconds(services[service]["stop_grace_period"]) > graceful
    worker = services["notifications-worker"]
    time_limit = settings_class("notifications").model_fields["TASK_TIME_LIMIT"].default
    assert duration_seconds(worker["stop_grace_period"]) > time_limit


def test_application_containers_run_read_only_with_tmp_writable() -> None:
    services = compose()["services"]
    for name in flotilla_services():
        assert services[name]["read_only"] is True, name
        assert "/tmp" in services[name]["tmpfs"], name
        assert services[name]["cap_drop"] == ["ALL"], name
        assert image_environment(flotilla_services()[name])["VAR_DIR"].startswith("/tmp/")


# --- the commands are real -----------------------------------------------------------------


class Deployment:
    """Compose's Flotilla services as processes of this machine, on names unique to a test."""

    def __init__(self, directory: Path, databases: Mapping[str, str], smtp_port: int) -> None:
        self.directory = directory
        self.token = uuid.uuid4().hex[:10]
        self.databases = dict(databases)
        self.smtp_port = smtp_port
        self.ports = {service: free_port() for service in WEB_SERVICES}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.variables = example_secrets() | self._credentials()

    @staticmethod
    def _credentials() -> dict[str, str]:
        """``.env``'s user names and passwords: this machine's servers' own."""
        postgres, rabbitmq = make_url(postgres_server_url()), urlsplit(amqp_server_url())
        return {
            "POSTGRES_USER": postgres.username or "postgres",
            "POSTGRES_PASSWORD": postgres.password or "unused-with-trust",
            "RABBITMQ_USER": rabbitmq.username or "guest",
            "RABBITMQ_PASSWORD": rabbitmq.password or "guest",
        }

    @property
    def exchange(self) -> str:
        """The events exchange of this test, in place of the shared ``flotilla.events``."""
        return f"deploy{self.token}.events"

    def service_name(self, service: str) -> str:
        """``SERVICE_NAME``: prefixes Redis keys and names the notifications queues."""
        return f"{service}-{self.token}"

    def environment(self, name: str) -> dict[str, str]:
        """Compose's environment for ``name``, with container names mapped to this machine."""
        service = flotilla_services()[name]
        environment = service_environment(name, self.variables)
        local = {key: self._localize(key, value, service) for key, value in environment.items()}
        local |= {
            "PATH": os.environ["PATH"],
            "VAR_DIR": str(self.directory / name),
            "GRANIAN_METRICS_DIR": str(self.directory / name / "metrics"),
            "GUNICORN_METRICS_DIR": str(self.directory / name / "metrics"),
            "SERVICE_NAME": self.service_name(service),
            "EVENTS_EXCHANGE": self.exchange,
        }
        unmapped = {key for key, value in local.items() if _host(value) in CONTAINERS}
        assert not unmapped, f"still naming a container: {unmapped}"
        return local

    def _localize(self, key: str, value: str, service: str) -> str:  # noqa: PLR0911 - one per key
        if key == "DATABASE_URL":
            database = make_url(self.databases[service]).database
            server = make_url(postgres_server_url())
            url = make_url(value).set(host=server.host, port=server.port, database=database)
            return url.render_as_string(hide_password=False)
        if key in {"GRANIAN_BIND", "GUNICORN_BIND"} and service in self.ports:  # worker: none
            return f"127.0.0.1:{self.ports[service]}"
        if key == "SMTP_HOST":
            return "127.0.0.1"
        if key == "SMTP_PORT":
            return str(self.smtp_port)
        if key == "METRICS_BIND":  # each container's own 9100: one free port each here
            return f"127.0.0.1:{free_port()}"
        if "://" in value:
            return self._localize_url(value)
        return value

    def _localize_url(self, value: str) -> str:
        parts = urlsplit(value)
        host = parts.hostname or ""
        if host in self.ports:
            port = self.ports[host]
        elif host == "redis":
            port = urlsplit(DEFAULT_REDIS_URL).port or LOCAL_PORTS[host]
        elif host == "rabbitmq":
            port = urlsplit(amqp_server_url()).port or LOCAL_PORTS[host]
        else:
            return value
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def start(self, name: str) -> subprocess.Popen[bytes]:
        """Start Compose service ``name``'s command, its output in ``<name>.log``."""
        (self.directory / name).mkdir(exist_ok=True)
        with self.log(name).open("wb") as log:
            process = subprocess.Popen(
                python_command(command_of(name)),
                env=self.environment(name),
                cwd=self.directory / name,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> Path:
        """Where ``name`` writes its output."""
        return self.directory / f"{name}.log"

    def stop_all(self) -> dict[str, int]:
        """SIGTERM to every process still running; the exit code of each."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        return {name: stop_process(process, timeout=45) for name, process in self.processes.items()}


CONTAINERS = frozenset(("postgres", "redis", "rabbitmq", "mailpit", *WEB_SERVICES))


def _host(value: str) -> str:
    """The host a URL names, or the value itself (``SMTP_HOST``)."""
    return (urlsplit(value).hostname or "") if "://" in value else value


def start_order() -> list[list[str]]:
    """The Flotilla services in waves: each wave's dependencies are in earlier waves."""
    services = compose()["services"]
    pending = dict(flotilla_services())
    waves: list[list[str]] = []
    done: set[str] = set()
    while pending:
        wave = sorted(
            name
            for name in pending
            if set(services[name].get("depends_on") or {}) & set(flotilla_services()) <= done
        )
        assert wave, f"a dependency cycle among {sorted(pending)}"
        waves.append(wave)
        done.update(wave)
        for name in wave:
            del pending[name]
    return waves


def started_line(name: str) -> str:
    """The end of the log line a background process writes once it runs (as make run reads)."""
    command = tuple(command_of(name))
    for _name, service, arguments, started in system.BACKGROUND_PROGRAMS:
        if command == ("flask", "--app", service, *arguments):
            return started
    raise AssertionError(f"{name} is no background process of make run")


def wait_up(deployment: Deployment, name: str) -> None:
    """Until ``name`` is what its dependents wait for: exited 0, ready, or running."""
    process, definition = deployment.processes[name], compose()["services"][name]

    def failure() -> str:
        return f"{name}:\n{log_tail(deployment.log(name), 30)}"

    if definition.get("restart") == "no":
        assert process.wait(timeout=60) == 0, failure()
    elif name in WEB_SERVICES:
        url = f"http://127.0.0.1:{deployment.ports[name]}/healthz/ready"
        try:
            wait_for_http(url, timeout=60, process=process)
        except (TimeoutError, RuntimeError) as error:
            raise AssertionError(f"{error}\n{failure()}") from None
    else:
        ending = started_line(name)

        def started() -> bool:
            assert process.poll() is None, failure()
            lines = read_json_lines(deployment.log(name)) if deployment.log(name).exists() else []
            return any(str(line.get("message", "")).endswith(ending) for line in lines)

        wait_until(started, timeout=60, what=f"{name} to start")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    """Fresh databases, an SMTP catcher; afterwards every process stopped, queues and keys gone."""
    with contextlib.ExitStack() as stack:
        databases = {service: stack.enter_context(postgres_database()) for service in SERVICES}
        mail = stack.enter_context(MailServer())
        started = Deployment(tmp_path, databases, mail.port)
        rabbit = Rabbit()
        stack.callback(rabbit.close)
        queue = started.service_name("notifications")
        rabbit.forget_later(queues=(f"{queue}.tasks", f"{queue}.tasks.dead"))
        rabbit.forget_later(exchanges=(started.exchange,))
        stack.callback(_forget_keys, [started.service_name(s) for s in SERVICES])
        try:
            yield started
        finally:
            for process in started.processes.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()


def _forget_keys(prefixes: list[str]) -> None:
    with redis.Redis.from_url(DEFAULT_REDIS_URL) as connection:
        for prefix in prefixes:
            for key in connection.scan_iter(match=f"flotilla:{prefix}*"):
                connection.delete(key)


@pytest.mark.process
@pytest.mark.postgres
def test_every_compose_command_runs_with_compose_environment(deployment: Deployment) -> None:
    for wave in start_order():
        for name in wave:
            deployment.start(name)
        for name in wave:
            wait_up(deployment, name)
    time.sleep(2)  # long-running processes stay up, not merely start
    running = [name for name, process in deployment.processes.items() if process.poll() is None]
    one_shots = [name for name, d in compose()["services"].items() if d.get("restart") == "no"]
    assert sorted(running) == sorted(set(flotilla_services()) - set(one_shots))
    for service in WEB_SERVICES:
        health_check = yaml.safe_load(
            (image_setting(service, "HEALTHCHECK") or "").partition(" CMD ")[2]
        )
        health_check[-1] = health_check[-1].replace(":8000/", f":{deployment.ports[service]}/")
        assert subprocess.run(python_command(health_check), check=False).returncode == 0
    codes = deployment.stop_all()
    assert codes == dict.fromkeys(deployment.processes, 0), {
        name: log_tail(deployment.log(name)) for name, code in codes.items() if code
    }
