"""Checks on the repository itself: generated documentation is current, every test runs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def check(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/<script>`` in its checking mode, from the repository's root."""
    command = [sys.executable, f"scripts/{script}"]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def test_readme_configuration_tables_match_the_settings_classes() -> None:
    result = check("settings_doc.py")
    assert result.returncode == 0, result.stderr


def test_what_the_declaration_derives_is_current() -> None:
    result = check("generate.py")
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
