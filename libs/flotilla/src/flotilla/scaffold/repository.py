"""Register a new web service in a repository laid out as this one: the files no generator owns.

``system.toml`` gets the service's entry. The files written by hand and checked against the
declaration get what the other services have there: ``pyproject.toml`` (the workspace's
dependency, uv source, mypy paths, test paths), the ``Dockerfile`` (its pyproject and its
final stage), compose (its migration and web containers, nginx's upstream and wait), the
init SQL, Prometheus' targets and the Kubernetes base and overlays (its manifest, config,
example secret, migration Job, Ingress paths, network policy, image tags). Each edit puts new
lines after the last lines of the same kind, so the files keep their order and comments;
one that finds no such place stops with :class:`ScaffoldError` naming the file, before
anything is written.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from flotilla.declaration import FILE_NAME, System

FIRST_ADDRESS, LAST_ADDRESS = 11, 79
"""Fixed compose addresses of web services: 172.30.0.11 to .79 (.80 is nginx)."""


class ScaffoldError(RuntimeError):
    """A file does not have the shape the scaffolder edits; the message names it."""


@dataclass(frozen=True)
class WebService:
    """What the edits need to know of the new service."""

    name: str
    port: int
    routes: tuple[str, ...]
    summary: str

    def declaration(self) -> str:
        """Its ``system.toml`` entry."""
        routes = ", ".join(f'"{route}"' for route in self.routes)
        return (
            f"\n[services.{self.name}]\n"
            f'summary = "{self.summary}"\n'
            f"port = {self.port}\n"
            f'database = "{self.name}"\n'
            "redis = true\n"
            f"routes = [{routes}]\n"
        )


Edit = Callable[[str], str]


def register(root: Path, service: WebService, system: System) -> list[Path]:
    """Make every edit for ``service`` under ``root``; the files changed or created."""
    values = {
        "service": service.name,
        "issuer": system.issuer,
        "summary": service.summary,
        "rule": "-" * (86 - len(service.name)),
        # A comment of any summary's length, wrapped as yamllint wants (100 columns).
        "heading": "\n# ".join(
            textwrap.wrap(
                f"{service.name}: {service.summary}. Same shape as the other web services: "
                "Deployment, Service, autoscaler, disruption budget, service account.",
                width=98,
            )
        ),
    }
    edits: dict[str, list[Edit]] = {
        FILE_NAME: [lambda text: text.rstrip("\n") + "\n" + service.declaration()],
        "pyproject.toml": _pyproject_edits(service.name),
        "Dockerfile": _dockerfile_edits(service.name),
        "deploy/compose/compose.yml": [_compose_edit(service.name, values)],
        "deploy/compose/postgres/databases.sql": [
            lambda text: text + f"CREATE DATABASE {service.name};\n"
        ],
        "deploy/prometheus/prometheus.yml": [_prometheus_edit(service.name)],
        "deploy/k8s/base/kustomization.yaml": _kustomization_edits(service.name, system),
        "deploy/k8s/base/example-secrets/secrets.yaml": [
            lambda text: text + _render("k8s-secret.yaml.tmpl", values)
        ],
        "deploy/k8s/base/migrations.yaml": [
            lambda text: text + _render("k8s-migrate.yaml.tmpl", values)
        ],
        "deploy/k8s/base/network-policies.yaml": [_policy_edit(service.name, system.issuer)],
        "deploy/k8s/base/ingress.yaml": [_ingress_edit(service)],
        "deploy/k8s/overlays/dev/kustomization.yaml": [_image_edit(service.name)],
        "deploy/k8s/overlays/prod/kustomization.yaml": [_image_edit(service.name)],
    }
    changed = {root / path: _apply(root / path, file_edits) for path, file_edits in edits.items()}
    created = {
        root / "deploy/k8s/base" / f"{service.name}.yaml": _render("k8s-web.yaml.tmpl", values),
        root / "deploy/k8s/base/config" / f"{service.name}.env": _render(
            "k8s-config.env.tmpl", values
        ),
    }
    for path in created:
        if path.exists():
            raise ScaffoldError(f"{path.relative_to(root)} exists already")
    for path, text in {**changed, **created}.items():
        path.write_text(text)
    return [*changed, *created]


def next_port(system: System) -> int:
    """The port after the highest a web service has."""
    return max(service.port or 0 for service in system.web) + 1


def _apply(path: Path, edits: list[Edit]) -> str:
    if not path.is_file():
        raise ScaffoldError(f"{path.name}: no such file")
    text = path.read_text()
    for edit in edits:
        try:
            text = edit(text)
        except ScaffoldError as error:
            raise ScaffoldError(f"{path.name}: {error}") from None
    return text


def _render(template: str, values: dict[str, str]) -> str:
    path = resources.files("flotilla.scaffold").joinpath("templates", "deploy", template)
    rendered = path.read_text()
    for key, value in values.items():
        rendered = rendered.replace(f"{{{{{key}}}}}", value)
    return rendered


def after_last(pattern: str, addition: str, *, within: str = "") -> Edit:
    """An edit adding ``addition`` after the last match of ``pattern`` (a regex on lines).

    With ``within``, only the stretch from the first match of that regex to the next blank
    line or closing bracket at the start of a line is searched.
    """

    def edit(text: str) -> str:
        start, end = 0, len(text)
        if within:
            opened = re.search(within, text, re.MULTILINE)
            if opened is None:
                raise ScaffoldError(f"no {within!r}")
            start = opened.end()
            closed = re.compile(r"^(\]|\s*$)", re.MULTILINE).search(text, start)
            end = closed.start() if closed else end
        matches = list(re.compile(pattern, re.MULTILINE).finditer(text, start, end))
        if not matches:
            raise ScaffoldError(f"no line like {pattern!r} to add {addition.strip()!r} after")
        at = matches[-1].end()
        return text[:at] + addition + text[at:]

    return edit


def _pyproject_edits(name: str) -> list[Edit]:
    return [
        after_last(
            r'^    "flotilla-\w+",\n', f'    "flotilla-{name}",\n', within=r"^dependencies = \["
        ),
        after_last(
            r"^flotilla-\w+ = \{ workspace = true \}\n",
            f"flotilla-{name} = {{ workspace = true }}\n",
        ),
        after_last(
            r'^    "services/\w+/src",\n', f'    "services/{name}/src",\n', within=r"^mypy_path"
        ),
        after_last(
            r'^    "services/\w+/tests",\n',
            "".join(f'    "services/{name}/{part}",\n' for part in ("src", "migrations", "tests")),
            within=r"^files = \[",
        ),
        after_last(
            r'^    "services/\w+/tests",\n', f'    "services/{name}/tests",\n', within=r"^testpaths"
        ),
    ]


def _dockerfile_edits(name: str) -> list[Edit]:
    stage = f'\nFROM runtime AS service-{name}\nCMD ["flotilla", "serve", "{name}.wsgi:app"]\n'
    return [
        after_last(
            r"^COPY services/\w+/pyproject.toml services/\w+/\n",
            f"COPY services/{name}/pyproject.toml services/{name}/\n",
        ),
        after_last(r'^CMD \["flotilla", "serve", "\w+\.wsgi:app"\]\n', stage),
    ]


def _compose_edit(name: str, values: dict[str, str]) -> Edit:
    def edit(text: str) -> str:
        taken = {int(n) for n in re.findall(r"ipv4_address: 172\.30\.0\.(\d+)", text)}
        free = [n for n in range(FIRST_ADDRESS, LAST_ADDRESS + 1) if n not in taken]
        if not free:
            raise ScaffoldError("no fixed address left for a web service")
        block = _render(
            "compose.yml.tmpl",
            {**values, "address": f"172.30.0.{free[0]}", "mac": f"02:42:ac:1e:00:{free[0]:02x}"},
        )
        front_door = text.find("  # --- the front door")
        if front_door < 0:
            raise ScaffoldError("no '# --- the front door' section to add the service before")
        text = text[:front_door] + block + text[front_door:]
        upstream = f"      FLOTILLA_{name.upper()}_UPSTREAM: {name}:8000\n"
        text = after_last(r"^      FLOTILLA_\w+_UPSTREAM: \w+:8000\n", upstream)(text)
        waits = f"      {name}: {{condition: service_healthy}}\n"
        return after_last(
            r"^      \w+: \{condition: service_healthy\}\n", waits, within=r"^  nginx:"
        )(text)

    return edit


def _prometheus_edit(name: str) -> Edit:
    target = (
        f'      - targets: ["{name}:8000"]\n        labels: {{service: {name}, component: web}}\n'
    )
    return after_last(r'^      - targets: \["\w+:8000"\]\n        labels: \{[^}]*\}\n', target)


def _kustomization_edits(name: str, system: System) -> list[Edit]:
    last_web = system.web[-1].name
    return [
        after_last(rf"^  - {last_web}\.yaml\n", f"  - {name}.yaml\n"),
        after_last(
            r"^    envs: \[config/\w+\.env\]\n",
            f"  - name: {name}\n    envs: [config/{name}.env]\n",
        ),
    ]


def _policy_edit(name: str, issuer: str) -> Edit:
    def edit(text: str) -> str:
        policy = re.search(rf"name: {issuer}-from-services\n.*?values: \[([^\]]*)\]", text, re.S)
        if policy is None:
            raise ScaffoldError(f"no {issuer}-from-services policy with a values list")
        return text[: policy.end(1)] + f", {name}" + text[policy.end(1) :]

    return edit


def _ingress_edit(service: WebService) -> Edit:
    paths = "".join(
        f"          - path: {route.rstrip('/')}\n"
        "            pathType: Prefix\n"
        "            backend:\n"
        "              service:\n"
        f"                name: {service.name}\n"
        "                port:\n"
        "                  name: http\n"
        for route in service.routes
    )

    def edit(text: str) -> str:
        first_end = text.find("\n---\n")
        if first_end < 0:
            raise ScaffoldError("no second document after the main Ingress")
        head = after_last(r"^                  name: http\n", paths)(text[: first_end + 1])
        return head + text[first_end + 1 :]

    return edit


def _image_edit(name: str) -> Edit:
    def edit(text: str) -> str:
        images = list(re.finditer(r"^  - name: flotilla/\w+\n    newTag: (\S+)\n", text, re.M))
        if not images:
            raise ScaffoldError("no images list of flotilla/<service> tags")
        last = images[-1]
        added = f"  - name: flotilla/{name}\n    newTag: {last[1]}\n"
        return text[: last.end()] + added + text[last.end() :]

    return edit
