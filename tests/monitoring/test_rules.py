"""The shipped alert rules: valid, unit-tested by promtool, each with a test and a runbook.

``promtool test rules`` runs ``deploy/prometheus/rules.test.yml`` against the very file
Prometheus loads; these tests make sure it runs in CI, that no alert escapes it, and that
every alert links a runbook page that exists (and no page outlives its alert).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .rules import (
    PROMETHEUS_DIR,
    ROOT,
    RULE_TESTS,
    RULES,
    RUNBOOKS,
    alerts,
    executable,
    series_names,
)

RUNBOOK_SECTIONS = ("## What it means", "## How to confirm", "## What to do")


def promtool(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """``promtool`` with ``arguments``, run in the rules' directory, its output captured."""
    return subprocess.run(
        [executable("promtool"), *map(str, arguments)],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_promtool_finds_the_rules_valid() -> None:
    checked = promtool("check", "rules", RULES)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_promtool_unit_tests_pass() -> None:
    tested = promtool("test", "rules", RULE_TESTS)

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_promtool_unit_tests_fail_when_a_threshold_moves(tmp_path: Path) -> None:
    """The unit tests can fail: the outbox alert's threshold doubled breaks them."""
    shipped = RULES.read_text()
    moved = shipped.replace("pending_age_seconds) > 120", "pending_age_seconds) > 240")
    assert moved != shipped
    (tmp_path / "rules.yml").write_text(moved)
    (tmp_path / "rules.test.yml").write_text(RULE_TESTS.read_text())

    tested = subprocess.run(
        [executable("promtool"), "test", "rules", "rules.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert tested.returncode != 0
    assert "FlotillaOutboxLag" in tested.stdout + tested.stderr


def test_every_alert_is_unit_tested_firing() -> None:
    document = yaml.safe_load(RULE_TESTS.read_text())
    firing = {
        case["alertname"]
        for test in document["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }

    assert {rule["alert"] for rule in alerts()} <= firing


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: str(rule["alert"]))
def test_every_alert_links_its_runbook_page(rule: dict[str, object]) -> None:
    annotations = rule.get("annotations")
    assert isinstance(annotations, dict)
    link = annotations.get("runbook_url")

    assert link == f"docs/runbooks/{rule['alert']}.md"
    page = (ROOT / link).read_text()
    assert page.startswith(f"# {rule['alert']}\n")
    for section in RUNBOOK_SECTIONS:
        assert section in page, f"{link} has no '{section}'"
    labels = rule.get("labels")
    assert isinstance(labels, dict)
    assert labels.get("severity") in {"critical", "warning"}


def test_every_runbook_page_belongs_to_an_alert_and_is_listed() -> None:
    names = {rule["alert"] for rule in alerts()}
    pages = {page.stem for page in RUNBOOKS.glob("*.md")} - {"README"}
    index = (RUNBOOKS / "README.md").read_text()

    assert pages == names
    assert set(re.findall(r"\]\((Flotilla\w+)\.md\)", index)) == names


def test_series_names_are_read_from_expressions() -> None:
    expression = (
        'histogram_quantile(0.99, sum by (le, endpoint) (rate(x_bucket{service=~"$service",'
        ' endpoint!~"/healthz/.*"}[$__rate_interval])))'
        " / on (service) group_left max(info) > 1e3 and changes(y[30m]) offset 5m"
    )

    assert series_names(expression) == {"x_bucket", "info", "y"}
