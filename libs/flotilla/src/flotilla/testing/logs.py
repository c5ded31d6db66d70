"""Logs in tests: :func:`capture_logs` for this process, :func:`read_json_lines` for children."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from flotilla.observability.logging import JsonFormatter


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter("test"))
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(orjson.loads(self.format(record)))


@contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[list[dict[str, Any]]]:
    """Collect every log record of the block as the dict the JSON formatter would write."""
    handler = _ListHandler()
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, previous_level or level))
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects written to ``path``, one a line; other lines (tracebacks) are skipped."""
    records = []
    for line in path.read_bytes().splitlines():
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return records
