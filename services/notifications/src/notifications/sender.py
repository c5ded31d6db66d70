"""Sending composed e-mail: over SMTP in production, as ``.eml`` files in development.

:class:`SmtpSender` opens one connection per e-mail: notifications are few and far between,
and a fresh connection never meets a server-side idle timeout mid-send. With
``SMTP_STARTTLS`` (the default) it refuses to go on in clear when the server offers no
STARTTLS, and it logs in only over TLS. Every failure raises, so the task retries with
backoff; nothing here retries by itself.

:class:`EmlWriter` is the embedded default (no ``SMTP_HOST``): each e-mail becomes a file
under ``VAR_DIR/mail`` named after its Message-ID, written atomically, and its path is
logged so a developer can open it.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from notifications.config import NotificationsSettings

log = logging.getLogger(__name__)

_UNSAFE_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9._@-]")


class MailSender(Protocol):
    """Delivers one e-mail, or raises; returns where it went (for the log)."""

    def send(self, message: EmailMessage) -> str:
        """Deliver ``message`` now."""


class SmtpSender:
    """Submits e-mail to the configured SMTP server."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings

    def tls_context(self) -> ssl.SSLContext:
        """Certificate and host name verified, against ``SMTP_CA_FILE`` or the system's CAs."""
        return ssl.create_default_context(cafile=self.settings.SMTP_CA_FILE or None)

    def send(self, message: EmailMessage) -> str:
        """Connect, STARTTLS and log in as configured, submit, quit."""
        settings = self.settings
        with smtplib.SMTP(
            settings.SMTP_HOST, settings.SMTP_PORT, timeout=settings.SMTP_TIMEOUT
        ) as smtp:
            smtp.ehlo()
            if settings.SMTP_STARTTLS:
                smtp.starttls(context=self.tls_context())  # SMTPNotSupportedError if not offered
                smtp.ehlo()
            if settings.SMTP_USERNAME:
                smtp.login(settings.SMTP_USERNAME, settings.SMTP_PASSWORD)
            smtp.send_message(message)  # raises unless the server accepted every recipient
        return f"smtp://{settings.SMTP_HOST}:{settings.SMTP_PORT}"


class EmlWriter:
    """Writes each e-mail to ``directory`` as an RFC 5322 ``.eml`` file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, message: EmailMessage) -> Path:
        """The file of ``message``: its Message-ID, so a second copy replaces the first."""
        name = _UNSAFE_IN_FILE_NAMES.sub("_", str(message["Message-ID"]).strip("<>"))
        return self.directory / f"{name}.eml"

    def send(self, message: EmailMessage) -> str:
        """Write the file (atomically: a reader never sees half of it) and log its path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path_for(message)
        descriptor, partial = tempfile.mkstemp(dir=self.directory, suffix=".partial")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(message.as_bytes())
            Path(partial).replace(path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        log.info("e-mail written to a file", extra={"path": str(path.resolve())})
        return str(path)


def mail_sender(settings: NotificationsSettings) -> MailSender:
    """SMTP when ``SMTP_HOST`` is set, else ``.eml`` files under ``VAR_DIR/mail``."""
    if settings.SMTP_HOST:
        return SmtpSender(settings)
    return EmlWriter(settings.VAR_DIR / "mail")
