"""A real Prometheus server, started by a test on a free port with a given configuration."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import prometheus
from flotilla.testing import free_port

from .rules import executable


class Prometheus:
    """A Prometheus server on a free port, started by the test."""

    def __init__(self, directory: Path, config: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = directory / "prometheus.log"
        address = self.url.removeprefix("http://")
        executable("prometheus")  # fails the test, naming the package, when it is missing
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                prometheus.command(config, directory / "data", address),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def api(self, path: str, **query: str) -> Any:
        """``GET /api/v1/<path>``'s data."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.loads(response.read())
        assert answer["status"] == "success", answer
        return answer["data"]

    def ready(self) -> bool:
        """Prometheus answers ``/-/ready``; fails the test if it exited."""
        assert self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def metric_names(self) -> set[str]:
        """Every series name Prometheus holds (``up`` included)."""
        return set(self.api("label/__name__/values"))

    def alert_states(self, name: str) -> dict[str, str]:
        """The state of each ``name`` alert, by its ``service`` label."""
        return {
            alert["labels"].get("service", ""): alert["state"]
            for alert in self.api("alerts")["alerts"]
            if alert["labels"]["alertname"] == name
        }

    def stop(self) -> None:
        """SIGTERM, and wait for it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
