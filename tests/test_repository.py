"""Checks on the repository itself: generated documentation is current."""

from __future__ import annotations

import subprocess
import sys
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
