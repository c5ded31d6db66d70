"""Sending composed e-mail: over SMTP in production, as ``.eml`` files in development.

:class:`SmtpSender` keeps its connections open between e-mails and reuses them: opening
one costs the server's greeting, EHLO, and with ``SMTP_STARTTLS`` a TLS handshake and a
login — several round trips and far more CPU than the message itself. A connection idle
for more than a few seconds is checked with ``NOOP`` before it is reused, and a reused
connection that turns out to be closed when the envelope is sent (``MAIL FROM``, before
any of the message went out) is replaced and the envelope sent again, so a server that
dropped an idle client costs a reconnect, never a failed e-mail. Any other failure closes
the connection and raises, so the task retries with backoff; a failure after ``DATA``
began is never retried here, since the server may have accepted the message.

With ``SMTP_STARTTLS`` (the default) it refuses to go on in clear when the server offers no
STARTTLS, and it logs in only over TLS. Connections are held one per task running at once
and never shared between two sends.

:class:`EmlWriter` is the embedded default (no ``SMTP_HOST``): each e-mail becomes a file
under ``VAR_DIR/mail`` named after its Message-ID, written atomically, and its path is
logged so a developer can open it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import smtplib
import ssl
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from notifications.config import NotificationsSettings
from notifications.mail import Email

log = logging.getLogger(__name__)

_UNSAFE_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9._@-]")

CHECK_AFTER_IDLE_SECONDS = 5.0
"""Idle longer than this, a connection is checked with NOOP before reuse: servers drop idle
clients after tens of seconds to minutes, and under load no connection waits this long."""

_CLOSED = (smtplib.SMTPServerDisconnected, OSError)
"""What a connection the server has closed (or lost) raises on its next command."""

_SERVICE_CLOSING = 421
"""The reply of a server about to close the connection (RFC 5321 §3.8)."""


class MailSender(Protocol):
    """Delivers one e-mail, or raises; returns where it went (for the log)."""

    def send(self, email: Email) -> str:
        """Deliver ``email`` now."""


@dataclass
class _Connection:
    """An open SMTP session and when it was last used."""

    smtp: smtplib.SMTP
    used_at: float
    reused: bool = field(default=False)

    def close(self) -> None:
        """Say QUIT if the server still listens; drop the socket either way."""
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.smtp.quit()
        self.smtp.close()


class _StaleConnection(Exception):
    """The server had closed the connection before this e-mail's envelope: nothing was sent.

    Raised only inside the sender; what leaves it is ``cause``, the error the server gave.
    """

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class SmtpSender:
    """Submits e-mail to the configured SMTP server over connections it keeps open."""

    def __init__(
        self,
        settings: NotificationsSettings,
        *,
        check_after_idle: float = CHECK_AFTER_IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.check_after_idle = check_after_idle
        self.clock = clock
        self.opened = 0
        """Connections opened so far (tests and the log read it)."""
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        # QUIT the idle connections when the sender is dropped or the process exits.
        weakref.finalize(self, _close_all, self._idle)

    def tls_context(self) -> ssl.SSLContext:
        """Certificate and host name verified, against ``SMTP_CA_FILE`` or the system's CAs."""
        return ssl.create_default_context(cafile=self.settings.SMTP_CA_FILE or None)

    def send(self, email: Email) -> str:
        """Submit ``email`` on an open connection (or a new one); raise unless accepted."""
        taken = self._take()
        try:
            connection = self._send_envelope(taken, email)
        except BaseException:
            taken.close()
            raise
        try:
            _send_data(connection.smtp, email)
        except BaseException:
            connection.close()
            raise
        self._give_back(connection)
        return f"smtp://{self.settings.SMTP_HOST}:{self.settings.SMTP_PORT}"

    def close(self) -> None:
        """QUIT every idle connection (a send afterwards opens a new one)."""
        _close_all(self._idle)

    def _send_envelope(self, connection: _Connection, email: Email) -> _Connection:
        """``MAIL FROM`` and ``RCPT TO``; once more on a new connection if the old one closed."""
        try:
            _send_envelope(connection.smtp, email)
        except _StaleConnection as stale:
            if not connection.reused:
                raise stale.cause from None
            connection.close()
            log.info("smtp connection closed by the server, reconnecting")
            connection = self._open()
            try:
                _send_envelope(connection.smtp, email)
            except _StaleConnection as again:
                connection.close()
                raise again.cause from None
            except BaseException:
                connection.close()
                raise
        return connection

    def _take(self) -> _Connection:
        """The most recently used idle connection, checked if it idled long; else a new one."""
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            return self._open()
        connection.reused = True
        if self.clock() - connection.used_at > self.check_after_idle and not _alive(connection):
            connection.close()
            return self._open()
        return connection

    def _give_back(self, connection: _Connection) -> None:
        connection.used_at = self.clock()
        with self._lock:
            self._idle.append(connection)

    def _open(self) -> _Connection:
        """Connect, STARTTLS and log in as configured."""
        settings = self.settings
        smtp = smtplib.SMTP(settings.SMTP_HOST, settings.SMTP_PORT, timeout=settings.SMTP_TIMEOUT)
        try:
            smtp.ehlo()
            if settings.SMTP_STARTTLS:
                smtp.starttls(context=self.tls_context())  # SMTPNotSupportedError if not offered
                smtp.ehlo()
            if settings.SMTP_USERNAME:
                smtp.login(settings.SMTP_USERNAME, settings.SMTP_PASSWORD)
        except BaseException:
            smtp.close()
            raise
        self.opened += 1
        return _Connection(smtp, self.clock())


