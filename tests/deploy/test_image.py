"""The Dockerfile: it lints clean, and what it says matches what the code does.

No image is built here (``make containers`` builds and runs them: tests/containers): hadolint
checks the file, and the rest reads the stages each service's image is made of and checks
them against the code — the user, the port the web server binds, the health check's path,
the default command, the environment, and what the build context lets in.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from pathlib import Path

import pytest
from flask import Flask

from .conftest import (
    DOCKERFILE,
    IMAGE_VARIABLES,
    ROOT,
    SERVICES,
    WEB_SERVICES,
    dockerfile_stages,
    image_environment,
    image_lineage,
    image_setting,
    setting_names,
    settings_class,
    tool,
    web_server_setting,
)

COMPILERS = ("build-essential", "gcc", "g++", "clang", "make", "cc ", "libc6-dev", "python3-dev")
WEB_COMMAND = ["flotilla", "serve"]


def exec_form(arguments: str) -> list[str]:
    """A CMD or HEALTHCHECK command in exec (JSON) form."""
    command = json.loads(arguments)
    assert isinstance(command, list), f"not in exec form: {arguments}"
    return [str(word) for word in command]


def health_check_url(service: str) -> str:
    """The URL the image's HEALTHCHECK asks."""
    check = image_setting(service, "HEALTHCHECK")
    assert check is not None, f"the {service} image has no HEALTHCHECK"
    command = exec_form(check.partition(" CMD ")[2])
    match = re.search(r"'(http://[^']+)'", command[-1])
    assert match is not None, f"no URL in the health check: {command}"
    return match.group(1)


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize(
    "containerfile",
    sorted((ROOT / "deploy" / "containers").glob("*/Containerfile")),
    ids=lambda path: path.parent.name,
)
def test_hadolint_finds_nothing_in_the_local_infrastructure_images(containerfile: Path) -> None:
    # compose.local.yml's images (PostgreSQL, Redis, RabbitMQ, nginx, the SMTP catcher).
    result = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "style", str(containerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_would_catch_a_bad_instruction(tmp_path: Path) -> None:
    # The run above means something only if this hadolint reads this kind of file.
    worse = tmp_path / "Dockerfile"
    worse.write_text(DOCKERFILE.read_text() + "\nRUN apt-get install curl\n")
    result = subprocess.run(
        [tool("hadolint"), str(worse)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3008" in result.stdout  # apt-get install without pinned versions


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_runs_on_slim_python_without_compilers(service: str) -> None:
    lineage = image_lineage(service)
    bases = [stage.base for stage in lineage if stage.base.startswith(("$", "python"))]
    assert bases == ["${PYTHON_IMAGE}"]
    default = next(
        arguments for keyword, arguments in _global_arguments() if "PYTHON_IMAGE=" in arguments
    )
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+", default)
    for stage in lineage:
        for command in stage.arguments("RUN"):
            assert not any(compiler in command for compiler in COMPILERS), command


def _global_arguments() -> list[tuple[str, str]]:
    """The ``ARG`` lines before the first ``FROM``."""
    lines = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("FROM "):
            break
        if line.startswith("ARG "):
            lines.append(("ARG", line.removeprefix("ARG ")))
    return lines


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_runs_as_the_unprivileged_flotilla_user(service: str) -> None:
    user = image_setting(service, "USER")
    assert user == "10001:10001"
    creating = " ".join(
        command for stage in image_lineage(service) for command in stage.arguments("RUN")
    )
    assert "--uid 10001" in creating
    assert "--gid 10001" in creating
    assert image_setting(service, "WORKDIR") == "/app"


@pytest.mark.parametrize("service", WEB_SERVICES)
def test_the_default_command_is_the_chassis_web_server(service: str) -> None:
    command = exec_form(image_setting(service, "CMD") or "null")
    assert command == [*WEB_COMMAND, f"{service}.wsgi:app"]
    assert (ROOT / "services" / service / "src" / service / "wsgi.py").is_file()


def test_the_notifications_image_runs_the_worker_and_has_no_http_check() -> None:
    command = exec_form(image_setting("notifications", "CMD") or "null")
    assert command == ["flask", "--app", "notifications", "tasks", "worker"]
    assert image_setting("notifications", "HEALTHCHECK") == "NONE"


@pytest.mark.parametrize("service", WEB_SERVICES)
def test_exposed_port_bound_port_and_health_check_port_agree(service: str) -> None:
    environment = image_environment(service)
    bind = web_server_setting(environment, "BIND")
    bind_port = bind.rpartition(":")[2]
    assert bind == f"0.0.0.0:{bind_port}"
    # Gunicorn, one setting away, binds the same.
    assert environment["GUNICORN_BIND"] == environment["GRANIAN_BIND"] == bind
    assert image_setting(service, "EXPOSE") == bind_port == "8000"
    assert health_check_url(service) == f"http://127.0.0.1:{bind_port}/healthz/live"


@pytest.mark.parametrize("service", WEB_SERVICES)
def test_the_health_check_path_answers_200_in_the_app(service: str, tmp_path: Path) -> None:
    path = health_check_url(service).partition("127.0.0.1:8000")[2]
    module = __import__(service)
    app: Flask = module.create_app(settings_class(service)(VAR_DIR=tmp_path))
    response = app.test_client().get(path)
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize("service", SERVICES)
def test_every_image_variable_is_a_setting_or_has_a_stated_reason(service: str) -> None:
    environment = image_environment(service)
    unknown = set(environment) - setting_names(service) - set(IMAGE_VARIABLES)
    assert not unknown
    assert {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"} <= set(environment)
    assert environment["PATH"].startswith("/app/.venv/bin:")
    assert environment["VAR_DIR"] == "/tmp/flotilla"
    assert environment["GRANIAN_METRICS_DIR"] == "/tmp/flotilla/metrics"
    assert environment["GUNICORN_METRICS_DIR"] == "/tmp/flotilla/metrics"
    assert "PROMETHEUS_MULTIPROC_DIR" not in environment  # see IMAGE_VARIABLES


def test_dependencies_install_from_the_lock_file_before_the_code_is_copied() -> None:
    builder = next(stage for stage in dockerfile_stages() if stage.name == "builder")
    order = [(keyword, arguments) for keyword, arguments in builder.instructions]
    first_sync = next(
        index for index, (keyword, arguments) in enumerate(order) if "uv sync" in arguments
    )
    copied_before = [
        arguments
        for keyword, arguments in order[:first_sync]
        if keyword == "COPY" and not arguments.startswith("--from=")  # uv's own binary
    ]
    sources = [word for arguments in copied_before for word in arguments.split()[:-1]]
    assert all(Path(source).name in ("pyproject.toml", "uv.lock") for source in sources)
    members = {
        str(path.relative_to(ROOT))
        for path in ROOT.glob("*/*/pyproject.toml")
        if "/." not in str(path)
    }
    assert members <= set(sources), "every workspace member's pyproject.toml, for uv --frozen"
    assert "--no-install-workspace" in order[first_sync][1]
    assert "UV_FROZEN=1" in " ".join(builder.arguments("ENV"))
    assert "UV_NO_DEV=1" in " ".join(builder.arguments("ENV"))


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker's build context leaves ``path`` out (last matching pattern wins; a
    pattern matching a parent directory matches everything under it)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    ignored = False
    for pattern in patterns:
        keep = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        regex = fnmatch.translate(glob).replace(".*.*/", "(.*/)?")
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            ignored = not keep
    return ignored


def test_the_build_context_holds_the_code_and_nothing_private() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    needed = [
        "pyproject.toml",
        "uv.lock",
        "libs/flotilla/pyproject.toml",
        "libs/flotilla/src/flotilla/app.py",
        "services/users/migrations/env.py",
        "services/orders/src/orders/wsgi.py",
    ]
    assert [path for path in needed if _ignored(path, patterns)] == []
    private = [
        ".git/config",
        ".venv/bin/python",
        ".tools/bin/uv",
        "var/users.db",
        "tests/deploy/test_image.py",
        "services/users/tests/conftest.py",
        "libs/flotilla/tests/conftest.py",
        "services/users/src/users/__pycache__/api.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
        ".pytest_cache/v/cache",
        "deploy/compose/.env",
        "services/users/.env",
        "libs/flotilla/key.pem",
        "bench/RESULTS.md",
        "var/bench/out.json",
        "docs/operations.md",
    ]
    assert [path for path in private if not _ignored(path, patterns)] == []
