"""Settings: the embedded default writes files; production and credentials are kept safe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from notifications.config import NotificationsSettings
from notifications.sender import EmlWriter, SmtpSender, mail_sender

PRODUCTION: dict[str, Any] = {
    "ENVIRONMENT": "production",
    "DATABASE_URL": "sqlite://",
}


def test_without_an_smtp_host_e_mail_goes_to_files_under_var_dir(tmp_path: Path) -> None:
    sender = mail_sender(NotificationsSettings(VAR_DIR=tmp_path))
    assert isinstance(sender, EmlWriter)
    assert sender.directory == tmp_path / "mail"


def test_with_an_smtp_host_e_mail_goes_over_smtp_with_starttls_by_default() -> None:
    settings = NotificationsSettings(SMTP_HOST="mail.example.com")
    assert isinstance(mail_sender(settings), SmtpSender)
    assert (settings.SMTP_PORT, settings.SMTP_STARTTLS) == (587, True)


def test_production_refuses_to_start_without_an_smtp_host() -> None:
    with pytest.raises(ValidationError, match="SMTP_HOST must be set in production"):
        NotificationsSettings(**PRODUCTION)
    assert NotificationsSettings(**PRODUCTION, SMTP_HOST="mail.example.com").is_production


def test_a_password_is_never_configured_to_travel_in_clear() -> None:
    with pytest.raises(ValidationError, match="SMTP_USERNAME needs SMTP_STARTTLS"):
        NotificationsSettings(SMTP_HOST="h", SMTP_USERNAME="u", SMTP_STARTTLS=False)


def test_the_smtp_password_is_not_in_the_settings_repr() -> None:
    settings = NotificationsSettings(SMTP_USERNAME="shop", SMTP_PASSWORD="hunter2-secret")
    assert "hunter2-secret" not in repr(settings)
    assert "shop" in repr(settings)


@pytest.mark.parametrize("value", ["nobody", "Shop <shop>", "a@b.c, d@e.f"])
def test_mail_from_must_be_one_address(value: str) -> None:
    with pytest.raises(ValidationError, match="MAIL_FROM"):
        NotificationsSettings(MAIL_FROM=value)


def test_message_ids_end_with_the_sender_domain() -> None:
    assert NotificationsSettings(MAIL_FROM="Shop <hello@shop.test>").mail_domain == "shop.test"


def test_retries_ride_out_an_smtp_outage_below_rabbitmqs_consumer_timeout() -> None:
    settings = NotificationsSettings()
    ceilings = [
        min(settings.TASK_RETRY_BACKOFF_MAX, settings.TASK_RETRY_BACKOFF * 2**retry)
        for retry in range(settings.TASK_MAX_RETRIES)
    ]
    assert sum(ceilings) / 2 > 3600  # full jitter: the expected wait is half the ceilings
    with pytest.raises(ValidationError, match="TASK_RETRY_BACKOFF_MAX"):
        NotificationsSettings(TASK_RETRY_BACKOFF_MAX=1800)
