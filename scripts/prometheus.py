"""Prometheus for the shop ``make run`` starts: a configuration that scrapes every process.

:func:`render` writes ``prometheus.yml`` for a :class:`~system.Layout`: one job,
``flotilla``, with every web service's ``/metrics`` and the metrics port of every
background process (``METRICS_BIND``, set by ``scripts/system.py``), each target labelled
with its ``service`` and ``component`` as the rules in ``deploy/prometheus/rules.yml``
expect (Kubernetes attaches the same labels from the pods' labels). It is written as JSON,
which Prometheus reads as YAML, so no YAML library is needed to write it. The tests use the
same function, with a faster interval and rules of their own.

Command line, beside a running ``make run`` (base port 8000)::

    python scripts/prometheus.py render --dir var/prometheus [--base-port 8000]
    prometheus --config.file=var/prometheus/prometheus.yml \\
        --storage.tsdb.path=var/prometheus/data --web.listen-address=127.0.0.1:9090
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from system import BACKGROUND_PROGRAMS, ROOT, WEB_SERVICES, Layout, default_var_dir

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
JOB = "flotilla"


@dataclass(frozen=True)
class Target:
    """One process Prometheus scrapes, and the labels its series get."""

    service: str
    component: str
    address: str


def targets(layout: Layout) -> list[Target]:
    """The web services, then the relays, recovery and worker (component from their name)."""
    found = [Target(name, "web", f"127.0.0.1:{layout.port(name)}") for name in WEB_SERVICES]
    for name, service, *_ in BACKGROUND_PROGRAMS:
        component = name.removeprefix(f"{service}-")  # users-relay -> relay
        found.append(Target(service, component, f"127.0.0.1:{layout.metrics_port(name)}"))
    return found


def configuration(
    layout: Layout,
    *,
    rules: Sequence[Path] = (RULES,),
    interval: str = "15s",
) -> dict[str, object]:
    """``prometheus.yml`` as data: scrape and evaluate every ``interval``."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in rules],
        "scrape_configs": [
            {
                "job_name": JOB,
                "static_configs": [
                    {
                        "targets": [target.address],
                        "labels": {"service": target.service, "component": target.component},
                    }
                    for target in targets(layout)
                ],
            }
        ],
    }


def render(
    directory: Path,
    layout: Layout,
    *,
    rules: Sequence[Path] = (RULES,),
    interval: str = "15s",
) -> Path:
    """Write ``directory/prometheus.yml``; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    text = json.dumps(configuration(layout, rules=rules, interval=interval), indent=2)
    config.write_text(text + "\n")
    return config


def command(config: Path, data: Path, address: str) -> list[str]:
    """Prometheus on ``address`` (``127.0.0.1:9090``), reading ``config``, storing in ``data``."""
    return [
        shutil.which("prometheus") or "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address={address}",
        "--log.format=json",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """``render``: write the configuration for the shop on ``--base-port``."""
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render_command = commands.add_parser("render", help="write prometheus.yml")
    render_command.add_argument("--dir", type=Path, default=default_var_dir() / "prometheus")
    render_command.add_argument("--base-port", type=int, default=8000)
    options = parser.parse_args(argv)
    config = render(options.dir, Layout(default_var_dir(), options.base_port))
    sys.stdout.write(f"{config}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
