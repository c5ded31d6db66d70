"""Helpers for the deployment files' tests: YAML, the Dockerfile, Compose's variables, settings.

There is no container engine here, so the files are read as data and checked against what
the code declares: a variable a deployment sets must be a setting of the process it reaches,
a path it mounts must exist, a command it runs must be one the code answers to. The linters
and validators are dev dependencies, found beside the interpreter running the tests.
"""

from __future__ import annotations

import importlib
import re
import shutil
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from flotilla import declaration
from flotilla.config import GranianSettings, GunicornSettings, ServeSettings, ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
SYSTEM = declaration.load(ROOT / declaration.FILE_NAME)
"""What the deployment files must agree with: ``system.toml``."""
SERVICES = SYSTEM.names
WEB_SERVICES = tuple(service.name for service in SYSTEM.web)

IMAGE_VARIABLES = {
    "PATH": "the image's virtual environment first, so its python, flotilla and flask run",
    "PYTHONDONTWRITEBYTECODE": "no .pyc files written at run time (read-only root filesystem)",
    "PYTHONUNBUFFERED": "log lines reach the container's output as they are written",
}
"""Variables processes read that are not Flotilla settings, and why each is set.

``PROMETHEUS_MULTIPROC_DIR`` is not one of them: set for every process, it stops those that do
not create the directory (``flask db upgrade``, the relays, the worker) on their first metric.
``GRANIAN_METRICS_DIR`` (``GUNICORN_METRICS_DIR``) names it; the web server creates it and
passes it to its workers.
"""

WEB_SERVER_SETTINGS: dict[str, tuple[str, type[BaseSettings]]] = {
    "granian": ("GRANIAN_", GranianSettings),
    "gunicorn": ("GUNICORN_", GunicornSettings),
}
"""Each web server's variable prefix and settings class."""


# --- tools ---------------------------------------------------------------------------------


def tool(name: str) -> str:
    """The executable ``name`` of a dev dependency: in this interpreter's environment first."""
    beside = Path(sysconfig.get_path("scripts")) / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: it is a dev dependency (uv sync installs it)")
    return found


def load_yaml(path: Path) -> Any:
    """The one YAML document in ``path`` (merge keys resolved)."""
    return yaml.safe_load(path.read_text())


def load_yaml_documents(path: Path) -> list[Any]:
    """Every YAML document in ``path``, empty ones left out."""
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


# --- settings ------------------------------------------------------------------------------


def settings_class(service: str) -> type[ServiceSettings]:
    """``<Service>Settings`` from ``<service>.config``."""
    module = importlib.import_module(f"{service}.config")
    found: type[ServiceSettings] = getattr(module, f"{service.capitalize()}Settings")
    return found


def variable_names(settings: type[BaseSettings]) -> set[str]:
    """The environment variables ``settings`` reads (prefix and aliases applied)."""
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for name, declared in settings.model_fields.items():
        alias = declared.validation_alias
        names.add(alias if isinstance(alias, str) else f"{prefix}{name}")
    return names


def server_variable_names() -> set[str]:
    """Every variable ``flotilla serve`` and the web servers read."""
    names = variable_names(ServeSettings)
    for _, settings in WEB_SERVER_SETTINGS.values():
        names |= variable_names(settings)
    return names


def setting_names(service: str) -> set[str]:
    """Every variable a process of ``service`` reads as a setting: its own and the servers'."""
    return variable_names(settings_class(service)) | server_variable_names()


def web_server_setting(environment: Mapping[str, str], name: str) -> str:
    """Setting ``name`` (``BIND``) of the server ``flotilla serve`` runs in ``environment``.

    The server is ``WEB_SERVER`` or the default; the value is its variable (``GRANIAN_BIND``)
    or that setting's default.
    """
    server = environment.get("WEB_SERVER") or ServeSettings.model_fields["WEB_SERVER"].default
    prefix, settings = WEB_SERVER_SETTINGS[server]
    if f"{prefix}{name}" in environment:
        return environment[f"{prefix}{name}"]
    return str(settings.model_fields[name].get_default(call_default_factory=True))


# --- the Dockerfile ------------------------------------------------------------------------


