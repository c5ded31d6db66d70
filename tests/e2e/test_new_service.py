"""``flotilla new`` in a fresh copy of the repository: lint, tests and ``make run`` pass untouched.

The copy holds what git tracks or would track (the working tree, without ignored files:
no virtual environment, no ``var/``). In it, ``flotilla new inventory`` writes and registers
a service; then, without a hand edit: ``make lint`` is clean, the new service's own tests
pass (its contract test included), the deployment files agree with the declaration, and
``make run`` starts it behind nginx, where a signed-in customer creates an item and reads it
back. This is the slowest test of ``make test`` (a fresh environment, a full mypy run).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from flotilla.testing import free_base_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
NAME = "inventory"
OFFSETS = (1, 2, 3, 4, 11, 12, 13, 14, 80)
"""The make run ports of the copy: four web services, four background metrics, nginx."""


def uv() -> str:
    """The uv the repository's Makefile uses here."""
    found = shutil.which("uv") or ROOT / ".tools" / "bin" / "uv"
    assert Path(found).is_file(), "uv: run make sync first"
    return str(found)


def environment() -> dict[str, str]:
    """The embedded default, with this uv first on PATH so the copy does not fetch its own."""
    cleared = ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "SMTP_HOST", "VAR_DIR", "VIRTUAL_ENV")
    env = {name: value for name, value in os.environ.items() if name not in cleared}
    env["PATH"] = f"{Path(uv()).parent}{os.pathsep}{env['PATH']}"
    return env


def run(command: list[str], cwd: Path, *, timeout: float = 600) -> str:
    """Run ``command`` in ``cwd``; its output, or a failure that shows it."""
    result = subprocess.run(
        command, cwd=cwd, env=environment(), capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def fresh_copy(destination: Path) -> Path:
    """What ``git clone`` of the working tree would hold, at ``destination``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for relative in filter(None, listed):
        source = ROOT / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    # mypy's cache only saves time: entries are keyed by each file's content, so the new
    # service's files and every edited one are checked afresh.
    if (ROOT / ".mypy_cache").is_dir():
        shutil.copytree(ROOT / ".mypy_cache", destination / ".mypy_cache")
    return destination


def call(method: str, url: str, body: Any = None, token: str = "") -> tuple[int, Any]:
    """One JSON request; its status and body."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy with ``flotilla new inventory`` run in it."""
    copy = fresh_copy(tmp_path_factory.mktemp("clone"))
    run(["make", "--no-print-directory", "sync"], copy)
    output = run([uv(), "run", "--frozen", "flotilla", "new", NAME], copy)
    assert f"{NAME} is ready" in output
    return copy


@pytest.mark.process
def test_the_new_service_is_declared_and_its_deploy_files_agree(repository: Path) -> None:
    declared = (repository / "system.toml").read_text()
    assert f"[services.{NAME}]" in declared
    assert "location /api/v1/items" in (repository / "deploy/nginx/flotilla/api.conf").read_text()
    run([uv(), "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/deploy/test_declaration.py", "tests/test_repository.py"], repository)  # fmt: skip


@pytest.mark.process
def test_make_lint_is_clean_without_a_hand_edit(repository: Path) -> None:
    run(["make", "--no-print-directory", "lint"], repository, timeout=900)


@pytest.mark.process
def test_the_new_services_own_tests_pass(repository: Path) -> None:
    output = run([uv(), "run", "--frozen", "pytest", "-q", "-p", "no:cacheprovider",
                  f"services/{NAME}/tests"], repository)  # fmt: skip
    assert " passed" in output
    assert "failed" not in output


@pytest.mark.process
def test_make_run_serves_the_new_service_through_nginx(repository: Path) -> None:
    if not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
        pytest.fail("nginx is needed: .ci/run installs it")
    base = free_base_port(OFFSETS)
    output = repository / "run.out"
    with output.open("wb") as sink:
        runner = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"RUN_ARGS=--base-port {base}"],
            cwd=repository, env=environment(), stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until(lambda: _started(runner, output), timeout=180, what="make run's banner")
        front_door = f"http://127.0.0.1:{base + 80}"
        assert call("GET", f"{front_door}/api/v1/items")[0] == 200
        token = _customer_token(front_door)
        status, item = call("POST", f"{front_door}/api/v1/items", {"name": "crate"}, token)
        assert status == 201, item
        status, read = call("GET", f"{front_door}/api/v1/items/{item['id']}")
        assert (status, read["name"]) == (200, "crate")
    finally:
        os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C, as a person stops it
        runner.wait(timeout=120)
    assert output.read_text(errors="replace").rstrip().endswith("flotilla: stopped.")


def _started(runner: subprocess.Popen[bytes], output: Path) -> bool:
    assert runner.poll() is None, output.read_text(errors="replace")
    return "Stop:" in output.read_text(errors="replace")


def _customer_token(front_door: str) -> str:
    account = {"username": "crate_keeper", "email": "keeper@example.com", "password": "x" * 12}
    assert call("POST", f"{front_door}/api/v1/users", account)[0] == 201
    login = {"login": account["username"], "password": account["password"]}
    status, tokens = call("POST", f"{front_door}/api/v1/tokens", login)
    assert status == 200, tokens
    token: str = tokens["access_token"]
    return token
