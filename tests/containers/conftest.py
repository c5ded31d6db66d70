"""What the container tests measured, printed at the end of the run (``make containers``)."""

from __future__ import annotations

import pytest

MEASURED = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def measured(pytestconfig: pytest.Config) -> list[str]:
    """Lines a test adds to the report printed once the run is over."""
    return pytestconfig.stash.setdefault(MEASURED, [])


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(MEASURED, [])
    if lines:
        terminalreporter.section("measured")
        for line in lines:
            terminalreporter.write_line(line)
