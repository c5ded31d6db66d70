"""Checks on the repository itself: generated documentation is current, every test runs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_configuration_tables_match_the_settings_classes() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/settings_doc.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_test_directory_is_run_by_make_test_or_make_containers() -> None:
    """A directory of tests left out of ``testpaths`` would silently never run in CI."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    testpaths = set(pyproject["tool"]["pytest"]["ini_options"]["testpaths"])
    makefile = (ROOT / "Makefile").read_text()
    directories = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").iterdir()
        if path.is_dir() and any(path.rglob("test_*.py"))
    }
    left_out = {
        directory for directory in directories - testpaths if f"pytest {directory}" not in makefile
    }
    assert not left_out