@dataclass
class Stage:
    """One ``FROM`` of the Dockerfile and its instructions, in order."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        """The arguments of every ``keyword`` instruction of this stage."""
        return [arguments for found, arguments in self.instructions if found == keyword]


def dockerfile_instructions(path: Path = DOCKERFILE) -> Iterator[tuple[str, str]]:
    """``(KEYWORD, arguments)`` per instruction; comments dropped, continued lines joined."""
    logical = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        logical += line.rstrip()
        if logical.endswith("\\"):
            logical = logical[:-1] + " "
            continue
        keyword, _, arguments = logical.strip().partition(" ")
        yield keyword.upper(), " ".join(arguments.split())
        logical = ""


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """The stages of the Dockerfile, in order (global ``ARG``s before the first are dropped)."""
    stages: list[Stage] = []
    for keyword, arguments in dockerfile_instructions(path):
        if keyword == "FROM":
            words = [word for word in arguments.split() if not word.startswith("--")]
            name = words[2] if len(words) > 2 and words[1].upper() == "AS" else ""
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append((keyword, arguments))
    return stages


def image_lineage(service: str, path: Path = DOCKERFILE) -> list[Stage]:
    """The stages the image of ``service`` is made of, the final one last.

    A stage based on another stage inherits its settings (ENV, USER, CMD...), so these are
    the stages whose instructions apply to the image.
    """
    stages = dockerfile_stages(path)
    by_name = {stage.name: stage for stage in stages if stage.name}
    lineage = [stages[-1]]
    while True:
        base = lineage[-1].base.replace("${SERVICE}", service).replace("$SERVICE", service)
        if base not in by_name:
            return lineage[::-1]
        lineage.append(by_name[base])


def image_setting(service: str, keyword: str) -> str | None:
    """The last ``keyword`` (CMD, USER, HEALTHCHECK...) in effect in the image of ``service``."""
    found = [value for stage in image_lineage(service) for value in stage.arguments(keyword)]
    return found[-1] if found else None


def image_environment(service: str) -> dict[str, str]:
    """The ``ENV`` of the image of ``service`` (``KEY=value`` form; ``$PATH`` left as is)."""
    environment: dict[str, str] = {}
    for stage in image_lineage(service):
        for arguments in stage.arguments("ENV"):
            for assignment in arguments.split():
                name, _, value = assignment.partition("=")
                environment[name] = value
    return environment


# --- Compose -------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{(?P<braced>[^}]+)\}|\$(?P<plain>[A-Za-z_][A-Za-z0-9_]*)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class MissingVariable(LookupError):
    """A ``${NAME:?message}`` whose variable is unset or empty."""


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with Compose's ``$NAME``, ``${NAME}``, ``${NAME:-default}``, ``${NAME:?error}``
    and ``$$`` replaced, as ``docker compose`` does before it reads the file."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        expression = match.group("braced") or match.group("plain")
        name = _NAME.match(expression)
        assert name is not None, f"not a variable: ${{{expression}}}"
        value = variables.get(name.group(0), "")
        operator, operand = expression[name.end() : name.end() + 2], expression[name.end() + 2 :]
        if operator == ":?" and not value:
            raise MissingVariable(operand or name.group(0))
        if operator == ":-" and not value:
            return operand
        return value

    return _VARIABLE.sub(replace, text)


def interpolated_names(text: str) -> set[str]:
    """The variables ``text`` refers to with ``$NAME`` or ``${NAME...}``."""
    names = set()
    for match in _VARIABLE.finditer(text):
        expression = match.group("braced") or match.group("plain")
        if expression and (name := _NAME.match(expression)):
            names.add(name.group(0))
    return names


def read_env_file(path: Path) -> dict[str, str]:
    """A Compose ``.env`` file: ``NAME=value``, comments, quoted values (double quotes may span
    lines and take ``\\n`` escapes)."""
    values: dict[str, str] = {}
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, value = line.partition("=")
        if value.startswith('"'):
            while not (value.endswith('"') and len(value) > 1):
                value += "\n" + next(lines)
            value = value[1:-1].replace("\\n", "\n").replace('\\"', '"')
        elif value.startswith("'"):
            value = value[1:-1]
        else:
            value = value.partition(" #")[0].strip()
        values[name.strip()] = value
    return values


def compose_service_of(definition: Mapping[str, Any]) -> str | None:
    """Which Flotilla service a Compose service runs: from its image ``flotilla/<name>:...``."""
    image = str(definition.get("image", ""))
    match = re.fullmatch(r"flotilla/(?P<service>[a-z]+):\S+", image)
    return match.group("service") if match else None


def compose_environment(definition: Mapping[str, Any]) -> dict[str, str]:
    """A Compose service's ``environment``, as a mapping of strings (not yet interpolated)."""
    environment = definition.get("environment") or {}
    if isinstance(environment, list):
        pairs = (item.partition("=") for item in environment)
        return {name: value for name, _, value in pairs}
    return {name: "" if value is None else str(value) for name, value in environment.items()}


def duration_seconds(text: str) -> float:
    """A Compose duration (``1m30s``, ``40s``, ``500ms``) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert "".join(number + unit for number, unit in parts) == text, f"not a duration: {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def python_command(command: list[str]) -> list[str]:
    """``command`` with its program (flotilla, flask) run by this interpreter's environment."""
    program = Path(sysconfig.get_path("scripts")) / command[0]
    if program.is_file():
        return [str(program), *command[1:]]
    return [sys.executable, "-m", command[0], *command[1:]]
