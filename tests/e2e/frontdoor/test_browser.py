"""The front door's headers as a real browser reads them: headless Chromium.

A feature the browser does not know makes it report the whole Permissions-Policy header as
an error in the console of every page, which the console's browser tests would trip on.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from flask import Flask, Response

from flotilla.testing import free_port, serve_app

from .checks import permissions_policy
from .conftest import Nginx, upstreams_of

pytestmark = pytest.mark.process

CHROMIUM = "/usr/bin/chromium"
POLICY_ERROR = "Error with Permissions-Policy header"


def console_of(url: str, profile: Path) -> str:
    """What headless Chromium logs while it loads ``url``, its console messages included."""
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",  # as root, Chromium starts only without its sandbox
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '{"status":"ok"}' in result.stdout, result.stdout  # the page did load
    return result.stderr


def test_chromium_knows_every_feature_the_policy_turns_off(tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    door = Nginx.start(tmp_path / "nginx", upstreams_of([nowhere], others=nowhere))
    try:
        logged = console_of(f"{door.url}/healthz", tmp_path / "profile")
    finally:
        door.stop()

    assert POLICY_ERROR not in logged, logged


def test_chromium_reports_a_feature_it_does_not_know(tmp_path: Path) -> None:
    """The check above can fail: an unknown feature is reported, in the form it looks for."""
    app = Flask("policy")

    @app.get("/healthz")
    def healthz() -> Response:
        policy = f"{permissions_policy()}, no-such-feature=()"
        return Response(
            '{"status":"ok"}', mimetype="application/json", headers={"Permissions-Policy": policy}
        )

    with serve_app(app) as url:
        logged = console_of(f"{url}/healthz", tmp_path / "profile")

    assert f"{POLICY_ERROR}: Unrecognized feature: 'no-such-feature'." in logged
