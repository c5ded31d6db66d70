"""Several ``db upgrade`` runners at once, as several pods or Jobs start them: one migrates.

Real processes on one PostgreSQL database, with a statement_timeout far shorter than the
migration: the runners that find the lock taken wait for it however long it takes, then find
nothing left to do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from flotilla.data.migrations import STOPPED_EXIT_CODE
from flotilla.data.migrations.session import advisory_lock_key
from flotilla.testing import read_json_lines, wait_until

HERE = Path(__file__).parent
RUNNERS = 4
STATEMENT_TIMEOUT_MS = 100
"""Far below the first migration's sleep (1.5 s) and below any runner's wait for the lock."""


def _start_runner(database_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(HERE / "sample"), os.environ.get("PYTHONPATH")])
        ),
        "DATABASE_URL": database_url,
        "DATABASE_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS),
        "FLASK_SKIP_DOTENV": "1",
    }
    command = [sys.executable, "-m", "flask", "--app", "notes_sample:create_app", "db", "upgrade"]
    with log_path.open("wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_concurrent_runners_all_succeed_and_one_migrates(database_url: str, tmp_path: Path) -> None:
    logs = [tmp_path / f"runner-{number}.log" for number in range(RUNNERS)]
    runners = [_start_runner(database_url, log) for log in logs]
    codes = [runner.wait(timeout=60) for runner in runners]

    assert codes == [0] * RUNNERS, [log.read_text()[-2000:] for log in logs]
    engine = create_engine(database_url)
    with engine.connect() as connection:
        applied = connection.execute(text("SELECT count(*) FROM migration_runs")).scalar_one()
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert (applied, version) == (1, "0004")
    messages = [record.get("message") for log in logs for record in read_json_lines(log)]
    assert "migration waits for another run to finish" in messages


def test_sigterm_stops_a_waiting_runner_at_once_and_frees_nothing_it_did_not_hold(
    database_url: str, tmp_path: Path
) -> None:
    # Another run holds the migration lock: this runner waits for it, as a second pod would.
    engine = create_engine(database_url)
    holder = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        key = advisory_lock_key("notes_sample")  # the app's name, as the runner takes it
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        log = tmp_path / "runner.log"
        runner = _start_runner(database_url, log)
        wait_until(lambda: "migration waits for another run to finish" in log.read_text())

        runner.send_signal(signal.SIGTERM)
        code = runner.wait(timeout=5)  # well inside a 10 s grace period

        assert code == STOPPED_EXIT_CODE, log.read_text()[-2000:]
        messages = [record.get("message") for record in read_json_lines(log)]
        assert "migration stopped by SIGTERM; what it had not committed was rolled back" in (
            messages
        )
        assert "Traceback" not in log.read_text()
    finally:
        holder.close()
        engine.dispose()
    # Nothing was applied, and a run started afterwards migrates everything.
    assert _start_runner(database_url, tmp_path / "after.log").wait(timeout=60) == 0
