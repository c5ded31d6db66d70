"""The shipped Prometheus files read as data: alert rules, their tests, promtool.

Shared by the tests of the rules (``test_rules.py``) and of the running system under a real
Prometheus (``test_prometheus.py``); nothing here starts a process.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules.yml"
RULE_TESTS = PROMETHEUS_DIR / "rules.test.yml"
RUNBOOKS = ROOT / "docs" / "runbooks"


def executable(name: str) -> str:
    """``prometheus`` or ``promtool`` on PATH; the test fails, naming the package, if absent."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: install Debian's prometheus package (.ci/run does)")
    return found


def load_rules(path: Path = RULES) -> list[dict[str, Any]]:
    """Every rule of every group in ``path``."""
    document = yaml.safe_load(path.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def alerts(path: Path = RULES) -> list[dict[str, Any]]:
    """The alerting rules of ``path``."""
    return [rule for rule in load_rules(path) if "alert" in rule]


def series_names(expression: str) -> set[str]:
    """Names of the series a PromQL expression selects.

    Not a PromQL parser (none is packaged for Python): strings, label matchers, ranges,
    grouping clauses and template variables are blanked, then every word left that is not a
    function call, an operator keyword or a number is a series name. The expressions this
    repository writes stay within what that reads correctly, and the tests of this module
    hold it to the cases they use.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\$\w+(?:\.\w+)*", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in _WORD.finditer(text):
        word, after = match.group(), text[match.end() :].lstrip()
        if after.startswith("(") or word in _PROMQL_WORDS or _NUMBER.fullmatch(word):
            continue
        names.add(word)
    return names


_WORD = re.compile(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*")
_NUMBER = re.compile(r"(?i)inf|nan|\d\w*")
_PROMQL_WORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "on", "ignoring", "group_left", "group_right"}
)
"""Operators and modifiers; ``group_left`` and ``on`` may stand without a label list."""
