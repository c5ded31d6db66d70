"""Every process reads ``.env`` alike: both web servers and the ``flask`` commands.

The ``flask`` command (and so migrations, relays, the worker) reads ``.env`` itself; granian
and Gunicorn do not, so a ``.env`` once configured the commands and not the service they
serve. Settings now load it wherever they are read. Each case starts a real process in a
directory holding a ``.env`` that lowers ``MAX_CONTENT_LENGTH``, and asks what it got: a web
server by the status of a POST just over the limit (413 or 200), a command by printing it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .web_servers import TESTS_DIR, start_server

FROM_FILE = 100
BODY = b'{"text": "' + b"x" * 150 + b'"}'
"""Over the limit the ``.env`` sets, far under the default (1 MiB)."""


def _post_status(url: str) -> int:
    request = urllib.request.Request(
        f"{url}/echo", data=BODY, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _server_limit(server: str, tmp_path: Path, **env: str) -> int:
    running = start_server(server, tmp_path, workers=1, **env)
    try:
        return FROM_FILE if _post_status(running.url) == 413 else 0
    finally:
        running.stop()


def _command_limit(tmp_path: Path, **env: str) -> int:
    python_path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "flask", "--app", "server_app:app", "max-content-length"]
    environment = {**os.environ, "PYTHONPATH": python_path, "VAR_DIR": str(tmp_path), **env}
    done = subprocess.run(
        command, env=environment, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("MAX_CONTENT"))
    return FROM_FILE if int(line.partition("=")[2]) == FROM_FILE else 0


@pytest.fixture
def dotenv_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` with a ``.env`` lowering MAX_CONTENT_LENGTH; not set in this environment."""
    (tmp_path / ".env").write_text(f"# the body limit\nMAX_CONTENT_LENGTH={FROM_FILE}\n")
    for name in ("MAX_CONTENT_LENGTH", "FLASK_SKIP_DOTENV"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.process
@pytest.mark.parametrize("process", ["granian", "gunicorn", "flask command"])
def test_every_process_reads_dot_env(process: str, dotenv_dir: Path) -> None:
    if process == "flask command":
        assert _command_limit(dotenv_dir) == FROM_FILE
    else:
        assert _server_limit(process, dotenv_dir) == FROM_FILE


@pytest.mark.process
@pytest.mark.parametrize("process", ["granian", "flask command"])
def test_flask_skip_dotenv_turns_it_off_for_every_process(process: str, dotenv_dir: Path) -> None:
    if process == "flask command":
        assert _command_limit(dotenv_dir, FLASK_SKIP_DOTENV="1") == 0
    else:
        assert _server_limit(process, dotenv_dir, FLASK_SKIP_DOTENV="1") == 0


@pytest.mark.process
def test_the_environment_wins_over_dot_env(dotenv_dir: Path) -> None:
    assert _server_limit("granian", dotenv_dir, MAX_CONTENT_LENGTH="100000") == 0
    assert _command_limit(dotenv_dir, MAX_CONTENT_LENGTH="100000") == 0