def _alive(connection: _Connection) -> bool:
    """True if the server answers NOOP with 250."""
    try:
        code, _reply = connection.smtp.noop()
    except (smtplib.SMTPException, OSError):
        return False
    return code == 250


def _send_envelope(smtp: smtplib.SMTP, email: Email) -> None:
    """``MAIL FROM`` and ``RCPT TO``; raise ``_StaleConnection`` if the server has gone."""
    try:
        code, reply = smtp.mail(email.sender)
    except _CLOSED as error:
        raise _StaleConnection(error) from error
    if code == _SERVICE_CLOSING:
        raise _StaleConnection(smtplib.SMTPSenderRefused(code, reply, email.sender))
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPSenderRefused(code, reply, email.sender)
    code, reply = smtp.rcpt(email.recipient)
    if code not in {250, 251}:
        smtp.rset()
        raise smtplib.SMTPRecipientsRefused({email.recipient: (code, reply)})


def _send_data(smtp: smtplib.SMTP, email: Email) -> None:
    """``DATA``: the message itself; raises unless the server accepted it."""
    code, reply = smtp.data(email.data.replace(b"\n", b"\r\n"))  # SMTP lines end in CRLF
    if code != 250:
        raise smtplib.SMTPDataError(code, reply)


def _close_all(idle: list[_Connection]) -> None:
    while idle:
        with contextlib.suppress(IndexError):  # another thread took the last one
            idle.pop().close()


class EmlWriter:
    """Writes each e-mail to ``directory`` as an RFC 5322 ``.eml`` file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._resolved: Path | None = None

    def path_for(self, email: Email) -> Path:
        """The file of ``email``: its Message-ID, so a second copy replaces the first."""
        name = _UNSAFE_IN_FILE_NAMES.sub("_", email.message_id.strip("<>"))
        return self.directory / f"{name}.eml"

    def send(self, email: Email) -> str:
        """Write the file (atomically: a reader never sees half of it); its absolute path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._resolved is None:  # the absolute path of the directory, found once
            self._resolved = self.directory.resolve()
        path = self.path_for(email)
        descriptor, partial = tempfile.mkstemp(dir=self.directory, suffix=".partial")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(email.data)
            Path(partial).replace(path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return str(self._resolved / path.name)  # the handler logs it as where it went


def mail_sender(settings: NotificationsSettings) -> MailSender:
    """SMTP when ``SMTP_HOST`` is set, else ``.eml`` files under ``VAR_DIR/mail``."""
    if settings.SMTP_HOST:
        return SmtpSender(settings)
    return EmlWriter(settings.VAR_DIR / "mail")
