"""The embedded default (``make run`` with nothing installed): SQLite, the file broker, and
welcome e-mails written as ``.eml`` files under ``VAR_DIR/mail`` by a real worker process."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from flotilla.data.migrations import upgrade
from flotilla.testing import wait_until
from flotilla.testing.messaging import WorkerProcess
from notifications import create_app as create_notifications
from notifications.config import NotificationsSettings
from notifications.models import db as notifications_db
from users import create_app as create_users
from users.config import UsersSettings
from users.models import db as users_db

pytestmark = pytest.mark.process


def test_a_registration_becomes_an_eml_file_with_nothing_installed(tmp_path: Path) -> None:
    # No DATABASE_URL, BROKER_URL or SMTP_HOST: SQLite, the file broker and .eml files.
    embedded: dict[str, Any] = {"VAR_DIR": tmp_path, "ENVIRONMENT": "test"}
    users = create_users(
        UsersSettings(
            **embedded, ARGON2_TIME_COST=1, ARGON2_MEMORY_KIB=64, RATE_LIMITS_ENABLED=False
        )
    )
    notifications = create_notifications(NotificationsSettings(**embedded))
    try:
        upgrade(users)
        upgrade(notifications)
        declared = notifications.test_cli_runner().invoke(args=["tasks", "declare-queues"])
        assert declared.exit_code == 0, declared.output
        body = {"username": "embedded", "email": "embedded@example.com", "password": "x" * 12}
        assert users.test_client().post("/api/v1/users", json=body).status_code == 201
        relayed = users.test_cli_runner().invoke(args=["outbox", "relay", "--once"])
        assert relayed.output.strip() == "published 1 events"
    finally:
        for app, db in ((users, users_db), (notifications, notifications_db)):
            with app.app_context():
                db.engine.dispose()
    env = {"VAR_DIR": str(tmp_path), "ENVIRONMENT": "test", "TASK_CONCURRENCY": "1"}
    mail = tmp_path / "mail"
    with WorkerProcess(
        "notifications", env=env, log_path=tmp_path / "worker.log", cwd=tmp_path
    ) as worker:
        # The file is renamed into place before the worker logs it: wait for both.
        wait_until(
            lambda: any(mail.glob("*.eml")) and bool(sent_lines(worker)),
            what=f".eml file in {mail}, and its log line",
        )
        (written,) = mail.glob("*.eml")
        logged = sent_lines(worker)
    message = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert message["To"] == "embedded <embedded@example.com>"
    assert message["Subject"] == "Welcome to Flotilla Shop"
    assert [record["via"] for record in logged] == [str(written.resolve())]


def sent_lines(worker: WorkerProcess) -> list[dict[str, Any]]:
    """The worker's "e-mail sent" log records so far."""
    return [record for record in worker.log_records() if record.get("message") == "e-mail sent"]
