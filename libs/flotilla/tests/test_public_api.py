"""The package's public API: every re-exported name resolves, and services use nothing else."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import flotilla

ROOT = Path(__file__).resolve().parents[3]
SERVICE_CODE = [
    path
    for pattern in ("services/*/src/**/*.py", "services/*/migrations/**/*.py")
    for path in ROOT.glob(pattern)
]


@pytest.mark.parametrize("name", flotilla.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(flotilla, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = flotilla.Nothing


def test_importing_the_package_loads_no_lazily_exported_module() -> None:
    # Celery (tasks), alembic (migrations) and pagination stay unloaded until used.
    heavy = (
        "flotilla.messaging.tasks",
        "celery",
        "alembic",
        "flotilla.data.migrations",
        "flotilla.web.pagination",
    )
    code = f"import sys, flotilla; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_services_import_the_chassis_only_from_its_top_level() -> None:
    assert SERVICE_CODE
    deep = []
    for path in SERVICE_CODE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flotilla."):
                deep.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}")
            if isinstance(node, ast.Import):
                deep += [alias.name for alias in node.names if alias.name.startswith("flotilla.")]
    assert not deep
