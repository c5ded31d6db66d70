"""A new service's own files: paths and text from the names, code that compiles and lints clean.

Whether the rendered service's own tests pass is the end-to-end test's to show (it registers
the service in the workspace); these tests need nothing but the templates and ruff.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flotilla.scaffold.service import MAX_LENGTH, Names, service_files

ROOT = Path(__file__).resolve().parents[3]
INVENTORY = Names("inventory", "item", "items")
EXPECTED_PATHS = {
    "pyproject.toml",
    "src/inventory/__init__.py",
    "src/inventory/api.py",
    "src/inventory/config.py",
    "src/inventory/models.py",
    "src/inventory/schemas.py",
    "src/inventory/service.py",
    "src/inventory/wsgi.py",
    "migrations/env.py",
    "migrations/script.py.mako",
    "migrations/versions/0001_create_items.py",
    "tests/conftest.py",
    "tests/test_config.py",
    "tests/test_contract.py",
    "tests/test_items.py",
    "tests/test_migrations.py",
}
LONGEST = Names("s" * MAX_LENGTH, "line_item_" + "x" * (MAX_LENGTH - 10), "line_items_" + "x" * 9)
SAMPLES = {
    "after flotilla": INVENTORY,
    "before flotilla": Names("billing", "invoice", "invoices"),
    "irregular plural": Names("people", "person", "people_list"),
    "longest names": LONGEST,
}


def test_the_templates_map_to_a_service_directory() -> None:
    assert set(service_files(INVENTORY)) == EXPECTED_PATHS


@pytest.mark.parametrize("names", SAMPLES.values(), ids=SAMPLES)
def test_every_placeholder_is_replaced(names: Names) -> None:
    for path, text in service_files(names).items():
        assert "{{" not in text, path
        assert "__service__" not in path
        assert "__resources__" not in path


def test_the_names_land_where_they_belong() -> None:
    files = service_files(Names("billing", "line_item", "line_items"))
    assert 'name = "flotilla-billing"' in files["pyproject.toml"]
    assert "class BillingSettings(ServiceSettings):" in files["src/billing/config.py"]
    assert "class LineItem(Base):" in files["src/billing/models.py"]
    assert '__tablename__ = "line_items"' in files["src/billing/models.py"]
    schemas = files["src/billing/schemas.py"]
    for schema in ("LineItemCreate", "LineItemPublic", "LineItemsPublic"):
        assert f"class {schema}(ma.Schema):" in schemas
    assert 'url_prefix="/api/v1/line_items"' in files["src/billing/api.py"]
    assert "def create_line_item(" in files["src/billing/service.py"]
    assert "tests/test_line_items.py" in files


def test_alembic_template_keeps_its_own_placeholders() -> None:
    mako = service_files(INVENTORY)["migrations/script.py.mako"]
    assert mako == (ROOT / "services/catalog/migrations/script.py.mako").read_text()
    assert "${message}" in mako


@pytest.mark.parametrize("names", SAMPLES.values(), ids=SAMPLES)
def test_the_rendered_python_compiles(names: Names) -> None:
    python = {path: text for path, text in service_files(names).items() if path.endswith(".py")}
    assert len(python) == len([path for path in EXPECTED_PATHS if path.endswith(".py")])
    for path, text in python.items():
        compile(text, path, "exec")


def test_the_service_imports_the_chassis_first_or_second_as_the_name_sorts() -> None:
    after = service_files(INVENTORY)["migrations/env.py"]
    before = service_files(Names("billing", "invoice", "invoices"))["migrations/env.py"]
    assert after.index("from flotilla import") < after.index("from inventory.models import")
    assert before.index("from billing.models import") < before.index("from flotilla import")


def test_the_rendered_services_pass_ruff(tmp_path: Path) -> None:
    """ruff, with the repository's settings, on services laid out as in the repository."""
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    (tmp_path / "libs").mkdir()
    (tmp_path / "libs" / "flotilla").symlink_to(ROOT / "libs" / "flotilla")  # first-party
    for names in SAMPLES.values():
        for path, text in service_files(names).items():
            file = tmp_path / "services" / names.service / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text)
    for command in (["check"], ["format", "--check"]):
        ruff = [sys.executable, "-m", "ruff", *command, "--no-cache", "services"]
        result = subprocess.run(ruff, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_camel_case_names() -> None:
    names = Names("billing", "line_item", "line_items")
    assert (names.Service, names.Resource, names.Resources) == ("Billing", "LineItem", "LineItems")


INVALID = "is not a valid name"
INVALID_NAMES = {
    "service with a capital": (("Inventory", "item", "items"), INVALID),
    "service with a hyphen": (("stock-keeping", "item", "items"), INVALID),
    "service with an underscore": (("stock_keeping", "item", "items"), INVALID),
    "service starting with a digit": (("1shop", "item", "items"), INVALID),
    "service that is a keyword": (("import", "item", "items"), INVALID),
    "service that is a standard module": (("email", "message", "messages"), "would hide"),
    "service named as the chassis": (("flotilla", "item", "items"), "would hide"),
    "service too long": (("s" * (MAX_LENGTH + 1), "item", "items"), "longer than"),
    "resource with a capital": (("inventory", "Item", "items"), INVALID),
    "resource with a double underscore": (("inventory", "line__item", "line_items"), INVALID),
    "resource with a word starting with a digit": (("inventory", "item_2", "items"), INVALID),
    "resource that is a keyword": (("inventory", "class", "classes"), INVALID),
    "empty resources": (("inventory", "item", ""), INVALID),
    "resources too long": (("inventory", "item", "i" * (MAX_LENGTH + 1)), "longer than"),
    "resources that hide a built-in": (("archives", "zip_file", "zip"), "built-in"),
    "resource and resources the same": (("inventory", "sheep", "sheep"), "must differ"),
}


@pytest.mark.parametrize("case", INVALID_NAMES)
def test_invalid_names_are_refused(case: str) -> None:
    names, message = INVALID_NAMES[case]
    with pytest.raises(ValueError, match=message):
        Names(*names)


CLASHES = {
    "resource hiding the chassis' Page": (("inventory", "page", "pages"), "'Page' twice"),
    "resource hiding the tables' Base": (("inventory", "base", "bases"), "'Base' twice"),
    "resources hiding the schemas module": (("registry", "schema", "schemas"), "'schemas' twice"),
    "resources writing over the contract test": (
        ("inventory", "contracts", "contract"),
        "tests/test_contract.py",
    ),
}


@pytest.mark.parametrize("case", CLASHES)
def test_names_that_clash_with_the_templates_are_refused(case: str) -> None:
    names, message = CLASHES[case]
    with pytest.raises(ValueError, match=message):
        service_files(Names(*names))
