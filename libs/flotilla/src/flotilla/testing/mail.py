"""A real SMTP server for tests and benchmarks: aiosmtpd on 127.0.0.1, keeping what it gets.

:class:`MailServer` can be taken down and brought back on the same port (the worker sees
"connection refused" in between), can hold the e-mails to one address in the middle of
their DATA command until released (so a test can kill the sender mid-send; a held e-mail
whose sender disconnects is dropped, as a real server drops it), and can require
STARTTLS and a login, and can answer MAIL FROM with 421 as a server closing down does.
Needs aiosmtpd: install flotilla with its ``testing`` extra.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from flotilla.testing import free_port


@dataclass(frozen=True)
class Received:
    """One e-mail the server accepted: when, from whom, to whom, the message, over which
    connection (the client's address and port)."""

    at: float
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage
    peer: tuple[str, int]


class _Inbox:
    """The aiosmtpd handler: accepts everything, keeps it, holds what it is told to."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.held_recipient: str | None = None
        self.holding = threading.Event()
        self.abandoned = threading.Event()
        self.release = threading.Event()
        self.refusals_left = 0

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.lock:
            refuse, self.refusals_left = self.refusals_left > 0, max(0, self.refusals_left - 1)
        if refuse:  # as a server going down or limiting messages per connection answers
            return "421 4.3.2 Service shutting down, try again"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        recipients = tuple(str(address) for address in envelope.rcpt_tos)
        if self.held_recipient in recipients:
            self.holding.set()
            try:
                while not self.release.is_set():
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:  # aiosmtpd's doing when the client disconnects
                self.abandoned.set()  # the message is dropped, as a real server drops it
                raise
        content = envelope.original_content or envelope.content or b""
        assert isinstance(content, bytes)
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            sender = str(envelope.mail_from)
            address: Any = session.peer  # (host, port) for a TCP client
            peer = (str(address[0]), int(address[1]))
            self.received.append(Received(time.time(), sender, recipients, message, peer))
        return "250 Message accepted for delivery"


class MailServer:
    """An SMTP server on ``127.0.0.1:port`` in a thread of this process."""

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.inbox = _Inbox()
        self._tls_context = tls_context
        self._credentials = credentials
        self._controller: Controller | None = None

    def __enter__(self) -> MailServer:
        self.up()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.down()

    def up(self) -> None:
        """Start listening (again, on the same port)."""
        if self._controller is not None:
            return
        options: dict[str, Any] = {}
        if self._tls_context is not None:
            options |= {"tls_context": self._tls_context, "require_starttls": True}
        if self._credentials is not None:
            options |= {"authenticator": self._authenticate, "auth_required": True}
        controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)
        controller.start()
        self._controller = controller

    def down(self) -> None:
        """Stop listening and drop every connection: senders get "connection refused"."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def refuse_mail(self, times: int) -> None:
        """Answer the next ``times`` MAIL FROM commands with 421 (closing the service)."""
        with self.inbox.lock:
            self.inbox.refusals_left = times

    def hold(self, recipient: str) -> None:
        """Keep e-mails to ``recipient`` waiting in DATA until :meth:`release`."""
        self.inbox.release.clear()
        self.inbox.holding.clear()
        self.inbox.abandoned.clear()
        self.inbox.held_recipient = recipient

    @property
    def holding(self) -> bool:
        """True once an e-mail to the held recipient is waiting in DATA."""
        return self.inbox.holding.is_set()

    @property
    def abandoned(self) -> bool:
        """True once the sender of a held e-mail disconnected before its release."""
        return self.inbox.abandoned.is_set()

    def release(self) -> None:
        """Let held e-mails through (those whose sender is still connected)."""
        self.inbox.held_recipient = None
        self.inbox.release.set()

    def received(self, predicate: Callable[[Received], bool] = lambda _: True) -> list[Received]:
        """What the server accepted so far, in order, filtered by ``predicate``."""
        with self.inbox.lock:
            return [item for item in self.inbox.received if predicate(item)]

    def to(self, address: str) -> list[Received]:
        """What the server accepted for ``address``."""
        return self.received(lambda item: address in item.recipients)

    def _authenticate(
        self, _server: Any, _session: Session, _envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self._credentials is not None
        if mechanism in {"LOGIN", "PLAIN"} and isinstance(data, LoginPassword):
            given = (data.login.decode(), data.password.decode())
            if given == self._credentials:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)  # not handled: aiosmtpd answers 535
