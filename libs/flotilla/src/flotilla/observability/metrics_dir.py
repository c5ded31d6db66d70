"""The multiprocess metrics directory a pre-fork server prepares for its workers.

prometheus_client decides where samples live when metrics are created: with
``PROMETHEUS_MULTIPROC_DIR`` set, in memory-mapped files every worker writes and any worker's
``/metrics`` merges. So the server's main process (the Gunicorn master, the granian main
process) chooses the directory and empties it before it imports the app, and removes it at
exit if it made a temporary one. :mod:`flotilla.serving.gunicorn` and
:mod:`flotilla.serving.serve.granian` both call this; neither may do it twice, and a child must not
undo what its parent chose.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from flotilla.observability import metrics

_PREPARED_BY = "FLOTILLA_METRICS_PREPARED_BY"
_TEMPORARY = "FLOTILLA_METRICS_TEMPORARY"


def prepare(configured: str) -> str:
    """Choose the directory and empty it, once per main process; the directory chosen.

    ``PROMETHEUS_MULTIPROC_DIR`` wins, then ``configured`` (``GUNICORN_METRICS_DIR``,
    ``GRANIAN_METRICS_DIR``), then a fresh temporary directory removed by :func:`remove`.
    Samples left by an earlier run's processes are deleted: their pids may be reused.
    """
    if os.environ.get(_PREPARED_BY) == str(os.getpid()):
        return os.environ[metrics.MULTIPROCESS_ENV]
    chosen = os.environ.get(metrics.MULTIPROCESS_ENV) or configured
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        for stale in Path(chosen).glob("*.db"):
            stale.unlink()
    else:
        chosen = tempfile.mkdtemp(prefix="flotilla-metrics-")
        os.environ[_TEMPORARY] = chosen
    os.environ[metrics.MULTIPROCESS_ENV] = chosen
    os.environ[_PREPARED_BY] = str(os.getpid())
    return chosen


def remove() -> None:
    """Delete the temporary directory :func:`prepare` made in this process, if it made one."""
    temporary = os.environ.get(_TEMPORARY)
    if temporary and os.environ.get(_PREPARED_BY) == str(os.getpid()):  # ours, not inherited
        shutil.rmtree(temporary, ignore_errors=True)
