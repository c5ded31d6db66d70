"""``flotilla serve APP``: the server ``WEB_SERVER`` names runs the app, Gunicorn in place.

How each server then behaves is in ``test_web_servers.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flotilla.serving.processes import child_pids, stop_process, wait_for_http
from flotilla.testing import free_port

from .web_servers import TESTS_DIR

SERVE = [sys.executable, "-m", "flotilla", "serve", "server_app:app"]


def environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """What the sample app needs, and ``variables``."""
    return {
        **os.environ,
        "PYTHONPATH": str(TESTS_DIR),
        "VAR_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        **variables,
    }


@pytest.mark.process
def test_gunicorn_runs_in_the_launchers_process(tmp_path: Path) -> None:
    port = free_port()
    env = environment(
        tmp_path, WEB_SERVER="gunicorn", GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1"
    )
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(SERVE, env=env, cwd=tmp_path, stdout=log, stderr=log)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz/ready", timeout=30, process=process)
        command = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        workers = child_pids(process.pid)
    finally:
        exit_code = stop_process(process)

    # The same pid, now Gunicorn's master: a signal to it reaches Gunicorn directly.
    assert command[1:5] == [b"-m", b"gunicorn", b"-c", b"python:flotilla.serving.gunicorn"]
    assert len(workers) == 1
    assert exit_code == 0


def test_an_unknown_server_stops_the_start_with_the_variables_name(tmp_path: Path) -> None:
    result = subprocess.run(
        SERVE,
        env=environment(tmp_path, WEB_SERVER="uwsgi"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 3
    assert "configuration error: WEB_SERVER" in result.stderr
    assert "Traceback" not in result.stderr
